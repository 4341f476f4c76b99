package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/metrics"
)

// The client calls Request once per GitLab API call, from every worker.
func BenchmarkMetricsRequest(b *testing.B) {
	m := metrics.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("projects/:id/merge_requests", 200, 120*time.Millisecond)
		}
	})
}

func BenchmarkEMFRequest(b *testing.B) {
	e := metrics.NewEMF(io.Discard, "DiscoveryAgent")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.Request("projects/:id/merge_requests", 200, 120*time.Millisecond)
		}
	})
}

// A scrape with every endpoint class in use, as Prometheus does every 15s.
func BenchmarkScrape(b *testing.B) {
	m := metrics.New()
	for _, ep := range []string{"groups/:id", "groups/:id/subgroups", "groups/:id/projects", "projects/:id",
		"projects/:id/repository/branches", "projects/:id/repository/tags", "projects/:id/repository/tree",
		"projects/:id/merge_requests", "projects/:id/issues", "projects/:id/pipelines", "projects/:id/releases",
		"projects/:id/hooks", "projects/:id/protected_branches", "projects/:id/variables", "projects/:id/packages",
		"projects/:id/registry/repositories", "projects/:id/repository/files/:path/raw"} {
		for _, status := range []int{200, 403, 404, 429, 500, 0} {
			m.Request(ep, status, 100*time.Millisecond)
		}
	}
	h := m.Handler()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// Flush of a Lambda invocation that made 1,000 requests over 3 endpoint classes.
func BenchmarkEMFFlush(b *testing.B) {
	e := metrics.NewEMF(io.Discard, "DiscoveryAgent")
	b.ReportAllocs()
	for b.Loop() {
		for i := range 1000 {
			e.Request([]string{"projects/:id", "groups/:id/projects", "projects/:id/hooks"}[i%3], 200, time.Duration(i)*time.Millisecond)
		}
		if err := e.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
