// Package lambdaapp wires the discovery handlers to AWS for the Lambda functions: it
// reads the configuration and the GitLab token (Secrets Manager, once per cold start),
// builds the DynamoDB store and rate budget, the SQS queues and the S3 export sink, and
// turns Lambda events into calls of discovery.Scheduler and discovery.Worker.
//
// The functions in functions/ are each a few lines: Load, then lambda.Start with one
// of the handler methods (Schedule, Work, Export).
//
// The per-run call cap (MAX_API_CALLS) lives on the DynamoDB budget under the run's
// ID, so the worker builds its limiter and GitLab client per run and keeps the last
// one: a warm worker reuses it for every message of the same run.
package lambdaapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/dynamobudget"
	"github.com/gl2gh/discovery-agent/internal/dynamostore"
	"github.com/gl2gh/discovery-agent/internal/engine"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/metrics"
	"github.com/gl2gh/discovery-agent/internal/s3sink"
	"github.com/gl2gh/discovery-agent/internal/sqsqueue"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// Options tune an App beyond its Settings.
type Options struct {
	// Log receives the JSON log; default JSON on stderr at LOG_LEVEL.
	Log *slog.Logger
	// Metrics receives the EMF lines; default stdout, where Lambda hands them to
	// CloudWatch Logs.
	Metrics io.Writer
	// GitLab overrides client options (tests: retry policy). Limiter, Observer,
	// Concurrency and Timeout are always set from the settings.
	GitLab gitlab.Options
	// Telemetry also receives the client's measurements and the scan's progress, besides
	// EMF: `discovery-agent serve` with BACKEND=aws passes its Prometheus metrics.
	Telemetry Telemetry
	// Now is the clock of the reconciler and of the send times on pending markers;
	// default time.Now.
	Now func() time.Time
}

// Telemetry is what the handlers report GitLab calls and discovery progress to.
type Telemetry interface {
	gitlab.Observer
	discovery.Recorder
}

// App is one Lambda function's state, kept across warm invocations. Its handlers
// are safe for concurrent use.
type App struct {
	s         Settings
	log       *slog.Logger
	emf       *metrics.EMF
	telemetry Telemetry // emf, or emf teed with Options.Telemetry
	ddb       *dynamodb.Client
	sqs       *sqs.Client
	store     *dynamostore.Store
	queue     *router
	sink      *s3sink.Sink // nil without EXPORT_BUCKET
	engine    *engine.Engine
	rotation  *rotatingToken // nil unless the token comes from Secrets Manager

	mu         sync.Mutex
	cur        *runClient // the newest run's limiter, client and worker
	sched      *runClient // the scheduler's and token checks' (run ID "")
	onFinished func(inventory.Run)
	now        func() time.Time
}

// runClient is what calls GitLab for one run: the shared budget counts the run's calls
// under its ID.
type runClient struct {
	runID     string
	limiter   *dynamobudget.Budget
	client    *gitlab.Client
	worker    *discovery.Worker
	scheduler *discovery.Scheduler
}

// Load builds the App from the environment and the default AWS configuration
// (AWS_ENDPOINT_URL points it at an emulator). It reads the GitLab token from Secrets
// Manager when GITLAB_TOKEN_SECRET_ARN is set.
func Load(ctx context.Context) (*App, error) {
	s, err := SettingsFromEnv()
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return New(ctx, s, cfg, Options{})
}

// New builds the App from settings and an AWS configuration.
func New(ctx context.Context, s Settings, cfg aws.Config, opts Options) (*App, error) {
	log := opts.Log
	if log == nil {
		log = engine.NewLogger(os.Stderr, s.Config.LogLevel, s.Config.LogFormat)
	}
	w := opts.Metrics
	if w == nil {
		w = os.Stdout
	}
	if err := s.Validate(RoleFunction); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	var secrets *secretsmanager.Client
	if s.Config.Token == "" && s.TokenSecretARN != "" {
		secrets = secretsmanager.NewFromConfig(cfg)
		tok, err := readToken(ctx, secrets, s.TokenSecretARN)
		if err != nil {
			return nil, err
		}
		s.Config.Token = tok
	}

	a := &App{
		s:   s,
		log: log,
		emf: metrics.NewEMF(w, s.MetricsNamespace),
		ddb: dynamodb.NewFromConfig(cfg),
		sqs: sqs.NewFromConfig(cfg),
		now: opts.Now,
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.telemetry = a.emf
	if opts.Telemetry != nil {
		a.telemetry = tee{a.emf, opts.Telemetry}
	}
	a.store = dynamostore.New(a.ddb, s.StoreTable, dynamostore.Options{TTL: s.RunTTL, Now: opts.Now,
		ReadParallelism: dynamostore.DefaultReadParallelism})
	a.queue = &router{scan: sqsqueue.New(a.sqs, s.ScanQueueURL), export: sqsqueue.New(a.sqs, s.ExportQueueURL),
		scanURL: s.ScanQueueURL, exportURL: s.ExportQueueURL, store: a.store, now: a.now}
	if s.ExportBucket != "" {
		// An emulator serves buckets by path, not by virtual host.
		pathStyle := s.Endpoint != "" || cfg.BaseEndpoint != nil
		client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = pathStyle })
		a.sink = s3sink.New(client, s.ExportBucket, s.ExportPrefix)
	}
	gopts := opts.GitLab
	if gopts.Transport == nil {
		// One connection pool for every run's client, so a new run does not strand
		// the old pool's idle connections.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = max(s.Config.Concurrency, 2)
		gopts.Transport = t
	}
	if secrets != nil {
		a.rotation = &rotatingToken{next: gopts.Transport, current: s.Config.Token, log: log,
			read: func(ctx context.Context) (string, error) { return readToken(ctx, secrets, s.TokenSecretARN) }}
		gopts.Transport = a.rotation
		gopts.Secrets = a.rotation.tokens
	}
	b := engine.Backends{Store: a.store, Queue: a.queue, Telemetry: a.telemetry, Log: log}
	if a.sink != nil {
		b.Sink = a.sink
	}
	eng, err := engine.New(s.Config, b, engine.Options{
		DeadlineMargin: s.DeadlineMargin, GitLab: gopts, OnRunFinished: a.runFinished,
		EndpointLimiter: a.endpointLimiter,
	})
	if err != nil {
		return nil, err
	}
	a.engine = eng
	return a, nil
}

// readToken reads the GitLab token from a secret holding either the bare token or a
// JSON object {"token": "..."}.
func readToken(ctx context.Context, client *secretsmanager.Client, arn string) (string, error) {
	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return "", fmt.Errorf("read the GitLab token from secret %s: %w", arn, err)
	}
	v := strings.TrimSpace(aws.ToString(out.SecretString))
	if strings.HasPrefix(v, "{") {
		var obj struct {
			Token string `json:"token"`
		}
		// The error would quote the secret: report only that it is not the expected shape.
		if json.Unmarshal([]byte(v), &obj) != nil {
			return "", fmt.Errorf("secret %s: not a token and not a JSON object with a \"token\" member", arn)
		}
		v = strings.TrimSpace(obj.Token)
	}
	if v == "" {
		return "", fmt.Errorf("secret %s holds no GitLab token: set it with aws secretsmanager put-secret-value (docs/DEPLOY.md)", arn)
	}
	return v, nil
}

// client returns the GitLab client and limiter for runID, building them when the run
// differs from the last one. The scheduler uses runID "": its calls precede the run.
// It keeps its own client, so that where one App schedules and works (serve with
// BACKEND=aws) a start or a token check does not replace the run's.
func (a *App) client(runID string) (*runClient, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	slot := &a.cur
	if runID == "" {
		slot = &a.sched
	}
	if *slot != nil && (*slot).runID == runID {
		return *slot, nil
	}
	cfg := a.s.Config
	u, err := url.Parse(cfg.GitLabURL)
	if err != nil {
		return nil, fmt.Errorf("GITLAB_URL: %w", err)
	}
	bc := a.engine.Budget()
	if runID == "" {
		bc.MaxCalls = 0
	}
	lim := dynamobudget.New(a.ddb, a.s.BudgetTable, dynamobudget.TokenKey(u.Host, cfg.Token), dynamobudget.Config{
		RPM: bc.RPM, Pace: bc.Pace, Chunk: a.s.BudgetChunk, MaxCalls: bc.MaxCalls, RunID: runID, Logger: a.log,
	})
	gl, err := a.engine.Client(lim)
	if err != nil {
		return nil, err
	}
	rc := &runClient{runID: runID, limiter: lim, client: gl, worker: a.engine.Worker(gl), scheduler: a.engine.Scheduler(gl)}
	*slot = rc
	return rc, nil
}

// endpointLimiter shares one endpoint class's limit (RATE_LIMIT_ENDPOINTS) between
// every worker in the budget table, beside the GitLab-wide budget item: per-worker
// limits would multiply with the workers.
func (a *App) endpointLimiter(class string, c budget.Config) gitlab.Limiter {
	host := ""
	if u, err := url.Parse(a.s.Config.GitLabURL); err == nil {
		host = u.Host
	}
	// No run and no call cap: nothing to give back at the end of an invocation.
	return dynamobudget.New(a.ddb, a.s.BudgetTable, dynamobudget.TokenKey(host, a.s.Config.Token)+"#"+class,
		dynamobudget.Config{RPM: c.RPM, Pace: c.Pace, Logger: a.log})
}

// runFinished reports a run's end to EMF and to the OnRunFinished hook.
func (a *App) runFinished(run inventory.Run, _ inventory.Summary) {
	a.emf.RunFinished(run.Status == inventory.RunSucceeded, run.FinishedAt.Sub(run.StartedAt))
	a.mu.Lock()
	fn := a.onFinished
	a.mu.Unlock()
	if fn != nil {
		fn(run)
	}
}

// Effective returns the settings a run's worker and client really use.
func (a *App) Effective(runID string) (engine.Effective, error) {
	rc, err := a.client(runID)
	if err != nil {
		return engine.Effective{}, err
	}
	return engine.Describe(rc.worker, rc.scheduler, rc.client), nil
}

// Store is the App's DynamoDB store (harnesses read runs through it).
func (a *App) Store() *dynamostore.Store { return a.store }

// Settings returns the App's settings.
func (a *App) Settings() Settings { return a.s }

// OnRunFinished sets the function called when a run ends, succeeded (after its exports)
// or failed, in whichever handler ended it.
func (a *App) OnRunFinished(fn func(inventory.Run)) {
	a.mu.Lock()
	a.onFinished = fn
	a.mu.Unlock()
}

// CheckGitLab proves GitLab reachable with a token it accepts; a rejected token is
// gitlab.ErrUnauthorized, "GitLab rejected the token (401)". The check's call goes
// through the shared budget, outside any run's MAX_API_CALLS.
func (a *App) CheckGitLab(ctx context.Context) error {
	if err := a.s.Validate(RoleScheduler); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	rc, err := a.client("")
	if err != nil {
		return err
	}
	_, err = rc.client.CurrentUser(ctx)
	if rerr := rc.limiter.Release(context.WithoutCancel(ctx)); rerr != nil {
		a.log.Warn("give unspent API budget back", "err", rerr)
	}
	if err != nil {
		return fmt.Errorf("token check: %w", err)
	}
	return nil
}

// BudgetTokens returns the API calls the newest run's budget holds in this process
// now: 0 before any run, while paused, and between leases.
func (a *App) BudgetTokens() float64 {
	a.mu.Lock()
	rc := a.cur
	a.mu.Unlock()
	if rc == nil {
		return 0
	}
	return rc.limiter.Available()
}

// endInvocation gives unspent budget back and writes the invocation's metrics. It runs
// on a context of its own: the invocation's may be at its deadline.
func (a *App) endInvocation(ctx context.Context, limiters ...*dynamobudget.Budget) {
	ctx = context.WithoutCancel(ctx)
	for _, l := range limiters {
		if l == nil {
			continue
		}
		a.emf.SetBudgetTokens(l.Available())
		if err := l.Release(ctx); err != nil {
			a.log.Warn("give unspent API budget back", "err", err)
		}
	}
	if err := a.emf.Flush(); err != nil {
		a.log.Error("write metrics", "err", err)
	}
}

// tee reports to EMF and to the serve mode's telemetry.
type tee struct {
	emf  *metrics.EMF
	next Telemetry
}

func (t tee) Request(endpoint string, status int, d time.Duration) {
	t.emf.Request(endpoint, status, d)
	t.next.Request(endpoint, status, d)
}

func (t tee) Retry(reason string) {
	t.emf.Retry(reason)
	t.next.Retry(reason)
}

func (t tee) RateLimitRemaining(remaining int) {
	t.emf.RateLimitRemaining(remaining)
	t.next.RateLimitRemaining(remaining)
}

func (t tee) EffectiveRPM(rpm float64) {
	t.emf.EffectiveRPM(rpm)
	t.next.EffectiveRPM(rpm)
}

func (t tee) GroupDone(status string) {
	t.emf.GroupDone(status)
	t.next.GroupDone(status)
}

func (t tee) ProjectDone(status, readiness string) {
	t.emf.ProjectDone(status, readiness)
	t.next.ProjectDone(status, readiness)
}

func (t tee) ScanError(kind, step string) {
	t.emf.ScanError(kind, step)
	t.next.ScanError(kind, step)
}

func (t tee) QueueDepth(n int64) {
	t.emf.QueueDepth(n)
	t.next.QueueDepth(n)
}

// router is the handlers' discovery.Queue: export messages go to the export queue,
// group scans to the scan queue. A group scan goes out only when its pending marker
// records no send yet, and its send is recorded there: a redelivered message that lists
// the same subgroups, or queues the same continuation, does not send them again, and
// the reconciler knows what was sent when.
type router struct {
	scan, export       *sqsqueue.Queue
	scanURL, exportURL string
	store              *dynamostore.Store
	now                func() time.Time
}

func (r *router) Send(ctx context.Context, msgs ...work.Message) error {
	var scan, export []work.Message
	for _, m := range msgs {
		if m.Kind == work.KindExport {
			export = append(export, m)
		} else {
			scan = append(scan, m)
		}
	}
	if len(scan) > 0 {
		if r.scanURL == "" {
			return errors.New("queue group scans: SCAN_QUEUE_URL is not set")
		}
		unsent, err := r.store.Unsent(ctx, scan...)
		if err != nil {
			return fmt.Errorf("queue group scans: %w", err)
		}
		if err := r.scan.Send(ctx, unsent...); err != nil {
			return err
		}
		if err := r.store.MarkSent(ctx, r.now(), unsent...); err != nil {
			return err
		}
	}
	if len(export) > 0 {
		if r.exportURL == "" {
			return errors.New("queue export: EXPORT_QUEUE_URL is not set")
		}
		if err := r.export.Send(ctx, export...); err != nil {
			return err
		}
	}
	return nil
}
