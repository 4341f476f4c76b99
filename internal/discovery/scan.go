package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
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
			if errors.Is(err, budget.ErrExhausted) || errors.Is(err, gitlab.ErrPageLoop) {
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
func (w *Worker) continueLater(ctx context.Context, m, next work.Message, where string, log *slog.Logger) error {
	if next.Key() == m.Key() {
		// No page done in this invocation: a continuation would be this very message,
		// and be dropped as a duplicate. Let it be delivered again.
		return fmt.Errorf("%s: %w", where, errDeadlineNear)
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
	margin := w.DeadlineMargin
	if margin <= 0 {
		margin = 30 * time.Second
	}
	margin = max(margin, slowest*3/2)
	return time.Until(dl) < margin
}
