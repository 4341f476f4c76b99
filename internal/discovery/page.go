package discovery

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// profilePage profiles a page of projects concurrently and records each; skipStored
// leaves out those the run already holds (a page resumed after a crash).
func (w *Worker) profilePage(ctx context.Context, runID string, projects []gitlab.Project, skipStored bool) error {
	n := w.Concurrency
	if n <= 0 {
		n = 8
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, gp := range projects {
		if gctx.Err() != nil {
			break // a project failed: the page is retried from its checkpoint
		}
		g.Go(func() error { return w.profileOne(gctx, runID, gp, skipStored) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

func (w *Worker) profileOne(ctx context.Context, runID string, gp gitlab.Project, skipStored bool) error {
	if gp.ID <= 0 {
		// A record without a readable ID has no project to be recorded on.
		w.log().Warn("project record without an ID skipped", "err", gp.Validate())
		if w.Recorder != nil {
			w.Recorder.ScanError("malformed", "listing")
		}
		return nil
	}
	// A page interrupted part-way (a timeout, a kill) keeps the projects it stored: a
	// redelivery skips them instead of asking GitLab again.
	if skipStored {
		if _, done, err := w.Store.GetProject(ctx, runID, gp.ID); err != nil {
			return fmt.Errorf("profile project %d: %w", gp.ID, err)
		} else if done {
			return nil
		}
	}
	p, ok, err := w.carryOver(ctx, runID, gp)
	if err != nil {
		return fmt.Errorf("profile project %d: %w", gp.ID, err)
	}
	if !ok {
		if p, err = w.profile(ctx, gp); err != nil {
			return fmt.Errorf("profile project %d: %w", gp.ID, err)
		}
		p.LastProfiledAt = w.now()
	}
	if err := w.Store.PutProject(ctx, runID, p); err != nil {
		return fmt.Errorf("record project %d: %w", gp.ID, err)
	}
	if w.Recorder != nil {
		w.Recorder.ProjectDone(p.ScanStatus, p.Readiness.Category)
	}
	return nil
}

func (w *Worker) now() time.Time {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	return now().UTC().Truncate(time.Second)
}

// base is what a run's projects may be carried over from.
type base struct {
	full bool           // the run profiles every project
	prev *inventory.Run // the previous successful run; nil when there is none
}

// base returns the run's base, read once per run and process.
func (w *Worker) base(ctx context.Context, runID string) (*base, error) {
	if v, ok := w.bases.Load(runID); ok {
		return v.(*base), nil
	}
	b := &base{full: w.FullScanEvery <= 0}
	if !b.full {
		run, err := w.Store.GetRun(ctx, runID)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", runID, err)
		}
		b.full = run.Full
	}
	if !b.full {
		prev, ok, err := w.Store.PreviousRun(ctx, runID)
		if err != nil {
			return nil, fmt.Errorf("previous run: %w", err)
		}
		if ok {
			b.prev = &prev
		}
	}
	w.bases.Store(runID, b)
	return b, nil
}

// carryOver returns the previous successful run's profile of a project that has not
// changed since, refreshed with what the listing says now (identity, statistics,
// listed counts), and ok false when the project is to be profiled: the run is full,
// the project is new, changed, or its last profile was incomplete or is
// FULL_SCAN_EVERY old.
func (w *Worker) carryOver(ctx context.Context, runID string, gp gitlab.Project) (inventory.Project, bool, error) {
	if gp.Validate() != nil {
		return inventory.Project{}, false, nil
	}
	b, err := w.base(ctx, runID)
	if err != nil || b.full || b.prev == nil {
		return inventory.Project{}, false, err
	}
	old, ok, err := w.Store.GetProject(ctx, b.prev.ID, gp.ID)
	if err != nil || !ok {
		return inventory.Project{}, false, err
	}
	p := identity(gp)
	if p.Statistics == nil {
		p.Statistics = old.Statistics // this GitLab lists none; the profile read the detail
	}
	if !unchanged(old, p) || w.now().Sub(old.LastProfiledAt) >= w.FullScanEvery {
		return inventory.Project{}, false, nil
	}
	p.Counts, p.Features = old.Counts, old.Features
	if !w.carryOwners(old, &p) {
		return inventory.Project{}, false, nil
	}
	for _, f := range facts.Counts {
		if f.Listed() && (f.Skip == nil || !f.Skip(&p)) {
			n := listedCount(gp, f.Name)
			*f.Field(&p.Counts) = &n
		}
	}
	p.ScanStatus = inventory.StatusComplete
	p.LastProfiledAt = old.LastProfiledAt
	r := readiness.Assess(p, w.Thresholds)
	p.Readiness = &r
	return p, true, nil
}

// unchanged reports whether a complete profile, old, still describes the project as
// listed now, cur: no activity since, and nothing changed that decides which
// profiling steps run or what they find without a request.
func unchanged(old, cur inventory.Project) bool {
	if old.ScanStatus != inventory.StatusComplete || old.LastProfiledAt.IsZero() ||
		!old.LastActivityAt.Equal(cur.LastActivityAt) ||
		old.EmptyRepo != cur.EmptyRepo || old.DefaultBranch != cur.DefaultBranch {
		return false
	}
	of, cf := old.Features, cur.Features
	if of.WikiEnabled != cf.WikiEnabled || of.IssuesEnabled != cf.IssuesEnabled || of.MREnabled != cf.MREnabled ||
		of.JobsEnabled != cf.JobsEnabled || of.RegistryEnabled != cf.RegistryEnabled {
		return false
	}
	was, is := old.Statistics, cur.Statistics
	if (was == nil) != (is == nil) {
		return false
	}
	return was == nil || (was.PackagesSize == 0) == (is.PackagesSize == 0) &&
		(was.ContainerRegistrySize > 0) == (is.ContainerRegistrySize > 0) && (was.LFSObjectsSize > 0) == (is.LFSObjectsSize > 0)
}
