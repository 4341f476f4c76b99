package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
)

func scanEnv(t *testing.T, url string) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"GITLAB_URL": url, "GITLAB_TOKEN": token, "DATA_DIR": filepath.Join(dir, "data"),
		"EXPORT_DIR": filepath.Join(dir, "exports"), "RATE_LIMIT_RPM": "0",
	}
}

// checkLatest compares the latest exports with the truth and returns the runs exported.
func checkLatest(t *testing.T, truth gitlabsim.Truth, exportDir string) []os.DirEntry {
	t.Helper()
	groups, projects, err := scancheck.ReadExportDir(filepath.Join(exportDir, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	if d := scancheck.Diff(truth, groups, projects); len(d) > 0 {
		t.Fatalf("exports differ from the truth:\n%s", strings.Join(d, "\n"))
	}
	runs, err := os.ReadDir(filepath.Join(exportDir, "runs"))
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// A run that could not scan some projects exports what it could, says where, and
// exits 4 (exitIncomplete) with the counts.
func TestScanCompletedWithErrorsExits4(t *testing.T) {
	sim, url := startSim(t, gitlabsim.Options{Seed: 5, Groups: 4, Projects: 40, Faults: gitlabsim.Faults{
		ForbiddenRate: 0.2, ForbiddenEndpoints: []string{"*"},
	}})
	env := scanEnv(t, url)
	res := runAgent(t, env, "scan")
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitIncomplete, res.stderr)
	}
	if !strings.Contains(res.stdout, "exports:") || !strings.Contains(res.lastLine(), "completed with errors") ||
		!strings.Contains(res.lastLine(), "projects could not be scanned") {
		t.Errorf("stdout %q, last stderr line %q; want the exports and the reason", res.stdout, res.lastLine())
	}
	checkLatest(t, sim.Truth(), env["EXPORT_DIR"])
}

// An export that cannot be written ends the scan with exit 1 and the reason, rather
// than waiting; `scan --redrive` resumes the same run once it is fixed.
func TestScanExportDeadLetteredThenRedrive(t *testing.T) {
	sim, url := startSim(t, gitlabsim.Options{Seed: 7, Groups: 3, Projects: 15})
	env := scanEnv(t, url)
	// EXPORT_DIR is writable, but the runs directory in it is a file.
	if err := os.MkdirAll(env["EXPORT_DIR"], 0o755); err != nil {
		t.Fatal(err)
	}
	runsDir := filepath.Join(env["EXPORT_DIR"], "runs")
	if err := os.WriteFile(runsDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := runAgent(t, env, "scan")
	if res.code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitFailed, res.stderr)
	}
	for _, want := range []string{"failed: its remaining work is in the dead letters", "export", "scan --redrive"} {
		if !strings.Contains(res.lastLine(), want) {
			t.Errorf("last stderr line %q does not say %q", res.lastLine(), want)
		}
	}
	if err := os.Remove(runsDir); err != nil {
		t.Fatal(err)
	}
	res = runAgent(t, env, "scan", "--redrive")
	if res.code != 0 {
		t.Fatalf("scan --redrive: exit %d\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "1 dead letters queued again") {
		t.Errorf("scan --redrive did not say what it queued:\n%s", res.stderr)
	}
	if runs := checkLatest(t, sim.Truth(), env["EXPORT_DIR"]); len(runs) != 1 {
		t.Errorf("%d runs exported, want the one resumed run", len(runs))
	}
}

// A scan refuses to resume a run started with other root groups, saying what differs;
// --new-run abandons it, plainly, and scans afresh.
func TestScanRefusesChangedScopeUntilNewRun(t *testing.T) {
	sim, url := startSim(t, gitlabsim.Options{Seed: 21, Groups: 8, Projects: 300, Faults: gitlabsim.Faults{Latency: time.Millisecond}})
	env := scanEnv(t, url)
	env["CONCURRENT_REQUESTS"] = "2"
	first := agentCmd(buildAgent(t), env, "scan")
	var log1 bytes.Buffer
	first.Stderr = &log1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for sim.Stats().Requests < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("the scan made too few requests to be killed mid-run:\n%s", log1.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()

	root := sim.Truth().Groups[0].FullPath
	env["ROOT_GROUPS"] = root
	res := runAgent(t, env, "scan")
	if res.code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitFailed, res.stderr)
	}
	for _, want := range []string{"unfinished run", "ROOT_GROUPS unset (every top-level group) (now " + root + ")", "scan --new-run"} {
		if !strings.Contains(res.lastLine(), want) {
			t.Errorf("last stderr line %q does not say %q", res.lastLine(), want)
		}
	}
	res = runAgent(t, env, "scan", "--new-run")
	if res.code != 0 {
		t.Fatalf("scan --new-run: exit %d\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "abandoned unfinished run") || !strings.Contains(res.stderr, "can no longer be resumed") {
		t.Errorf("scan --new-run did not say it abandoned the run:\n%s", res.stderr)
	}
}
