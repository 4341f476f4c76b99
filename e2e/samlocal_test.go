//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"go.yaml.in/yaml/v3"

	"github.com/gl2gh/discovery-agent/internal/dynamostore"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/lambdaapp"
	"github.com/gl2gh/discovery-agent/internal/mototest"
	"github.com/gl2gh/discovery-agent/internal/s3sink"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// samTemplate is template.yaml as `sam local` reads a function's environment: the
// declared variables of Globals and of the function, each a literal, a !Ref to a
// parameter (its default or override) or an intrinsic SAM cannot resolve locally.
type samTemplate struct {
	params    map[string]string    // parameter -> default
	globals   map[string]yaml.Node // Globals.Function.Environment.Variables
	functions map[string]map[string]yaml.Node
	timeouts  map[string]time.Duration
}

func loadSamTemplate(t *testing.T) samTemplate {
	t.Helper()
	b, err := os.ReadFile("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Parameters map[string]struct {
			Default yaml.Node `yaml:"Default"`
		} `yaml:"Parameters"`
		Globals struct {
			Function struct {
				Environment struct {
					Variables map[string]yaml.Node `yaml:"Variables"`
				} `yaml:"Environment"`
			} `yaml:"Function"`
		} `yaml:"Globals"`
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Timeout     int `yaml:"Timeout"`
				Environment struct {
					Variables map[string]yaml.Node `yaml:"Variables"`
				} `yaml:"Environment"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	tpl := samTemplate{params: map[string]string{}, globals: doc.Globals.Function.Environment.Variables,
		functions: map[string]map[string]yaml.Node{}, timeouts: map[string]time.Duration{}}
	for name, p := range doc.Parameters {
		if p.Default.Kind == yaml.ScalarNode {
			tpl.params[name] = p.Default.Value
		}
	}
	for name, r := range doc.Resources {
		if r.Type == "AWS::Serverless::Function" {
			tpl.functions[name] = r.Properties.Environment.Variables
			tpl.timeouts[name] = time.Duration(r.Properties.Timeout) * time.Second
		}
	}
	return tpl
}

// declared returns fn's variables (the function's override Globals') as SAM
// resolves them before overrides; unresolved says which are intrinsics it cannot
// resolve (resource references, !Sub, !GetAtt), which SAM passes as "".
func (tpl samTemplate) declared(fn string, paramOverrides map[string]string) (vars map[string]string, unresolved []string) {
	vars = map[string]string{}
	nodes := maps.Clone(tpl.globals)
	maps.Copy(nodes, tpl.functions[fn])
	for name, n := range nodes {
		switch {
		case n.Tag == "!Ref":
			if v, ok := paramOverrides[n.Value]; ok {
				vars[name] = v
			} else if v, ok := tpl.params[n.Value]; ok {
				vars[name] = v
			} else {
				vars[name], unresolved = "", append(unresolved, name)
			}
		case n.Kind != yaml.ScalarNode || strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!"):
			vars[name], unresolved = "", append(unresolved, name)
		default:
			vars[name] = n.Value
		}
	}
	return vars, unresolved
}

// envFile is events/env.json: per function (and "Parameters", for every function)
// the values `sam local invoke --env-vars` overrides.
func loadEnvFile(t *testing.T) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile("../events/env.json")
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]string
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("events/env.json: %v", err)
	}
	return env
}

// samEnvironment is the environment `sam local invoke fn --env-vars env.json
// --parameter-overrides ...` gives fn, as SAM CLI's EnvironmentVariables.resolve
// builds it: SAM's AWS_* variables (credentials and region of the profile, here SAM's
// placeholders for none), then every declared variable with its template value,
// replaced by env.json's "Parameters" entry, replaced by the function's own entry.
// Keys env.json sets that the template does not declare are dropped. The shell's
// environment, which SAM also consults for declared names, is taken to be clean.
func samEnvironment(tpl samTemplate, envFile map[string]map[string]string, fn string, paramOverrides map[string]string) map[string]string {
	env := map[string]string{
		"AWS_SAM_LOCAL": "true", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "defaultkey", "AWS_SECRET_ACCESS_KEY": "defaultsecret", "AWS_ACCOUNT_ID": "123456789012",
	}
	declared, _ := tpl.declared(fn, paramOverrides)
	overrides := maps.Clone(envFile["Parameters"])
	if overrides == nil {
		overrides = map[string]string{}
	}
	maps.Copy(overrides, envFile[fn])
	for name, v := range declared {
		if o, ok := overrides[name]; ok {
			v = o
		}
		env[name] = v
	}
	return env
}

// TestSamEnvFileDeclared: every variable events/env.json sets is one the template
// declares for that function, or SAM drops it silently; and every variable SAM could
// not resolve locally (a resource's name or URL) is set by it.
func TestSamEnvFileDeclared(t *testing.T) {
	tpl := loadSamTemplate(t)
	envFile := loadEnvFile(t)
	for fn := range envFile {
		if _, ok := tpl.functions[fn]; !ok && fn != "Parameters" {
			t.Errorf("env.json sets variables of %s, which the template does not have", fn)
		}
	}
	for fn := range tpl.functions {
		declared, unresolved := tpl.declared(fn, samParams)
		set := maps.Clone(envFile[fn])
		if set == nil {
			t.Errorf("env.json has no entry for %s", fn)
			continue
		}
		maps.Copy(set, envFile["Parameters"])
		for name := range set {
			if _, ok := declared[name]; !ok {
				t.Errorf("env.json sets %s for %s, which the template does not declare: sam local drops it", name, fn)
			}
		}
		for _, name := range unresolved {
			if _, ok := set[name]; !ok {
				t.Errorf("%s: %s is an intrinsic sam local cannot resolve, and env.json does not set it", fn, name)
			}
		}
		if v := declared["AWS_ENDPOINT_URL"]; v != "" {
			t.Errorf("%s: AWS_ENDPOINT_URL is %q in the template; want empty (real AWS)", fn, v)
		}
		if _, ok := set["AWS_ENDPOINT_URL"]; !ok {
			t.Errorf("env.json leaves %s talking to real AWS: no AWS_ENDPOINT_URL", fn)
		}
	}
}

// TestSamEnvironmentDropsUndeclared checks the model itself: an undeclared key is
// dropped, a function's entry beats "Parameters", which beats the template.
func TestSamEnvironmentDropsUndeclared(t *testing.T) {
	tpl := loadSamTemplate(t)
	env := samEnvironment(tpl, map[string]map[string]string{
		"Parameters":     {"LOG_LEVEL": "debug", "METRICS_NAMESPACE": "P"},
		"WorkerFunction": {"METRICS_NAMESPACE": "W", "GITLAB_TOKEN": "t", "AWS_ACCESS_KEY_ID": "mine"},
	}, "WorkerFunction", map[string]string{"GitLabURL": "http://gitlab.test"})
	want := map[string]string{
		"LOG_LEVEL": "debug", "METRICS_NAMESPACE": "W", "GITLAB_URL": "http://gitlab.test",
		"AWS_ACCESS_KEY_ID": "defaultkey", "DEADLINE_MARGIN": "60s", "RATE_LIMIT_RPM": "auto",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["GITLAB_TOKEN"]; ok {
		t.Error("GITLAB_TOKEN, undeclared, reached the function")
	}
}

// TestTemplateRunsOfAnyLength: the settings a multi-day run needs.
func TestTemplateRunsOfAnyLength(t *testing.T) {
	tpl := loadTemplate(t)
	queues := 0
	for name, r := range tpl.Resources {
		if r.Type != "AWS::SQS::Queue" {
			continue
		}
		queues++
		if got := toInt(r.Properties["MessageRetentionPeriod"]); got != 14*24*3600 {
			t.Errorf("%s keeps messages %d s, want 14 days (1209600)", name, got)
		}
	}
	if queues != 5 {
		t.Errorf("%d queues, want 5 (scan, export, their DLQs, the schedule's failures)", queues)
	}
	if got := tpl.Resources["WorkerFunction"].Properties["RecursiveLoop"]; got != "Allow" {
		t.Errorf("WorkerFunction RecursiveLoop = %v, want Allow (with work.MaxHops as the cap)", got)
	}
	for _, ev := range tpl.Resources["SchedulerFunction"].Properties["Events"].(map[string]any) {
		e := ev.(map[string]any)
		if e["Type"] == "ScheduleV2" && get(e, "Properties", "OmitName") != true && get(e, "Properties", "Name") == nil {
			t.Errorf("the schedule has a fixed name: two stacks cannot share a region; want OmitName: true")
		}
	}
	onFailure := get(tpl.Resources["SchedulerFunction"].Properties, "EventInvokeConfig", "DestinationConfig", "OnFailure")
	if m, _ := onFailure.(map[string]any); m["Type"] != "SQS" || m["Destination"] != "ScheduleFailureQueue.Arn" {
		t.Errorf("the scheduler's asynchronous invocation has no OnFailure destination: %v", onFailure)
	}
	if ev := get(tpl.Resources["ReconcilerFunction"].Properties, "Events", "Schedule", "Type"); ev != "ScheduleV2" {
		t.Errorf("the reconciler is not scheduled: %v", ev)
	}
}

// TestTemplateAlarms: a long run alarms on a stall, not on its length; on messages
// about to expire; and on failed exports.
func TestTemplateAlarms(t *testing.T) {
	tpl := loadTemplate(t)
	metrics := map[string]bool{}
	for name, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		if name == "RunTooLongAlarm" {
			t.Error("RunTooLongAlarm fires on a long run that progresses; NoProgressAlarm replaces it")
		}
		if m, ok := r.Properties["MetricName"].(string); ok {
			metrics[m] = true
		}
		list, _ := r.Properties["Metrics"].([]any)
		for _, q := range list {
			if m, ok := get(q.(map[string]any), "MetricStat", "Metric", "MetricName").(string); ok {
				metrics[m] = true
			}
		}
	}
	for _, m := range []string{"ApproximateAgeOfOldestMessage", "discovery_run_idle_seconds", "export_failures", "Errors"} {
		if !metrics[m] {
			t.Errorf("no alarm watches %s", m)
		}
	}
}

// samParams are DEPLOY.md's `sam local invoke --parameter-overrides`.
var samParams = map[string]string{"GitLabURL": "http://host.docker.internal:8929"}

// samInvocation is one `sam local invoke` of DEPLOY.md.
type samInvocation struct {
	function, event string
	failed          []string // message IDs the answer must report as batch item failures
}

// TestSamLocalInvoke runs every sample event as docs/DEPLOY.md's `sam local invoke`
// does, after what `make sam-local-env` sets up: the real bootstraps under
// aws-lambda-rie with exactly the environment SAM would give them from template.yaml
// and events/env.json. Only host.docker.internal is replaced by the loopback
// addresses of moto and the simulator, as Docker's host mapping would.
func TestSamLocalInvoke(t *testing.T) {
	if testing.Short() {
		t.Skip("sam local test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rie, err := FindRIE()
	if err != nil {
		skipOrFail(t, err)
	}
	moto, err := mototest.StartProcess(ctx, mototest.Serial())
	if errors.Is(err, mototest.ErrNotInstalled) {
		skipOrFail(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer moto.Stop()
	sim, err := gitlabsim.New(SamSimOptions)
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim)
	defer simSrv.Close()
	clients := NewSamClients(moto.Endpoint())
	if err := SetUpSamLocal(ctx, clients); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	moduleDir, err := ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := Build(ctx, moduleDir, bin); err != nil {
		t.Fatal(err)
	}

	tpl, envFile := loadSamTemplate(t), loadEnvFile(t)
	dockerHost := strings.NewReplacer("http://host.docker.internal:5000", moto.Endpoint(), "http://host.docker.internal:8929", simSrv.URL)
	dirs := map[string]string{"SchedulerFunction": "scheduler", "WorkerFunction": "worker", "ExporterFunction": "exporter", "ReconcilerFunction": "reconciler"}
	functions := map[string]*Function{}
	for fn, dir := range dirs {
		env := []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + t.TempDir()}
		for k, v := range samEnvironment(tpl, envFile, fn, samParams) {
			env = append(env, k+"="+dockerHost.Replace(v))
		}
		f, err := StartFunction(ctx, fn, rie, filepath.Join(bin, dir, "bootstrap"), env, tpl.timeouts[fn])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Stop()
		functions[fn] = f
	}

	invocations := []samInvocation{
		{function: "SchedulerFunction", event: "schedule.json"},
		{function: "WorkerFunction", event: "sqs-group-scan.json"},
		{function: "WorkerFunction", event: "sqs-continuation.json"},
		{function: "ExporterFunction", event: "sqs-export.json"},
		{function: "WorkerFunction", event: "sqs-malformed.json", failed: []string{"2f8a1c5e-4b9d-4e27-a6f3-8c0d2b7e5f05"}},
		{function: "ReconcilerFunction", event: "reconcile.json"},
	}
	files, _ := filepath.Glob("../events/*.json")
	if len(files) != len(invocations)+1 { // and env.json
		t.Errorf("events/ holds %d files; the test invokes %d events", len(files), len(invocations))
	}
	checkDeployDoc(t, invocations)
	for _, inv := range invocations {
		payload, err := os.ReadFile(filepath.Join("..", "events", inv.event))
		if err != nil {
			t.Fatal(err)
		}
		f := functions[inv.function]
		if inv.function == "SchedulerFunction" {
			var res lambdaapp.Result
			if err := f.Invoke(ctx, json.RawMessage(payload), &res); err != nil {
				t.Fatalf("%s %s: %v\n%s", inv.function, inv.event, err, lastLines(f.Output(), 30))
			}
			// The set-up's scan run is active: the scheduler names it rather than start another.
			if res.Started || res.RunID != SamScanRun {
				t.Errorf("scheduler answered %+v; want the active run %s named", res, SamScanRun)
			}
			continue
		}
		if inv.function == "ReconcilerFunction" {
			var res lambdaapp.ReconcileResult
			if err := f.Invoke(ctx, json.RawMessage(payload), &res); err != nil {
				t.Fatalf("%s %s: %v\n%s", inv.function, inv.event, err, lastLines(f.Output(), 30))
			}
			// The scan run's messages were sent a moment ago: none is lost yet.
			if res.RunID != SamScanRun || res.Resent != 0 {
				t.Errorf("reconciler answered %+v; want the active run %s and nothing re-sent", res, SamScanRun)
			}
			continue
		}
		var resp events.SQSEventResponse
		if err := f.Invoke(ctx, json.RawMessage(payload), &resp); err != nil {
			t.Fatalf("%s %s: %v\n%s", inv.function, inv.event, err, lastLines(f.Output(), 30))
		}
		var failed []string
		for _, it := range resp.BatchItemFailures {
			failed = append(failed, it.ItemIdentifier)
		}
		if !slices.Equal(failed, inv.failed) {
			t.Errorf("%s %s: batch item failures %v, want %v\n%s", inv.function, inv.event, failed, inv.failed, lastLines(f.Output(), 30))
		}
	}
	if out := functions["WorkerFunction"].Output(); !strings.Contains(out, "malformed message") {
		t.Errorf("the worker did not log the malformed sample as malformed:\n%s", lastLines(out, 20))
	}
	checkHopCap(ctx, t, functions["WorkerFunction"])
	checkSamResults(ctx, t, clients)
}

// checkHopCap sends the worker a message one hop past work.MaxHops: it completes
// (no batch item failure, nothing for the DLQ), logs "hop cap reached" and records
// its group as an error, which checkSamResults then finds.
func checkHopCap(ctx context.Context, t *testing.T, w *Function) {
	m := work.Message{Kind: work.KindGroup, RunID: SamScanRun, GroupID: 20, GroupPath: "platform/docs", ParentID: 10, Page: 2, Hops: work.MaxHops + 1}
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "hop-cap", ReceiptHandle: "hop-cap", Body: string(m.Encode()),
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}, EventSource: "aws:sqs"}}}
	var resp events.SQSEventResponse
	if err := w.Invoke(ctx, ev, &resp); err != nil || len(resp.BatchItemFailures) > 0 {
		t.Errorf("a message past the hop cap: %+v, %v; want it completed", resp, err)
	}
	if out := w.Output(); !strings.Contains(out, "hop cap reached") {
		t.Errorf("the worker did not log the hop cap:\n%s", lastLines(out, 10))
	}
}

// checkSamResults: the samples' groups were scanned into the scan run, and the export
// run's files are in the bucket.
func checkSamResults(ctx context.Context, t *testing.T, c SamClients) {
	st := dynamostore.New(c.DynamoDB, SamStoreTable, dynamostore.Options{})
	scanned := map[string]string{}
	if err := st.Groups(ctx, SamScanRun, func(g inventory.Group) error { scanned[g.FullPath] = g.ScanStatus; return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"platform": inventory.StatusComplete, "platform/services": inventory.StatusComplete,
		"platform/shared/tools": inventory.StatusComplete, "platform/docs": inventory.StatusError, // past the hop cap
	}
	for path, status := range want {
		if scanned[path] != status {
			t.Errorf("group %s: scan status %q after the samples, want %s (all: %v)", path, scanned[path], status, scanned)
		}
	}
	if done, err := st.IsDone(ctx, SamExportRun, work.Message{Kind: work.KindExport}.Key()); err != nil || !done {
		t.Errorf("export of %s done = %v, %v", SamExportRun, done, err)
	}
	names, err := s3sink.New(c.S3, SamBucket, "").List(ctx, "runs/"+SamExportRun+"/")
	if err != nil || len(names) == 0 {
		t.Errorf("exports of %s: %v, %v; want its files", SamExportRun, names, err)
	}
}

// checkDeployDoc: docs/DEPLOY.md shows the invocations this test makes, each with the
// environment file and parameter overrides it models.
func checkDeployDoc(t *testing.T, invocations []samInvocation) {
	t.Helper()
	b, err := os.ReadFile("../docs/DEPLOY.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var shown []samInvocation
	for _, m := range regexp.MustCompile(`(?m)^sam local invoke (\w+) -e events/(\S+) \$P`).FindAllStringSubmatch(doc, -1) {
		shown = append(shown, samInvocation{function: m[1], event: m[2]})
	}
	if len(shown) != len(invocations) {
		t.Errorf("DEPLOY.md shows %d sam local invocations (%v), the test makes %d", len(shown), shown, len(invocations))
	}
	for i := range min(len(shown), len(invocations)) {
		if shown[i].function != invocations[i].function || shown[i].event != invocations[i].event {
			t.Errorf("DEPLOY.md's invocation %d is %s %s; the test's %s %s", i+1, shown[i].function, shown[i].event, invocations[i].function, invocations[i].event)
		}
	}
	for _, want := range []string{"--env-vars events/env.json", "--parameter-overrides GitLabURL=http://host.docker.internal:8929", "make sam-local-env"} {
		if !strings.Contains(doc, want) {
			t.Errorf("DEPLOY.md lacks %q", want)
		}
	}
}

func skipOrFail(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("REQUIRE_INTEGRATION") == "1" {
		t.Fatal(err)
	}
	t.Skip(err)
}
