package runner

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/filestore"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// ErrScopeChanged: the active run was started with another GitLab URL or scope.
var ErrScopeChanged = errors.New("configuration changed since the unfinished run started")

// deadLetteredPrefix starts the reason of a run failed because its work was
// dead-lettered: a redrive resumes such a run, and no other.
const deadLetteredPrefix = "its remaining work is in the dead letters"

// runFinished is the engine's OnRunFinished: it gives the next run a fresh
// MAX_API_CALLS count (also for readiness checks) and tells the service.
func (r *Runner) runFinished(run inventory.Run, _ inventory.Summary) {
	r.Limiter.StartRun(0)
	if fn := r.onFinished.Load(); fn != nil {
		(*fn)(run)
	}
}

// checkStalled ends a run that nothing queued can end any more, and says whether the
// run has ended. Every message that adds work to a run is itself queued or in flight
// until that work is queued, so a run with nothing queued is stalled: its work was
// dead-lettered (the run fails, naming the redrive), or lost in a crash between the
// steps of a start (the run fails too), or only its export is missing (queued again).
func (r *Runner) checkStalled(ctx context.Context, runID string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	run, err := r.Store.GetRun(ctx, runID)
	if err != nil {
		return false, err
	}
	if run.Status == inventory.RunSucceeded || run.Status == inventory.RunFailed {
		return true, nil
	}
	if n, err := r.Queue.RunLen(ctx, runID); err != nil || n > 0 {
		return false, err
	}
	dls, err := r.Queue.DeadLetters(ctx)
	if err != nil {
		return false, err
	}
	dls = slices.DeleteFunc(dls, func(dl filestore.DeadLetter) bool { return dl.RunID != runID })
	if len(dls) > 0 {
		last := dls[len(dls)-1]
		return true, r.failRun(ctx, run, fmt.Sprintf("%s (%d messages, last %s: %s); fix the cause, then resume the run with `discovery-agent scan --redrive` (serve: POST /dead-letters/redrive)",
			deadLetteredPrefix, len(dls), last.Key, oneLine(last.Reason, 300)))
	}
	pending, err := r.Store.Pending(ctx, runID)
	if err != nil {
		return false, err
	}
	if pending == 0 {
		r.log.Warn("run has no pending work and nothing queued; queueing its export", "run_id", runID)
		return false, r.Queue.Send(ctx, work.Message{Kind: work.KindExport, RunID: runID})
	}
	return true, r.failRun(ctx, run, fmt.Sprintf("%d group messages are pending but none is queued (lost in a crash?); start afresh with `discovery-agent scan --new-run`", pending))
}

// failRun ends an active run as failed with reason.
func (r *Runner) failRun(ctx context.Context, run inventory.Run, reason string) error {
	run.Status, run.FinishedAt, run.Reason = inventory.RunFailed, time.Now().UTC(), reason
	if err := r.Store.UpdateRun(context.WithoutCancel(ctx), run); err != nil {
		return fmt.Errorf("mark run %s failed: %w", run.ID, err)
	}
	r.log.Error("run failed", "run_id", run.ID, "reason", reason)
	r.runFinished(run, inventory.Summary{RunID: run.ID, Status: run.Status})
	return nil
}

// RedriveDeadLetters queues the dead letters again and, when no run is active, resumes
// the newest run that failed because its work was dead-lettered.
func (r *Runner) RedriveDeadLetters(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dls, err := r.Queue.DeadLetters(ctx)
	if err != nil {
		return 0, err
	}
	if err := r.resume(ctx, dls); err != nil {
		return 0, err
	}
	return r.Queue.RedriveDeadLetters(ctx)
}

// resume reopens the newest run of dls that failed because of them; r.mu must be held.
func (r *Runner) resume(ctx context.Context, dls []filestore.DeadLetter) error {
	if _, active, err := r.Store.ActiveRun(ctx); err != nil || active {
		return err
	}
	var newest *inventory.Run
	for _, dl := range dls {
		if dl.RunID == "" || (newest != nil && newest.ID == dl.RunID) {
			continue
		}
		run, err := r.Store.GetRun(ctx, dl.RunID)
		if errors.Is(err, discovery.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if run.Status == inventory.RunFailed && strings.HasPrefix(run.Reason, deadLetteredPrefix) &&
			(newest == nil || run.StartedAt.After(newest.StartedAt)) {
			newest = &run
		}
	}
	if newest == nil {
		return nil
	}
	newest.Status, newest.FinishedAt, newest.Reason = inventory.RunRunning, time.Time{}, ""
	if err := r.Store.UpdateRun(ctx, *newest); err != nil {
		return fmt.Errorf("resume run %s: %w", newest.ID, err)
	}
	r.log.Info("redrive resumes the run", "run_id", newest.ID)
	return nil
}

// Abandon ends the active run, if any, as failed with reason, so that the next Scan
// starts a new run; its leftover messages are dropped as they come.
func (r *Runner) Abandon(ctx context.Context, reason string) (inventory.Run, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	run, ok, err := r.Store.ActiveRun(ctx)
	if err != nil || !ok {
		return run, false, err
	}
	return run, true, r.failRun(ctx, run, reason)
}

// scopeChange describes how the configuration differs from what run was started with,
// "" when it does not.
func scopeChange(run inventory.Run, s *discovery.Scheduler) string {
	var diffs []string
	if run.GitLabURL != s.GitLabURL {
		diffs = append(diffs, fmt.Sprintf("GITLAB_URL %s (now %s)", redactURL(run.GitLabURL), redactURL(s.GitLabURL)))
	}
	if run.Scope == nil { // recorded before scopes were kept
		return strings.Join(diffs, ", ")
	}
	if !sameSet(run.Scope.RootGroups, s.RootGroups) {
		diffs = append(diffs, fmt.Sprintf("ROOT_GROUPS %s (now %s)", describeRoots(run.Scope.RootGroups), describeRoots(s.RootGroups)))
	}
	if run.Scope.IncludePersonal != s.IncludePersonal {
		diffs = append(diffs, fmt.Sprintf("INCLUDE_PERSONAL_PROJECTS %t (now %t)", run.Scope.IncludePersonal, s.IncludePersonal))
	}
	return strings.Join(diffs, ", ")
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func describeRoots(roots []string) string {
	if len(roots) == 0 {
		return "unset (every top-level group)"
	}
	return strings.Join(roots, ",")
}

// redactURL drops credentials a URL may carry, for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// oneLine cuts s to n bytes on one line, for reasons that must stay short.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "..."
	}
	return s
}

// CheckWritable proves each directory can take a file, creating it if missing, so that
// a scan fails at once rather than after its work.
func CheckWritable(dirs map[string]string) error {
	names := make([]string, 0, len(dirs))
	for name := range dirs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := writable(dirs[name]); err != nil {
			return fmt.Errorf("%s %s is not writable: %w", name, dirs[name], err)
		}
	}
	return nil
}

func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	// A few KiB and a sync: a full disk fails here, not only an unwritable directory.
	_, err = f.Write(make([]byte, 4096))
	return errors.Join(err, f.Sync(), f.Close())
}
