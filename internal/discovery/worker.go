// Package discovery holds the handlers of a discovery run: the scheduler that starts a
// run, the worker that scans one group message at a time, and the export step. Local
// mode and the Lambda functions run these same handlers over different backends.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// Worker handles work messages: group scans and the final export.
type Worker struct {
	Store    Store
	Queue    Queue
	GitLab   *gitlab.Client
	Sink     export.Sink
	Recorder Recorder     // optional
	Log      *slog.Logger // optional
	// Thresholds for the readiness rules.
	Thresholds readiness.Thresholds
	// MaxPerProjectCalls bounds one project's profile (0 = unlimited).
	MaxPerProjectCalls int
	// Concurrency is how many projects of a page are profiled at once (default 8).
	Concurrency int
	// DeadlineMargin: with a context deadline (Lambda), a group stops taking pages this
	// long before it, or 1.5x the slowest page so far if longer, and continues in a new
	// message. Default 30s.
	DeadlineMargin time.Duration
	// OnRunFinished is called after a run's exports are written (metrics, notices).
	OnRunFinished func(inventory.Run, inventory.Summary)
	// CacheTTL (CACHE_TTL) reuses a project's profile from the previous successful run
	// when that run finished less than CacheTTL ago, the project's last_activity_at is
	// unchanged and its profile was complete. 0 = off.
	CacheTTL time.Duration

	prevRuns sync.Map // run ID -> *inventory.Run (nil: no usable previous run)
}

func (w *Worker) log() *slog.Logger {
	if w.Log == nil {
		return slog.Default()
	}
	return w.Log
}

// Handle processes one message. final says this is the message's last delivery before
// it would go to the dead-letter queue: a group that still cannot be scanned is then
// recorded with scan_status "error" and the run goes on without it.
//
// A nil return means the message is done and may be deleted. An error means it should
// be delivered again (it resumes from its checkpoint). Malformed messages return an
// error wrapping work.ErrMalformed: they can never succeed and belong in the DLQ.
func (w *Worker) Handle(ctx context.Context, m work.Message, final bool) error {
	if err := m.Validate(); err != nil {
		return err
	}
	log := w.log().With("run_id", m.RunID, "key", m.Key())
	done, err := w.Store.IsDone(ctx, m.RunID, m.Key())
	if err != nil {
		return fmt.Errorf("check %s: %w", m.Key(), err)
	}
	if done {
		log.Debug("message already done; dropping duplicate")
		if m.Kind != work.KindExport {
			// The first delivery may have died between its Done and queueing the export.
			return w.exportIfIdle(ctx, m.RunID, log)
		}
		return nil
	}
	run, err := w.Store.GetRun(ctx, m.RunID)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: unknown run %q", work.ErrMalformed, m.RunID)
	}
	if err != nil {
		return fmt.Errorf("load run %s: %w", m.RunID, err)
	}
	if run.Status == inventory.RunFailed || run.Status == inventory.RunSucceeded {
		log.Info("run already ended; dropping message", "status", run.Status)
		return nil
	}

	switch m.Kind {
	case work.KindExport:
		return w.export(ctx, run, log)
	default:
		scan := w.scanGroup
		if m.Kind == work.KindPersonal {
			scan = w.scanPersonal
		}
		err := scan(ctx, m, log)
		if errors.Is(err, gitlab.ErrUnauthorized) {
			return w.fail(ctx, run, "GitLab rejected the token (401): check GITLAB_TOKEN", log)
		}
		if err != nil && final && ctx.Err() == nil {
			log.Error("group scan failed on its last delivery; recording it as an error", "err", err)
			return w.giveUp(ctx, m, err.Error(), log)
		}
		return err
	}
}

func (w *Worker) fail(ctx context.Context, run inventory.Run, reason string, log *slog.Logger) error {
	run.Status = inventory.RunFailed
	run.FinishedAt = time.Now().UTC()
	run.Reason = reason
	log.Error("run failed", "reason", reason)
	if err := w.Store.UpdateRun(ctx, run); err != nil {
		return fmt.Errorf("mark run %s failed: %w", run.ID, err)
	}
	if w.OnRunFinished != nil {
		w.OnRunFinished(run, inventory.Summary{RunID: run.ID, Status: run.Status})
	}
	return nil
}

// giveUp records a group that could not be scanned and completes its message, so the
// run still ends and the group shows in the exports with its status.
func (w *Worker) giveUp(ctx context.Context, m work.Message, reason string, log *slog.Logger) error {
	g := inventory.Group{ID: m.GroupID, FullPath: m.GroupPath, ParentID: m.ParentID, Subgroups: m.Subgroups, ScanStatus: inventory.StatusError}
	if g.ID != 0 {
		if err := w.Store.PutGroup(ctx, m.RunID, g); err != nil {
			return fmt.Errorf("record failed group %s: %w", m.Key(), err)
		}
	}
	if w.Recorder != nil && m.Kind == work.KindGroup {
		w.Recorder.GroupDone(inventory.StatusError)
	}
	return w.complete(ctx, m.RunID, m.Key(), log)
}

// complete marks a message done; the message that brings the pending count to zero
// queues the export.
func (w *Worker) complete(ctx context.Context, runID, key string, log *slog.Logger) error {
	remaining, first, err := w.Store.Done(ctx, runID, key)
	if err != nil {
		return fmt.Errorf("complete %s: %w", key, err)
	}
	if w.Recorder != nil {
		w.Recorder.QueueDepth(remaining)
	}
	if !first || remaining > 0 {
		return nil
	}
	log.Info("all groups scanned; queueing export")
	return w.queueExport(ctx, runID)
}

// queueExport sends the run's export message. It is not counted as pending work: the
// pending count is the groups' alone, so it reaching zero means the scan is over. A
// duplicate export message finds its key done and is dropped.
func (w *Worker) queueExport(ctx context.Context, runID string) error {
	if err := w.Queue.Send(ctx, work.Message{Kind: work.KindExport, RunID: runID}); err != nil {
		return fmt.Errorf("queue export: %w", err)
	}
	return nil
}

// exportIfIdle re-queues the export of a running run with no pending work.
func (w *Worker) exportIfIdle(ctx context.Context, runID string, log *slog.Logger) error {
	run, err := w.Store.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("load run %s: %w", runID, err)
	}
	if run.Status != inventory.RunRunning {
		return nil
	}
	n, err := w.Store.Pending(ctx, runID)
	if err != nil || n > 0 {
		return err
	}
	log.Info("run has no pending work but was not exported; queueing export")
	return w.queueExport(ctx, runID)
}

// errDeadlineNear: too little time left to scan a page in this invocation.
var errDeadlineNear = errors.New("deadline too near to scan a page")

// checkpointDone marks a group message whose project listing is finished and whose
// group record is written; a page number no listing reaches.
const checkpointDone = math.MaxInt32

// countCalls counts the requests made under the returned context and adds them to the
// run's API calls when done is called: retries and redeliveries included, what GitLab
// really served.
func (w *Worker) countCalls(ctx context.Context, runID string, log *slog.Logger) (context.Context, func()) {
	ctx, calls := gitlab.WithCallCounter(ctx, 0)
	return ctx, func() {
		if n := calls(); n > 0 {
			if err := w.Store.AddAPICalls(context.WithoutCancel(ctx), runID, n); err != nil {
				log.Warn("count API calls", "err", err)
			}
		}
	}
}

func (w *Worker) scanGroup(ctx context.Context, m work.Message, log *slog.Logger) error {
	key := m.Key()
	ctx, done := w.countCalls(ctx, m.RunID, log)
	defer done()

	g := inventory.Group{ID: m.GroupID, FullPath: m.GroupPath, ParentID: m.ParentID, Subgroups: m.Subgroups}
	if g.ID == 0 {
		gg, err := w.GitLab.Group(ctx, m.GroupPath)
		if err != nil {
			return w.groupUnreachable(ctx, m, g, err, log)
		}
		g = inventory.Group{ID: gg.ID, FullPath: gg.FullPath, ParentID: gg.ParentID}
	}
	log = log.With("group_id", g.ID, "group", g.FullPath)

	cp, err := w.Store.Checkpoint(ctx, m.RunID, key)
	if err != nil {
		return fmt.Errorf("scan group %d: read checkpoint: %w", g.ID, err)
	}
	if cp == checkpointDone {
		return w.complete(ctx, m.RunID, key, log) // crashed after the group was recorded
	}

	if max(m.Page, 1) == 1 {
		// Listed again on redelivery even past page 1: a crash between counting and
		// sending a subgroup message must not lose it.
		subs, err := w.GitLab.Subgroups(ctx, g.ID)
		if err != nil {
			return w.groupUnreachable(ctx, m, g, err, log)
		}
		g.Subgroups = len(subs)
		if err := w.enqueueSubgroups(ctx, m.RunID, subs); err != nil {
			return fmt.Errorf("scan group %d: %w", g.ID, err)
		}
	}

	page := max(m.Page, cp, 1)
	// A checkpoint means an earlier delivery got this far and may have died inside the
	// page: that page skips the projects it stored. A first delivery records that it
	// started, so that a crash inside its first page is known as one too.
	skipStored := cp > 0
	if !skipStored {
		if err := w.Store.SaveCheckpoint(ctx, m.RunID, key, page); err != nil {
			return fmt.Errorf("scan group %d: save checkpoint: %w", g.ID, err)
		}
	}
	var slowest time.Duration
	for {
		if w.nearDeadline(ctx, slowest) {
			next := work.Message{Kind: work.KindGroup, RunID: m.RunID, GroupID: g.ID, GroupPath: g.FullPath, ParentID: g.ParentID, Page: page, Subgroups: g.Subgroups}
			return w.continueLater(ctx, m, next, fmt.Sprintf("scan group %d before page %d", g.ID, page), log)
		}
		start := time.Now()
		projects, nextPage, err := w.GitLab.GroupProjects(ctx, g.ID, page)
		if err != nil {
			if errors.Is(err, budget.ErrExhausted) {
				return w.groupUnreachable(ctx, m, g, err, log)
			}
			return fmt.Errorf("scan group %d: list projects page %d: %w", g.ID, page, err)
		}
		if err := w.profilePage(ctx, m.RunID, projects, skipStored); err != nil {
			return fmt.Errorf("scan group %d page %d: %w", g.ID, page, err)
		}
		skipStored = false
		slowest = max(slowest, time.Since(start))
		if nextPage == 0 {
			g.Projects = (page-1)*gitlab.PerPage + len(projects)
			break
		}
		page = nextPage
		if err := w.Store.SaveCheckpoint(ctx, m.RunID, key, page); err != nil {
			return fmt.Errorf("scan group %d: save checkpoint: %w", g.ID, err)
		}
	}

	g.ScanStatus = inventory.StatusComplete
	if err := w.Store.PutGroup(ctx, m.RunID, g); err != nil {
		return fmt.Errorf("scan group %d: record group: %w", g.ID, err)
	}
	if err := w.Store.SaveCheckpoint(ctx, m.RunID, key, checkpointDone); err != nil {
		return fmt.Errorf("scan group %d: save checkpoint: %w", g.ID, err)
	}
	if w.Recorder != nil {
		w.Recorder.GroupDone(g.ScanStatus)
	}
	log.Info("group scanned", "projects", g.Projects, "subgroups", g.Subgroups)
	return w.complete(ctx, m.RunID, key, log)
}

// scanPersonal profiles the projects of personal namespaces, which no group holds: it
// walks the whole project list in ID order (keyset pagination, no offset cap) and
// profiles the projects whose namespace is a user's. Like a group, it checkpoints its
// cursor after each page and continues in a new message before a deadline.
func (w *Worker) scanPersonal(ctx context.Context, m work.Message, log *slog.Logger) error {
	key := m.Key()
	ctx, done := w.countCalls(ctx, m.RunID, log)
	defer done()
	cp, err := w.Store.Checkpoint(ctx, m.RunID, key)
	if err != nil {
		return fmt.Errorf("scan personal projects: read checkpoint: %w", err)
	}
	if cp == checkpointDone {
		return w.complete(ctx, m.RunID, key, log)
	}
	after := max(m.After, int64(cp))
	skipStored := cp > 0 // as for groups; a crash inside the very first page re-profiles it
	found := 0
	var slowest time.Duration
	for {
		if w.nearDeadline(ctx, slowest) {
			next := work.Message{Kind: work.KindPersonal, RunID: m.RunID, After: after}
			return w.continueLater(ctx, m, next, fmt.Sprintf("scan personal projects after project %d", after), log)
		}
		start := time.Now()
		projects, next, err := w.GitLab.Projects(ctx, after)
		if errors.Is(err, budget.ErrExhausted) {
			log.Warn("API call budget spent; personal projects after this one are not scanned", "after", after)
			return w.complete(ctx, m.RunID, key, log)
		}
		if err != nil {
			return fmt.Errorf("scan personal projects after %d: %w", after, err)
		}
		personal := slices.DeleteFunc(projects, func(p gitlab.Project) bool { return p.Namespace.Kind != "user" })
		if err := w.profilePage(ctx, m.RunID, personal, skipStored); err != nil {
			return fmt.Errorf("scan personal projects after %d: %w", after, err)
		}
		skipStored = false
		found += len(personal)
		slowest = max(slowest, time.Since(start))
		if next == 0 {
			break
		}
		after = next
		if err := w.Store.SaveCheckpoint(ctx, m.RunID, key, int(after)); err != nil {
			return fmt.Errorf("scan personal projects: save checkpoint: %w", err)
		}
	}
	if err := w.Store.SaveCheckpoint(ctx, m.RunID, key, checkpointDone); err != nil {
		return fmt.Errorf("scan personal projects: save checkpoint: %w", err)
	}
	log.Info("personal projects scanned", "projects", found)
	return w.complete(ctx, m.RunID, key, log)
}

// groupUnreachable records a group GitLab will not show us (403, 404, budget spent)
// and completes its message; anything else is returned for a retry.
func (w *Worker) groupUnreachable(ctx context.Context, m work.Message, g inventory.Group, err error, log *slog.Logger) error {
	kind := ""
	switch {
	case errors.Is(err, gitlab.ErrForbidden):
		g.ScanStatus, kind = inventory.StatusForbidden, "forbidden"
	case errors.Is(err, gitlab.ErrNotFound):
		g.ScanStatus, kind = inventory.StatusNotFound, "not_found"
	case errors.Is(err, budget.ErrExhausted):
		g.ScanStatus, kind = inventory.StatusError, "budget"
	default:
		return fmt.Errorf("scan group %s: %w", m.Key(), err)
	}
	log.Warn("group not scanned", "status", g.ScanStatus, "err", err)
	if w.Recorder != nil {
		w.Recorder.GroupDone(g.ScanStatus)
		w.Recorder.ScanError(kind, "group")
	}
	if g.ID != 0 {
		if err := w.Store.PutGroup(ctx, m.RunID, g); err != nil {
			return fmt.Errorf("record group %d: %w", g.ID, err)
		}
	}
	return w.complete(ctx, m.RunID, m.Key(), log)
}

func (w *Worker) enqueueSubgroups(ctx context.Context, runID string, subs []gitlab.Group) error {
	if len(subs) == 0 {
		return nil
	}
	msgs := make([]work.Message, len(subs))
	keys := make([]string, len(subs))
	for i, s := range subs {
		msgs[i] = work.Message{Kind: work.KindGroup, RunID: runID, GroupID: s.ID, GroupPath: s.FullPath, ParentID: s.ParentID}
		keys[i] = msgs[i].Key()
	}
	// Count before sending: the pending count may then be too high for a moment, never
	// too low, so the run cannot end while a subgroup is still on its way.
	if err := w.Store.AddPending(ctx, runID, keys...); err != nil {
		return fmt.Errorf("count subgroups: %w", err)
	}
	if err := w.Queue.Send(ctx, msgs...); err != nil {
		return fmt.Errorf("queue subgroups: %w", err)
	}
	return nil
}

// continueLater hands the rest of message m on to next before the deadline: next is
// counted as pending before it is sent, then m completes, so the run cannot end in
// between. where describes the position for errors and the log.
func (w *Worker) continueLater(ctx context.Context, m, next work.Message, where string, log *slog.Logger) error {
	if next.Key() == m.Key() {
		// No page done in this invocation: a continuation would be this very message,
		// and be dropped as a duplicate. Let it be delivered again.
		return fmt.Errorf("%s: %w", where, errDeadlineNear)
	}
	log.Info("deadline near; continuing in a new message", "at", where, "next", next.Key())
	if err := w.Store.AddPending(ctx, m.RunID, next.Key()); err != nil {
		return fmt.Errorf("%s: count continuation: %w", where, err)
	}
	if err := w.Queue.Send(ctx, next); err != nil {
		return fmt.Errorf("%s: queue continuation: %w", where, err)
	}
	return w.complete(ctx, m.RunID, m.Key(), log)
}

func (w *Worker) nearDeadline(ctx context.Context, slowest time.Duration) bool {
	dl, ok := ctx.Deadline()
	if !ok {
		return false
	}
	margin := w.DeadlineMargin
	if margin <= 0 {
		margin = 30 * time.Second
	}
	margin = max(margin, slowest*3/2)
	return time.Until(dl) < margin
}

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
	if w.CacheTTL <= 0 {
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

// export writes the run's files once; a duplicate export message finds the key done.
func (w *Worker) export(ctx context.Context, run inventory.Run, log *slog.Logger) error {
	if n, err := w.Store.Pending(ctx, run.ID); err != nil {
		return fmt.Errorf("export %s: %w", run.ID, err)
	} else if n > 0 {
		return fmt.Errorf("export %s: %d group messages still pending", run.ID, n)
	}
	if run.Status != inventory.RunExporting {
		run.Status = inventory.RunExporting
		if err := w.Store.UpdateRun(ctx, run); err != nil {
			return fmt.Errorf("export %s: %w", run.ID, err)
		}
	}
	var prev *inventory.Run
	if p, ok, err := w.Store.PreviousRun(ctx, run.ID); err != nil {
		return fmt.Errorf("export %s: previous run: %w", run.ID, err)
	} else if ok {
		prev = &p
	}
	run.FinishedAt = time.Now().UTC()
	sum, err := export.Write(ctx, w.Store, w.Sink, run, prev)
	if err != nil {
		return fmt.Errorf("export %s: %w", run.ID, err)
	}
	run.Status = inventory.RunSucceeded
	if err := w.Store.UpdateRun(ctx, run); err != nil {
		return fmt.Errorf("export %s: %w", run.ID, err)
	}
	if _, _, err := w.Store.Done(ctx, run.ID, work.Message{Kind: work.KindExport}.Key()); err != nil {
		return fmt.Errorf("export %s: %w", run.ID, err)
	}
	log.Info("run exported", "projects", sum.Projects, "groups", sum.Groups, "api_calls", sum.APICalls)
	if w.OnRunFinished != nil {
		w.OnRunFinished(run, sum)
	}
	return nil
}
