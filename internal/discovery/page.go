package discovery

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// profilePage profiles a page of projects concurrently and records each; skipStored
// leaves out those the run already holds (a page resumed after a crash). In GraphQL
// mode a project is profiled after the query of its batch (most often itself alone).
func (w *Worker) profilePage(ctx context.Context, runID string, projects []gitlab.Project, skipStored bool) error {
	todo := make([]*pageProject, len(projects))
	if err := w.each(ctx, projects, func(ctx context.Context, i int, gp gitlab.Project) (err error) {
		todo[i], err = w.triage(ctx, runID, gp, skipStored)
		return err
	}); err != nil {
		return err
	}
	var profile []gitlab.Project
	var at []int // profile[k] is projects[at[k]]
	for i, t := range todo {
		if t != nil && !t.carried {
			profile, at = append(profile, t.gp), append(at, i)
		}
	}
	if err := w.each(ctx, projects, func(ctx context.Context, i int, gp gitlab.Project) error {
		if todo[i] == nil || !todo[i].carried {
			return nil
		}
		return w.finish(ctx, runID, todo[i], nil)
	}); err != nil {
		return err
	}
	return w.profileEach(ctx, profile, func(ctx context.Context, k int, pre *prefetched) error {
		return w.finish(ctx, runID, todo[at[k]], pre)
	})
}

// each runs fn for every project, Concurrency at a time; the first error stops it.
func (w *Worker) each(ctx context.Context, projects []gitlab.Project, fn func(context.Context, int, gitlab.Project) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.concurrency())
	for i, gp := range projects {
		if gctx.Err() != nil {
			break // a project failed: the page is retried from its checkpoint
		}
		g.Go(func() error { return fn(gctx, i, gp) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// pageProject is a project of a page to be recorded: carried over from the previous
// run (p), or to be profiled.
type pageProject struct {
	gp      gitlab.Project
	p       inventory.Project
	carried bool
}

// triage decides what becomes of a listed project: nil when there is nothing to
// record (no ID, or stored already by an earlier delivery of the page).
func (w *Worker) triage(ctx context.Context, runID string, gp gitlab.Project, skipStored bool) (*pageProject, error) {
	if gp.ID <= 0 {
		// A record without a readable ID has no project to be recorded on.
		w.log().Warn("project record without an ID skipped", "err", gp.Validate())
		if w.Recorder != nil {
			w.Recorder.ScanError("malformed", "listing")
		}
		return nil, nil
	}
	// A page interrupted part-way (a timeout, a kill) keeps the projects it stored: a
	// redelivery skips them instead of asking GitLab again.
	if skipStored {
		if _, done, err := w.Store.GetProject(ctx, runID, gp.ID); err != nil {
			return nil, fmt.Errorf("profile project %d: %w", gp.ID, err)
		} else if done {
			return nil, nil
		}
	}
	p, ok, err := w.carryOver(ctx, runID, gp)
	if err != nil {
		return nil, fmt.Errorf("profile project %d: %w", gp.ID, err)
	}
	return &pageProject{gp: gp, p: p, carried: ok}, nil
}

// finish profiles a project not carried over, with what GraphQL said of it (pre, nil
// for none), and records it.
func (w *Worker) finish(ctx context.Context, runID string, t *pageProject, pre *prefetched) error {
	p, gp := t.p, t.gp
	if !t.carried {
		var err error
		if p, err = w.profile(ctx, gp, pre); err != nil {
			return fmt.Errorf("profile project %d: %w", gp.ID, err)
		}
		p.LastProfiledAt = w.now()
	}
	if err := w.Store.PutProject(ctx, runID, p); err != nil {
		return fmt.Errorf("record project %d: %w", gp.ID, err)
	}
	noteStored(ctx)
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
	if !unchanged(old, p) || w.now().Sub(old.LastProfiledAt) >= RefreshAge(gp.ID, w.FullScanEvery) {
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

// RefreshAge is the age at which an unchanged project's profile is read again: between
// half and all of every, fixed per project by its ID. Without the spread, projects
// profiled by one run would all come due on the same later run, a full run in all but
// name; with it, refreshes spread over the second half of the window and drift apart
// from there, and no profile gets older than every.
func RefreshAge(id int64, every time.Duration) time.Duration {
	h := fnv.New64a()
	_ = binary.Write(h, binary.LittleEndian, id)
	frac := float64(h.Sum64()>>11) / (1 << 53) // uniform in [0, 1)
	return every - time.Duration(frac*float64(every)/2)
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
