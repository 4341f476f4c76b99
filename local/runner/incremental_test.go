package runner

import (
	"context"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
)

// clock is the worker's clock in a test: each run is a day after the previous one.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time         { return time.Unix(c.t.Load(), 0) }
func (c *clock) add(d time.Duration)    { c.t.Add(int64(d / time.Second)) }
func (c *clock) set(t time.Time) *clock { c.t.Store(t.Unix()); return c }

// profiledAt returns the projects of a run's export by the time they were profiled.
func (e *env) profiledAt(t *testing.T, run inventory.Run) map[time.Time][]int64 {
	t.Helper()
	_, projects, err := scancheck.ReadExportDir(filepath.Join(e.cfg.ExportDir, "runs", run.ID))
	if err != nil {
		t.Fatal(err)
	}
	at := map[time.Time][]int64{}
	for _, p := range projects {
		at[p.LastProfiledAt] = append(at[p.LastProfiledAt], p.ID)
	}
	return at
}

// Runs are incremental by default: a second run of an unchanged estate carries every
// project over and costs little more than the listing; after the simulator changes
// 10% of the projects exactly those are profiled again, at a cost that scales with the
// share; a full run and a profile FULL_SCAN_EVERY old profile everything again; and
// every export equals the truth.
func TestIncrementalRuns(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 23, Groups: 12, Projects: 300})
	e.cfg.FullScanEvery = 7 * 24 * time.Hour
	r := e.runner(t)
	defer r.Close()
	clk := new(clock).set(time.Date(2025, 6, 2, 3, 0, 0, 0, time.UTC))
	r.Worker.Now = clk.now
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := int64(len(e.sim.Truth().Projects))

	// scan runs one run a day later and returns it with the requests it made.
	scan := func(ctx context.Context, name string) (inventory.Run, int64) {
		t.Helper()
		clk.add(24 * time.Hour)
		before := e.sim.Stats().Requests
		run, err := r.Scan(ctx)
		if err != nil {
			t.Fatalf("%s run: %v", name, err)
		}
		e.checkAgainstTruth(t, run)
		calls := e.sim.Stats().Requests - before
		if counted, _ := r.Store.APICalls(ctx, run.ID); counted != calls {
			t.Errorf("%s run counted %d API calls, the simulator served %d", name, counted, calls)
		}
		if run.ProjectsInScope != n {
			t.Errorf("%s run: %d projects in scope, want %d", name, run.ProjectsInScope, n)
		}
		t.Logf("%s run: %d calls, %.3f per project", name, calls, float64(calls)/float64(n))
		return run, calls
	}
	profiled := func(name string, run inventory.Run, want []int64) {
		t.Helper()
		got := e.profiledAt(t, run)[clk.now().UTC()]
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s run profiled %d projects %v, want %d %v", name, len(got), head(got), len(want), head(want))
		}
	}
	all := make([]int64, 0, n)
	for _, p := range e.sim.Truth().Projects {
		all = append(all, p.ID)
	}
	slices.Sort(all)

	first, full := scan(ctx, "first")
	profiled("first", first, all)

	descendants := e.sim.Stats().ByClass["groups/:id/descendant_groups"]
	second, listing := scan(ctx, "unchanged")
	// The walk of the groups costs a request per root, not one per group.
	roots := int64(0)
	for _, g := range e.sim.Truth().Groups {
		if g.ParentID == 0 {
			roots++
		}
	}
	st := e.sim.Stats()
	if d := st.ByClass["groups/:id/descendant_groups"] - descendants; d != roots || st.ByClass["groups/:id/subgroups"] != 0 {
		t.Errorf("unchanged run: %d descendant listings for %d roots, %d subgroup listings in all; want one per root and none",
			d, roots, st.ByClass["groups/:id/subgroups"])
	}
	profiled("unchanged", second, nil)
	if at := e.profiledAt(t, second); len(at) != 1 || len(at[clk.now().UTC().Add(-24*time.Hour)]) != int(n) {
		t.Errorf("unchanged run: projects carry %d profile times, want the first run's for all", len(at))
	}
	if listing*10 > full {
		t.Errorf("unchanged run made %d calls, want under a tenth of the first run's %d", listing, full)
	}

	ch := e.sim.Change(0.1, 1)
	changed, calls := scan(ctx, "10% changed")
	profiled("10% changed", changed, ch.Changed)
	// The changed projects cost what a full profile costs; the rest, the listing.
	perProject := float64(full-listing) / float64(n)
	want := float64(listing) + perProject*float64(len(ch.Changed))
	if got := float64(calls); got < 0.75*want || got > 1.25*want {
		t.Errorf("10%% changed run made %d calls, want about %.0f (listing %d + %d changed × %.1f)", calls, want, listing, len(ch.Changed), perProject)
	}

	fullRun, _ := scan(discovery.WithFull(ctx), "full")
	if !fullRun.Full {
		t.Error("the full run is not recorded as full")
	}
	profiled("full", fullRun, all)

	// Refreshes are spread: six days after the full run exactly the projects whose
	// refresh age (between 3.5 and 7 days, fixed per project) has passed are read again.
	clk.add(5 * 24 * time.Hour)
	var due []int64
	for _, id := range all {
		if discovery.RefreshAge(id, e.cfg.FullScanEvery) <= 6*24*time.Hour {
			due = append(due, id)
		}
	}
	if len(due) == 0 || len(due) == len(all) {
		t.Fatalf("%d of %d projects due after six days: the spread is not spread", len(due), len(all))
	}
	spread, _ := scan(ctx, "six days later")
	profiled("six days later", spread, due)

	clk.add(7 * 24 * time.Hour) // every profile is now over FULL_SCAN_EVERY old
	aged, _ := scan(ctx, "a week later")
	if aged.Full {
		t.Error("the run after a week is recorded as full; only its projects' age made it one")
	}
	profiled("a week later", aged, all)
}

func head(ids []int64) []int64 { return ids[:min(len(ids), 5)] }

// FULL_SCAN_EVERY=0 turns incremental runs off: every run profiles every project.
func TestFullScanEveryZeroProfilesEverything(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 29, Groups: 4, Projects: 40})
	e.cfg.FullScanEvery = 0
	r := e.runner(t)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var calls [2]int64
	for i := range calls {
		before := e.sim.Stats().Requests
		run, err := r.Scan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e.checkAgainstTruth(t, run)
		calls[i] = e.sim.Stats().Requests - before
	}
	if calls[1] < calls[0]*9/10 {
		t.Errorf("second run made %d calls, the first %d: with FULL_SCAN_EVERY=0 it must profile every project again", calls[1], calls[0])
	}
}

// A project renamed in GitLab (same ID, new path, no new activity) is carried over under
// its new path, the export equals the truth, and diff.json lists exactly the renamed
// projects as moved, with their previous paths.
func TestRenamedProjectsAreMoved(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 31, Groups: 6, Projects: 120})
	e.cfg.FullScanEvery = 7 * 24 * time.Hour
	r := e.runner(t)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := r.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	renamed := e.sim.Rename(0.05, 3)
	if len(renamed) == 0 {
		t.Fatal("nothing renamed")
	}
	run, err := r.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.checkAgainstTruth(t, run)
	checkMoved(t, readDiff(t, e, run.ID), renamed)
}
