// Package runner runs discovery in one process: the same handlers as the Lambda
// functions, over the embedded backends (a bbolt file store with its durable queue and
// a directory of exports).
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gl2gh/discovery-agent/internal/backoff"
	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/engine"
	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/filestore"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// Telemetry is what the runner reports to (Prometheus in service mode); optional.
type Telemetry interface {
	gitlab.Observer
	discovery.Recorder
}

// Options tune a Runner beyond the configuration.
type Options struct {
	Log       *slog.Logger
	Telemetry Telemetry
	// Messages processed at once (groups); default 4. Requests in flight are bounded
	// separately by CONCURRENT_REQUESTS.
	Workers int
	// RetryDelay is the first wait before a failed message is retried; it doubles with
	// each delivery. Default 1s.
	RetryDelay time.Duration
	// GitLab overrides client options (tests: retry policy, transport); see
	// engine.Options.GitLab.
	GitLab gitlab.Options
	// StallCheck is how often a run's queue is checked for work that can no longer
	// end it (everything dead-lettered or lost); default 250ms.
	StallCheck time.Duration
}

// Runner is a local discovery agent.
type Runner struct {
	Store     *filestore.Store
	Queue     *filestore.Queue
	Limiter   *budget.Memory
	GitLab    *gitlab.Client
	Worker    *discovery.Worker
	Scheduler *discovery.Scheduler
	Progress  *Progress

	onFinished atomic.Pointer[func(inventory.Run)]
	log        *slog.Logger
	workers    int
	retryDelay time.Duration
	stallCheck time.Duration

	// mu serialises a stall check's "nothing queued, so fail the run" with what queues
	// a run's work: Start, a redrive.
	mu sync.Mutex
}

// New builds a runner from the configuration. Close it when done.
func New(cfg config.Config, opts Options) (*Runner, error) {
	if err := cfg.Validate(config.RoleScan); err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	st, err := filestore.Open(cfg.DataDir + "/discovery.db")
	if err != nil {
		return nil, err
	}
	q := st.Queue()
	prog := &Progress{next: opts.Telemetry}
	r := &Runner{}
	eng, err := engine.New(cfg, engine.Backends{
		Store: st, Queue: q, Sink: export.DirSink{Dir: cfg.ExportDir}, Telemetry: prog, Log: log,
	}, engine.Options{GitLab: opts.GitLab, OnRunFinished: r.runFinished})
	if err != nil {
		st.Close()
		return nil, err
	}
	lim := budget.NewMemory(eng.Budget())
	gl, err := eng.Client(lim)
	if err != nil {
		st.Close()
		return nil, err
	}
	*r = Runner{
		Store: st, Queue: q, Limiter: lim, GitLab: gl, Progress: prog,
		Worker: eng.Worker(gl), Scheduler: eng.Scheduler(gl),
		log: log, workers: opts.Workers, retryDelay: opts.RetryDelay, stallCheck: opts.StallCheck,
	}
	if r.workers <= 0 {
		r.workers = 4
	}
	if r.retryDelay <= 0 {
		r.retryDelay = time.Second
	}
	if r.stallCheck <= 0 {
		r.stallCheck = 250 * time.Millisecond
	}
	return r, nil
}

// Close releases the store.
func (r *Runner) Close() error { return r.Store.Close() }

// Scan resumes the active run if there is one (after a crash or kill), else starts a
// new one, and processes its messages until it ends. An active run of another GitLab
// URL or scope is not resumed: Scan fails with an error wrapping ErrScopeChanged.
func (r *Runner) Scan(ctx context.Context) (inventory.Run, error) {
	run, ok, err := r.Store.ActiveRun(ctx)
	if err != nil {
		return inventory.Run{}, err
	}
	if ok {
		if diff := scopeChange(run, r.Scheduler); diff != "" {
			return run, fmt.Errorf("%w: DATA_DIR holds unfinished run %s, started with %s; resume it with those settings, or run `discovery-agent scan --new-run` to abandon it and start a new run",
				ErrScopeChanged, run.ID, diff)
		}
		r.log.Info("resuming unfinished run", "run_id", run.ID, "queued", r.Queue.Len())
	} else {
		run, _, err = r.Start(ctx)
		if err != nil {
			return inventory.Run{}, err
		}
	}
	return r.Drain(ctx, run.ID)
}

// Start starts a run unless one is active (then it returns that one, started false).
// A new run starts with a fresh MAX_API_CALLS count.
func (r *Runner) Start(ctx context.Context) (inventory.Run, bool, error) {
	// A stall check must not see the new run between its record and its first messages.
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, active, err := r.Store.ActiveRun(ctx); err != nil {
		return inventory.Run{}, false, err
	} else if !active {
		r.Limiter.StartRun(0)
	}
	run, started, err := r.Scheduler.Start(ctx)
	if started {
		r.Track(run.ID)
	}
	return run, started, err
}

// Drain processes queued messages until the run ends (succeeded or failed) or ctx is
// done. Messages in flight when ctx ends are neither acked nor lost: they are delivered
// again on the next start, and resume from their checkpoints. A run whose remaining
// work is all dead-lettered, or lost, ends failed with the reason; a store that can no
// longer be written (DATA_DIR full) stops Drain with an error.
func (r *Runner) Drain(ctx context.Context, runID string) (inventory.Run, error) {
	r.Track(runID)
	ended := func(ctx context.Context) bool {
		run, err := r.Store.GetRun(ctx, runID)
		return err == nil && (run.Status == inventory.RunSucceeded || run.Status == inventory.RunFailed)
	}
	var stopped error
	if !ended(ctx) {
		stopped = r.work(ctx, loop{
			current: func(context.Context) (string, bool) { return runID, true },
			stop:    ended,
			fatal:   true,
		})
	}
	run, err := r.Store.GetRun(context.WithoutCancel(ctx), runID)
	if err != nil {
		return run, err
	}
	if run.Status == inventory.RunSucceeded || run.Status == inventory.RunFailed {
		return run, nil
	}
	if stopped != nil {
		return run, fmt.Errorf("run %s stopped: %w; once fixed, run scan again to resume it", runID, stopped)
	}
	return run, fmt.Errorf("run %s interrupted (%s); run scan again to resume it: %w", runID, run.Status, context.Cause(ctx))
}

// Track points the progress counters and the run's MAX_API_CALLS count at a run; a
// resumed run continues with the calls it had already made.
func (r *Runner) Track(runID string) {
	used, err := r.Store.APICalls(context.Background(), runID)
	if err != nil {
		r.log.Warn("read the run's API calls; counting from 0", "run_id", runID, "err", err)
	}
	r.Limiter.StartRun(used)
	run, err := r.Store.GetRun(context.Background(), runID)
	if err != nil {
		r.log.Warn("read the run; the progress line shows no total", "run_id", runID, "err", err)
	}
	groups, projects, err := r.doneSoFar(context.Background(), runID)
	if err != nil {
		r.log.Warn("count what the run has done; the progress line counts from 0", "run_id", runID, "err", err)
	}
	r.Progress.start(runID, run.ProjectsInScope, groups, projects, r.GitLab, r.Limiter)
}

// doneSoFar counts the groups and projects a run has recorded: what an earlier process
// did before this one resumed it (0 for a new run).
func (r *Runner) doneSoFar(ctx context.Context, runID string) (groups, projects int64, err error) {
	err = r.Store.Groups(ctx, runID, func(inventory.Group) error { groups++; return nil })
	if err == nil {
		err = r.Store.Projects(ctx, runID, func(inventory.Project) error { projects++; return nil })
	}
	return groups, projects, err
}

// Work processes messages until ctx is done (service mode). The active run, if any, is
// watched like Drain's.
func (r *Runner) Work(ctx context.Context) {
	_ = r.work(ctx, loop{current: func(ctx context.Context) (string, bool) {
		run, ok, err := r.Store.ActiveRun(ctx)
		return run.ID, ok && err == nil
	}})
}

// loop says what a message loop watches and when it stops.
type loop struct {
	current func(context.Context) (runID string, ok bool) // the run to watch for stalls
	stop    func(context.Context) bool                    // checked after each message; nil = never
	fatal   bool                                          // a store that cannot be written stops the loop
}

// errStop ends a message loop whose run ended.
var errStop = errors.New("run ended")

// storeError is a store write that failed: nothing can progress until it is fixed.
type storeError struct{ err error }

func (e storeError) Error() string { return "DATA_DIR: " + e.err.Error() }
func (e storeError) Unwrap() error { return e.err }

// work runs the message loop with the configured number of workers, and the stall
// watch, until ctx is done or the loop stops. It returns the store error that stopped
// it, if one did.
func (r *Runner) work(ctx context.Context, l loop) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) {
		if l.fatal {
			cancel(storeError{err})
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.watch(ctx, l, cancel, fail) })
	for range r.workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				ds, err := r.Queue.Receive(ctx, 1)
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, filestore.ErrClosed) {
						fail(err)
					}
					return
				}
				for _, d := range ds {
					r.handle(ctx, d, fail)
				}
				if l.stop != nil && l.stop(ctx) {
					cancel(errStop)
				}
			}
		})
	}
	wg.Wait()
	var se storeError
	if errors.As(context.Cause(ctx), &se) {
		return se
	}
	return nil
}

// watch checks the current run for a stall every stallCheck until ctx is done.
func (r *Runner) watch(ctx context.Context, l loop, cancel context.CancelCauseFunc, fail func(error)) {
	t := time.NewTicker(r.stallCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		runID, ok := l.current(ctx)
		if !ok {
			continue
		}
		ended, err := r.checkStalled(ctx, runID)
		if err != nil && ctx.Err() == nil {
			r.log.Error("check the run for a stall", "run_id", runID, "err", err)
			fail(err)
		}
		if ended && l.stop != nil {
			cancel(errStop)
		}
	}
}

// handle processes one delivery and acks, nacks or releases it; fail gets a store
// write that failed.
func (r *Runner) handle(ctx context.Context, d filestore.Delivery, fail func(error)) {
	final := d.Receives >= filestore.DefaultMaxReceives
	err := r.process(ctx, d, final)
	log := r.log.With("run_id", d.Msg.RunID, "key", d.Msg.Key(), "receives", d.Receives, "interrupted", d.Interrupted)
	if err == nil {
		if err := r.Queue.Ack(ctx, d); err != nil && ctx.Err() == nil {
			log.Error("ack", "err", err)
			fail(err)
		}
		return
	}
	// Interrupted, not failed: handed back uncounted, it resumes from its checkpoint on
	// the next start. Left leased if even that fails (it then counts as interrupted on
	// the next start, still not as failed).
	release := func() {
		if err := r.Queue.Release(context.WithoutCancel(ctx), d); err != nil {
			log.Warn("release interrupted message", "err", err)
		}
	}
	if ctx.Err() != nil {
		release()
		return
	}
	delay := time.Duration(0)
	switch {
	case errors.Is(err, work.ErrMalformed):
		// It can never succeed: straight on towards the dead-letter bucket.
		log.Error("malformed message", "reason", err)
	case final:
		log.Error("message failed on its last delivery; dead-lettering it", "err", err)
	default:
		log.Warn("message failed; will retry", "err", err)
		// Back off before the message becomes visible again, doubling per delivery.
		delay = r.retryDelay << min(max(d.Receives-1, 0), 6)
	}
	if backoff.Sleep(ctx, delay) != nil {
		release()
		return
	}
	if err := r.Queue.Nack(ctx, d, err.Error()); err != nil && ctx.Err() == nil {
		log.Error("nack", "err", err)
		fail(err)
	}
}

// process handles one message; a panic in its handling is that message's failure,
// never the process's.
func (r *Runner) process(ctx context.Context, d filestore.Delivery, final bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic handling message", "run_id", d.Msg.RunID, "key", d.Msg.Key(), "panic", fmt.Sprint(p),
				"stack", string(debug.Stack()))
			err = fmt.Errorf("panic handling %s: %v", d.Msg.Key(), p)
		}
	}()
	return r.Worker.Handle(ctx, d.Msg, final)
}

// The methods below make a Runner the service's local backend.

// ActiveRun returns the run in progress, if any.
func (r *Runner) ActiveRun(ctx context.Context) (inventory.Run, bool, error) {
	return r.Store.ActiveRun(ctx)
}

// LastSucceeded returns the newest succeeded run, if any.
func (r *Runner) LastSucceeded(ctx context.Context) (inventory.Run, bool, error) {
	return r.Store.LastSucceeded(ctx)
}

// OnRunFinished sets the function called when a run ends, succeeded (with its failure
// counts) or failed.
func (r *Runner) OnRunFinished(fn func(inventory.Run)) { r.onFinished.Store(&fn) }

// CheckStore proves the store writable.
func (r *Runner) CheckStore(ctx context.Context) error { return r.Store.Ping(ctx) }

// CheckGitLab proves GitLab reachable with a valid token.
func (r *Runner) CheckGitLab(ctx context.Context) error {
	_, err := r.GitLab.CurrentUser(ctx)
	return err
}

// Snapshot returns the current run's progress.
func (r *Runner) Snapshot() Snapshot { return r.Progress.Snapshot() }

// Gauges returns the budget tokens available now and the dead letters kept.
func (r *Runner) Gauges(ctx context.Context) (float64, int, error) {
	dls, err := r.Queue.DeadLetters(ctx)
	return r.Limiter.Available(), len(dls), err
}

// DeadLetters, RedriveDeadLetters and PurgeDeadLetters manage the local dead letters.
func (r *Runner) DeadLetters(ctx context.Context) ([]filestore.DeadLetter, error) {
	return r.Queue.DeadLetters(ctx)
}

func (r *Runner) PurgeDeadLetters(ctx context.Context) (int, error) {
	return r.Queue.PurgeDeadLetters(ctx)
}

// Effective returns the settings the runner's worker and client really use.
func (r *Runner) Effective() engine.Effective {
	return engine.Describe(r.Worker, r.Scheduler, r.GitLab)
}
