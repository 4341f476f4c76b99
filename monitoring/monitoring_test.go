package monitoring

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/gl2gh/discovery-agent/internal/metrics"
)

// runbookBaseLine declares the base of every runbook_url in docs/RUNBOOK.md.
var runbookBaseLine = regexp.MustCompile("(?m)^Runbook base: `(https://[^`]+)`$")

// runbookBase returns the runbook base docs/RUNBOOK.md declares, and the runbook.
func runbookBase(t *testing.T) (base, runbook string) {
	t.Helper()
	b, err := os.ReadFile("../docs/RUNBOOK.md")
	if err != nil {
		t.Fatalf("runbook: %v", err)
	}
	m := runbookBaseLine.FindAllStringSubmatch(string(b), -1)
	if len(m) != 1 {
		t.Fatalf("docs/RUNBOOK.md declares %d runbook bases, want one line \"Runbook base: `https://...`\"", len(m))
	}
	return m[0][1], string(b)
}

// The alerts the operators' runbook promises.
var wantAlerts = []string{
	"ServiceDown", "HighErrorRate", "CriticalErrorRate", "APIRateLimitApproaching",
	"APIRateLimitExhausted", "HighAPILatency", "HighMemoryUsage", "HighCPUUsage",
	"DiscoveryRunStalled", "DeadLetterQueueNotEmpty", "NoSuccessfulRun",
}

// tool finds an external program among names. Without it the test is skipped, unless
// REQUIRE_INTEGRATION=1 makes a missing tool a failure (CI installs them).
func tool(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not installed (Debian packages prometheus, prometheus-alertmanager)", strings.Join(names, " or "))
	if os.Getenv("REQUIRE_INTEGRATION") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// run runs a program in this directory and returns its combined output, failing the
// test when it exits non-zero.
func run(t *testing.T, prog string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), prog, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(prog), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPrometheusConfig(t *testing.T) {
	promtool := tool(t, "promtool")
	for _, tc := range []struct {
		file    string
		targets map[string]string // job: target
		manager string
	}{
		{"prometheus.yml", map[string]string{"discovery-agent": "discovery-agent:9090", "prometheus": "localhost:9090"}, "alertmanager:9093"},
		{"prometheus.local.yml", map[string]string{"discovery-agent": "127.0.0.1:9090", "prometheus": "127.0.0.1:9091"}, "127.0.0.1:9093"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			run(t, promtool, "check", "config", tc.file)

			var cfg struct {
				RuleFiles []string `yaml:"rule_files"`
				Alerting  struct {
					Alertmanagers []struct {
						StaticConfigs []struct {
							Targets []string `yaml:"targets"`
						} `yaml:"static_configs"`
					} `yaml:"alertmanagers"`
				} `yaml:"alerting"`
				ScrapeConfigs []struct {
					JobName       string `yaml:"job_name"`
					StaticConfigs []struct {
						Targets []string `yaml:"targets"`
					} `yaml:"static_configs"`
				} `yaml:"scrape_configs"`
			}
			readYAML(t, tc.file, &cfg)
			if !slices.Equal(cfg.RuleFiles, []string{"alerts.yml"}) {
				t.Errorf("rule_files = %v, want [alerts.yml]", cfg.RuleFiles)
			}
			got := map[string]string{}
			for _, sc := range cfg.ScrapeConfigs {
				for _, s := range sc.StaticConfigs {
					got[sc.JobName] = strings.Join(s.Targets, ",")
				}
			}
			for job, target := range tc.targets {
				if got[job] != target {
					t.Errorf("job %s scrapes %q, want %q", job, got[job], target)
				}
			}
			if am := cfg.Alerting.Alertmanagers; len(am) != 1 || len(am[0].StaticConfigs) != 1 ||
				!slices.Equal(am[0].StaticConfigs[0].Targets, []string{tc.manager}) {
				t.Errorf("alertmanagers = %+v, want %s", am, tc.manager)
			}
		})
	}
}

func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool")
	run(t, promtool, "check", "rules", "alerts.yml")
	out := run(t, promtool, "test", "rules", "alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules did not report success:\n%s", out)
	}
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func alertRules(t *testing.T) []rule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "alerts.yml", &f)
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// Every alert has its labels, annotations, runbook section and promtool cases.
func TestAlertsContract(t *testing.T) {
	rules := alertRules(t)
	var names []string
	for _, r := range rules {
		names = append(names, r.Alert)
	}
	if !slices.Equal(slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(wantAlerts))) {
		t.Errorf("alerts = %v, want %v", names, wantAlerts)
	}

	base, runbook := runbookBase(t)
	anchors := markdownAnchors(runbook)

	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, "alerts_test.yml", &tests)
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}

	for _, r := range rules {
		t.Run(r.Alert, func(t *testing.T) {
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("severity %q, want critical, warning or info", s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("no %s annotation", a)
				}
			}
			anchor := strings.ToLower(r.Alert)
			if want := base + "#" + anchor; r.Annotations["runbook_url"] != want {
				t.Errorf("runbook_url %q, want %s", r.Annotations["runbook_url"], want)
			}
			if !anchors[anchor] {
				t.Errorf("docs/RUNBOOK.md has no section #%s", anchor)
			}
			if !firing[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alerts_test.yml must show it firing (%v) and not firing (%v)", firing[r.Alert], quiet[r.Alert])
			}
		})
	}
}

// markdownAnchors returns the GitHub anchors of a document's headings.
func markdownAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for line := range strings.SplitSeq(doc, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		anchors[strings.ReplaceAll(drop.ReplaceAllString(h, ""), " ", "-")] = true
	}
	return anchors
}

func TestAlertmanagerConfig(t *testing.T) {
	amtool := tool(t, "amtool")
	run(t, amtool, "check-config", "alertmanager.yml")
	for _, tc := range []struct {
		labels   []string
		receiver string
	}{
		{[]string{"alertname=ServiceDown", "severity=critical"}, "critical"},
		{[]string{"alertname=HighErrorRate", "severity=warning", "family=error_rate"}, "warning"},
		{[]string{"alertname=APIRateLimitApproaching", "severity=info"}, "default"},
		{[]string{"alertname=Unlabelled"}, "default"},
	} {
		t.Run(strings.Join(tc.labels, ","), func(t *testing.T) {
			args := append([]string{"config", "routes", "test", "--config.file=alertmanager.yml", "--verify.receivers=" + tc.receiver}, tc.labels...)
			run(t, amtool, args...)
		})
	}
}

// Every metric the dashboard and the alerts query is one the agent really exports.
func TestQueriedMetricsAreExported(t *testing.T) {
	exported := exportedMetrics(t)

	queries := dashboardExprs(t)
	for _, r := range alertRules(t) {
		queries["alert "+r.Alert] = r.Expr
	}
	used := map[string]bool{}
	for where, expr := range queries {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if !exported(n) {
				t.Errorf("%s queries %s, which the agent does not export", where, n)
			}
		}
	}
	// Guard against an extractor that finds nothing: the alerts alone use these.
	for _, n := range []string{"up", "gitlab_api_requests_total", "gitlab_api_request_duration_seconds_bucket",
		"process_resident_memory_bytes", "discovery_last_run_success_timestamp_seconds"} {
		if !used[n] {
			t.Errorf("%s not found in any query: metric name extraction is broken", n)
		}
	}
}

// exportedMetrics scrapes a metrics.New() that has seen one of each event and reports
// whether a name is exported: as is, as a histogram's _bucket/_sum/_count, or "up"
// (which Prometheus adds).
func exportedMetrics(t *testing.T) func(string) bool {
	t.Helper()
	m := metrics.New()
	metrics.ExerciseAll(m)
	return exports(t, m)
}

// exports scrapes m and reports whether a name is exported, as exportedMetrics.
func exports(t *testing.T, m *metrics.Metrics) func(string) bool {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return func(name string) bool {
		if name == "up" || mfs[name] != nil {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && mfs[base] != nil {
				typ := mfs[base].GetType().String()
				return typ == "HISTOGRAM" || (typ == "SUMMARY" && suffix != "_bucket")
			}
		}
		return false
	}
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
