package discovery

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

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
	p, ok, err := w.cached(ctx, runID, gp)
	if err != nil {
		return fmt.Errorf("profile project %d: %w", gp.ID, err)
	}
	if !ok {
		if p, err = w.profile(ctx, gp); err != nil {
			return fmt.Errorf("profile project %d: %w", gp.ID, err)
		}
	}
	if err := w.Store.PutProject(ctx, runID, p); err != nil {
		return fmt.Errorf("record project %d: %w", gp.ID, err)
	}
	if w.Recorder != nil {
		w.Recorder.ProjectDone(p.ScanStatus, p.Readiness.Category)
	}
	return nil
}

// cached returns the previous run's profile of an unchanged project, refreshed with
// what the listing says now (identity, statistics), when CACHE_TTL allows it.
func (w *Worker) cached(ctx context.Context, runID string, gp gitlab.Project) (inventory.Project, bool, error) {
	if w.CacheTTL <= 0 || gp.Validate() != nil {
		return inventory.Project{}, false, nil
	}
	prev, err := w.previousRun(ctx, runID)
	if err != nil || prev == nil {
		return inventory.Project{}, false, err
	}
	old, ok, err := w.Store.GetProject(ctx, prev.ID, gp.ID)
	if err != nil || !ok {
		return inventory.Project{}, false, err
	}
	if old.ScanStatus != inventory.StatusComplete || !old.LastActivityAt.Equal(gp.LastActivityAt.UTC()) {
		return inventory.Project{}, false, nil
	}
	p := identity(gp)
	if p.Statistics == nil {
		p.Statistics = old.Statistics
	}
	p.Counts, p.Features = old.Counts, old.Features
	p.ScanStatus = inventory.StatusComplete
	r := readiness.Assess(p, w.Thresholds)
	p.Readiness = &r
	return p, true, nil
}

func (w *Worker) previousRun(ctx context.Context, runID string) (*inventory.Run, error) {
	if v, ok := w.prevRuns.Load(runID); ok {
		return v.(*inventory.Run), nil
	}
	prev, ok, err := w.Store.PreviousRun(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("previous run: %w", err)
	}
	var usable *inventory.Run
	if ok && time.Since(prev.FinishedAt) < w.CacheTTL {
		usable = &prev
	}
	w.prevRuns.Store(runID, usable)
	return usable, nil
}
