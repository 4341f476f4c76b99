package gitlabsim

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
)

// Benchmarks run against a 100,000-project instance, built once.
var (
	bigOnce sync.Once
	bigSim  *Server
)

func big(b *testing.B) *Server {
	b.Helper()
	bigOnce.Do(func() {
		s, err := New(Options{Seed: 1, Groups: 2000, Projects: 100_000})
		if err != nil {
			b.Fatal(err)
		}
		bigSim = s
	})
	return bigSim
}

// serve runs one request through ServeHTTP and fails the benchmark on a non-200.
func serve(b *testing.B, s *Server, path string) {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("PRIVATE-TOKEN", "sim-token")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("%s: %d %s", path, w.Code, w.Body)
	}
}

// BenchmarkProjectDetail is the server time of GET /projects/:id?statistics=true.
func BenchmarkProjectDetail(b *testing.B) {
	s := big(b)
	paths := make([]string, 1024)
	for i := range paths {
		paths[i] = fmt.Sprintf("/api/v4/projects/%d?statistics=true", s.in.projects[(i*97)%len(s.in.projects)].id)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		serve(b, s, paths[i%len(paths)])
	}
}

// BenchmarkProjectDetailParallel is the same under concurrency: no global lock.
func BenchmarkProjectDetailParallel(b *testing.B) {
	s := big(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			serve(b, s, fmt.Sprintf("/api/v4/projects/%d?statistics=true", s.in.projects[(i*7919)%len(s.in.projects)].id))
			i++
		}
	})
}

// BenchmarkGroupProjectsPage is a page of 100 projects with statistics.
func BenchmarkGroupProjectsPage(b *testing.B) {
	s := big(b)
	var g *group
	for i := range s.in.groups {
		if g == nil || len(s.in.groups[i].projects) > len(g.projects) {
			g = &s.in.groups[i]
		}
	}
	path := fmt.Sprintf("/api/v4/groups/%d/projects?per_page=100&statistics=true&page=3", g.id)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		serve(b, s, path)
	}
}

// BenchmarkMergeRequestsPage is a page of 100 generated merge requests past the
// 10,000 cut-off.
func BenchmarkMergeRequestsPage(b *testing.B) {
	s := big(b)
	var p *project
	for i := range s.in.projects {
		if s.in.projects[i].count(cMRs) > 10000 {
			p = &s.in.projects[i]
			break
		}
	}
	path := fmt.Sprintf("/api/v4/projects/%d/merge_requests?per_page=100&page=105&state=all", p.id)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		serve(b, s, path)
	}
}

// BenchmarkCountPerPage1 is the scanner's counting request: per_page=1, read X-Total.
func BenchmarkCountPerPage1(b *testing.B) {
	s := big(b)
	path := fmt.Sprintf("/api/v4/projects/%d/pipelines?per_page=1", s.in.projects[len(s.in.projects)/2].id)
	b.ReportAllocs()
	for b.Loop() {
		serve(b, s, path)
	}
}

// BenchmarkBuild100k builds a 100,000-project instance and reports the live heap
// it holds afterwards (after a GC).
func BenchmarkBuild100k(b *testing.B) {
	var heap uint64
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := New(Options{Seed: 1, Groups: 2000, Projects: 100_000})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
		runtime.KeepAlive(s)
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(heap)/100_000, "heap-B/project")
}

// BenchmarkTruthStream100k writes the whole truth of 100,000 projects.
func BenchmarkTruthStream100k(b *testing.B) {
	s := big(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.writeTruth(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
