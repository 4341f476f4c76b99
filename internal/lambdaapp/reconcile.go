package lambdaapp

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/dynamostore"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// Reconciler rules (docs/DEPLOY.md, "Lost messages"). SQS cannot list the messages it
// holds, so a pending key's message is known gone when either
//
//   - it was last sent longer ago than the scan queue's retention period: SQS deleted
//     it (a received message keeps its first send time), or
//   - the scan queue holds no message at all (waiting, in flight or delayed) while the
//     key is pending and was last touched more than reconcileGrace ago: the counts
//     lag about a minute, and a message in flight counts until it is deleted, after
//     its handler sent whatever it queues.
//
// Anything else may still be waiting behind a backlog of days and is left alone.
const (
	reconcileGrace = 15 * time.Minute
	// maxResends stops re-sending a key whose message keeps dying (a poison message
	// killing its worker each time reaches the DLQ, which has its own alarm).
	maxResends = 3
)

// ReconcileResult is the reconciler's answer, shown by `aws lambda invoke`.
type ReconcileResult struct {
	RunID   string `json:"run_id,omitempty"`
	Pending int64  `json:"pending"`
	Undone  int    `json:"undone"`
	Resent  int    `json:"resent"`
	Export  bool   `json:"export_queued,omitempty"`
	// IdleSeconds is how long ago a message of the run was last done (or the run began).
	IdleSeconds int64  `json:"idle_seconds"`
	Message     string `json:"message"`
}

// Reconcile is the reconciler function's handler, invoked on a schedule: it finds the
// active run's pending work whose message is gone and sends it again, and queues the
// export of a run whose pending work is all done but was never exported.
func (a *App) Reconcile(ctx context.Context, _ json.RawMessage) (ReconcileResult, error) {
	log := a.invocationLog(ctx)
	defer a.endInvocation(ctx)
	if err := a.s.Validate(RoleReconciler); err != nil {
		return ReconcileResult{}, fmt.Errorf("configuration: %w", err)
	}
	run, ok, err := a.store.ActiveRun(ctx)
	if err != nil {
		return ReconcileResult{}, fmt.Errorf("reconcile: %w", err)
	}
	if !ok || run.Status != inventory.RunRunning {
		return ReconcileResult{RunID: run.ID, Message: "no running run: nothing to reconcile"}, nil
	}
	res := ReconcileResult{RunID: run.ID}
	if res.Pending, err = a.store.Pending(ctx, run.ID); err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	now := a.now()
	// The NoProgress alarm's metric: time since a message of the run was last done.
	last, err := a.store.LastDone(ctx, run.ID)
	if err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	if last.Before(run.StartedAt) {
		last = run.StartedAt
	}
	res.IdleSeconds = int64(now.Sub(last) / time.Second)
	a.emf.RunIdle(now.Sub(last))
	scan, err := a.queue.scan.Status(ctx)
	if err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	if res.Pending == 0 {
		return a.reconcileExport(ctx, run, res)
	}
	undone, err := a.store.Undone(ctx, run.ID)
	if err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	res.Undone = len(undone)
	for _, u := range undone {
		why := lost(u, scan.Messages, scan.Retention, now)
		if why == "" {
			continue
		}
		ulog := log.With("run_id", run.ID, "key", u.Key, "sent_at", u.SentAt, "resent", u.Resent)
		if u.Resent >= maxResends {
			ulog.Error("lost message re-sent too often; leaving it (see the dead-letter queue)", "reason", why, "max_resends", maxResends)
			continue
		}
		m, err := message(run.ID, u)
		if err != nil {
			ulog.Error("cannot rebuild lost message", "err", err)
			continue
		}
		// Straight to the queue: the router sends a key only once.
		if err := a.queue.scan.Send(ctx, m); err != nil {
			return res, fmt.Errorf("reconcile: re-send %s: %w", u.Key, err)
		}
		if err := a.store.MarkResent(ctx, now, m); err != nil {
			return res, fmt.Errorf("reconcile: %w", err)
		}
		res.Resent++
		ulog.Warn("re-sent lost message", "reason", why)
	}
	res.Message = fmt.Sprintf("run %s: %d pending, %d not done, %d re-sent", run.ID, res.Pending, res.Undone, res.Resent)
	log.Info("reconciled", "run_id", run.ID, "pending", res.Pending, "undone", res.Undone, "resent", res.Resent, "queued", scan.Messages)
	return res, nil
}

// lost says why u's message is gone, or "" when it may be alive.
func lost(u dynamostore.Undone, queued int64, retention time.Duration, now time.Time) string {
	if !u.SentAt.IsZero() && now.Sub(u.SentAt) > retention {
		return fmt.Sprintf("sent %s ago, past the queue's retention of %s", now.Sub(u.SentAt).Round(time.Second), retention)
	}
	touched := u.AddedAt
	if u.SentAt.After(touched) {
		touched = u.SentAt
	}
	if queued == 0 && now.Sub(touched) > reconcileGrace {
		return "pending, but the scan queue holds no message"
	}
	return ""
}

// reconcileExport queues the export of a running run with no pending work and an empty
// export queue: its export message was lost (a duplicate finds the export done).
func (a *App) reconcileExport(ctx context.Context, run inventory.Run, res ReconcileResult) (ReconcileResult, error) {
	st, err := a.queue.export.Status(ctx)
	if err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	if st.Messages > 0 {
		res.Message = fmt.Sprintf("run %s: no pending work; its export is queued", run.ID)
		return res, nil
	}
	if err := a.queue.Send(ctx, work.Message{Kind: work.KindExport, RunID: run.ID}); err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	res.Export = true
	res.Message = fmt.Sprintf("run %s: no pending work and no export queued; export queued", run.ID)
	a.invocationLog(ctx).Warn("queued the export of a run with no pending work", "run_id", run.ID)
	return res, nil
}

// message is the message to re-send for u: the one last sent, or, for a marker that
// recorded none (written before send times were recorded, or its send failed), the
// one its key names. A rebuilt group message lists its subgroups again; the router
// sends only those not sent before.
func message(runID string, u dynamostore.Undone) (work.Message, error) {
	if u.Msg != nil {
		m, err := work.Decode(u.Msg)
		if err != nil {
			return work.Message{}, err
		}
		m.Hops++
		return m, nil
	}
	kind, rest, _ := strings.Cut(u.Key, ":")
	switch kind {
	case work.KindPersonal:
		after, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return work.Message{}, fmt.Errorf("key %q: %w", u.Key, err)
		}
		return work.Message{Kind: work.KindPersonal, RunID: runID, After: after}, nil
	case work.KindGroup:
		i := strings.LastIndex(rest, ":")
		if i < 0 {
			return work.Message{}, fmt.Errorf("key %q: no page", u.Key)
		}
		page, err := strconv.Atoi(rest[i+1:])
		if err != nil {
			return work.Message{}, fmt.Errorf("key %q: %w", u.Key, err)
		}
		m := work.Message{Kind: work.KindGroup, RunID: runID}
		if page > 1 {
			m.Page = page
		}
		if id, err := strconv.ParseInt(rest[:i], 10, 64); err == nil {
			m.GroupID = id
		} else {
			m.GroupPath = rest[:i]
		}
		return m, m.Validate()
	}
	return work.Message{}, fmt.Errorf("key %q: unknown kind", u.Key)
}
