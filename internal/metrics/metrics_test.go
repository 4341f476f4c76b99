package metrics_test

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gl2gh/discovery-agent/internal/metrics"
)

// scrape fetches the handler over HTTP and parses the text exposition format.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return mfs
}

// find returns the sample of family name whose labels include want, or nil.
func find(mfs map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		have := make(map[string]string)
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return math.NaN()
}

type L = map[string]string

func TestMetricsScrape(t *testing.T) {
	m := metrics.New()
	m.RunStarted("run-1")
	m.Request("projects/:id", 200, 40*time.Millisecond)
	m.Request("projects/:id", 200, 60*time.Millisecond)
	m.Request("projects/:id", 0, 3*time.Second)
	m.Request("groups/:id/projects", 429, 10*time.Millisecond)
	m.Request("/api/v4/projects/123?private_token=glpat-secret", 200, time.Millisecond)
	m.Retry("429")
	m.Retry("because")
	m.RateLimitRemaining(42)
	m.EffectiveRPM(300)
	m.EffectiveRPM(2850) // the last value wins
	m.GroupDone("complete")
	m.ProjectDone("complete", "ready")
	m.ProjectDone("forbidden", "")
	m.ProjectDone("partial", "blocked")
	m.ScanError("forbidden", "hooks")
	m.ScanError("server", "file:.gitlab-ci.yml")
	m.ScanError("weird", "file:ci/templates/build.yml")
	m.ScanError("timeout", "/etc/passwd")
	m.QueueDepth(7)
	m.SetBudgetTokens(12.5)
	m.SetDeadLetters(3)

	during := scrape(t, m.Handler())
	for _, tc := range []struct {
		name   string
		labels L
		want   float64
	}{
		{"gitlab_api_requests_total", L{"endpoint": "projects/:id", "status_code": "200"}, 2},
		{"gitlab_api_requests_total", L{"endpoint": "projects/:id", "status_code": "0"}, 1},
		{"gitlab_api_requests_total", L{"endpoint": "groups/:id/projects", "status_code": "429"}, 1},
		{"gitlab_api_requests_total", L{"endpoint": "other", "status_code": "200"}, 1},
		{"gitlab_api_retries_total", L{"reason": "429"}, 1},
		{"gitlab_api_retries_total", L{"reason": "other"}, 1},
		{"gitlab_api_rate_limit_remaining", nil, 42},
		{"discovery_rate_limit_effective_rpm", nil, 2850},
		{"discovery_groups_total", L{"status": "complete"}, 1},
		{"discovery_groups_total", L{"status": "partial"}, 0}, // started at zero
		{"discovery_projects_total", L{"status": "complete", "readiness": "ready"}, 1},
		{"discovery_projects_total", L{"status": "forbidden", "readiness": "none"}, 1},
		{"discovery_projects_total", L{"status": "partial", "readiness": "blocked"}, 1},
		{"discovery_projects_total", L{"status": "error", "readiness": "needs_attention"}, 0},
		{"discovery_errors_total", L{"type": "forbidden", "step": "hooks"}, 1},
		{"discovery_errors_total", L{"type": "server", "step": "file:.gitlab-ci.yml"}, 1},
		{"discovery_errors_total", L{"type": "other", "step": "file:other"}, 1},
		{"discovery_errors_total", L{"type": "timeout", "step": "other"}, 1},
		{"discovery_run_in_progress", nil, 1},
		{"discovery_queue_depth", nil, 7},
		{"discovery_budget_tokens_available", nil, 12.5},
		{"discovery_dead_letter_messages", nil, 3},
		{"discovery_last_run_success_timestamp_seconds", nil, 0},
		{"discovery_build_info", nil, 1},
	} {
		t.Run(fmt.Sprint(tc.name, tc.labels), func(t *testing.T) {
			s := find(during, tc.name, tc.labels)
			if s == nil {
				t.Fatalf("no sample %s%v", tc.name, tc.labels)
			}
			if got := value(s); got != tc.want {
				t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
			}
		})
	}

	h := find(during, "gitlab_api_request_duration_seconds", L{"endpoint": "projects/:id"}).GetHistogram()
	if got := h.GetSampleCount(); got != 3 {
		t.Errorf("latency count = %d, want 3", got)
	}
	if got := h.GetSampleSum(); math.Abs(got-3.1) > 1e-9 {
		t.Errorf("latency sum = %v, want 3.1", got)
	}
	for _, b := range h.GetBucket() {
		want := map[float64]uint64{0.05: 1, 0.1: 2, 2: 2, 5: 3}[b.GetUpperBound()]
		if want != 0 && b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v = %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if n := len(h.GetBucket()); n < 10 {
		t.Errorf("latency histogram has %d buckets, want 10ms..30s coverage", n)
	}

	if v := find(during, "discovery_build_info", nil); v == nil || v.GetLabel()[0].GetValue() == "" {
		t.Error("discovery_build_info has no version")
	}
	for _, name := range []string{"discovery_memory_limit_bytes", "discovery_cpu_limit_cores"} {
		if s := find(during, name, nil); s == nil || value(s) <= 0 {
			t.Errorf("%s missing or not positive: %v", name, s)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_cpu_seconds_total", "process_start_time_seconds"} {
		if during[name] == nil {
			t.Errorf("%s missing: Go and process collectors not registered", name)
		}
	}
	progress := find(during, "discovery_last_progress_timestamp_seconds", nil)
	if progress == nil || time.Since(time.Unix(int64(value(progress)), 0)) > time.Minute {
		t.Errorf("last progress timestamp not recent: %v", progress)
	}

	before := time.Now()
	m.RunFinished(true, 90*time.Second)
	after := scrape(t, m.Handler())
	if got := value(find(after, "discovery_run_in_progress", nil)); got != 0 {
		t.Errorf("run in progress after finish = %v", got)
	}
	if got := value(find(after, "discovery_run_duration_seconds", nil)); got != 90 {
		t.Errorf("run duration = %v, want 90", got)
	}
	if got := value(find(after, "discovery_last_run_success_timestamp_seconds", nil)); got < float64(before.Unix()) {
		t.Errorf("last success = %v, want >= %d", got, before.Unix())
	}
	if s := find(after, "gitlab_api_rate_limit_remaining", nil); s != nil {
		t.Errorf("rate limit remaining still exported after the run: %v", value(s))
	}
	if s := find(after, "discovery_rate_limit_effective_rpm", nil); s != nil {
		t.Errorf("effective rpm still exported after the run: %v", value(s))
	}
}

func TestMetricsNeverLeakRawValues(t *testing.T) {
	const token = "glpat-Sup3rS3cretT0ken"
	m := metrics.New()
	m.Request("projects/:id?private_token="+token, 200, time.Millisecond)
	m.ScanError("forbidden", "file:"+token)
	m.ScanError(token, token)
	m.Retry(token)
	m.GroupDone(token)
	m.ProjectDone(token, token)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	if strings.Contains(rec.Body.String(), "Sup3rS3cret") {
		t.Fatal("a raw label value reached the scrape")
	}
	if s := find(scrape(t, m.Handler()), "discovery_projects_total", L{"status": "other", "readiness": "other"}); s == nil || value(s) != 1 {
		t.Errorf("unknown status and readiness not counted as other: %v", s)
	}
}

func TestMetricsEndpointCardinalityCapped(t *testing.T) {
	m := metrics.New()
	for i := range 200 {
		m.Request(fmt.Sprintf("projects/:id/thing%d", i), 200, time.Millisecond)
	}
	mfs := scrape(t, m.Handler())
	series := len(mfs["gitlab_api_requests_total"].GetMetric())
	if series > 65 {
		t.Errorf("%d endpoint series, want at most 64 plus other", series)
	}
	other := find(mfs, "gitlab_api_requests_total", L{"endpoint": "other"})
	if other == nil || value(other) != 200-64 {
		t.Errorf("overflow not counted as other: %v", other)
	}
}

func TestMetricsSetLastRunSuccess(t *testing.T) {
	m := metrics.New()
	m.SetLastRunSuccess(time.Time{})
	if got := value(find(scrape(t, m.Handler()), "discovery_last_run_success_timestamp_seconds", nil)); got != 0 {
		t.Errorf("zero time recorded as %v", got)
	}
	at := time.Unix(1_700_000_000, 500_000_000)
	m.SetLastRunSuccess(at)
	if got := value(find(scrape(t, m.Handler()), "discovery_last_run_success_timestamp_seconds", nil)); got != 1_700_000_000.5 {
		t.Errorf("restored last success = %v, want 1700000000.5", got)
	}
}

func TestMetricsConcurrent(t *testing.T) {
	m := metrics.New()
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m.Request(fmt.Sprintf("projects/:id/e%d", i%5), 200, time.Millisecond)
				m.ProjectDone("complete", "ready")
				m.ScanError("server", fmt.Sprintf("step%d", w))
				m.QueueDepth(int64(i))
			}
		})
	}
	wg.Wait()
	mfs := scrape(t, m.Handler())
	var total float64
	for _, s := range mfs["gitlab_api_requests_total"].GetMetric() {
		total += value(s)
	}
	if total != workers*each {
		t.Errorf("requests = %v, want %d", total, workers*each)
	}
	if got := value(find(mfs, "discovery_projects_total", L{"status": "complete", "readiness": "ready"})); got != workers*each {
		t.Errorf("projects = %v, want %d", got, workers*each)
	}
}

// A fresh registry has the closed label sets at zero: no dashboard panel reads "No
// data" on a run without retries or errors, and increase() sees their first event.
func TestMetricsStartAtZero(t *testing.T) {
	mfs := scrape(t, metrics.New().Handler())
	var want []struct {
		name   string
		labels L
	}
	add := func(name string, labels L) {
		want = append(want, struct {
			name   string
			labels L
		}{name, labels})
	}
	for _, r := range metrics.RetryReasons {
		add("gitlab_api_retries_total", L{"reason": r})
	}
	for _, k := range metrics.ErrorKinds {
		add("discovery_errors_total", L{"type": k, "step": metrics.GroupStep})
	}
	add("discovery_groups_total", L{"status": "complete"})
	add("discovery_projects_total", L{"status": "complete", "readiness": "ready"})
	if len(want) != len(metrics.RetryReasons)+len(metrics.ErrorKinds)+2 || len(metrics.RetryReasons) == 0 || len(metrics.ErrorKinds) == 0 {
		t.Fatalf("label lists are empty: %v %v", metrics.RetryReasons, metrics.ErrorKinds)
	}
	for _, w := range want {
		s := find(mfs, w.name, w.labels)
		if s == nil {
			t.Errorf("%s%v missing before any event", w.name, w.labels)
			continue
		}
		if v := value(s); v != 0 {
			t.Errorf("%s%v = %v, want 0", w.name, w.labels, v)
		}
	}
}
