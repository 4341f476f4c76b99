package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// scan --dry-run counts the projects in scope and prints the estimate without
// profiling a project or writing a file; scan --full profiles every project again
// where a plain second scan carries them over.
func TestDryRunAndFull(t *testing.T) {
	bin := buildAgent(t)
	sim, url := startSim(t, gitlabsim.Options{Seed: 31, Groups: 6, Projects: 80})
	dir := t.TempDir()
	env := map[string]string{
		"GITLAB_URL": url, "GITLAB_TOKEN": token, "DATA_DIR": filepath.Join(dir, "data"),
		"EXPORT_DIR": filepath.Join(dir, "exports"), "RATE_LIMIT_RPM": "0",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(args ...string) (string, int64) {
		t.Helper()
		before := sim.Stats().Requests
		cmd := agentCmd(bin, env, args...)
		out, err := cmd.Output()
		if err != nil || ctx.Err() != nil {
			t.Fatalf("discovery-agent %s: %v %v\n%s", strings.Join(args, " "), err, ctx.Err(), out)
		}
		return string(out), sim.Stats().Requests - before
	}

	out, calls := run("scan", "--dry-run")
	n := len(sim.Truth().Projects)
	if !strings.Contains(out, "projects in scope:    "+strconv.Itoa(n)+" ") || !strings.Contains(out, "API calls") {
		t.Errorf("dry run printed\n%s\nwant %d projects in scope and the expected API calls", out, n)
	}
	for class, k := range sim.Stats().ByClass {
		// graphql: whether GitLab answers it decides which API's calls it counts.
		if k > 0 && class != "groups" && class != "groups/:id/projects" && !(class == "graphql" && k == 1) {
			t.Errorf("dry run asked %s %d times: only the groups, their project totals and GraphQL once may be read", class, k)
		}
	}
	var estimated int64
	if _, rest, ok := strings.Cut(out, "full run:"); ok {
		fmt.Sscanf(strings.TrimSpace(rest), "%d API calls", &estimated)
	}
	if !strings.Contains(out, "profiled through:     graphql") {
		t.Errorf("dry run printed\n%s\nwant it to count GraphQL's calls, which this GitLab answers", out)
	}
	if calls > 10 {
		t.Errorf("dry run made %d requests, want a handful", calls)
	}
	for _, d := range []string{env["DATA_DIR"], env["EXPORT_DIR"]} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("dry run created %s (%v)", d, err)
		}
	}

	_, first := run("scan")
	changed := sim.Change(0.05, 1).Changed
	out, second := run("scan")
	// The summary counts the profiled projects, made within the run's first second too.
	if want := fmt.Sprintf("; %d profiled, %d unchanged since the last run and carried over", len(changed), n-len(changed)); len(changed) == 0 || !strings.Contains(out, want) {
		t.Errorf("second run after %d projects changed printed\n%s\nwant %q", len(changed), out, want)
	}
	out, full := run("scan", "--full")
	if strings.Contains(out, "carried over") {
		t.Errorf("a full run printed projects carried over:\n%s", out)
	}
	t.Logf("calls: estimated %d, first %d, second %d, --full %d", estimated, first, second, full)
	if estimated*10 < first*7 || estimated*10 > first*13 {
		t.Errorf("the dry run estimated %d calls, the first run made %d: want within 30%%", estimated, first)
	}
	if second*5 > first || full*10 < first*9 {
		t.Errorf("calls: first %d, second %d, --full %d; want the second under a fifth of the first and --full as many as the first", first, second, full)
	}
}
