package monitoring

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

// freeAddr returns a 127.0.0.1 address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// start runs a server program until the test ends and waits for url to answer 200.
func start(t *testing.T, url string, prog string, args ...string) {
	t.Helper()
	var logs strings.Builder
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", prog, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // already exited is fine
		<-exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s exited: %v\n%s", filepath.Base(prog), err, logs.String())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s\n%s", filepath.Base(prog), url, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A critical alert inhibits the warnings and infos of its family on its instance, and
// nothing else, in a real Alertmanager running alertmanager.yml.
func TestAlertmanagerInhibition(t *testing.T) {
	am := tool(t, "alertmanager", "prometheus-alertmanager")
	addr := freeAddr(t)
	base := "http://" + addr
	cfg, err := filepath.Abs("alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	start(t, base+"/-/ready", am, "--config.file="+cfg, "--storage.path="+t.TempDir(),
		"--web.listen-address="+addr, "--cluster.listen-address=")

	type alert struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	a := func(name, severity, family, instance string) alert {
		l := map[string]string{"alertname": name, "severity": severity, "job": "discovery-agent", "instance": instance}
		if family != "" {
			l["family"] = family
		}
		return alert{Labels: l}
	}
	alerts := []alert{
		a("CriticalErrorRate", "critical", "error_rate", "one"),
		a("HighErrorRate", "warning", "error_rate", "one"),          // inhibited
		a("HighErrorRate", "warning", "error_rate", "two"),          // other instance
		a("APIRateLimitApproaching", "info", "rate_limit", "one"),   // other family
		a("ServiceDown", "critical", "", "one"),                     // no family
		a("HighMemoryUsage", "warning", "", "one"),                  // no family: not inhibited by ServiceDown
		a("APIRateLimitExhausted", "critical", "rate_limit", "two"), // inhibits the next
		a("APIRateLimitApproaching", "info", "rate_limit", "two"),   // inhibited
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post alerts: %s", resp.Status)
	}

	want := map[string]bool{
		"HighErrorRate/one": true, "APIRateLimitApproaching/two": true,
		"CriticalErrorRate/one": false, "HighErrorRate/two": false, "APIRateLimitApproaching/one": false,
		"ServiceDown/one": false, "HighMemoryUsage/one": false, "APIRateLimitExhausted/two": false,
	}
	var got map[string]bool
	// The inhibitor sees new alerts asynchronously: poll briefly.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got = inhibited(t, base)
		if maps.Equal(got, want) {
			return
		}
	}
	t.Errorf("inhibited = %v, want %v", got, want)
}

// inhibited returns, per alertname/instance, whether Alertmanager inhibits the alert.
func inhibited(t *testing.T, base string) map[string]bool {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var alerts []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, a := range alerts {
		got[a.Labels["alertname"]+"/"+a.Labels["instance"]] = len(a.Status.InhibitedBy) > 0
	}
	return got
}

// A real Prometheus scrapes a real agent's metrics, loads alerts.yml and answers every
// dashboard query with data: the names, labels and types fit together at run time,
// not only on paper. On a healthy run too, with no retry, 429 or error: no panel reads
// "No data" because a metric appears only after the first failure.
func TestDashboardAndAlertsAgainstPrometheus(t *testing.T) {
	prom := tool(t, "prometheus")
	for _, tc := range []struct {
		name     string
		failures bool
	}{
		{"busy with failures", true},
		{"healthy", false},
	} {
		t.Run(tc.name, func(t *testing.T) { againstPrometheus(t, prom, tc.failures) })
	}
}

// againstPrometheus runs the dashboard's queries and the alerts in Prometheus prom
// against a busy agent, which also sees 403s, retries and scan errors when failures.
func againstPrometheus(t *testing.T, prom string, failures bool) {
	m := metrics.New()
	m.RunStarted("run-0")
	m.RunFinished(true, time.Minute)
	m.RunStarted("run-1")
	m.SetDeadLetters(0)
	m.SetBudgetTokens(50)
	m.QueueDepth(40)
	agent := httptest.NewServer(m.Handler())
	defer agent.Close()

	// Keep the agent busy so that rates, ratios and quantiles have something to show.
	stop := make(chan struct{})
	done := make(chan struct{})
	defer func() { close(stop); <-done }()
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			m.Request("projects/:id", 200, time.Duration(i%50)*10*time.Millisecond)
			if i%10 == 0 {
				m.GroupDone("complete")
			}
			if i%10 == 0 && failures {
				m.Request("projects/:id/hooks", 403, 30*time.Millisecond)
				m.Retry("5xx")
				m.ScanError("forbidden", "hooks")
			}
			m.ProjectDone("complete", []string{"ready", "needs_attention", "blocked"}[i%3])
			m.RateLimitRemaining(1000 - i%1000)
			m.EffectiveRPM(1900)
		}
	}()

	rules, err := filepath.Abs("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: discovery-agent
    static_configs: [{targets: [%q]}]
`, rules, strings.TrimPrefix(agent.URL, "http://"))
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	base := "http://" + addr
	start(t, base+"/-/ready", prom, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)

	// Rates need two scrapes in their window; wait for three.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if v := query(t, base, `count_over_time(up{job="discovery-agent"}[1m])`); len(v) == 1 && v[0].value() >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Prometheus did not scrape the agent 3 times in 30s")
		}
	}

	for where, expr := range dashboardExprs(t) {
		q := grafanaVars.Replace(expr)
		if v := query(t, base, q); len(v) == 0 {
			t.Errorf("%s: %s returned no data", where, q)
		}
	}

	var got struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	getJSON(t, base+"/api/v1/rules?type=alert", &got)
	var evaluated []string
	for _, g := range got.Data.Groups {
		for _, r := range g.Rules {
			if r.Health != "ok" {
				t.Errorf("alert %s: health %q %s", r.Name, r.Health, r.LastError)
			}
			evaluated = append(evaluated, r.Name)
		}
	}
	if len(evaluated) != len(wantAlerts) {
		t.Errorf("Prometheus loaded alerts %v, want %d", evaluated, len(wantAlerts))
	}
}

// sample is one element of an instant vector: value is [timestamp, "value"].
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) value() float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// query runs an instant PromQL query and returns its vector, failing on an error.
func query(t *testing.T, base, q string) []sample {
	t.Helper()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	getJSON(t, base+"/api/v1/query?query="+url.QueryEscape(q), &r)
	if r.Status != "success" {
		t.Fatalf("query %s: %s", q, r.Error)
	}
	if r.Data.ResultType != "vector" {
		t.Fatalf("query %s: result type %s, want vector", q, r.Data.ResultType)
	}
	var v []sample
	if err := json.Unmarshal(r.Data.Result, &v); err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	return v
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}
