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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/metrics"
)

// Tests against a real Alertmanager and Prometheus, each started on a free port.

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
