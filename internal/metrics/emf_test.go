package metrics_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/metrics"
)

// emfPoint is one metric value read back from an EMF line.
type emfPoint struct {
	Name   string
	Unit   string
	Dims   map[string]string
	Values []float64
	RunID  string
}

// parseEMF checks every line against the EMF specification's rules that matter to
// CloudWatch and returns the declared metrics with their values.
func parseEMF(t *testing.T, out []byte) []emfPoint {
	t.Helper()
	var points []emfPoint
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var root map[string]json.RawMessage
		if err := json.Unmarshal(line, &root); err != nil {
			t.Fatalf("line is not a JSON object: %v: %s", err, line)
		}
		var aws struct {
			Timestamp         *int64 `json:"Timestamp"`
			CloudWatchMetrics []struct {
				Namespace  string     `json:"Namespace"`
				Dimensions [][]string `json:"Dimensions"`
				Metrics    []struct {
					Name string `json:"Name"`
					Unit string `json:"Unit"`
				} `json:"Metrics"`
			} `json:"CloudWatchMetrics"`
		}
		if err := json.Unmarshal(root["_aws"], &aws); err != nil {
			t.Fatalf("_aws: %v: %s", err, line)
		}
		if aws.Timestamp == nil || *aws.Timestamp < time.Now().Add(-time.Hour).UnixMilli() {
			t.Fatalf("_aws.Timestamp missing or not in milliseconds: %s", line)
		}
		if len(aws.CloudWatchMetrics) == 0 {
			t.Fatalf("no CloudWatchMetrics directive: %s", line)
		}
		var runID string
		if raw, ok := root["run_id"]; ok {
			if err := json.Unmarshal(raw, &runID); err != nil {
				t.Fatalf("run_id: %v", err)
			}
		}
		for _, d := range aws.CloudWatchMetrics {
			if d.Namespace == "" || len(d.Dimensions) == 0 || len(d.Metrics) == 0 || len(d.Metrics) > 100 {
				t.Fatalf("bad directive: %s", line)
			}
			dims := map[string]string{}
			for _, set := range d.Dimensions {
				if len(set) > 30 {
					t.Fatalf("dimension set over 30: %s", line)
				}
				for _, k := range set {
					var v string
					if err := json.Unmarshal(root[k], &v); err != nil || v == "" {
						t.Fatalf("dimension %q is not a non-empty string member: %s", k, line)
					}
					dims[k] = v
				}
			}
			for _, m := range d.Metrics {
				p := emfPoint{Name: m.Name, Unit: m.Unit, Dims: dims, RunID: runID}
				raw := root[m.Name]
				var one float64
				if err := json.Unmarshal(raw, &one); err == nil {
					p.Values = []float64{one}
				} else if err := json.Unmarshal(raw, &p.Values); err != nil || len(p.Values) == 0 || len(p.Values) > 100 {
					t.Fatalf("metric %q is not a number or 1..100 numbers: %s", m.Name, line)
				}
				points = append(points, p)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return points
}

// pick returns the points of a metric whose dimensions equal dims.
func pick(points []emfPoint, name string, dims map[string]string) []emfPoint {
	var out []emfPoint
	for _, p := range points {
		if p.Name != name || len(p.Dims) != len(dims) {
			continue
		}
		match := true
		for k, v := range dims {
			if p.Dims[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, p)
		}
	}
	return out
}

func TestEMFFlush(t *testing.T) {
	var out bytes.Buffer
	e := metrics.NewEMF(&out, "DiscoveryAgent")
	e.RunStarted("run-42")
	e.Request("projects/:id", 200, 40*time.Millisecond)
	e.Request("projects/:id", 200, 60*time.Millisecond)
	e.Request("projects/:id", 503, 2*time.Second)
	e.Request("/api/v4/projects/7", 0, time.Second)
	e.Retry("5xx")
	e.RateLimitRemaining(10)
	e.RateLimitRemaining(9) // the last value wins
	e.EffectiveRPM(1900)
	e.GroupDone("complete")
	e.GroupDone("complete")
	e.ProjectDone("forbidden", "")
	e.ScanError("forbidden", "file:ci/a.yml")
	e.QueueDepth(5)
	e.SetBudgetTokens(100)
	e.SetDeadLetters(1)
	e.RunFinished(true, 90*time.Second)
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	points := parseEMF(t, out.Bytes())

	for _, tc := range []struct {
		name string
		dims map[string]string
		unit string
		want []float64
	}{
		{"gitlab_api_requests_total", L{"endpoint": "projects/:id", "status_code": "200"}, "Count", []float64{2}},
		{"gitlab_api_requests_total", L{"endpoint": "projects/:id", "status_code": "503"}, "Count", []float64{1}},
		{"gitlab_api_requests_total", L{"endpoint": "other", "status_code": "0"}, "Count", []float64{1}},
		{"gitlab_api_request_duration_seconds", L{"endpoint": "projects/:id"}, "Seconds", []float64{0.04, 0.06, 2}},
		{"gitlab_api_retries_total", L{"reason": "5xx"}, "Count", []float64{1}},
		{"gitlab_api_rate_limit_remaining", L{}, "None", []float64{9}},
		{"discovery_rate_limit_effective_rpm", L{}, "None", []float64{1900}},
		{"discovery_groups_total", L{"status": "complete"}, "Count", []float64{2}},
		{"discovery_projects_total", L{"status": "forbidden", "readiness": "none"}, "Count", []float64{1}},
		{"discovery_errors_total", L{"type": "forbidden", "step": "file:other"}, "Count", []float64{1}},
		{"discovery_queue_depth", L{}, "None", []float64{5}},
		{"discovery_budget_tokens_available", L{}, "None", []float64{100}},
		{"discovery_dead_letter_messages", L{}, "None", []float64{1}},
		{"discovery_run_in_progress", L{}, "None", []float64{0}},
		{"discovery_run_duration_seconds", L{}, "Seconds", []float64{90}},
	} {
		t.Run(fmt.Sprint(tc.name, tc.dims), func(t *testing.T) {
			got := pick(points, tc.name, tc.dims)
			if len(got) != 1 {
				t.Fatalf("%d lines for %s%v, want 1", len(got), tc.name, tc.dims)
			}
			if got[0].Unit != tc.unit {
				t.Errorf("unit = %q, want %q", got[0].Unit, tc.unit)
			}
			if !slices.Equal(got[0].Values, tc.want) {
				t.Errorf("values = %v, want %v", got[0].Values, tc.want)
			}
			if got[0].RunID != "run-42" {
				t.Errorf("run_id = %q, want run-42", got[0].RunID)
			}
		})
	}
	last := pick(points, "discovery_last_run_success_timestamp_seconds", L{})
	if len(last) != 1 || math.Abs(last[0].Values[0]-float64(time.Now().Unix())) > 60 {
		t.Errorf("last success = %+v, want now", last)
	}

	// Counters restart and gauges are not repeated.
	out.Reset()
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("second Flush wrote %q, want nothing", out.String())
	}
	e.GroupDone("complete")
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	got := pick(parseEMF(t, out.Bytes()), "discovery_groups_total", L{"status": "complete"})
	if len(got) != 1 || got[0].Values[0] != 1 {
		t.Errorf("groups after restart = %+v, want one line of 1", got)
	}
}

func TestEMFSplitsLongValueArrays(t *testing.T) {
	var out bytes.Buffer
	e := metrics.NewEMF(&out, "DiscoveryAgent")
	const n = 250
	for i := range n {
		e.Request("groups/:id/projects", 200, time.Duration(i)*time.Millisecond)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := pick(parseEMF(t, out.Bytes()), "gitlab_api_request_duration_seconds", L{"endpoint": "groups/:id/projects"})
	var all []float64
	for _, l := range lines {
		all = append(all, l.Values...)
	}
	if len(lines) != 3 || len(all) != n {
		t.Errorf("%d lines with %d values, want 3 lines with %d", len(lines), len(all), n)
	}
}

func TestEMFDropsNonFiniteGauges(t *testing.T) {
	var out bytes.Buffer
	e := metrics.NewEMF(&out, "DiscoveryAgent")
	e.SetBudgetTokens(math.Inf(1))
	e.SetBudgetTokens(math.NaN())
	e.QueueDepth(3)
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	points := parseEMF(t, out.Bytes())
	if len(pick(points, "discovery_budget_tokens_available", L{})) != 0 {
		t.Error("a non-finite gauge was written")
	}
	if len(pick(points, "discovery_queue_depth", L{})) != 1 {
		t.Error("the finite gauge was not written")
	}
}

type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestEMFFlushWriteError(t *testing.T) {
	e := metrics.NewEMF(failingWriter{}, "DiscoveryAgent")
	if err := e.Flush(); err != nil {
		t.Fatalf("empty Flush = %v, want nil (nothing to write)", err)
	}
	e.Retry("429")
	if err := e.Flush(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Flush = %v, want the writer's error", err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent Flushes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestEMFConcurrent(t *testing.T) {
	var out syncBuffer
	e := metrics.NewEMF(&out, "DiscoveryAgent")
	const workers, each = 8, 300
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range each {
				e.Request("projects/:id", 200, time.Millisecond)
				e.ProjectDone("complete", "ready")
				e.QueueDepth(int64(i))
				if i%50 == 0 {
					if err := e.Flush(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	var requests, durations float64
	for _, p := range parseEMF(t, out.b.Bytes()) {
		switch p.Name {
		case "gitlab_api_requests_total":
			requests += p.Values[0]
		case "gitlab_api_request_duration_seconds":
			durations += float64(len(p.Values))
		}
	}
	if requests != workers*each || durations != workers*each {
		t.Errorf("requests %v, durations %v over all Flushes, want %d each", requests, durations, workers*each)
	}
	if strings.Count(out.b.String(), "\n") == 0 {
		t.Error("nothing written")
	}
}
