package runner

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// bounded is a context for one scenario: whatever goes wrong, the test ends.
func bounded(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// panicSink panics on every export file: a bug in the export step.
type panicSink struct{}

func (panicSink) Put(context.Context, string, string, io.Reader) error { panic("sink bug") }

// emptyGitLab answers a valid token with no groups and no projects.
func emptyGitLab(t *testing.T) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v4/user" {
			io.WriteString(w, `{"id":1,"username":"nobody"}`)
			return
		}
		io.WriteString(w, `[]`)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// Every way a run can end other than "succeeded, complete" ends with the outcome
// recorded: a failed run with its reason, or a succeeded one with its failure counts.
func TestRunOutcomes(t *testing.T) {
	small := gitlabsim.Options{Seed: 23, Groups: 4, Projects: 30}
	tests := []struct {
		name  string
		opts  gitlabsim.Options
		setup func(t *testing.T, e *env)                        // before the runner is built
		run   func(t *testing.T, e *env) (inventory.Run, error) // default: Scan
		check func(t *testing.T, e *env, run inventory.Run, err error)
	}{
		{
			name: "an unwritable EXPORT_DIR fails the run naming the dead letters; a redrive resumes it",
			opts: small,
			setup: func(t *testing.T, e *env) {
				blocker := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(blocker, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				e.cfg.ExportDir = filepath.Join(blocker, "exports") // under a file: never writable
			},
			check: func(t *testing.T, e *env, run inventory.Run, err error) {
				if err != nil || run.Status != inventory.RunFailed {
					t.Fatalf("Scan = %s, %v; want a failed run", run.Status, err)
				}
				for _, want := range []string{"dead letters", "export", "not a directory", "scan --redrive", "POST /dead-letters/redrive"} {
					if !strings.Contains(run.Reason, want) {
						t.Errorf("reason %q does not say %q", run.Reason, want)
					}
				}
				// Fixed, redriven, resumed: the same run finishes equal to the truth.
				e.cfg.ExportDir = filepath.Join(t.TempDir(), "exports")
				r := e.runner(t)
				defer r.Close()
				if n, err := r.RedriveDeadLetters(bounded(t)); err != nil || n != 1 {
					t.Fatalf("redrive = %d, %v; want the export message", n, err)
				}
				again, err := r.Scan(bounded(t))
				if err != nil {
					t.Fatal(err)
				}
				if again.ID != run.ID {
					t.Fatalf("after the redrive scan ran %s, want the resumed %s", again.ID, run.ID)
				}
				e.checkAgainstTruth(t, again)
			},
		},
		{
			name: "a panic in a message's handling is its failure, and ends in the dead letters",
			opts: small,
			run: func(t *testing.T, e *env) (inventory.Run, error) {
				r := e.runner(t)
				defer r.Close()
				r.Worker.Sink = panicSink{}
				return r.Scan(bounded(t))
			},
			check: func(t *testing.T, e *env, run inventory.Run, err error) {
				if err != nil || run.Status != inventory.RunFailed || !strings.Contains(run.Reason, "panic handling export: sink bug") {
					t.Fatalf("Scan = %s %q, %v; want failed naming the panic", run.Status, run.Reason, err)
				}
				if !strings.Contains(e.logs.String(), `"panic handling message"`) {
					t.Error("the panic was not logged")
				}
			},
		},
		{
			name: "missing root groups start no run and are named",
			opts: small,
			setup: func(t *testing.T, e *env) {
				e.cfg.RootGroups = []string{e.sim.Truth().Groups[0].FullPath, "no-such-group"}
			},
			check: func(t *testing.T, e *env, run inventory.Run, err error) {
				if !errors.Is(err, discovery.ErrRootsMissing) || !strings.Contains(err.Error(), `"no-such-group" (404)`) {
					t.Fatalf("Scan = %v, want ErrRootsMissing naming no-such-group", err)
				}
			},
		},
		{
			name: "forbidden projects: succeeded, with the failed projects counted",
			opts: gitlabsim.Options{Seed: 5, Groups: 4, Projects: 40, Faults: gitlabsim.Faults{ForbiddenRate: 0.2, ForbiddenEndpoints: []string{"*"}}},
			check: func(t *testing.T, e *env, run inventory.Run, err error) {
				e.checkAgainstTruth(t, run)
				want := len(e.sim.Truth().Faults.Forbidden)
				if want == 0 || run.FailedProjects != want || run.FailedGroups != 0 || !strings.Contains(run.Reason, "completed with errors") {
					t.Errorf("run failed groups %d, projects %d, reason %q; want 0, %d, completed with errors", run.FailedGroups, run.FailedProjects, run.Reason, want)
				}
				stored, _ := e.runnerStore(t).Store.GetRun(bounded(t), run.ID)
				if stored.FailedProjects != want || stored.Reason != run.Reason {
					t.Errorf("stored run %+v does not carry the counts", stored)
				}
			},
		},
		{
			name: "groups GitLab keeps failing: succeeded, with the failed groups counted",
			opts: small,
			run: func(t *testing.T, e *env) (inventory.Run, error) {
				r := e.runner(t)
				defer r.Close()
				run, _, err := r.Start(bounded(t))
				if err != nil {
					t.Fatal(err)
				}
				e.sim.SetFaults(gitlabsim.Faults{ErrorRate: 1})
				return r.Drain(bounded(t), run.ID)
			},
			check: func(t *testing.T, e *env, run inventory.Run, err error) {
				if err != nil || run.Status != inventory.RunSucceeded {
					t.Fatalf("Scan = %s, %v; want succeeded", run.Status, err)
				}
				if run.FailedGroups == 0 || !strings.Contains(run.Reason, "completed with errors") {
					t.Errorf("failed groups %d, reason %q; want the roots counted", run.FailedGroups, run.Reason)
				}
			},
		},
		{
			name: "a token that sees nothing: no run without personal projects",
			setup: func(t *testing.T, e *env) {
				e.cfg.GitLabURL = emptyGitLab(t)
			},
			check: func(t *testing.T, e *env, run inventory.Run, err error) {
				if !errors.Is(err, discovery.ErrSeesNothing) {
					t.Fatalf("Scan = %v, want ErrSeesNothing", err)
				}
			},
		},
		{
			name: "a token that sees nothing, personal projects included: succeeded, saying so",
			setup: func(t *testing.T, e *env) {
				e.cfg.GitLabURL, e.cfg.IncludePersonal = emptyGitLab(t), true
			},
			check: func(t *testing.T, e *env, run inventory.Run, err error) {
				if err != nil || run.Status != inventory.RunSucceeded || !strings.Contains(run.Reason, "saw no groups and no projects") {
					t.Fatalf("Scan = %s %q, %v; want succeeded with the reason", run.Status, run.Reason, err)
				}
			},
		},
		{
			name: "work lost in a crash: the run fails instead of waiting",
			opts: small,
			run: func(t *testing.T, e *env) (inventory.Run, error) {
				r := e.runner(t)
				defer r.Close()
				ctx := bounded(t)
				run := inventory.Run{ID: "lost", GitLabURL: e.cfg.GitLabURL, Status: inventory.RunRunning, StartedAt: time.Now()}
				if err := r.Store.CreateRun(ctx, run); err != nil {
					t.Fatal(err)
				}
				if err := r.Store.AddPending(ctx, run.ID, "group:1:1"); err != nil { // and killed before the send
					t.Fatal(err)
				}
				return r.Scan(ctx)
			},
			check: func(t *testing.T, e *env, run inventory.Run, err error) {
				if err != nil || run.Status != inventory.RunFailed || !strings.Contains(run.Reason, "none is queued") ||
					!strings.Contains(run.Reason, "--new-run") {
					t.Fatalf("Scan = %s %q, %v; want failed, naming the lost work", run.Status, run.Reason, err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if opts.Groups == 0 {
				opts = small
			}
			e := newEnv(t, opts)
			if tt.setup != nil {
				tt.setup(t, e)
			}
			run := tt.run
			if run == nil {
				run = func(t *testing.T, e *env) (inventory.Run, error) {
					r := e.runner(t)
					defer r.Close()
					return r.Scan(bounded(t))
				}
			}
			got, err := run(t, e)
			tt.check(t, e, got, err)
		})
	}
}

// runnerStore opens the env's store for a look after the runner closed.
func (e *env) runnerStore(t *testing.T) *Runner {
	t.Helper()
	r := e.runner(t)
	t.Cleanup(func() { r.Close() })
	return r
}

// A scan interrupted again and again (SIGINT, SIGTERM: ctx cancelled) resumes every
// time and ends equal to the truth, with nothing dead-lettered.
func TestInterruptionsAreNotFailures(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 29, Groups: 6, Projects: 120})
	var runID string
	for i := range 2 * 5 { // twice what used to dead-letter
		r := e.runner(t)
		ctx, cancel := context.WithCancel(bounded(t))
		from := e.sim.Stats().Requests
		go func() {
			for e.sim.Stats().Requests < from+25 && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		run, err := r.Scan(ctx)
		cancel()
		r.Close()
		if err == nil {
			t.Fatalf("interruption %d: the scan finished first (%s): make the instance bigger", i+1, run.Status)
		}
		if runID != "" && run.ID != runID {
			t.Fatalf("interruption %d: scan ran %s, want the resumed %s", i+1, run.ID, runID)
		}
		runID = run.ID
	}
	r := e.runner(t)
	defer r.Close()
	run, err := r.Scan(bounded(t))
	if err != nil {
		t.Fatal(err)
	}
	if run.ID != runID {
		t.Fatalf("the last scan ran %s, want the resumed %s", run.ID, runID)
	}
	e.checkAgainstTruth(t, run)
	if dls, err := r.DeadLetters(bounded(t)); err != nil || len(dls) != 0 {
		t.Errorf("dead letters %+v, %v; want none", dls, err)
	}
}

// A scan refuses to resume a run of another GitLab or scope, saying what differs;
// Abandon (scan --new-run) starts afresh.
func TestResumeRefusesAChangedScope(t *testing.T) {
	base := newEnv(t, gitlabsim.Options{Seed: 31, Groups: 4, Projects: 20})
	roots := []string{base.sim.Truth().Groups[0].FullPath}
	tests := []struct {
		name   string
		change func(e *env)
		want   string
	}{
		{"another GitLab URL", func(e *env) { e.cfg.GitLabURL = emptyGitLab(t) }, "GITLAB_URL " + base.url + " (now http://"},
		{"other root groups", func(e *env) { e.cfg.RootGroups = roots }, "ROOT_GROUPS unset (every top-level group) (now " + roots[0] + ")"},
		{"personal projects added", func(e *env) { e.cfg.IncludePersonal = true }, "INCLUDE_PERSONAL_PROJECTS false (now true)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gitlabsim.Options{Seed: 31, Groups: 4, Projects: 20})
			e.url = base.url // the messages compare with the base env's URL
			e.cfg.GitLabURL = base.url
			r := e.runner(t)
			first, _, err := r.Start(bounded(t))
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			tt.change(e)
			r = e.runner(t)
			defer r.Close()
			_, err = r.Scan(bounded(t))
			if !errors.Is(err, ErrScopeChanged) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "--new-run") {
				t.Fatalf("Scan = %v; want ErrScopeChanged saying %q and --new-run", err, tt.want)
			}
			if tt.name == "another GitLab URL" {
				return // the empty GitLab would start a run that sees nothing
			}
			old, ok, err := r.Abandon(bounded(t), "abandoned by scan --new-run")
			if err != nil || !ok || old.ID != first.ID {
				t.Fatalf("Abandon = %s, %v, %v; want run %s", old.ID, ok, err, first.ID)
			}
			run, err := r.Scan(bounded(t))
			if err != nil || run.ID == first.ID || run.Status != inventory.RunSucceeded {
				t.Fatalf("Scan after Abandon = %s %s, %v; want a new succeeded run", run.ID, run.Status, err)
			}
			if gone, _ := r.Store.GetRun(bounded(t), first.ID); gone.Status != inventory.RunFailed || gone.Reason != "abandoned by scan --new-run" {
				t.Errorf("abandoned run %+v", gone)
			}
		})
	}
}

// switchSink panics until fixed, then writes to a directory.
type switchSink struct {
	fixed atomic.Bool
	dir   export.DirSink
}

func (s *switchSink) Put(ctx context.Context, name, contentType string, body io.Reader) error {
	if !s.fixed.Load() {
		panic("sink bug")
	}
	return s.dir.Put(ctx, name, contentType, body)
}

// In service mode (Work) too, a run whose work is all dead-lettered ends failed, the
// service hears of it, and the redrive resumes it while the workers keep going.
func TestWorkFailsAStalledRunAndRedriveResumesIt(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 37, Groups: 3, Projects: 15})
	r := e.runner(t)
	defer r.Close()
	sink := &switchSink{dir: export.DirSink{Dir: e.cfg.ExportDir}}
	r.Worker.Sink = sink
	finished := make(chan inventory.Run, 2)
	r.OnRunFinished(func(run inventory.Run) { finished <- run })
	ctx := bounded(t)
	workCtx, stop := context.WithCancel(ctx)
	worked := make(chan struct{})
	go func() { r.Work(workCtx); close(worked) }()
	defer func() { stop(); <-worked }()

	run, _, err := r.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-finished:
		if got.ID != run.ID || got.Status != inventory.RunFailed || !strings.Contains(got.Reason, "dead letters") {
			t.Fatalf("the service heard %s %s %q; want run %s failed naming the dead letters", got.ID, got.Status, got.Reason, run.ID)
		}
	case <-ctx.Done():
		t.Fatal("the stalled run never ended")
	}
	sink.fixed.Store(true)
	if n, err := r.RedriveDeadLetters(ctx); err != nil || n != 1 {
		t.Fatalf("redrive = %d, %v", n, err)
	}
	select {
	case got := <-finished:
		if got.ID != run.ID || got.Status != inventory.RunSucceeded {
			t.Fatalf("after the redrive the service heard %s %s %q; want run %s succeeded", got.ID, got.Status, got.Reason, run.ID)
		}
		e.checkAgainstTruth(t, got)
	case <-ctx.Done():
		t.Fatal("the redriven run never ended")
	}
}
