package awsagent_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/lambdaapp"
	"github.com/gl2gh/discovery-agent/internal/metrics"
	"github.com/gl2gh/discovery-agent/internal/mototest"
	"github.com/gl2gh/discovery-agent/internal/s3sink"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
	"github.com/gl2gh/discovery-agent/internal/sqsqueue"
	"github.com/gl2gh/discovery-agent/local/awsagent"
	"github.com/gl2gh/discovery-agent/local/service"
)

var _ service.Backend = (*awsagent.Backend)(nil)

func TestMain(m *testing.M) { mototest.Main(m) }

const token = "glpat-awsagent-test-do-not-leak-51d0"

// deployment is one isolated set of AWS resources on the shared moto server, and a
// simulated GitLab.
type deployment struct {
	srv      *mototest.Server
	sim      *gitlabsim.Server
	settings lambdaapp.Settings
	logs     *scancheck.Logs
}

func newDeployment(t *testing.T, simOpts gitlabsim.Options) *deployment {
	t.Helper()
	// Serial: the store's run lock and counters rest on DynamoDB's isolated
	// transactions, which threaded moto does not give.
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
	return &deployment{
		srv: srv, sim: sim, logs: &scancheck.Logs{},
		settings: lambdaapp.Settings{
			Config: config.Config{
				GitLabURL: ts.URL, Token: token, MaxPerProjectCalls: 200, Concurrency: 8,
				RequestTimeout: 5 * time.Second, LogLevel: "debug",
			},
			StoreTable: dep.StoreTable, BudgetTable: dep.BudgetTable,
			ScanQueueURL: dep.Scan.URL, ExportQueueURL: dep.Export.URL,
			ScanDLQURL: dep.Scan.DLQURL, ExportDLQURL: dep.Export.DLQURL,
			ExportBucket: dep.Bucket, ExportPrefix: "discovery/",
			Endpoint:        srv.Endpoint(),
			MaxReceiveCount: 5, MessageConcurrency: 4, RetryDelay: time.Second,
			DeadlineMargin: 2 * time.Second, RunTTL: time.Hour, MetricsNamespace: "DiscoveryAgentTest",
		},
	}
}

func (d *deployment) backend(t *testing.T, s lambdaapp.Settings, tel awsagent.Telemetry) *awsagent.Backend {
	t.Helper()
	b, err := awsagent.New(context.Background(), s, d.srv.Config(context.Background()), awsagent.Options{
		Log:       slog.New(slog.NewJSONHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Telemetry: tel,
		GitLab:    gitlab.Options{BaseBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		ShortPoll: 50 * time.Millisecond, // a long poll would hold serial moto's only thread
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func call(t *testing.T, method, u string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return resp.StatusCode, body
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrape sums the series of a metric on a Prometheus text endpoint.
func scrape(t *testing.T, u, name string) float64 {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var total float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		series, value, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		total += v
		found = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("%s has no %s", u, name)
	}
	return total
}

// agentGoroutines lists the goroutines running this package's code.
func agentGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "discovery-agent/local/awsagent.") && !strings.Contains(g, "awsagent_test.") {
			out = append(out, g)
		}
	}
	return out
}

// TestServeOnAWS runs the service on the AWS backend end to end: ready, a run started
// on demand and exported to S3 equal to the simulator's truth, Prometheus counting it,
// one run at a time, and a clean shutdown.
func TestServeOnAWS(t *testing.T) {
	d := newDeployment(t, gitlabsim.Options{Seed: 7, Groups: 3, Projects: 40})
	ctx := context.Background()
	m := metrics.New()
	b := d.backend(t, d.settings, m)
	svc := &service.Service{Backend: b, Metrics: m, Log: slog.New(slog.NewJSONHandler(d.logs, nil)), Version: "test",
		HealthAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", Grace: 10 * time.Second}
	h, mt, err := svc.Listen()
	if err != nil {
		t.Fatal(err)
	}
	health, metricsURL := "http://"+h, "http://"+mt+"/metrics"
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after shutdown")
		}
	}
	t.Cleanup(stop)

	if code, body := call(t, "GET", health+"/health/ready"); code != http.StatusOK {
		t.Fatalf("/health/ready = %d %v, want 200", code, body)
	}
	code, body := call(t, "POST", health+"/runs")
	if code != http.StatusAccepted {
		t.Fatalf("POST /runs = %d %v, want 202", code, body)
	}
	runID, _ := body["run_id"].(string)
	if code, body := call(t, "POST", health+"/runs"); code != http.StatusConflict || body["run_id"] != runID {
		t.Errorf("second POST /runs = %d %v, want 409 naming run %s", code, body, runID)
	}

	store := b.App().Store()
	var run inventory.Run
	waitFor(t, 90*time.Second, "the run to finish", func() bool {
		run, err = store.GetRun(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		return run.Status == inventory.RunSucceeded || run.Status == inventory.RunFailed
	})
	if run.Status != inventory.RunSucceeded {
		t.Fatalf("run %s %s: %s", runID, run.Status, run.Reason)
	}
	if last, ok, err := b.LastSucceeded(ctx); err != nil || !ok || last.ID != runID {
		t.Errorf("LastSucceeded = %v %v %v, want run %s", last.ID, ok, err, runID)
	}

	sink := s3sink.New(d.srv.S3(), d.settings.ExportBucket, d.settings.ExportPrefix)
	jsonl, err := sink.Get(ctx, export.RunPrefix(runID)+export.ProjectsJSONL)
	if err != nil {
		t.Fatal(err)
	}
	projects, err := scancheck.ReadJSONL(bytes.NewReader(jsonl))
	if err != nil {
		t.Fatal(err)
	}
	csv, err := sink.Get(ctx, export.RunPrefix(runID)+export.GroupsCSV)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := scancheck.ReadGroupsCSV(bytes.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if diffs := scancheck.Diff(d.sim.Truth(), groups, projects); len(diffs) > 0 {
		t.Fatalf("the exports differ from the truth:\n%s", strings.Join(diffs, "\n"))
	}

	if got := scrape(t, metricsURL, "discovery_projects_total"); got != float64(len(projects)) {
		t.Errorf("discovery_projects_total = %v, want %d (the exported projects)", got, len(projects))
	}
	if got := scrape(t, metricsURL, "gitlab_api_requests_total"); got < float64(len(projects)) {
		t.Errorf("gitlab_api_requests_total = %v, want at least one per project", got)
	}
	waitFor(t, 10*time.Second, "the run-finished hook", func() bool {
		return scrape(t, metricsURL, "discovery_last_run_success_timestamp_seconds") > 0
	})
	if snap := b.Snapshot(); snap.RunID != runID || snap.Projects != int64(len(projects)) || snap.APICalls == 0 ||
		snap.Total != int64(len(projects)) {
		t.Errorf("Snapshot = %+v, want run %s with %d projects of %[3]d in scope and its API calls", snap, runID, len(projects))
	}

	// The event source's part: every handled message is deleted, none waits to return.
	for _, url := range []string{d.settings.ScanQueueURL, d.settings.ExportQueueURL} {
		q := sqsqueue.New(d.srv.SQS(), url)
		waitFor(t, 10*time.Second, url+" to be empty", func() bool {
			n, err := q.Depth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n == 0
		})
	}

	stop()
	if gs := agentGoroutines(); len(gs) > 0 {
		t.Errorf("goroutines left behind after shutdown:\n%s", strings.Join(gs, "\n\n"))
	}
	if strings.Contains(d.logs.String(), token) {
		t.Error("the token appears in a log line")
	}
}

// The dead-letter gauge counts both DLQs; the budget gauge reads 0 before any run.
func TestGauges(t *testing.T) {
	d := newDeployment(t, gitlabsim.Options{Seed: 1, Groups: 1, Projects: 1})
	ctx := context.Background()
	client := d.srv.SQS()
	for i, url := range []string{d.settings.ScanDLQURL, d.settings.ExportDLQURL, d.settings.ExportDLQURL} {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		scan     string
		export   string
		wantDead int
	}{
		{"both", d.settings.ScanDLQURL, d.settings.ExportDLQURL, 3},
		{"scan only", d.settings.ScanDLQURL, "", 1},
		{"none set", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := d.settings
			s.ScanDLQURL, s.ExportDLQURL = tt.scan, tt.export
			tokens, dead, err := d.backend(t, s, nil).Gauges(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if dead != tt.wantDead || tokens != 0 {
				t.Errorf("Gauges = %v tokens, %d dead letters; want 0, %d", tokens, dead, tt.wantDead)
			}
		})
	}
}

// Readiness names what is wrong: a token GitLab rejects (401), a table that is gone.
func TestChecks(t *testing.T) {
	d := newDeployment(t, gitlabsim.Options{Seed: 1, Groups: 1, Projects: 1})
	ctx := context.Background()
	b := d.backend(t, d.settings, nil)
	if err := b.CheckStore(ctx); err != nil {
		t.Errorf("CheckStore: %v", err)
	}
	if err := b.CheckGitLab(ctx); err != nil {
		t.Errorf("CheckGitLab: %v", err)
	}

	bad := d.settings
	bad.Config.Token = "glpat-rejected-by-the-simulator"
	bad.StoreTable = mototest.Name("gone")
	b = d.backend(t, bad, nil)
	err := b.CheckGitLab(ctx)
	if !errors.Is(err, gitlab.ErrUnauthorized) || !strings.Contains(err.Error(), "401") {
		t.Errorf("CheckGitLab with a rejected token = %v, want an error naming 401", err)
	}
	if err != nil && strings.Contains(err.Error(), bad.Config.Token) {
		t.Error("the error quotes the token")
	}
	if err := b.CheckStore(ctx); err == nil || !strings.Contains(err.Error(), bad.StoreTable) {
		t.Errorf("CheckStore on a missing table = %v, want an error naming it", err)
	}
}

func TestNewNeedsEveryResource(t *testing.T) {
	full := lambdaapp.Settings{
		Config:     config.Config{GitLabURL: "http://127.0.0.1:1", Token: token},
		StoreTable: "s", BudgetTable: "b", ScanQueueURL: "http://q/scan", ExportQueueURL: "http://q/export", ExportBucket: "e",
	}
	tests := []struct {
		name   string
		change func(*lambdaapp.Settings)
		want   string
	}{
		{"store", func(s *lambdaapp.Settings) { s.StoreTable = "" }, "STORE_TABLE"},
		{"budget", func(s *lambdaapp.Settings) { s.BudgetTable = "" }, "BUDGET_TABLE"},
		{"scan queue", func(s *lambdaapp.Settings) { s.ScanQueueURL = "" }, "SCAN_QUEUE_URL"},
		{"export queue", func(s *lambdaapp.Settings) { s.ExportQueueURL = "" }, "EXPORT_QUEUE_URL"},
		{"bucket", func(s *lambdaapp.Settings) { s.ExportBucket = "" }, "EXPORT_BUCKET"},
		{"gitlab", func(s *lambdaapp.Settings) { s.Config.GitLabURL = "" }, "GITLAB_URL"},
		{"token", func(s *lambdaapp.Settings) { s.Config.Token = "" }, "GITLAB_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := full
			tt.change(&s)
			_, err := awsagent.New(context.Background(), s, aws.Config{Region: "us-east-1"}, awsagent.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want a configuration error naming %s", err, tt.want)
			}
		})
	}
}

// A message in flight when Work stops is handed back at once, not after the
// visibility timeout (30 s here), and resumes on the next start.
func TestStopHandsMessagesBack(t *testing.T) {
	d := newDeployment(t, gitlabsim.Options{Seed: 3, Groups: 1, Projects: 20, Faults: gitlabsim.Faults{Latency: 200 * time.Millisecond}})
	ctx := context.Background()
	b := d.backend(t, d.settings, nil)
	run, started, err := b.Start(ctx)
	if err != nil || !started {
		t.Fatalf("Start = %v, %v, %v", run.ID, started, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { b.Work(wctx); close(done) }()
	waitFor(t, 30*time.Second, "the group scan to call GitLab", func() bool { return b.Snapshot().APICalls > 0 })
	cancel()
	select {
	case <-done:
	case <-time.After(90 * time.Second): // its cleanup calls have 10 s each; moto under load is slow
		buf := make([]byte, 1<<20)
		t.Fatalf("Work did not return after its context ended; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
	if b.Snapshot().Groups != 0 {
		t.Fatal("the group finished before Work stopped; the test needs more latency")
	}

	q := sqsqueue.New(d.srv.SQS(), d.settings.ScanQueueURL)
	var got []string
	waitFor(t, 15*time.Second, "the interrupted message to be visible again", func() bool {
		msgs, err := q.Receive(ctx, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			got = append(got, aws.ToString(m.Body)+" receives="+m.Attributes["ApproximateReceiveCount"])
		}
		return len(msgs) > 0
	})
	if len(got) != 1 || !strings.Contains(got[0], `"run_id":"`+run.ID+`"`) || !strings.HasSuffix(got[0], "receives=2") {
		t.Errorf("received %v; want the run's group message, on its second receive", got)
	}
}
