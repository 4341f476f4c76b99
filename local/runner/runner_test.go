package runner

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
)

const token = "sim-token-do-not-leak-9f3a"

type env struct {
	sim  *gitlabsim.Server
	url  string
	cfg  config.Config
	logs *scancheck.Logs
}

func newEnv(t *testing.T, opts gitlabsim.Options) *env {
	t.Helper()
	opts.Token = token
	sim, err := gitlabsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); ts.Close() })
	dir := t.TempDir()
	return &env{
		sim: sim, url: ts.URL, logs: &scancheck.Logs{},
		cfg: config.Config{
			GitLabURL: ts.URL, Token: token, DataDir: filepath.Join(dir, "data"), ExportDir: filepath.Join(dir, "exports"),
			MaxPerProjectCalls: 200, Concurrency: 8, RequestTimeout: 2 * time.Second,
			StaleAfter: 365 * 24 * time.Hour,
		},
	}
}

func (e *env) runner(t *testing.T) *Runner {
	t.Helper()
	r, err := New(e.cfg, Options{
		Log:        slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RetryDelay: 10 * time.Millisecond,
		GitLab:     gitlab.Options{BaseBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxRetries: 8},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkAgainstTruth compares the latest exports with the simulator's truth and checks
// that the token appears in no export and no log line.
func (e *env) checkAgainstTruth(t *testing.T, run inventory.Run) {
	t.Helper()
	if run.Status != inventory.RunSucceeded {
		t.Fatalf("run %s ended %s: %s", run.ID, run.Status, run.Reason)
	}
	for _, dir := range []string{filepath.Join(e.cfg.ExportDir, "runs", run.ID), filepath.Join(e.cfg.ExportDir, "latest")} {
		diffs, err := scancheck.DiffExportDir(e.sim.Truth(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(diffs) > 0 {
			os.WriteFile(filepath.Join(os.TempDir(), t.Name()+".log"), []byte(e.logs.String()), 0o644)
			t.Fatalf("%s differs from the truth (%d shown):\n%s", dir, len(diffs), strings.Join(diffs, "\n"))
		}
		sum, err := scancheck.ReadSummary(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, projects, err := scancheck.ReadExportDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if diffs := scancheck.DiffSummary(e.sim.Truth(), sum, projects, e.cfg.StaleAfter); len(diffs) > 0 {
			t.Fatalf("%s summary differs from the truth:\n%s", dir, strings.Join(diffs, "\n"))
		}
	}
	files, _ := filepath.Glob(filepath.Join(e.cfg.ExportDir, "latest", "*"))
	if len(files) < 5 {
		t.Fatalf("exports: %v, want projects.csv, projects.jsonl, groups.csv, summary.json, report.html", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(token)) {
			t.Errorf("%s contains the token", f)
		}
	}
	if strings.Contains(e.logs.String(), token) {
		t.Error("a log line contains the token")
	}
}

func TestScanEqualsTruth(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 7, Groups: 12, Projects: 250})
	r := e.runner(t)
	defer r.Close()
	run, err := r.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.checkAgainstTruth(t, run)

	// Calls per project, counted by the simulator: the bar is at most 13 on average
	// (12 before the environments count, one more call where CI/CD is on).
	st := e.sim.Stats()
	perProject := float64(st.Requests) / float64(len(e.sim.Truth().Projects))
	t.Logf("%d requests for %d projects: %.2f per project", st.Requests, len(e.sim.Truth().Projects), perProject)
	if perProject > 13 {
		t.Errorf("%.2f API calls per project, want at most 13", perProject)
	}
	calls, err := r.Store.APICalls(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if calls != st.Requests {
		t.Errorf("run counted %d API calls, the simulator served %d", calls, st.Requests)
	}
}

func TestScanUnderFaultsEqualsTruth(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 3, Groups: 10, Projects: 200, Faults: gitlabsim.Faults{
		ErrorRate:          0.04,
		MalformedRate:      0.01,
		Burst429Rate:       0.004, // each pauses every worker for Retry-After (1 s)
		ForbiddenRate:      0.05,
		ForbiddenEndpoints: []string{"projects/:id/hooks", "projects/:id/variables"},
		DeletedRate:        0.02,
		TimeoutRate:        0.003,
		Hang:               5 * time.Second,
	}})
	e.cfg.RequestTimeout = 500 * time.Millisecond
	r := e.runner(t)
	defer r.Close()
	run, err := r.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.checkAgainstTruth(t, run)
	st := e.sim.Stats()
	if st.Faults == 0 || st.Throttled == 0 {
		t.Fatalf("no faults were served (%+v): the test proves nothing", st)
	}
	if len(e.sim.Truth().Faults.Forbidden) == 0 || len(e.sim.Truth().Faults.Deleted) == 0 {
		t.Fatal("the instance has no forbidden or deleted projects: the test proves nothing")
	}
}

func TestForbiddenProjectsAndBadToken(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 5, Groups: 6, Projects: 60, Faults: gitlabsim.Faults{
		ForbiddenRate: 0.1, ForbiddenEndpoints: []string{"*"},
	}})
	r := e.runner(t)
	run, err := r.Scan(context.Background())
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	e.checkAgainstTruth(t, run)

	e.cfg.Token = "wrong-token"
	e.cfg.DataDir = t.TempDir()
	r = e.runner(t)
	defer r.Close()
	_, err = r.Scan(context.Background())
	if !errors.Is(err, gitlab.ErrUnauthorized) {
		t.Fatalf("bad token: err = %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("error contains the token: %v", err)
	}
}

// An interrupted scan resumes from the store: the second Scan continues the same run
// and the result has every project exactly once.
func TestInterruptedScanResumes(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 11, Groups: 10, Projects: 300})
	r := e.runner(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for e.sim.Stats().Requests < 600 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	first, err := r.Scan(ctx)
	if err == nil {
		t.Fatalf("scan finished before the interruption (%s): make the instance bigger", first.Status)
	}
	r.Close()

	r = e.runner(t)
	defer r.Close()
	run, err := r.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if run.ID != first.ID {
		t.Fatalf("second scan started run %s instead of resuming %s", run.ID, first.ID)
	}
	e.checkAgainstTruth(t, run)
}

// MAX_API_CALLS ends a run cleanly: it finishes, what could not be read is recorded as
// errors, the calls stay within the cap, and the next run gets a fresh budget.
func TestMaxAPICallsEndsTheRunCleanly(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 17, Groups: 6, Projects: 100})
	e.cfg.MaxAPICalls = 300
	r := e.runner(t)
	defer r.Close()
	for i := range 2 {
		before := e.sim.Stats().Requests
		run, err := r.Scan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != inventory.RunSucceeded {
			t.Fatalf("run %d ended %s: %s", i, run.Status, run.Reason)
		}
		if served := e.sim.Stats().Requests - before; served > 300 {
			t.Errorf("run %d: the simulator served %d requests, over MAX_API_CALLS=300", i, served)
		}
		_, projects, err := scancheck.ReadExportDir(filepath.Join(e.cfg.ExportDir, "runs", run.ID))
		if err != nil {
			t.Fatal(err)
		}
		budgetErrors := 0
		for _, p := range projects {
			for _, se := range p.Errors {
				if strings.Contains(se.Message, "budget") {
					budgetErrors++
				}
			}
		}
		if len(projects) == 0 || budgetErrors == 0 {
			t.Errorf("run %d: %d projects, %d budget errors; want projects with the spent budget recorded", i, len(projects), budgetErrors)
		}
	}
}

// Personal projects are in no group: only INCLUDE_PERSONAL_PROJECTS finds them, and
// then the inventory equals the truth, personal projects included.
func TestPersonalProjects(t *testing.T) {
	opts := gitlabsim.Options{Seed: 19, Groups: 6, Projects: 80, Users: 5, PersonalProjects: 30}
	tests := []struct {
		name    string
		include bool
	}{
		{"without the option they are missing", false},
		{"with the option the scan is complete", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, opts)
			e.cfg.IncludePersonal = tt.include
			r := e.runner(t)
			defer r.Close()
			run, err := r.Scan(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tt.include {
				e.checkAgainstTruth(t, run)
				return
			}
			groups, projects, err := scancheck.ReadExportDir(filepath.Join(e.cfg.ExportDir, "runs", run.ID))
			if err != nil {
				t.Fatal(err)
			}
			missing := 0
			for _, d := range scancheck.Diff(e.sim.Truth(), groups, projects) {
				if !strings.Contains(d, "missing") {
					t.Errorf("unexpected difference: %s", d)
				}
				missing++
			}
			if missing != 30 {
				t.Errorf("%d projects missing, want the 30 personal ones", missing)
			}
		})
	}
}
