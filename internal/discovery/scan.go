package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/work"
)

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

	if max(m.Page, 1) == 1 && !m.Listed {
		// A root lists every descendant at once, a request per 100 groups rather than
		// one per group, and queues them all. Listed again on redelivery even past
		// page 1: a crash between counting and sending a message must not lose it.
		subs, err := w.GitLab.DescendantGroups(ctx, g.ID)
		if err != nil {
			return w.groupUnreachable(ctx, m, g, err, log)
		}
		g.Subgroups = children(subs)[g.ID]
		if err := w.enqueueSubgroups(ctx, m, subs); err != nil {
			return fmt.Errorf("scan group %d: %w", g.ID, err)
		}
	}

	page := max(m.Page, cp, 1)
	// A checkpoint means an earlier delivery got this far and may have died inside the
	// page: that page skips the projects it stored. A first delivery records that it
	// started, so that a crash inside its first page is known as one too.
	// A resumed page (m.Resume) stored part of itself under an earlier message.
	skipStored := cp > 0 || m.Resume > 0
	if cp == 0 {
		if err := w.Store.SaveCheckpoint(ctx, m.RunID, key, page); err != nil {
			return fmt.Errorf("scan group %d: save checkpoint: %w", g.ID, err)
		}
	}
	var slowest time.Duration
	for {
		if w.nearDeadline(ctx, slowest) {
			next := work.Message{Kind: work.KindGroup, RunID: m.RunID, GroupID: g.ID, GroupPath: g.FullPath, ParentID: g.ParentID, Page: page, Subgroups: g.Subgroups}
			return w.continueLater(ctx, m, next, false, fmt.Sprintf("scan group %d before page %d", g.ID, page), log)
		}
		start := time.Now()
		pctx, stored, cancel := w.pageContext(ctx)
		projects, nextPage, err := w.GitLab.GroupProjects(pctx, g.ID, page)
		if err == nil {
			err = w.profilePage(pctx, m.RunID, projects, skipStored)
		}
		cancel()
		if err != nil {
			if softEnded(ctx, pctx) {
				next := work.Message{Kind: work.KindGroup, RunID: m.RunID, GroupID: g.ID, GroupPath: g.FullPath, ParentID: g.ParentID, Page: page, Subgroups: g.Subgroups}
				return w.continueLater(ctx, m, next, stored.Load() > 0, fmt.Sprintf("scan group %d inside page %d", g.ID, page), log)
			}
			if errors.Is(err, budget.ErrExhausted) || errors.Is(err, gitlab.ErrPageLoop) {
				return w.groupUnreachable(ctx, m, g, err, log)
			}
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
	skipStored := cp > 0 || m.Resume > 0 // as for groups; a crash inside the very first page re-profiles it
	found := 0
	var slowest time.Duration
	for {
		if w.nearDeadline(ctx, slowest) {
			next := work.Message{Kind: work.KindPersonal, RunID: m.RunID, After: after}
			return w.continueLater(ctx, m, next, false, fmt.Sprintf("scan personal projects after project %d", after), log)
		}
		start := time.Now()
		pctx, stored, cancel := w.pageContext(ctx)
		projects, next, err := w.GitLab.Projects(pctx, after)
		var personal []gitlab.Project
		if err == nil {
			personal = slices.DeleteFunc(projects, func(p gitlab.Project) bool { return p.Namespace.Kind != "user" })
			err = w.profilePage(pctx, m.RunID, personal, skipStored)
		}
		cancel()
		if err != nil && softEnded(ctx, pctx) {
			next := work.Message{Kind: work.KindPersonal, RunID: m.RunID, After: after}
			return w.continueLater(ctx, m, next, stored.Load() > 0, fmt.Sprintf("scan personal projects inside the page after project %d", after), log)
		}
		if errors.Is(err, budget.ErrExhausted) {
			log.Warn("API call budget spent; personal projects after this one are not scanned", "after", after)
			return w.complete(ctx, m.RunID, key, log)
		}
		if err != nil {
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

// groupUnreachable records a group GitLab will not show us (403, 404, budget spent, a
// project listing that loops) and completes its message; anything else is returned
// for a retry.
func (w *Worker) groupUnreachable(ctx context.Context, m work.Message, g inventory.Group, err error, log *slog.Logger) error {
	kind := ""
	switch {
	case errors.Is(err, gitlab.ErrForbidden):
		g.ScanStatus, kind = inventory.StatusForbidden, "forbidden"
	case errors.Is(err, gitlab.ErrNotFound):
		g.ScanStatus, kind = inventory.StatusNotFound, "not_found"
	case errors.Is(err, budget.ErrExhausted):
		g.ScanStatus, kind = inventory.StatusError, "budget"
	case errors.Is(err, gitlab.ErrPageLoop):
		g.ScanStatus, kind = inventory.StatusError, "malformed"
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

// children counts the direct subgroups of each group among groups, by parent ID.
func children(groups []gitlab.Group) map[int64]int {
	n := map[int64]int{}
	for _, g := range groups {
		n[g.ParentID]++
	}
	return n
}

// enqueueSubgroups queues the descendants that message m's group listed, one hop
// further from the scheduler than m.
func (w *Worker) enqueueSubgroups(ctx context.Context, m work.Message, subs []gitlab.Group) error {
	runID := m.RunID
	if len(subs) == 0 {
		return nil
	}
	msgs := make([]work.Message, len(subs))
	keys := make([]string, len(subs))
	n := children(subs)
	for i, s := range subs {
		msgs[i] = work.Message{Kind: work.KindGroup, RunID: runID, GroupID: s.ID, GroupPath: s.FullPath, ParentID: s.ParentID,
			Subgroups: n[s.ID], Listed: true, Hops: m.Hops + 1}
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
//
// progressed says the page next starts at stored projects in this invocation. A
// continuation of the very page m started at is then m again with Resume one higher
// (the stored projects are skipped); without progress it would be this very message
// and make none either, so m is left to be delivered again instead.
func (w *Worker) continueLater(ctx context.Context, m, next work.Message, progressed bool, where string, log *slog.Logger) error {
	next.Resume = m.Resume
	if next.Key() == m.Key() {
		if !progressed {
			return fmt.Errorf("%s: %w", where, errDeadlineNear)
		}
		next.Resume = m.Resume + 1
	} else {
		next.Resume = 0
	}
	next.Hops = m.Hops + 1
	log.Info("deadline near; continuing in a new message", "at", where, "next", next.Key(), "hops", next.Hops)
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
	return time.Until(dl) < max(w.margin(), slowest*3/2)
}

func (w *Worker) margin() time.Duration {
	if w.DeadlineMargin <= 0 {
		return 30 * time.Second
	}
	return w.DeadlineMargin
}

// pageContext is the context a page is listed and profiled under: with a deadline
// (Lambda), it ends half the margin before it, so that a page slowed down (a 429
// pause, a slow GitLab) stops part-way with time left to queue its continuation
// instead of being killed. stored counts the projects the page stored under it.
func (w *Worker) pageContext(ctx context.Context) (context.Context, *atomic.Int64, context.CancelFunc) {
	stored := new(atomic.Int64)
	ctx = context.WithValue(ctx, storedKey{}, stored)
	dl, ok := ctx.Deadline()
	if !ok {
		pctx, cancel := context.WithCancel(ctx)
		return pctx, stored, cancel
	}
	pctx, cancel := context.WithDeadline(ctx, dl.Add(-w.margin()/2))
	return pctx, stored, cancel
}

// softEnded reports whether the page's context, pctx, ended while the invocation's,
// ctx, goes on: the page stopped at its soft deadline.
// Its error stays DeadlineExceeded after the page's cancel.
func softEnded(ctx, pctx context.Context) bool {
	return errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
}

type storedKey struct{}

// noteStored counts a project stored under a page context.
func noteStored(ctx context.Context) {
	if n, ok := ctx.Value(storedKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
}
