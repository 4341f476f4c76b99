package lambdaapp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/mototest"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
	"github.com/gl2gh/discovery-agent/internal/sqsqueue"
	"github.com/gl2gh/discovery-agent/internal/work"
)

func TestMain(m *testing.M) { mototest.Main(m) }

const token = "glpat-lambdaapp-test-do-not-leak-7c1e"

// fixture is one isolated deployment on the shared moto server: tables, queues, a
// bucket and a secret of its own, and a simulated GitLab.
type fixture struct {
	srv          *mototest.Server
	sim          *gitlabsim.Server
	settings     Settings
	scan, export *sqsqueue.Queue
	scanARN      string
	logs, emf    *scancheck.Logs
}

func newFixture(t *testing.T, simOpts gitlabsim.Options) *fixture {
	t.Helper()
	srv := mototest.Shared(t, mototest.Serial())
	ctx := context.Background()
	simOpts.Token = token
	sim, err := gitlabsim.New(simOpts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); ts.Close() })

	qo := mototest.QueueOptions{VisibilityTimeout: 30 * time.Second}
	dep, err := srv.CreateDeployment(ctx, qo, qo)
	if err != nil {
		t.Fatal(err)
	}
	scan, exp := dep.Scan, dep.Export
	sec, err := secretsmanager.NewFromConfig(srv.Config(ctx)).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(mototest.Name("gitlab-token")), SecretString: aws.String(token),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		srv: srv, sim: sim,
		settings: Settings{
			Config: config.Config{
				GitLabURL: ts.URL, MaxPerProjectCalls: 200, Concurrency: 8, RequestTimeout: 5 * time.Second, LogLevel: "debug",
			},
			StoreTable: dep.StoreTable, BudgetTable: dep.BudgetTable,
			ScanQueueURL: scan.URL, ExportQueueURL: exp.URL,
			ExportBucket: dep.Bucket, ExportPrefix: "discovery/",
			TokenSecretARN:  aws.ToString(sec.ARN),
			Endpoint:        srv.Endpoint(),
			MaxReceiveCount: 5, MessageConcurrency: 4,
			DeadlineMargin: 2 * time.Second, RunTTL: time.Hour, MetricsNamespace: "DiscoveryAgentTest",
		},
		scan:    sqsqueue.New(srv.SQS(), scan.URL),
		export:  sqsqueue.New(srv.SQS(), exp.URL),
		scanARN: scan.ARN,
		logs:    &scancheck.Logs{}, emf: &scancheck.Logs{},
	}
}

func (f *fixture) app(t *testing.T) *App {
	t.Helper()
	a, err := New(context.Background(), f.settings, f.srv.Config(context.Background()), Options{
		Log:     slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: f.emf,
		GitLab:  gitlab.Options{BaseBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// event turns received SQS messages into the event Lambda's SQS event source delivers.
func (f *fixture) event(msgs []sqstypes.Message) events.SQSEvent {
	var ev events.SQSEvent
	for _, m := range msgs {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Attributes: m.Attributes, EventSource: "aws:sqs", EventSourceARN: f.scanARN, AWSRegion: mototest.Region,
		})
	}
	return ev
}

// receive short-polls q for up to wait: a long poll would hold serial moto's only
// thread, and with it every other request.
func receive(ctx context.Context, q *sqsqueue.Queue, n int, wait time.Duration) ([]sqstypes.Message, error) {
	deadline := time.Now().Add(wait)
	for {
		msgs, err := q.Receive(ctx, n, 0)
		if err != nil || len(msgs) > 0 || time.Now().After(deadline) {
			return msgs, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deliver hands q's messages to handler in batches, as the event source does, and
// deletes those not reported failed, until q stays empty for a moment. It returns the
// number of invocations.
func (f *fixture) deliver(t *testing.T, q *sqsqueue.Queue, handler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)) int {
	t.Helper()
	ctx := context.Background()
	invocations := 0
	for empty := 0; empty < 2; {
		msgs, err := receive(ctx, q, 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			empty++
			continue
		}
		empty = 0
		invocations++
		if invocations > 500 {
			t.Fatal("the queue does not drain")
		}
		resp, err := handler(ctx, f.event(msgs))
		if err != nil {
			t.Fatalf("invocation failed: %v", err)
		}
		failed := map[string]bool{}
		for _, fl := range resp.BatchItemFailures {
			failed[fl.ItemIdentifier] = true
		}
		for _, m := range msgs {
			if !failed[aws.ToString(m.MessageId)] {
				if err := q.Delete(ctx, aws.ToString(m.ReceiptHandle)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return invocations
}

// checkExports compares the run's S3 exports, and latest/, with the simulator's truth.
func (f *fixture) checkExports(t *testing.T, a *App, runID string) {
	t.Helper()
	ctx := context.Background()
	run, err := a.Store().GetRun(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != inventory.RunSucceeded {
		t.Fatalf("run %s is %s (%s), want succeeded", runID, run.Status, run.Reason)
	}
	for _, prefix := range []string{export.RunPrefix(runID), export.LatestPrefix} {
		names, err := a.sink.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{export.ProjectsCSV, export.ProjectsJSONL, export.GroupsCSV, export.SummaryJSON, export.ReportHTML} {
			if !slices.Contains(names, prefix+want) {
				t.Errorf("s3 %s%s missing; have %v", f.settings.ExportPrefix, prefix+want, names)
			}
		}
		jsonl, err := a.sink.Get(ctx, prefix+export.ProjectsJSONL)
		if err != nil {
			t.Fatal(err)
		}
		projects, err := scancheck.ReadJSONL(bytes.NewReader(jsonl))
		if err != nil {
			t.Fatal(err)
		}
		csv, err := a.sink.Get(ctx, prefix+export.GroupsCSV)
		if err != nil {
			t.Fatal(err)
		}
		groups, err := scancheck.ReadGroupsCSV(bytes.NewReader(csv))
		if err != nil {
			t.Fatal(err)
		}
		if diffs := scancheck.Diff(f.sim.Truth(), groups, projects); len(diffs) > 0 {
			t.Fatalf("%s differs from the truth:\n%s", prefix, strings.Join(diffs, "\n"))
		}
		for _, name := range names {
			b, err := a.sink.Get(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(token)) {
				t.Errorf("export %s contains the token", name)
			}
		}
	}
}

func TestScanEqualsTruth(t *testing.T) {
	f := newFixture(t, gitlabsim.Options{Seed: 11, Groups: 8, Projects: 120})
	ctx := context.Background()
	a := f.app(t)

	res, err := a.Schedule(ctx, json.RawMessage(`{"trigger":"test"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Started || res.RunID == "" || res.Status != inventory.RunRunning {
		t.Fatalf("Schedule = %+v, want a started run", res)
	}
	// One run at a time: a second trigger while it is active starts nothing.
	again, err := f.app(t).Schedule(ctx, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if again.Started || again.RunID != res.RunID || !strings.Contains(again.Message, "already") {
		t.Fatalf("second Schedule = %+v, want run %s reported as already active", again, res.RunID)
	}

	f.deliver(t, f.scan, a.Work)
	if n := f.deliver(t, f.export, f.app(t).Export); n != 1 {
		t.Errorf("export invocations = %d, want 1", n)
	}
	f.checkExports(t, a, res.RunID)

	calls, err := a.Store().APICalls(ctx, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	// The simulator counts a request when its handler returns, which can come after the
	// client gave up on it (a timeout under load) or read its answer: give it a moment.
	served := f.sim.Stats().Requests
	for wait := time.Now().Add(5 * time.Second); served < calls && time.Now().Before(wait); served = f.sim.Stats().Requests {
		time.Sleep(20 * time.Millisecond)
	}
	if calls != served {
		t.Errorf("run counted %d API calls, the simulator served %d", calls, served)
	}
	emf := f.emf.String()
	for _, name := range []string{`"gitlab_api_requests_total"`, `"discovery_projects_total"`, `"discovery_groups_total"`,
		`"discovery_run_in_progress":1`, `"discovery_run_in_progress":0`, `"discovery_last_run_success_timestamp_seconds"`} {
		if !strings.Contains(emf, name) {
			t.Errorf("EMF output has no %s", name)
		}
	}
	if strings.Contains(f.logs.String(), token) || strings.Contains(emf, token) {
		t.Error("the token appears in a log line or a metric")
	}
}

func TestMalformedRecords(t *testing.T) {
	f := newFixture(t, gitlabsim.Options{Seed: 3, Groups: 1, Projects: 3})
	ctx := context.Background()
	a := f.app(t)
	res, err := a.Schedule(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	good, err := receive(ctx, f.scan, 1, time.Second)
	if err != nil || len(good) != 1 {
		t.Fatalf("receive the root group message: %v, %d messages", err, len(good))
	}
	bad := []string{
		`{not json`,
		`{"kind":"group","run_id":""}`,
		`{"kind":"export","run_id":"` + res.RunID + `"}`, // export message on the scan queue
		`{"kind":"group","run_id":"no-such-run","group_id":5}`,
	}
	if err := sendRaw(ctx, f, bad...); err != nil {
		t.Fatal(err)
	}
	var msgs []sqstypes.Message
	for len(msgs) < len(bad) {
		m, err := receive(ctx, f.scan, 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m...)
	}
	ev := f.event(append(good, msgs...))
	resp, err := a.Work(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, fl := range resp.BatchItemFailures {
		failed = append(failed, fl.ItemIdentifier)
	}
	var want []string
	for _, r := range ev.Records[1:] {
		want = append(want, r.MessageId)
	}
	slices.Sort(failed)
	slices.Sort(want)
	if !slices.Equal(failed, want) {
		t.Fatalf("batch item failures = %v, want the %d malformed records %v", failed, len(want), want)
	}
	if got := strings.Count(f.logs.String(), `"msg":"malformed message"`); got != len(bad) {
		t.Errorf("%d malformed-message log lines, want %d:\n%s", got, len(bad), f.logs.String())
	}
	for _, reason := range []string{"no run_id", "does not belong on this queue", "unknown run"} {
		if !strings.Contains(f.logs.String(), reason) {
			t.Errorf("no log line gives the reason %q", reason)
		}
	}
	// Malformed records are made visible again at once, to reach the DLQ quickly.
	again, err := receive(ctx, f.scan, 10, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) == 0 {
		t.Error("malformed records did not come back at once")
	}
	// The good record of the batch was processed: the group is recorded.
	var groups int
	if err := a.Store().Groups(ctx, res.RunID, func(inventory.Group) error { groups++; return nil }); err != nil {
		t.Fatal(err)
	}
	if groups != 1 {
		t.Errorf("%d groups recorded, want the root group", groups)
	}
}

func sendRaw(ctx context.Context, f *fixture, bodies ...string) error {
	client := f.srv.SQS()
	for _, b := range bodies {
		if _, err := client.SendMessage(ctx, sqsSend(f.settings.ScanQueueURL, b)); err != nil {
			return fmt.Errorf("send %q: %w", b, err)
		}
	}
	return nil
}

// TestFinalDelivery: a group that fails on every delivery is recorded and completed on
// the last one before the DLQ, so the run still ends.
func TestFinalDelivery(t *testing.T) {
	f := newFixture(t, gitlabsim.Options{Seed: 5, Groups: 1, Projects: 2})
	ctx := context.Background()
	f.settings.RetryDelay = 0
	f.settings.Config.RootGroups = nil
	a, err := New(ctx, f.settings, f.srv.Config(ctx), Options{
		Log: slog.New(slog.NewJSONHandler(f.logs, nil)), Metrics: f.emf,
		GitLab: gitlab.Options{MaxRetries: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Schedule(ctx, nil); err != nil {
		t.Fatal(err)
	}
	f.sim.SetFaults(gitlabsim.Faults{ErrorRate: 1})

	tests := []struct {
		receives   string
		wantFailed bool
	}{
		{"1", true},  // retried
		{"4", true},  // still retried
		{"5", false}, // the last delivery: recorded as an error and completed
	}
	for _, tt := range tests {
		msgs, err := receive(ctx, f.scan, 1, 5*time.Second)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("receives=%s: %v, %d messages (a failed message must come back after RETRY_DELAY)", tt.receives, err, len(msgs))
		}
		msgs[0].Attributes["ApproximateReceiveCount"] = tt.receives
		resp, err := a.Work(ctx, f.event(msgs))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(resp.BatchItemFailures) == 1; got != tt.wantFailed {
			t.Fatalf("receives=%s: failed=%v, want %v", tt.receives, got, tt.wantFailed)
		}
		if !tt.wantFailed {
			if err := f.scan.Delete(ctx, aws.ToString(msgs[0].ReceiptHandle)); err != nil {
				t.Fatal(err)
			}
		}
	}
	exp, err := receive(ctx, f.export, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 1 {
		t.Fatal("the run did not move on to its export after the group's last delivery")
	}
}

// TestContinuation: a group too big for the time left checkpoints and continues in a
// new message; the run still equals the truth.
func TestContinuation(t *testing.T) {
	// One group of 150 projects: two pages. Latency makes the first page take over
	// three seconds (100 projects x at least 10 REST calls x 30ms / 8 in flight =
	// 3.75s; through GraphQL, 4 calls, it may not).
	f := newFixture(t, gitlabsim.Options{Seed: 9, Groups: 1, Projects: 150, Faults: gitlabsim.Faults{Latency: 30 * time.Millisecond}})
	ctx := context.Background()
	f.settings.DeadlineMargin = 20 * time.Second
	f.settings.Config.API = "rest"
	a := f.app(t)
	res, err := a.Schedule(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := receive(ctx, f.scan, 1, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(msgs))
	}
	// The deadline leaves three seconds before the margin, for the first page to
	// start; after that page less than the margin is left.
	dctx, cancel := context.WithTimeout(ctx, f.settings.DeadlineMargin+3*time.Second)
	resp, err := a.Work(dctx, f.event(msgs))
	cancel()
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Work = %+v, %v; want the message done", resp, err)
	}
	if err := f.scan.Delete(ctx, aws.ToString(msgs[0].ReceiptHandle)); err != nil {
		t.Fatal(err)
	}
	next, err := receive(ctx, f.scan, 10, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 1 {
		t.Fatalf("%d messages after the first page, want one continuation", len(next))
	}
	m, err := work.Decode([]byte(aws.ToString(next[0].Body)))
	if err != nil {
		t.Fatal(err)
	}
	if m.Page != 2 || m.GroupID == 0 {
		t.Fatalf("continuation %+v, want page 2 of the group", m)
	}
	if err := f.scan.Delete(ctx, aws.ToString(next[0].ReceiptHandle)); err != nil {
		t.Fatal(err)
	}
	// Deliver it again as a new message, so that deliver sees it.
	if err := f.scan.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	f.deliver(t, f.scan, a.Work)
	f.deliver(t, f.export, a.Export)
	f.checkExports(t, a, res.RunID)
}

// TestTimeoutShorterThanMargin: a function whose deadline is within the margin hands
// the batch back instead of passing groups on without scanning them.
func TestTimeoutShorterThanMargin(t *testing.T) {
	f := newFixture(t, gitlabsim.Options{Seed: 2, Groups: 1, Projects: 1})
	ctx := context.Background()
	a := f.app(t)
	if _, err := a.Schedule(ctx, nil); err != nil {
		t.Fatal(err)
	}
	msgs, err := receive(ctx, f.scan, 1, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(msgs))
	}
	dctx, cancel := context.WithTimeout(ctx, f.settings.DeadlineMargin/2)
	defer cancel()
	resp, err := a.Work(dctx, f.event(msgs))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("failures = %v, want the record handed back", resp.BatchItemFailures)
	}
	if !strings.Contains(f.logs.String(), "DEADLINE_MARGIN") {
		t.Error("no log line explains the timeout/margin mismatch")
	}
}

func TestExporterNeedsNoToken(t *testing.T) {
	f := newFixture(t, gitlabsim.Options{Seed: 4, Groups: 2, Projects: 5})
	ctx := context.Background()
	a := f.app(t)
	res, err := a.Schedule(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(t, f.scan, a.Work)

	s := f.settings
	s.TokenSecretARN, s.Config.GitLabURL, s.BudgetTable, s.ScanQueueURL = "", "", "", ""
	exporter, err := New(ctx, s, f.srv.Config(ctx), Options{Log: slog.New(slog.NewJSONHandler(f.logs, nil)), Metrics: f.emf})
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(t, f.export, exporter.Export)
	f.checkExports(t, a, res.RunID)

	// The exporter cannot scan: it reports its configuration error, not a panic.
	if _, err := exporter.Work(ctx, events.SQSEvent{}); err == nil {
		t.Error("Work without a token succeeded")
	}
}
