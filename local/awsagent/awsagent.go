// Package awsagent is the AWS backend of `discovery-agent serve` (BACKEND=aws): the
// Lambda handlers of internal/lambdaapp run in-process, fed from the SQS queues the way
// Lambda's event source feeds them, with run state in DynamoDB and exports in S3. It
// serves an existing deployment's resources, or an emulator's (AWS_ENDPOINT_URL).
package awsagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/gl2gh/discovery-agent/internal/backoff"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/engine"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/lambdaapp"
	"github.com/gl2gh/discovery-agent/internal/sqsqueue"
	"github.com/gl2gh/discovery-agent/local/runner"
)

// Telemetry is what the backend reports GitLab calls and progress to (Prometheus).
type Telemetry interface {
	gitlab.Observer
	discovery.Recorder
}

// Options tune a Backend beyond its settings.
type Options struct {
	Log       *slog.Logger
	Telemetry Telemetry // optional
	// GitLab overrides client options (tests: retry policy).
	GitLab gitlab.Options
	// Poll is how long one receive waits for messages: SQS long polling, at most (and
	// by default) 20 s.
	Poll time.Duration
	// ShortPoll, when set, receives without waiting and pauses this long after an
	// empty receive instead: a single-threaded emulator (moto in tests) serves nothing
	// else while a long poll waits.
	ShortPoll time.Duration
}

const (
	maxPoll      = 20 * time.Second // ReceiveMessage's longest wait
	maxBatch     = 10               // ReceiveMessage's most messages
	errPauseMin  = time.Second
	errPauseMax  = time.Minute
	cleanupLimit = 10 * time.Second // deletes and visibility changes after ctx ended
)

// Backend runs discovery on AWS services. It implements service.Backend.
type Backend struct {
	app       *lambdaapp.App
	s         lambdaapp.Settings
	log       *slog.Logger
	sqs       *sqs.Client
	region    string
	scan      *sqsqueue.Queue
	export    *sqsqueue.Queue
	progress  *progress
	batch     int
	poll      time.Duration
	shortPoll time.Duration
}

// Load builds the backend from the environment (the Lambda functions' variables, see
// lambdaapp.Vars, with GITLAB_TOKEN allowed) and the default AWS configuration, which
// honours AWS_ENDPOINT_URL.
func Load(ctx context.Context, opts Options) (*Backend, error) {
	s, err := lambdaapp.ServeSettingsFromEnv()
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return New(ctx, s, cfg, opts)
}

// New builds the backend from settings and an AWS configuration. It needs what
// Settings.Validate(lambdaapp.RoleServeAWS) requires: every resource a run uses, and
// GitLab's URL and token (GITLAB_TOKEN or GITLAB_TOKEN_SECRET_ARN).
func New(ctx context.Context, s lambdaapp.Settings, cfg aws.Config, opts Options) (*Backend, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if err := s.Validate(lambdaapp.RoleServeAWS); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	prog := &progress{next: opts.Telemetry}
	prog.remaining.Store(-1)
	prog.pending.Store(-1)
	app, err := lambdaapp.New(ctx, s, cfg, lambdaapp.Options{
		Log:       log,
		Metrics:   io.Discard, // Prometheus, through Telemetry, replaces CloudWatch's EMF here
		GitLab:    opts.GitLab,
		Telemetry: prog,
	})
	if err != nil {
		return nil, err
	}
	client := sqs.NewFromConfig(cfg)
	b := &Backend{
		app: app, s: app.Settings(), log: log, sqs: client, region: cfg.Region,
		scan:     sqsqueue.New(client, s.ScanQueueURL),
		export:   sqsqueue.New(client, s.ExportQueueURL),
		progress: prog,
		batch:    min(max(s.MessageConcurrency, 1), maxBatch),
		poll:     opts.Poll,
	}
	if b.poll <= 0 || b.poll > maxPoll {
		b.poll = maxPoll
	}
	if opts.ShortPoll > 0 {
		b.poll, b.shortPoll = 0, opts.ShortPoll
	}
	prog.budget = app.BudgetTokens
	return b, nil
}

// App is the Lambda application the backend runs.
func (b *Backend) App() *lambdaapp.App { return b.app }

// Start starts a run with the scheduler's handler unless one is active (then it
// returns that run, started false).
func (b *Backend) Start(ctx context.Context) (inventory.Run, bool, error) {
	res, err := b.app.Schedule(ctx, json.RawMessage(`{"trigger":"serve"}`))
	if err != nil {
		return inventory.Run{}, false, err
	}
	run, err := b.app.Store().GetRun(ctx, res.RunID)
	if err != nil {
		return inventory.Run{}, false, fmt.Errorf("read run %s: %w", res.RunID, err)
	}
	if res.Started {
		b.progress.start(run.ID)
		b.progress.setTotal(run.ID, run.ProjectsInScope)
	}
	return run, res.Started, nil
}

// Work consumes the scan and export queues until ctx is done, as Lambda's SQS event
// sources would: a batch goes to the handler, and the records it does not report
// failed are deleted. Messages in flight when ctx ends are made visible again (SQS is
// at least once); they resume from their checkpoints.
func (b *Backend) Work(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { b.consume(ctx, b.scan, b.s.ScanQueueURL, b.batch, b.app.Work) })
	wg.Go(func() { b.consume(ctx, b.export, b.s.ExportQueueURL, 1, b.app.Export) })
	wg.Wait()
}

type handler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

func (b *Backend) consume(ctx context.Context, q *sqsqueue.Queue, url string, n int, handle handler) {
	log := b.log.With("queue", url)
	pause := time.Duration(0) // after a failure, doubling up to errPauseMax
	failed := func(msg string, err error) {
		pause = min(max(pause*2, errPauseMin), errPauseMax)
		log.Error(msg, "err", err, "retry_in", pause.String())
		_ = backoff.Sleep(ctx, pause)
	}
	for ctx.Err() == nil {
		msgs, err := q.Receive(ctx, n, b.poll)
		if err != nil {
			if ctx.Err() == nil {
				failed("receive", err)
			}
			continue
		}
		if len(msgs) == 0 {
			_ = backoff.Sleep(ctx, b.shortPoll)
			continue
		}
		resp, err := handle(ctx, b.event(msgs, url))
		if err != nil {
			// The whole batch failed (configuration): as in Lambda, it returns after
			// the visibility timeout.
			failed("handler failed", err)
			continue
		}
		pause = 0
		b.settle(ctx, log, q, url, msgs, resp)
	}
}

// settle deletes the records handled and, when ctx ended during the batch, makes the
// others visible again at once so a restart takes them up.
func (b *Backend) settle(ctx context.Context, log *slog.Logger, q *sqsqueue.Queue, url string, msgs []sqstypes.Message, resp events.SQSEventResponse) {
	failed := make(map[string]bool, len(resp.BatchItemFailures))
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	stopped := ctx.Err() != nil
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupLimit)
	defer cancel()
	for _, m := range msgs {
		id, receipt := aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle)
		switch {
		case !failed[id]:
			if err := q.Delete(cctx, receipt); err != nil {
				// Delivered again later: the handlers are idempotent.
				log.Warn("delete a handled message", "message_id", id, "err", err)
			}
		case stopped:
			if _, err := b.sqs.ChangeMessageVisibility(cctx, &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(url), ReceiptHandle: aws.String(receipt), VisibilityTimeout: 0,
			}); err != nil {
				log.Warn("hand an interrupted message back; it returns after the visibility timeout", "message_id", id, "err", err)
			}
		}
	}
}

// event is the SQS event Lambda's event source would deliver for msgs.
func (b *Backend) event(msgs []sqstypes.Message, url string) events.SQSEvent {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		ev.Records[i] = events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Attributes: m.Attributes, MessageAttributes: map[string]events.SQSMessageAttribute{},
			EventSource: "aws:sqs", EventSourceARN: url, AWSRegion: b.region,
		}
	}
	return ev
}

// ActiveRun returns the run in progress, if any.
func (b *Backend) ActiveRun(ctx context.Context) (inventory.Run, bool, error) {
	return b.app.Store().ActiveRun(ctx)
}

// LastSucceeded returns the newest succeeded run, if any.
func (b *Backend) LastSucceeded(ctx context.Context) (inventory.Run, bool, error) {
	return b.app.Store().LastSucceeded(ctx)
}

// Track points the progress counters at a run being resumed. Its total (the projects
// in scope the scheduler counted; other processes share the run, so only the store
// knows it) is read once, in the background, within cleanupLimit.
func (b *Backend) Track(runID string) {
	b.progress.start(runID)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupLimit)
		defer cancel()
		run, err := b.app.Store().GetRun(ctx, runID)
		if err != nil {
			b.log.Warn("read the resumed run's total; progress shows none", "run_id", runID, "err", err)
			return
		}
		b.progress.setTotal(runID, run.ProjectsInScope)
	}()
}

// OnRunFinished sets the function called when a run ends, succeeded or failed.
func (b *Backend) OnRunFinished(fn func(inventory.Run)) { b.app.OnRunFinished(fn) }

// CheckStore proves the DynamoDB table writable.
func (b *Backend) CheckStore(ctx context.Context) error { return b.app.Store().Ping(ctx) }

// CheckGitLab proves GitLab reachable with a valid token; a rejected token's error
// names the 401.
func (b *Backend) CheckGitLab(ctx context.Context) error { return b.app.CheckGitLab(ctx) }

// Snapshot returns the current run's progress as this process saw it, with the run's
// total (Track).
func (b *Backend) Snapshot() runner.Snapshot { return b.progress.snapshot() }

// Gauges returns the API calls the run's budget holds in this process now, and the
// messages waiting in the dead-letter queues (SCAN_DLQ_URL, EXPORT_DLQ_URL; an unset
// one counts 0).
func (b *Backend) Gauges(ctx context.Context) (float64, int, error) {
	tokens := b.app.BudgetTokens()
	var dead int
	var errs []error
	for _, url := range []string{b.s.ScanDLQURL, b.s.ExportDLQURL} {
		if url == "" {
			continue
		}
		n, err := b.waiting(ctx, url)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dead += n
	}
	return tokens, dead, errors.Join(errs...)
}

// waiting returns a queue's ApproximateNumberOfMessages.
func (b *Backend) waiting(ctx context.Context, url string) (int, error) {
	name := sqstypes.QueueAttributeNameApproximateNumberOfMessages
	out, err := b.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{name},
	})
	if err != nil {
		return 0, fmt.Errorf("dead letters in %s: %w", url, err)
	}
	n, err := strconv.Atoi(out.Attributes[string(name)])
	if err != nil {
		return 0, fmt.Errorf("dead letters in %s: %s: %w", url, name, err)
	}
	return n, nil
}

// Effective returns the settings a run's worker and client really use.
func (b *Backend) Effective(runID string) (engine.Effective, error) { return b.app.Effective(runID) }
