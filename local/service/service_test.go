package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/metrics"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
	"github.com/gl2gh/discovery-agent/internal/work"
	"github.com/gl2gh/discovery-agent/local/runner"
)

type agent struct {
	svc             *Service
	sim             *gitlabsim.Server
	health, metrics string
	exportDir       string
	stop            func()
	done            chan error
}

func startAgent(t *testing.T, simOpts gitlabsim.Options, token string) *agent {
	t.Helper()
	simOpts.Token = "sim-token"
	sim, err := gitlabsim.New(simOpts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); ts.Close() })
	dir := t.TempDir()
	cfg := config.Config{
		GitLabURL: ts.URL, Token: token, DataDir: filepath.Join(dir, "data"), ExportDir: filepath.Join(dir, "exports"),
		MaxPerProjectCalls: 200, Concurrency: 8, RequestTimeout: 2 * time.Second,
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	m := metrics.New()
	r, err := runner.New(cfg, runner.Options{Log: log, Telemetry: m, RetryDelay: 10 * time.Millisecond,
		GitLab: gitlab.Options{BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxRetries: 2}})
	if err != nil {
		t.Fatal(err)
	}
	svc := &Service{Backend: r, Metrics: m, Log: log, Version: "test", HealthAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", Grace: 5 * time.Second}
	h, mt, err := svc.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent{svc: svc, sim: sim, health: "http://" + h, metrics: mt, exportDir: cfg.ExportDir, done: make(chan error, 1)}
	go func() { a.done <- svc.Run(ctx) }()
	var once bool
	a.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-a.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		r.Close()
	}
	t.Cleanup(a.stop)
	return a
}

func getJSON(t *testing.T, method, u string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
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

func TestHealthAndReadiness(t *testing.T) {
	tests := []struct {
		name   string
		token  string
		status int
		reason string
	}{
		{"right token", "sim-token", 200, ""},
		{"wrong token", "not-the-token", 503, "401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, gitlabsim.Options{Seed: 1, Groups: 2, Projects: 5}, tt.token)
			if code, body := getJSON(t, "GET", a.health+"/health"); code != 200 || body["status"] != "ok" || body["version"] != "test" {
				t.Errorf("/health = %d %v", code, body)
			}
			if code, _ := getJSON(t, "GET", a.health+"/health/live"); code != 200 {
				t.Errorf("/health/live = %d", code)
			}
			code, body := getJSON(t, "GET", a.health+"/health/ready")
			if code != tt.status {
				t.Fatalf("/health/ready = %d %v, want %d", code, body, tt.status)
			}
			checks, _ := body["checks"].(map[string]any)
			if tt.reason != "" && !strings.Contains(fmt.Sprint(checks["gitlab"]), tt.reason) {
				t.Errorf("readiness names no reason: %v", body)
			}
			if strings.Contains(fmt.Sprint(body), tt.token) {
				t.Errorf("readiness leaks the token: %v", body)
			}
		})
	}
}

// prometheus runs the Debian prometheus binary scraping the agent every second, with
// the project's alert rules.
type prometheus struct{ url string }

func startPrometheus(t *testing.T, target string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("REQUIRE_INTEGRATION") == "1" {
			t.Fatal("prometheus not installed (apt-get install prometheus) and REQUIRE_INTEGRATION=1")
		}
		t.Skip("prometheus not installed")
	}
	dir := t.TempDir()
	rules, err := filepath.Abs("../../monitoring/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: discovery-agent
    static_configs: [{targets: [%q]}]
`, rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr)
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	p := &prometheus{url: "http://" + addr}
	waitFor(t, 30*time.Second, "prometheus ready", func() bool {
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// query returns the single value of an instant query, or false when it has no result.
func (p *prometheus) query(t *testing.T, q string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if len(r.Data.Result) == 0 {
		return 0, false
	}
	v, _ := strconv.ParseFloat(fmt.Sprint(r.Data.Result[0].Value[1]), 64)
	return v, true
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestServeUnderPrometheus(t *testing.T) {
	a := startAgent(t, gitlabsim.Options{Seed: 2, Groups: 5, Projects: 60}, "sim-token")
	p := startPrometheus(t, a.metrics)
	waitFor(t, 20*time.Second, "up == 1", func() bool { v, ok := p.query(t, `up{job="discovery-agent"}`); return ok && v == 1 })

	code, body := getJSON(t, "POST", a.health+"/runs")
	if code != http.StatusAccepted {
		t.Fatalf("POST /runs = %d %v", code, body)
	}
	runID := body["run_id"].(string)
	if code, body := getJSON(t, "POST", a.health+"/runs"); code != http.StatusConflict && code != http.StatusAccepted {
		t.Fatalf("second POST /runs = %d %v", code, body)
	}
	summary := filepath.Join(a.exportDir, "runs", runID, "summary.json")
	waitFor(t, 60*time.Second, "the run's exports", func() bool { _, err := os.Stat(summary); return err == nil })

	// The scan's counters, as Prometheus scraped them, match the exports.
	groups, projects, err := scancheck.ReadExportDir(filepath.Join(a.exportDir, "runs", runID))
	if err != nil {
		t.Fatal(err)
	}
	if d := scancheck.Diff(a.sim.Truth(), groups, projects); len(d) > 0 {
		t.Fatalf("exports differ from the truth: %v", d)
	}
	waitFor(t, 20*time.Second, "project counter == exported projects", func() bool {
		v, ok := p.query(t, `sum(discovery_projects_total{job="discovery-agent"})`)
		return ok && int(v) == len(projects)
	})
	waitFor(t, 20*time.Second, "group counter == exported groups", func() bool {
		v, ok := p.query(t, `sum(discovery_groups_total{job="discovery-agent"})`)
		return ok && int(v) == len(groups)
	})
	waitFor(t, 20*time.Second, "run over and recorded as a success", func() bool {
		inProgress, ok1 := p.query(t, `discovery_run_in_progress`)
		last, ok2 := p.query(t, `discovery_last_run_success_timestamp_seconds`)
		return ok1 && ok2 && inProgress == 0 && last > 0
	})
	requests, _ := p.query(t, `sum(gitlab_api_requests_total)`)
	if requests < float64(len(projects)) {
		t.Errorf("gitlab_api_requests_total = %v for %d projects", requests, len(projects))
	}

	// A GitLab that answers 429 with Remaining 0 drives the rate-limit gauge to 0.
	a.sim.SetFaults(gitlabsim.Faults{Burst429Rate: 1})
	if code, body := getJSON(t, "POST", a.health+"/runs"); code != http.StatusAccepted && code != http.StatusBadGateway {
		t.Fatalf("third POST /runs = %d %v", code, body)
	}
	waitFor(t, 30*time.Second, "gitlab_api_rate_limit_remaining == 0", func() bool {
		v, ok := p.query(t, `gitlab_api_rate_limit_remaining`)
		return ok && v == 0
	})

	// Stopping the agent makes up 0 and ServiceDown pending.
	a.stop()
	waitFor(t, 20*time.Second, "up == 0", func() bool { v, ok := p.query(t, `up{job="discovery-agent"}`); return ok && v == 0 })
	waitFor(t, 20*time.Second, "ServiceDown pending", func() bool {
		_, ok := p.query(t, `ALERTS{alertname="ServiceDown",alertstate="pending"}`)
		return ok
	})
}

func TestDeadLetterEndpoints(t *testing.T) {
	a := startAgent(t, gitlabsim.Options{Seed: 1, Groups: 2, Projects: 5}, "sim-token")
	q := a.svc.Backend.(*runner.Runner).Queue
	q.SetMaxReceives(1)
	// A message for a run that does not exist can never be processed.
	if err := q.Send(context.Background(), work.Message{Kind: work.KindGroup, RunID: "ghost", GroupID: 9}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the message to be dead-lettered", func() bool {
		_, body := getJSON(t, "GET", a.health+"/dead-letters")
		return body["count"] == float64(1)
	})
	if code, body := getJSON(t, "DELETE", a.health+"/dead-letters"); code != 200 || body["purged"] != float64(1) {
		t.Fatalf("DELETE /dead-letters = %d %v", code, body)
	}
	if _, body := getJSON(t, "GET", a.health+"/dead-letters"); body["count"] != float64(0) {
		t.Fatalf("after purge: %v", body)
	}
	if code, body := getJSON(t, "POST", a.health+"/dead-letters/redrive"); code != 200 || body["redriven"] != float64(0) {
		t.Fatalf("POST /dead-letters/redrive = %d %v", code, body)
	}
}
