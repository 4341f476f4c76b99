package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/lambdaapp"
	"github.com/gl2gh/discovery-agent/internal/mototest"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// TestTemplateLint runs cfn-lint on template.yaml: any finding, informational ones
// included, fails.
func TestTemplateLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		if os.Getenv("REQUIRE_INTEGRATION") == "1" {
			t.Fatal("cfn-lint not found on PATH (pip install cfn-lint)")
		}
		t.Skip("cfn-lint not found on PATH")
	}
	cmd := exec.Command(bin, "template.yaml")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint template.yaml: %v\n%s", err, out)
	}
}

type template struct {
	Globals struct {
		Function map[string]any `yaml:"Function"`
	} `yaml:"Globals"`
	Resources map[string]resource `yaml:"Resources"`
}

type resource struct {
	Type       string         `yaml:"Type"`
	Metadata   map[string]any `yaml:"Metadata"`
	Properties map[string]any `yaml:"Properties"`
}

// loadTemplate parses template.yaml. yaml.v3 drops CloudFormation's short-form tags
// (!Ref X reads as "X", !GetAtt X.Arn as "X.Arn"), which is what these checks compare.
func loadTemplate(t *testing.T) template {
	t.Helper()
	b, err := os.ReadFile("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := yaml.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}

func get(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func toInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case string:
		var i int
		_ = json.Unmarshal([]byte(n), &i)
		return i
	}
	return 0
}

// TestTemplateMirrorsEmulator checks that the tables and queues the template declares
// are those internal/mototest creates for the tests.
func TestTemplateMirrorsEmulator(t *testing.T) {
	tpl := loadTemplate(t)
	tables := []struct {
		name string
		keys []string
	}{
		{"StoreTable", []string{"pk", "sk"}},
		{"BudgetTable", []string{"key"}},
	}
	for _, tt := range tables {
		r := tpl.Resources[tt.name]
		if r.Type != "AWS::DynamoDB::Table" {
			t.Fatalf("%s is %q", tt.name, r.Type)
		}
		var keys []string
		for _, k := range r.Properties["KeySchema"].([]any) {
			keys = append(keys, k.(map[string]any)["AttributeName"].(string))
		}
		if !slices.Equal(keys, tt.keys) {
			t.Errorf("%s keys %v, want %v", tt.name, keys, tt.keys)
		}
		p := r.Properties
		if p["BillingMode"] != "PAY_PER_REQUEST" || get(p, "SSESpecification", "SSEEnabled") != true ||
			get(p, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled") != true ||
			get(p, "TimeToLiveSpecification", "AttributeName") != mototest.TTLAttribute ||
			get(p, "TimeToLiveSpecification", "Enabled") != true {
			t.Errorf("%s: %v; want on-demand, SSE, point-in-time recovery and TTL on %s", tt.name, p, mototest.TTLAttribute)
		}
	}

	maxReceive := toInt(get(tpl.Globals.Function, "Environment", "Variables", "MAX_RECEIVE_COUNT"))
	consumers := map[string]string{"ScanQueue": "WorkerFunction", "ExportQueue": "ExporterFunction"}
	for queue, fn := range consumers {
		q := tpl.Resources[queue].Properties
		if got := toInt(get(q, "RedrivePolicy", "maxReceiveCount")); got != 5 || got != maxReceive {
			t.Errorf("%s maxReceiveCount %d; want 5, as MAX_RECEIVE_COUNT (%d)", queue, got, maxReceive)
		}
		if get(q, "RedrivePolicy", "deadLetterTargetArn") == nil || q["SqsManagedSseEnabled"] != true {
			t.Errorf("%s: %v; want a DLQ and SSE", queue, q)
		}
		f := tpl.Resources[fn].Properties
		timeout := toInt(f["Timeout"])
		if vis := toInt(q["VisibilityTimeout"]); vis < 6*timeout {
			t.Errorf("%s visibility timeout %ds < 6 x %s timeout %ds", queue, vis, fn, timeout)
		}
		var found bool
		for _, ev := range f["Events"].(map[string]any) {
			e := ev.(map[string]any)
			if e["Type"] == "SQS" && get(e, "Properties", "Queue") == queue+".Arn" {
				found = true
				if rt, _ := get(e, "Properties", "FunctionResponseTypes").([]any); !slices.Contains(rt, any("ReportBatchItemFailures")) {
					t.Errorf("%s's event source does not report batch item failures", fn)
				}
				if get(e, "Properties", "ScalingConfig", "MaximumConcurrency") == nil {
					t.Errorf("%s's event source has no ScalingConfig.MaximumConcurrency", fn)
				}
			}
		}
		if !found {
			t.Errorf("%s does not consume %s", fn, queue)
		}
	}
	if m, ok := get(tpl.Resources["WorkerFunction"].Properties, "Environment", "Variables", "DEADLINE_MARGIN").(string); ok {
		d, err := time.ParseDuration(m)
		if err != nil || d >= time.Duration(toInt(tpl.Resources["WorkerFunction"].Properties["Timeout"]))*time.Second/2 {
			t.Errorf("worker DEADLINE_MARGIN %q must be well under its timeout", m)
		}
	} else {
		t.Error("the worker sets no DEADLINE_MARGIN")
	}

	b := tpl.Resources["ExportBucket"].Properties
	if get(b, "VersioningConfiguration", "Status") != "Enabled" || get(b, "PublicAccessBlockConfiguration", "BlockPublicPolicy") != true ||
		b["BucketEncryption"] == nil || b["LifecycleConfiguration"] == nil {
		t.Errorf("ExportBucket: %v; want versioning, encryption, public access blocked and a lifecycle", b)
	}
}

// TestTemplateFunctions checks the functions' build, runtime, configuration and
// permissions.
func TestTemplateFunctions(t *testing.T) {
	tpl := loadTemplate(t)
	g := tpl.Globals.Function
	if g["Runtime"] != "provided.al2023" || g["Handler"] != "bootstrap" || !slices.Equal(g["Architectures"].([]any), []any{"arm64"}) ||
		get(g, "LoggingConfig", "LogFormat") != "JSON" {
		t.Errorf("Globals.Function = %v; want provided.al2023, arm64, bootstrap, JSON logs", g)
	}
	known := map[string]bool{}
	for _, v := range append(config.Vars(), lambdaapp.Vars()...) {
		known[v.Name] = true
	}
	globalEnv, _ := get(g, "Environment", "Variables").(map[string]any)

	// Each function needs what its role requires (lambdaapp's Validate rules).
	functions := map[string]struct {
		dir       string
		role      config.Role
		forbidden []string
	}{
		"SchedulerFunction": {"scheduler", lambdaapp.RoleScheduler, []string{"EXPORT_BUCKET"}},
		"WorkerFunction":    {"worker", lambdaapp.RoleWorker, []string{"EXPORT_BUCKET"}},
		"ExporterFunction":  {"exporter", lambdaapp.RoleExporter, []string{"GITLAB_TOKEN_SECRET_ARN", "BUDGET_TABLE"}},
		"ReconcilerFunction": {"reconciler", lambdaapp.RoleReconciler,
			[]string{"GITLAB_TOKEN_SECRET_ARN", "BUDGET_TABLE", "EXPORT_BUCKET"}},
	}
	for name, fn := range functions {
		t.Run(name, func(t *testing.T) {
			r := tpl.Resources[name]
			if r.Type != "AWS::Serverless::Function" || r.Metadata["BuildMethod"] != "makefile" {
				t.Errorf("%s: type %s, metadata %v; want a makefile-built AWS::Serverless::Function", name, r.Type, r.Metadata)
			}
			// What sam build runs: make build-<LogicalId> with ARTIFACTS_DIR set.
			cmd := exec.Command("make", "-n", "-f", "functions/lambda.mk", "build-"+name, "ARTIFACTS_DIR=/artifacts")
			cmd.Dir = ".."
			out, err := cmd.CombinedOutput()
			want := regexp.MustCompile(`GOOS=linux GOARCH=arm64 CGO_ENABLED=0 \S*go build -tags lambda.norpc -trimpath -ldflags "-s -w" -o /artifacts/bootstrap \./functions/` + fn.dir + `\n`)
			if err != nil || !want.Match(out) {
				t.Errorf("make build-%s: %v\n%s", name, err, out)
			}
			if _, err := os.Stat(filepath.Join("..", "functions", fn.dir, "main.go")); err != nil {
				t.Error(err)
			}
			env := map[string]any{}
			for k, v := range globalEnv {
				env[k] = v
			}
			fenv, _ := get(r.Properties, "Environment", "Variables").(map[string]any)
			for k, v := range fenv {
				env[k] = v
			}
			for k := range env {
				if !known[k] {
					t.Errorf("%s sets %s, which nothing reads", name, k)
				}
				if k == "GITLAB_TOKEN" {
					t.Errorf("%s has the token in its environment", name)
				}
			}
			for _, k := range lambdaapp.Required(fn.role) {
				if env[k] == nil {
					t.Errorf("%s lacks %s", name, k)
				}
			}
			for _, k := range fn.forbidden {
				if env[k] != nil {
					t.Errorf("%s should not have %s (least privilege)", name, k)
				}
			}
			role, _ := r.Properties["Role"].(string)
			if role == "" || tpl.Resources[strings.TrimSuffix(role, ".Arn")].Type != "AWS::IAM::Role" {
				t.Errorf("%s's role %q is not a role of the template", name, role)
			}
		})
	}
}

// TestTemplateLeastPrivilege: every Allow statement names its resources and actions.
func TestTemplateLeastPrivilege(t *testing.T) {
	tpl := loadTemplate(t)
	roles := 0
	for name, r := range tpl.Resources {
		if r.Type != "AWS::IAM::Role" {
			continue
		}
		roles++
		for _, p := range r.Properties["Policies"].([]any) {
			for _, s := range get(p.(map[string]any), "PolicyDocument", "Statement").([]any) {
				st := s.(map[string]any)
				for _, field := range []string{"Resource", "Action"} {
					vals, ok := st[field].([]any)
					if !ok {
						vals = []any{st[field]}
					}
					for _, v := range vals {
						str, _ := v.(string)
						if str == "" || strings.Contains(str, "*") && !strings.HasSuffix(str, "/*") {
							t.Errorf("%s statement %v: %s %q is a wildcard", name, st["Sid"], field, v)
						}
					}
				}
			}
		}
		if r.Properties["ManagedPolicyArns"] != nil {
			t.Errorf("%s attaches managed policies", name)
		}
	}
	if roles != 4 {
		t.Errorf("%d roles, want one per function", roles)
	}
}

// TestEvents: every sample event is one `sam local invoke -e` accepts, and the SQS
// ones carry the messages their names promise.
func TestEvents(t *testing.T) {
	files, err := filepath.Glob("../events/*.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file      string
		kind      string
		page      int
		malformed bool
	}{
		{file: "schedule.json"},
		{file: "env.json"},
		{file: "sqs-group-scan.json", kind: work.KindGroup},
		{file: "sqs-continuation.json", kind: work.KindGroup, page: 2},
		{file: "sqs-export.json", kind: work.KindExport},
		{file: "sqs-malformed.json", malformed: true},
		{file: "reconcile.json"},
	}
	if len(files) != len(tests) {
		t.Errorf("events/ holds %d files, the test knows %d", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "events", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var ev struct {
				Records []struct {
					MessageID  string            `json:"messageId"`
					Body       string            `json:"body"`
					Attributes map[string]string `json:"attributes"`
				} `json:"Records"`
			}
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatal(err)
			}
			if tt.kind == "" && !tt.malformed {
				return
			}
			if len(ev.Records) == 0 {
				t.Fatal("no records")
			}
			for _, r := range ev.Records {
				if r.MessageID == "" || r.Attributes["ApproximateReceiveCount"] == "" {
					t.Errorf("record %+v lacks messageId or ApproximateReceiveCount", r)
				}
				m, err := work.Decode([]byte(r.Body))
				if tt.malformed {
					if !errors.Is(err, work.ErrMalformed) {
						t.Errorf("body %s decodes (%v); want it malformed", r.Body, err)
					}
					continue
				}
				if err != nil || m.Kind != tt.kind || (tt.page > 0 && m.Page != tt.page) {
					t.Errorf("body %s = %+v, %v; want kind %s page %d", r.Body, m, err, tt.kind, tt.page)
				}
			}
		})
	}
}
