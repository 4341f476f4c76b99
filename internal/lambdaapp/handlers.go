package lambdaapp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/sync/errgroup"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/dynamobudget"
	"github.com/gl2gh/discovery-agent/internal/dynamostore"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// Result is the scheduler's answer, shown by `aws lambda invoke` and `sam local invoke`.
type Result struct {
	RunID   string `json:"run_id,omitempty"`
	Started bool   `json:"started"`
	Status  string `json:"status,omitempty"`
	Message string `json:"message"`
}

// trigger is the part of the scheduler's payload it reads; EventBridge Scheduler sends
// the Input the template gives it, a person whatever they like. {"full":true} starts a
// full run: every project profiled again, none carried over.
type trigger struct {
	Trigger string `json:"trigger"`
	Full    bool   `json:"full"`
}

// Schedule starts a run: it is the scheduler function's handler, invoked by the
// EventBridge schedule or by hand. When a run is already active it starts nothing and
// says so in the result; that is not an error.
func (a *App) Schedule(ctx context.Context, payload json.RawMessage) (Result, error) {
	log := a.invocationLog(ctx)
	var limiter *dynamobudget.Budget
	defer func() { a.endInvocation(ctx, limiter) }()
	if err := a.s.Validate(RoleScheduler); err != nil {
		return Result{}, fmt.Errorf("configuration: %w", err)
	}
	var t trigger
	_ = json.Unmarshal(payload, &t) // any payload starts a run; only "full" changes it
	if t.Full {
		ctx = discovery.WithFull(ctx)
	}
	rc, err := a.client("")
	if err != nil {
		return Result{}, err
	}
	limiter = rc.limiter
	s := *rc.scheduler
	s.Log = log
	log.Info("schedule", "trigger", t.Trigger, "full", discovery.IsFull(ctx))
	run, started, err := s.Start(ctx)
	if err != nil {
		return Result{RunID: run.ID, Started: started, Status: run.Status}, err
	}
	if !started {
		return Result{RunID: run.ID, Status: run.Status,
			Message: fmt.Sprintf("run %s is already %s; not starting another", run.ID, run.Status)}, nil
	}
	a.emf.RunStarted(run.ID)
	kind := "run"
	if run.Full {
		kind = "full run"
	}
	return Result{RunID: run.ID, Started: true, Status: run.Status,
		Message: fmt.Sprintf("%s %s started over %d root groups, %d projects in scope", kind, run.ID, len(run.RootGroups), run.ProjectsInScope)}, nil
}

// Work is the worker function's handler for the scan queue's SQS event source
// (ReportBatchItemFailures): it scans one group message per record, several at once,
// and reports the records to deliver again. A malformed record is logged with its
// reason and reported; it never fails the rest of the batch.
func (a *App) Work(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	log := a.invocationLog(ctx)
	used := &usedLimiters{}
	defer func() { a.endInvocation(ctx, used.list()...) }()
	if err := a.s.Validate(RoleWorker); err != nil {
		return events.SQSEventResponse{}, fmt.Errorf("configuration: %w", err)
	}
	resp := a.batch(ctx, log, ev, a.s.ScanQueueURL, work.KindGroup, func(ctx context.Context, m work.Message, final bool) error {
		rc, err := a.client(m.RunID)
		if err != nil {
			return err
		}
		used.add(rc.limiter)
		return rc.worker.Handle(ctx, m, final)
	})
	return resp, nil
}

// Export is the exporter function's handler for the export queue: it writes the run's
// files to S3.
func (a *App) Export(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	log := a.invocationLog(ctx)
	defer a.endInvocation(ctx)
	if err := a.s.Validate(RoleExporter); err != nil {
		return events.SQSEventResponse{}, fmt.Errorf("configuration: %w", err)
	}
	w := a.engine.Worker(nil) // exporting reads the store only: no GitLab, no token
	w.Log = log
	resp := a.batch(ctx, log, ev, a.s.ExportQueueURL, work.KindExport, w.Handle)
	return resp, nil
}

func (a *App) invocationLog(ctx context.Context) *slog.Logger {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return a.log.With("request_id", lc.AwsRequestID)
	}
	return a.log
}

type handleFunc func(ctx context.Context, m work.Message, final bool) error

// batch handles the records of an SQS event, up to MESSAGE_CONCURRENCY at once, and
// returns the failed ones.
func (a *App) batch(ctx context.Context, log *slog.Logger, ev events.SQSEvent, queueURL, kind string, handle handleFunc) events.SQSEventResponse {
	var (
		mu     sync.Mutex
		failed []events.SQSBatchItemFailure
		runs   = map[string]bool{}
	)
	if a.pastMargin(ctx) {
		// No page could start: the worker would hand every group straight on. The
		// function's timeout must exceed DEADLINE_MARGIN (template.yaml sets both).
		dl, _ := ctx.Deadline()
		log.Error("function timeout is not longer than DEADLINE_MARGIN; delivering the batch again",
			"remaining", time.Until(dl).Round(time.Millisecond).String(), "deadline_margin", a.s.DeadlineMargin.String())
		for _, r := range ev.Records {
			failed = append(failed, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
		return events.SQSEventResponse{BatchItemFailures: failed}
	}
	var g errgroup.Group
	g.SetLimit(a.s.MessageConcurrency)
	for _, r := range ev.Records {
		g.Go(func() error {
			runID, ok := a.record(ctx, log, r, queueURL, kind, handle)
			mu.Lock()
			defer mu.Unlock()
			if runID != "" {
				runs[runID] = true
			}
			if !ok {
				failed = append(failed, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
			return nil
		})
	}
	_ = g.Wait() // records report their own failures
	a.markRuns(ctx, log, runs)
	if len(failed) > 0 {
		log.Info("batch done", "records", len(ev.Records), "failed", len(failed))
	}
	return events.SQSEventResponse{BatchItemFailures: failed}
}

// record handles one record of a batch; ok false means it is to be delivered again.
// runID is the run the record belongs to, "" when it could not be read.
func (a *App) record(ctx context.Context, log *slog.Logger, r events.SQSMessage, queueURL, kind string, handle handleFunc) (runID string, ok bool) {
	if ctx.Err() != nil || a.pastMargin(ctx) {
		// Not started: too late for a first page (records wait for a slot only when
		// MESSAGE_CONCURRENCY is below the batch size). Delivered again.
		a.redeliverAfter(ctx, log.With("message_id", r.MessageId), queueURL, r.ReceiptHandle, 0)
		return "", false
	}
	receives, _ := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
	rlog := log.With("message_id", r.MessageId, "receives", receives)
	m, err := work.Decode([]byte(r.Body))
	if err == nil && m.Kind != kind {
		err = fmt.Errorf("%w: kind %q does not belong on this queue (want %q)", work.ErrMalformed, m.Kind, kind)
	}
	if err != nil {
		// It can never succeed: let it reach the DLQ after maxReceiveCount, without
		// waiting out the visibility timeout each time.
		rlog.Error("malformed message", "reason", err.Error())
		a.countMalformed()
		a.redeliverAfter(ctx, rlog, queueURL, r.ReceiptHandle, 0)
		return "", false
	}
	rlog = rlog.With("run_id", m.RunID, "key", m.Key())
	release, proceed, ok := a.claim(ctx, rlog, r, m, queueURL, receives)
	if !proceed {
		return m.RunID, ok
	}
	defer release()
	final := receives >= a.s.MaxReceiveCount
	err = func() (err error) {
		defer func() { // a panic is this record's failure, never the invocation's
			if p := recover(); p != nil {
				rlog.Error("panic handling message", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				err = fmt.Errorf("panic handling %s: %v", m.Key(), p)
			}
		}()
		return handle(ctx, m, final)
	}()
	switch {
	case err == nil:
		return m.RunID, true
	case errors.Is(err, work.ErrMalformed):
		rlog.Error("malformed message", "reason", err.Error())
		a.countMalformed()
		a.redeliverAfter(ctx, rlog, queueURL, r.ReceiptHandle, 0)
	default:
		rlog.Warn("message failed; it will be delivered again", "err", err, "final", final)
		if ctx.Err() == nil {
			a.redeliverAfter(ctx, rlog, queueURL, r.ReceiptHandle, a.retryDelay(receives))
		}
	}
	return m.RunID, false
}

// claimSlack is how long past the invocation's deadline a claim lasts: the deadline
// kills the handler (so nothing of it runs later), and a killed handler never releases
// its claim. The second covers clock skew between functions; the message of a killed
// handler returns only after the visibility timeout, far later.
const claimSlack = time.Second

// claim takes the message's key for this delivery, so that two deliveries of the same
// key at once do not both scan it. proceed false means another delivery holds it: a
// duplicate message (another message ID) is done, ok true, and deleted; the same
// message delivered twice at once is not (deleting either copy deletes the message):
// it comes back when the claim lapses, ok false. release gives the claim back.
func (a *App) claim(ctx context.Context, log *slog.Logger, r events.SQSMessage, m work.Message, queueURL string, receives int) (release func(), proceed, ok bool) {
	until := a.now().Add(15 * time.Minute)
	if dl, has := ctx.Deadline(); has {
		until = dl.Add(claimSlack)
	}
	owner := claimOwner()
	held, claimed, err := a.store.Claim(ctx, m.RunID, m.Key(), dynamostore.Claim{Owner: owner, MessageID: r.MessageId, Until: until})
	switch {
	case err != nil:
		log.Warn("message failed; it will be delivered again", "err", err)
		a.redeliverAfter(ctx, log, queueURL, r.ReceiptHandle, a.retryDelay(receives))
		return nil, false, false
	case !claimed && held.MessageID == r.MessageId:
		wait := min(max(held.Until.Sub(a.now()), 0), maxRetryDelay)
		log.Info("message is being handled by another delivery; it will be delivered again", "after", wait.String())
		a.redeliverAfter(ctx, log, queueURL, r.ReceiptHandle, wait)
		return nil, false, false
	case !claimed:
		log.Info("key is being handled by another message; dropping this duplicate", "holder", held.MessageID)
		return nil, false, true
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := a.store.Release(ctx, m.RunID, m.Key(), owner); err != nil {
			log.Warn("release the claim; the next delivery waits for it to lapse", "err", err)
		}
	}, true, true
}

// claimOwner names one delivery: random, so that two deliveries of one message differ.
func claimOwner() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
}

// pastMargin reports that the invocation's deadline is within DEADLINE_MARGIN: a
// message started now could not scan a page before handing its group on.
func (a *App) pastMargin(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) <= a.s.DeadlineMargin
}

// countMalformed counts a malformed message under discovery_errors_total.
func (a *App) countMalformed() { a.telemetry.ScanError("malformed", "message") }

// retryDelay is the backoff before a failed message's next delivery: RETRY_DELAY
// doubling with each receive, at most 15 minutes. Without it a failed message would
// wait out the whole visibility timeout (six times the function's timeout).
func (a *App) retryDelay(receives int) time.Duration {
	d := a.s.RetryDelay << min(max(receives-1, 0), 10)
	return min(d, maxRetryDelay)
}

// redeliverAfter makes a failed message visible again after d. A failure only delays
// the retry to the queue's visibility timeout, so it is logged, not returned.
func (a *App) redeliverAfter(ctx context.Context, log *slog.Logger, queueURL, receipt string, d time.Duration) {
	if queueURL == "" || receipt == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := a.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(queueURL), ReceiptHandle: aws.String(receipt), VisibilityTimeout: int32(d / time.Second),
	})
	if err != nil {
		log.Warn("set the failed message's retry delay; it returns after the visibility timeout instead", "err", err)
	}
}

// markRuns reports the runs still in progress after a batch (discovery_run_in_progress
// 1, as local mode's gauge); the exporter's RunFinished sets it to 0.
func (a *App) markRuns(ctx context.Context, log *slog.Logger, runs map[string]bool) {
	ctx = context.WithoutCancel(ctx)
	for id := range runs {
		run, err := a.store.GetRun(ctx, id)
		if errors.Is(err, discovery.ErrNotFound) {
			continue
		}
		if err != nil {
			log.Warn("read run status for metrics", "run_id", id, "err", err)
			continue
		}
		if run.Status == inventory.RunRunning || run.Status == inventory.RunExporting {
			a.emf.RunStarted(id)
		}
	}
}

// usedLimiters collects the budgets an invocation leased from, to give back what it
// did not spend.
type usedLimiters struct {
	mu sync.Mutex
	m  map[*dynamobudget.Budget]bool
}

func (u *usedLimiters) add(l *dynamobudget.Budget) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[*dynamobudget.Budget]bool{}
	}
	u.m[l] = true
}

func (u *usedLimiters) list() []*dynamobudget.Budget {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]*dynamobudget.Budget, 0, len(u.m))
	for l := range u.m {
		out = append(out, l)
	}
	return out
}
