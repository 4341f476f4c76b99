//go:build unix

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/dynamostore"
	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/lambdaapp"
	"github.com/gl2gh/discovery-agent/internal/mototest"
	"github.com/gl2gh/discovery-agent/internal/s3sink"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
	"github.com/gl2gh/discovery-agent/internal/sqsqueue"
)

// Functions are the Lambda functions a harness run invokes, by folder under functions/.
var Functions = []string{"scheduler", "worker", "exporter"}

// Built are the functions Build builds: the reconciler too, which the sam-local test
// invokes (a harness run's messages are never lost, so it plays no part there).
var Built = append(Functions[:len(Functions):len(Functions)], "reconciler")

// Token is the simulated GitLab's token; the harness checks it appears in no export
// and no output.
const Token = "glpat-e2e-harness-do-not-leak-51d7"

// exportPrefix is the bucket prefix the exporter writes under, as EXPORT_PREFIX.
const exportPrefix = "discovery/"

// Options shape a harness run. Zero values take the defaults noted.
type Options struct {
	// BinDir holds <function>/bootstrap built for this machine; empty builds them
	// into a temporary directory with Build.
	BinDir string
	// ModuleDir is the repository root (for building and events/); default found
	// with `go env GOMOD`.
	ModuleDir string
	// RIE is the emulator's path; default FindRIE.
	RIE string

	// The simulated GitLab: Seed, Groups (in total) and Projects; default 3, 12, 150.
	Seed             int64
	Groups, Projects int
	Faults           gitlabsim.Faults

	// Workers is the number of worker execution environments (invocations at once,
	// as ScalingConfig.MaximumConcurrency); default 2. BatchSize is the messages per
	// invocation; default 4.
	Workers, BatchSize int
	// Visibility is the scan queue's visibility timeout: a killed worker's messages
	// return after it. Default 10s. WorkerTimeout is the worker's function timeout;
	// default 8s, under the visibility timeout as in the template.
	Visibility, WorkerTimeout time.Duration
	// RateLimitRPM is the shared budget's rate; 0 (default) sets none, so only the
	// budget's leases and call counting are exercised. RATE_LIMIT_RPM in the
	// harness's environment (e.g. auto, the agent's default) overrides it.
	RateLimitRPM int
	// SimRPM is the limit the simulator announces and enforces, per minute and
	// token, as GitLab's authenticated-API throttle; 0 (default) none.
	SimRPM int
	// Kill ends one worker's execution environment in the middle of its first
	// invocation of the harness's first run (after KillAfter GitLab requests, default 40) and starts a new one.
	Kill      bool
	KillAfter int64

	// Log receives the harness's progress; default discarded.
	Log *slog.Logger
}

func (o *Options) defaults() {
	o.Seed = cmpOr(o.Seed, 3)
	o.Groups = cmpOr(o.Groups, 12)
	o.Projects = cmpOr(o.Projects, 150)
	o.Workers = cmpOr(o.Workers, 2)
	o.BatchSize = cmpOr(o.BatchSize, 4)
	o.Visibility = cmpOr(o.Visibility, 10*time.Second)
	o.WorkerTimeout = cmpOr(o.WorkerTimeout, 8*time.Second)
	o.KillAfter = cmpOr(o.KillAfter, 40)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Harness is a Lambda deployment on one machine: moto as AWS (behind a proxy that
// counts the functions' requests), the GitLab simulator, and the three functions
// under aws-lambda-rie.
type Harness struct {
	opts Options
	log  *slog.Logger

	moto    *mototest.Process
	counter *counter
	proxy   *httptest.Server
	sim     *gitlabsim.Server
	simSrv  *httptest.Server
	tmp     string

	simBase        int64       // simulator requests before the current run
	killed         atomic.Bool // the one kill Options.Kill asks for has happened
	store          *dynamostore.Store
	scan, export   *sqsqueue.Queue
	scanARN        string
	exportARN      string
	sink           *s3sink.Sink
	scheduler      *Function
	workers        []*Function
	exporter       *Function
	eventSourceOps sync.Map // "sqs.ReceiveMessage" -> *atomic.Int64: what the event source would send
}

// ModuleDir returns the repository root containing the working directory.
func ModuleDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the module")
	}
	return filepath.Dir(mod), nil
}

// Build builds each function's bootstrap for this machine into outDir/<function>/,
// with the flags of functions/lambda.mk.
func Build(ctx context.Context, moduleDir, outDir string) error {
	for _, f := range Built {
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w",
			"-o", filepath.Join(outDir, f, "bootstrap"), "./functions/"+f)
		cmd.Dir = moduleDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w\n%s", f, err, out)
		}
	}
	return nil
}

// Start builds what is missing and starts every component. Close stops them.
// mototest.ErrNotInstalled and ErrNoRIE report missing tools.
func Start(ctx context.Context, opts Options) (h *Harness, err error) {
	opts.defaults()
	h = &Harness{opts: opts, log: opts.Log}
	// The returns below set the named h to nil: close the one built here.
	built := h
	defer func() {
		if err != nil {
			built.Close()
		}
	}()
	if h.opts.RIE == "" {
		if h.opts.RIE, err = FindRIE(); err != nil {
			return nil, err
		}
	}
	if h.opts.ModuleDir == "" {
		if h.opts.ModuleDir, err = ModuleDir(); err != nil {
			return nil, err
		}
	}
	if h.tmp, err = os.MkdirTemp("", "e2e-aws-"); err != nil {
		return nil, err
	}
	if h.opts.BinDir == "" {
		h.opts.BinDir = filepath.Join(h.tmp, "bin")
		h.log.Info("building the functions", "dir", h.opts.BinDir)
		if err := Build(ctx, h.opts.ModuleDir, h.opts.BinDir); err != nil {
			return nil, err
		}
	}

	// moto serves one request at a time: DynamoDB's conditional writes and
	// transactions are only atomic that way (see mototest.Serial).
	if h.moto, err = mototest.StartProcess(ctx, mototest.Serial()); err != nil {
		return nil, err
	}
	target, _ := url.Parse(h.moto.Endpoint())
	h.counter = &counter{n: map[string]int64{}, bytes: map[string]int64{}, rp: httputil.NewSingleHostReverseProxy(target)}
	h.proxy = httptest.NewServer(h.counter)

	if h.sim, err = gitlabsim.New(gitlabsim.Options{
		Seed: opts.Seed, Groups: opts.Groups, Projects: opts.Projects, Token: Token, Faults: opts.Faults,
		RateLimitRPM: opts.SimRPM,
	}); err != nil {
		return nil, err
	}
	h.simSrv = httptest.NewServer(h.sim)

	env, err := h.resources(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.startFunctions(ctx, env); err != nil {
		return nil, err
	}
	return h, nil
}

// resources creates the tables, queues, bucket and token secret as the template
// does, and returns the environment every function shares.
func (h *Harness) resources(ctx context.Context) (map[string]string, error) {
	dep, err := h.moto.CreateDeployment(ctx, mototest.QueueOptions{VisibilityTimeout: h.opts.Visibility},
		mototest.QueueOptions{VisibilityTimeout: 60 * time.Second})
	if err != nil {
		return nil, err
	}
	ddb, sqsc := h.moto.DynamoDB(), h.moto.SQS()
	storeTable, budgetTable, bucket := dep.StoreTable, dep.BudgetTable, dep.Bucket
	scan, exp := dep.Scan, dep.Export
	secret, err := secretsmanager.NewFromConfig(h.moto.Config(ctx)).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(mototest.Name("gitlab-token")), SecretString: aws.String(Token),
	})
	if err != nil {
		return nil, fmt.Errorf("create the token secret: %w", err)
	}
	h.store = dynamostore.New(ddb, storeTable, dynamostore.Options{})
	h.scan, h.export = sqsqueue.New(sqsc, scan.URL), sqsqueue.New(sqsc, exp.URL)
	h.scanARN, h.exportARN = scan.ARN, exp.ARN
	h.sink = s3sink.New(h.moto.S3(), bucket, exportPrefix)

	var roots []string
	for _, g := range h.sim.Truth().Groups {
		if g.ParentID == 0 {
			roots = append(roots, g.FullPath)
		}
	}
	env := map[string]string{
		"AWS_ENDPOINT_URL": h.proxy.URL, "AWS_REGION": mototest.Region,
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true",
		"GITLAB_URL": h.simSrv.URL, "ROOT_GROUPS": strings.Join(roots, ","),
		"RATE_LIMIT_RPM": strconv.Itoa(h.opts.RateLimitRPM), "CONCURRENT_REQUESTS": "8", "REQUEST_TIMEOUT": "5s",
		"STORE_TABLE": storeTable, "BUDGET_TABLE": budgetTable,
		"SCAN_QUEUE_URL": scan.URL, "EXPORT_QUEUE_URL": exp.URL,
		"GITLAB_TOKEN_SECRET_ARN": aws.ToString(secret.ARN),
		"EXPORT_BUCKET":           bucket, "EXPORT_PREFIX": exportPrefix,
		"MAX_RECEIVE_COUNT": "5", "RUN_RETENTION_DAYS": "1", "LOG_LEVEL": "info", "METRICS_NAMESPACE": "DiscoveryAgentE2E",
		"MESSAGE_CONCURRENCY": strconv.Itoa(h.opts.BatchSize), "DEADLINE_MARGIN": "2s", "RETRY_DELAY": "1s",
	}
	passSettings(env)
	return env, nil
}

// harnessOwned are the variables the harness sets from what it started; every other
// documented setting in its own environment reaches the functions as template.yaml's
// parameters would (FULL_SCAN_EVERY=0 make e2e-aws).
var harnessOwned = map[string]bool{
	"GITLAB_URL": true, "GITLAB_TOKEN": true, "GITLAB_TOKEN_SECRET_ARN": true, "ROOT_GROUPS": true,
	"AWS_ENDPOINT_URL": true, "STORE_TABLE": true, "BUDGET_TABLE": true, "SCAN_QUEUE_URL": true,
	"EXPORT_QUEUE_URL": true, "EXPORT_BUCKET": true, "EXPORT_PREFIX": true, "SCAN_DLQ_URL": true,
	"EXPORT_DLQ_URL": true, "MAX_RECEIVE_COUNT": true, "DEADLINE_MARGIN": true, "MESSAGE_CONCURRENCY": true,
}

func passSettings(env map[string]string) {
	for _, v := range append(config.Vars(), lambdaapp.Vars()...) {
		if val, ok := os.LookupEnv(v.Name); ok && !harnessOwned[v.Name] {
			env[v.Name] = val
		}
	}
}

func (h *Harness) startFunctions(ctx context.Context, shared map[string]string) error {
	envFor := func(drop ...string) []string {
		env := []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + h.tmp}
		for _, k := range slices.Sorted(maps.Keys(shared)) {
			if !slices.Contains(drop, k) {
				env = append(env, k+"="+shared[k])
			}
		}
		return env
	}
	bin := func(name string) string { return filepath.Join(h.opts.BinDir, name, "bootstrap") }
	var err error
	// As in template.yaml: only the scheduler and the worker may read the token; only
	// the exporter knows the bucket.
	if h.scheduler, err = StartFunction(ctx, "scheduler", h.opts.RIE, bin("scheduler"), envFor("EXPORT_BUCKET", "EXPORT_PREFIX"), 30*time.Second); err != nil {
		return err
	}
	for i := range h.opts.Workers {
		w, err := StartFunction(ctx, "worker-"+strconv.Itoa(i+1), h.opts.RIE, bin("worker"), envFor("EXPORT_BUCKET", "EXPORT_PREFIX"), h.opts.WorkerTimeout)
		if err != nil {
			return err
		}
		h.workers = append(h.workers, w)
	}
	h.exporter, err = StartFunction(ctx, "exporter", h.opts.RIE, bin("exporter"), envFor("GITLAB_TOKEN_SECRET_ARN", "BUDGET_TABLE", "GITLAB_URL"), 60*time.Second)
	return err
}

// Close stops every component and removes temporary files.
func (h *Harness) Close() {
	for _, f := range append([]*Function{h.scheduler, h.exporter}, h.workers...) {
		if f != nil {
			f.Stop()
		}
	}
	if h.proxy != nil {
		h.proxy.Close()
	}
	if h.simSrv != nil {
		h.sim.Close()
		h.simSrv.Close()
	}
	if h.moto != nil {
		h.moto.Stop()
	}
	if h.tmp != "" {
		os.RemoveAll(h.tmp)
	}
}

// Simulator is the simulated GitLab.
func (h *Harness) Simulator() *gitlabsim.Server { return h.sim }

// Output is everything the functions printed, for failure reports.
func (h *Harness) Output() string {
	var b strings.Builder
	for _, f := range append([]*Function{h.scheduler, h.exporter}, h.workers...) {
		fmt.Fprintf(&b, "=== %s\n%s\n", f.Name, f.Output())
	}
	return b.String()
}

// Report is what a run did and measured.
type Report struct {
	RunID         string
	SecondTrigger lambdaapp.Result // the scheduler's answer to a trigger during the run
	Status        string
	Groups        int
	Projects      int
	Files         []string // the run's export files under runs/<run-id>/
	Diffs         []string // exports against the simulator's truth; empty when equal

	APICalls int64 // requests the simulator served
	// Throttled are the 429s the simulator answered, PeakPerMinute the most requests
	// it served in any minute of the run, ScanElapsed the time from the start to the
	// scan queue's end: with Options.SimRPM they tell the share of the announced
	// limit the workers used together.
	Throttled     int64
	PeakPerMinute int64
	ScanElapsed   time.Duration
	SimRPM        int
	// PeakPerMinuteByClass is the most requests of each endpoint class the simulator
	// served in any minute of the run (RATE_LIMIT_ENDPOINTS is checked against it).
	PeakPerMinuteByClass map[string]int64
	RunAPICalls          int64 // what the run counted (summary.json's api_calls)
	Invocations          map[string]int
	Durations            map[string]time.Duration // summed REPORT Durations by function
	AWSRequests          map[string]int64         // the functions' AWS requests by service.operation
	AWSBytes             map[string]int64         // their request bodies, bytes
	EventSourceOps       map[string]int64         // what the SQS event source would have sent
	OutputBytes          map[string]int64         // what the functions printed (logs, EMF, REPORTs): CloudWatch Logs ingestion
	EMFMetrics           int                      // distinct metric and dimension-value sets in the EMF lines: CloudWatch custom metrics
	Redelivered          int                      // records delivered more than once
	Killed               int                      // worker environments killed mid-invocation
	Elapsed              time.Duration
}

// Run starts a run with events/schedule.json, drives the worker until the scan queue
// drains and the exporter until the run ends, and compares the S3 exports with the
// simulator's truth.
func (h *Harness) Run(ctx context.Context) (Report, error) {
	start := time.Now()
	rep := Report{Invocations: map[string]int{}}
	h.resetMeasures()
	event, err := os.ReadFile(filepath.Join(h.opts.ModuleDir, "events", "schedule.json"))
	if err != nil {
		return rep, err
	}
	var res lambdaapp.Result
	if err := h.scheduler.Invoke(ctx, rawJSON(event), &res); err != nil {
		return rep, err
	}
	rep.Invocations["scheduler"]++
	if !res.Started {
		return rep, fmt.Errorf("the scheduler did not start a run: %s", res.Message)
	}
	rep.RunID = res.RunID
	h.log.Info("run started", "run_id", res.RunID, "message", res.Message)
	if err := h.scheduler.Invoke(ctx, rawJSON(event), &rep.SecondTrigger); err != nil {
		return rep, err
	}
	rep.Invocations["scheduler"]++

	if err := h.pumpScans(ctx, res.RunID, &rep); err != nil {
		return rep, err
	}
	rep.ScanElapsed = time.Since(start)
	if err := h.pumpExports(ctx, res.RunID, &rep); err != nil {
		return rep, err
	}
	run, err := h.store.GetRun(ctx, res.RunID)
	if err != nil {
		return rep, err
	}
	rep.Status = run.Status
	if run.Status != inventory.RunSucceeded {
		return rep, fmt.Errorf("run %s ended %s: %s", run.ID, run.Status, run.Reason)
	}
	if err := h.check(ctx, &rep); err != nil {
		return rep, err
	}
	rep.Elapsed = time.Since(start)
	h.measure(&rep)
	return rep, nil
}

type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// pumpScans plays the scan queue's event source: each worker environment takes
// batches and reports failures; the rest are deleted. It ends when the scan queue is
// empty and the export is queued (or the run ended otherwise).
func (h *Harness) pumpScans(ctx context.Context, runID string, rep *Report) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu        sync.Mutex
		errs      []error
		delivered sync.Map
	)
	var wg sync.WaitGroup
	for i, w := range h.workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				msgs, err := h.receive(ctx, h.scan, h.opts.BatchSize)
				if err != nil || len(msgs) == 0 {
					sleep(ctx, 100*time.Millisecond)
					continue
				}
				for _, m := range msgs {
					if _, seen := delivered.LoadOrStore(aws.ToString(m.MessageId), true); seen {
						mu.Lock()
						rep.Redelivered++
						mu.Unlock()
					}
				}
				// Until one kill lands: an invocation may end before KillAfter requests.
				kill := h.opts.Kill && i == 0 && !h.killed.Load()
				stopWatch := func() {}
				if kill {
					stopWatch = h.killAfter(ctx, w, h.opts.KillAfter)
				}
				resp, err := h.invokeSQS(ctx, w, h.scanARN, msgs)
				stopWatch()
				mu.Lock()
				rep.Invocations["worker"]++
				mu.Unlock()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					// Nothing is deleted: the batch returns after the visibility timeout.
					h.log.Warn("worker invocation failed", "worker", w.Name, "err", err)
					if kill && h.killed.Load() {
						mu.Lock()
						rep.Killed++
						mu.Unlock()
					}
					if rerr := w.Restart(ctx); rerr != nil {
						mu.Lock()
						errs = append(errs, rerr)
						mu.Unlock()
						cancel()
					}
					continue
				}
				if err := h.deleteDone(ctx, h.scan, msgs, resp); err != nil && ctx.Err() == nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
				}
			}
		})
	}

	// Done when nothing is left on the scan queue, visible or in flight, and the run
	// has moved on: its export is queued, or it ended.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Minute)
	var waitErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-deadline:
			waitErr = errors.New("the scan queue did not drain in 5 minutes")
			break wait
		case <-tick.C:
		}
		depth, err := h.scan.Depth(ctx)
		if err != nil || depth > 0 {
			continue
		}
		exp, err := h.export.Depth(ctx)
		if err != nil {
			continue
		}
		run, err := h.store.GetRun(ctx, runID)
		if err != nil {
			continue
		}
		if exp > 0 || run.Status != inventory.RunRunning {
			break
		}
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(append(errs, waitErr)...)
}

// killAfter ends w's environment once the simulator has served n more requests, in
// the middle of the invocation under way. The returned function stops watching.
func (h *Harness) killAfter(ctx context.Context, w *Function, n int64) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	base := h.sim.Stats().Requests
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if h.sim.Stats().Requests-base >= n {
				h.log.Info("killing a worker in the middle of its invocation", "worker", w.Name, "gitlab_requests", n)
				w.Kill()
				h.killed.Store(true)
				return
			}
			sleep(ctx, 2*time.Millisecond)
		}
	}()
	return func() { cancel(); <-done }
}

func (h *Harness) pumpExports(ctx context.Context, runID string, rep *Report) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		run, err := h.store.GetRun(ctx, runID)
		if err != nil {
			return err
		}
		if run.Status == inventory.RunSucceeded || run.Status == inventory.RunFailed {
			return nil
		}
		msgs, err := h.receive(ctx, h.export, 1)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		resp, err := h.invokeSQS(ctx, h.exporter, h.exportARN, msgs)
		rep.Invocations["exporter"]++
		if err != nil {
			return err
		}
		if err := h.deleteDone(ctx, h.export, msgs, resp); err != nil {
			return err
		}
	}
	return errors.New("the run was not exported in 2 minutes")
}

// receive short-polls: a long poll would hold moto's only thread.
func (h *Harness) receive(ctx context.Context, q *sqsqueue.Queue, n int) ([]sqstypes.Message, error) {
	h.eventSource("sqs.ReceiveMessage")
	return q.Receive(ctx, n, 0)
}

func (h *Harness) eventSource(op string) {
	v, _ := h.eventSourceOps.LoadOrStore(op, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// invokeSQS hands messages to fn as the SQS event source does.
func (h *Harness) invokeSQS(ctx context.Context, fn *Function, arn string, msgs []sqstypes.Message) (events.SQSEventResponse, error) {
	var ev events.SQSEvent
	for _, m := range msgs {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes, EventSource: "aws:sqs",
			EventSourceARN: arn, AWSRegion: mototest.Region,
		})
	}
	var resp events.SQSEventResponse
	err := fn.Invoke(ctx, ev, &resp)
	return resp, err
}

// deleteDone deletes the messages the function did not report failed.
func (h *Harness) deleteDone(ctx context.Context, q *sqsqueue.Queue, msgs []sqstypes.Message, resp events.SQSEventResponse) error {
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, m := range msgs {
		if failed[aws.ToString(m.MessageId)] {
			continue
		}
		h.eventSource("sqs.DeleteMessage")
		if err := q.Delete(ctx, aws.ToString(m.ReceiptHandle)); err != nil {
			return err
		}
	}
	return nil
}

// check compares the run's exports, and latest/, with the simulator's truth.
func (h *Harness) check(ctx context.Context, rep *Report) error {
	truth := h.sim.Truth()
	for _, prefix := range []string{export.RunPrefix(rep.RunID), export.LatestPrefix} {
		names, err := h.sink.List(ctx, prefix)
		if err != nil {
			return err
		}
		if prefix != export.LatestPrefix {
			rep.Files = names
		}
		for _, name := range names {
			b, err := h.sink.Get(ctx, name)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(Token)) {
				rep.Diffs = append(rep.Diffs, name+" contains the GitLab token")
			}
		}
		jsonl, err := h.sink.Get(ctx, prefix+export.ProjectsJSONL)
		if err != nil {
			return err
		}
		projects, err := scancheck.ReadJSONL(bytes.NewReader(jsonl))
		if err != nil {
			return err
		}
		csv, err := h.sink.Get(ctx, prefix+export.GroupsCSV)
		if err != nil {
			return err
		}
		groups, err := scancheck.ReadGroupsCSV(bytes.NewReader(csv))
		if err != nil {
			return err
		}
		for _, d := range scancheck.Diff(truth, groups, projects) {
			rep.Diffs = append(rep.Diffs, prefix+": "+d)
		}
		rep.Groups, rep.Projects = len(groups), len(projects)
	}
	sum, err := h.store.APICalls(ctx, rep.RunID)
	if err != nil {
		return err
	}
	rep.RunAPICalls = sum
	if strings.Contains(h.Output(), Token) {
		rep.Diffs = append(rep.Diffs, "a function's output contains the GitLab token")
	}
	return nil
}

// resetMeasures starts the measurements of a run afresh.
func (h *Harness) resetMeasures() {
	h.sim.ResetStats() // per-run peaks
	h.simBase = h.sim.Stats().Requests
	h.counter.reset()
	h.eventSourceOps.Range(func(k, _ any) bool { h.eventSourceOps.Delete(k); return true })
	for _, f := range h.functions() {
		f.mark()
	}
}

func (h *Harness) functions() []*Function {
	return append([]*Function{h.scheduler, h.exporter}, h.workers...)
}

func (h *Harness) measure(rep *Report) {
	st := h.sim.Stats()
	rep.APICalls = st.Requests - h.simBase
	rep.Throttled, rep.PeakPerMinute, rep.SimRPM = st.Throttled, st.PeakPerMinute, h.opts.SimRPM
	rep.PeakPerMinuteByClass = st.PeakPerMinuteByClass
	rep.Durations = map[string]time.Duration{}
	rep.OutputBytes = map[string]int64{}
	metrics := map[string]bool{}
	for _, f := range h.functions() {
		name, _, _ := strings.Cut(f.Name, "-")
		durations, out := f.sinceMark()
		for _, d := range durations {
			rep.Durations[name] += d
		}
		rep.OutputBytes[name] += int64(len(out))
		for _, line := range strings.Split(out, "\n") {
			if k, ok := emfMetric(line); ok {
				metrics[k] = true
			}
		}
	}
	rep.EMFMetrics = len(metrics)
	rep.AWSRequests, rep.AWSBytes = h.counter.snapshot()
	rep.EventSourceOps = map[string]int64{}
	h.eventSourceOps.Range(func(k, v any) bool {
		rep.EventSourceOps[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
}

// Summary describes the report in a few lines, for people.
func (r Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s %s in %s: %d groups, %d projects, %d GitLab requests (%.1f per project; run counted %d)\n",
		r.RunID, r.Status, r.Elapsed.Round(time.Millisecond), r.Groups, r.Projects, r.APICalls,
		float64(r.APICalls)/float64(max(r.Projects, 1)), r.RunAPICalls)
	fmt.Fprintf(&b, "peak requests per minute by endpoint class: %v\n", r.PeakPerMinuteByClass)
	perMinute := float64(r.APICalls) / max(r.ScanElapsed.Minutes(), 1e-9)
	fmt.Fprintf(&b, "pace: %.0f requests per minute over the scan (%s), peak minute %d, 429s %d",
		perMinute, r.ScanElapsed.Round(time.Millisecond), r.PeakPerMinute, r.Throttled)
	if r.SimRPM > 0 {
		fmt.Fprintf(&b, "; of the announced %d/min: %.1f%% over the scan, %.1f%% in the peak minute",
			r.SimRPM, 100*perMinute/float64(r.SimRPM), 100*float64(r.PeakPerMinute)/float64(r.SimRPM))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "second trigger during the run: started=%v %q\n", r.SecondTrigger.Started, r.SecondTrigger.Message)
	fmt.Fprintf(&b, "invocations: %v; killed mid-invocation: %d; records redelivered: %d\n", r.Invocations, r.Killed, r.Redelivered)
	for _, f := range slices.Sorted(maps.Keys(r.Durations)) {
		fmt.Fprintf(&b, "  %-9s %4d invocations, %8s in total\n", f, r.Invocations[f], r.Durations[f].Round(time.Millisecond))
	}
	for _, f := range slices.Sorted(maps.Keys(r.OutputBytes)) {
		fmt.Fprintf(&b, "  %-9s printed %d bytes (logs, EMF lines, REPORTs)\n", f, r.OutputBytes[f])
	}
	fmt.Fprintf(&b, "EMF: %d distinct metrics (name and dimension values)\n", r.EMFMetrics)
	fmt.Fprintln(&b, "AWS requests by the functions (operation: count, request bytes):")
	for _, op := range slices.Sorted(maps.Keys(r.AWSRequests)) {
		fmt.Fprintf(&b, "  %-34s %6d %10d\n", op, r.AWSRequests[op], r.AWSBytes[op])
	}
	fmt.Fprintln(&b, "SQS requests of the event source (played by the harness):")
	for _, op := range slices.Sorted(maps.Keys(r.EventSourceOps)) {
		fmt.Fprintf(&b, "  %-34s %6d\n", op, r.EventSourceOps[op])
	}
	fmt.Fprintf(&b, "exports: %v\n", r.Files)
	if len(r.Diffs) == 0 {
		fmt.Fprintln(&b, "exports equal the simulator's truth")
	} else {
		fmt.Fprintf(&b, "%d differences from the truth:\n  %s\n", len(r.Diffs), strings.Join(r.Diffs, "\n  "))
	}
	return b.String()
}

// counter is a reverse proxy in front of moto that counts requests by operation.
type counter struct {
	rp    *httputil.ReverseProxy
	mu    sync.Mutex
	n     map[string]int64
	bytes map[string]int64
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := operation(r)
	c.mu.Lock()
	c.n[op]++
	c.bytes[op] += max(r.ContentLength, 0)
	c.mu.Unlock()
	c.rp.ServeHTTP(w, r)
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.n)
	clear(c.bytes)
}

func (c *counter) snapshot() (map[string]int64, map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n), maps.Clone(c.bytes)
}

// operation names an AWS request: JSON protocols carry it in X-Amz-Target, S3 in
// the method.
func operation(r *http.Request) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		svc, op, _ := strings.Cut(t, ".")
		switch {
		case strings.HasPrefix(svc, "DynamoDB"):
			svc = "dynamodb"
		case strings.HasPrefix(svc, "AmazonSQS"):
			svc = "sqs"
		default:
			svc = strings.ToLower(svc)
		}
		return svc + "." + op
	}
	return "s3." + r.Method
}

// emfMetric names the metric an EMF line carries, with its dimension values.
func emfMetric(line string) (string, bool) {
	if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"_aws"`) {
		return "", false
	}
	var v struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		} `json:"_aws"`
	}
	var fields map[string]any
	if json.Unmarshal([]byte(line), &v) != nil || json.Unmarshal([]byte(line), &fields) != nil || len(v.AWS.CloudWatchMetrics) == 0 {
		return "", false
	}
	d := v.AWS.CloudWatchMetrics[0]
	if len(d.Metrics) == 0 {
		return "", false
	}
	key := d.Metrics[0].Name
	for _, dims := range d.Dimensions {
		for _, dim := range dims {
			key += fmt.Sprintf(" %s=%v", dim, fields[dim])
		}
	}
	return key, true
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
