// Package discovery holds the handlers of a discovery run: the scheduler that starts a
// run, the worker that scans one group message at a time, and the export step. Local
// mode and the Lambda functions run these same handlers over different backends.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

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
	// IncludeMembers (INCLUDE_MEMBERS) reads each project's members for its owners.
	IncludeMembers bool
	// Concurrency is how many projects of a page are profiled at once (default 8).
	Concurrency int
	// DeadlineMargin: with a context deadline (Lambda), a group stops taking pages this
	// long before it, or 1.5x the slowest page so far if longer, and continues in a new
	// message. Default 30s.
	DeadlineMargin time.Duration
	// OnRunFinished is called after a run's exports are written (metrics, notices).
	OnRunFinished func(inventory.Run, inventory.Summary)
	// FullScanEvery (FULL_SCAN_EVERY) makes runs incremental: a project unchanged since
	// the previous successful run keeps that run's complete profile, without profiling
	// calls, until the profile is FullScanEvery old. 0 = every run profiles every
	// project; a run marked Full does too.
	FullScanEvery time.Duration
	// Now is the clock of last_profiled_at and of a profile's age; default time.Now.
	Now func() time.Time
	// API (GITLAB_API) is the API projects are profiled through: APIAuto (also ""),
	// APIGraphQL or APIREST.
	API string

	gql gqlState

	bases sync.Map // run ID -> *base: the run and the previous run it carries over from
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

	switch {
	case m.Kind == work.KindExport:
		return w.export(ctx, run, log)
	case m.Hops > work.MaxHops:
		// Lambda's loop detection is off (RecursiveLoop: Allow): this is what ends a
		// chain of messages that a bug keeps re-queueing.
		reason := fmt.Sprintf("%d messages in a chain, more than work.MaxHops (%d): a loop; the group is recorded as an error", m.Hops, work.MaxHops)
		log.Error("hop cap reached", "reason", reason, "hops", m.Hops, "max_hops", work.MaxHops)
		return w.giveUp(ctx, m, reason, log)
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
	run.FailedGroups, run.FailedProjects = sum.FailedGroups, sum.FailedProjects
	switch {
	case sum.Groups == 0 && sum.Projects == 0:
		run.Reason = "the run saw no groups and no projects: check the token's access (read_api, membership)"
	case sum.FailedGroups > 0 || sum.FailedProjects > 0:
		run.Reason = fmt.Sprintf("completed with errors: %d groups and %d projects could not be scanned (scan_status error or forbidden in groups.csv and projects.csv)",
			sum.FailedGroups, sum.FailedProjects)
	}
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
