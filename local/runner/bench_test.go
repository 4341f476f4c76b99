package runner

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// BenchmarkScan runs a whole local discovery of a simulated estate and reports what is
// deterministic (API calls per project, export bytes per project) next to the speed.
func BenchmarkScan(b *testing.B) {
	cases := []struct {
		name   string
		faults gitlabsim.Faults
	}{
		{"clean", gitlabsim.Faults{}},
		{"faults", gitlabsim.Faults{ErrorRate: 0.05, MalformedRate: 0.01, ForbiddenRate: 0.05,
			ForbiddenEndpoints: []string{"projects/:id/hooks", "projects/:id/variables"}, DeletedRate: 0.01}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				benchScan(b, c.faults)
			}
		})
	}
}

func benchScan(b *testing.B, faults gitlabsim.Faults) {
	b.StopTimer()
	sim, err := gitlabsim.New(gitlabsim.Options{Seed: 1, Groups: 40, Projects: 2000, Token: "t", Faults: faults})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	defer ts.Close()
	dir := b.TempDir()
	cfg := config.Config{GitLabURL: ts.URL, Token: "t", DataDir: filepath.Join(dir, "data"), ExportDir: filepath.Join(dir, "exports"),
		MaxPerProjectCalls: 200, Concurrency: 16, RequestTimeout: 5 * time.Second}
	r, err := New(cfg, Options{Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), RetryDelay: time.Millisecond,
		GitLab: gitlab.Options{BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	b.StartTimer()
	run, err := r.Scan(context.Background())
	b.StopTimer()
	elapsed := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	projects := float64(len(sim.Truth().Projects))
	st := sim.Stats()
	var exportBytes int64
	files, _ := filepath.Glob(filepath.Join(cfg.ExportDir, "runs", run.ID, "*"))
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			exportBytes += fi.Size()
		}
	}
	b.ReportMetric(float64(st.Requests)/projects, "calls/project")
	b.ReportMetric(projects/elapsed.Seconds(), "projects/s")
	b.ReportMetric(float64(exportBytes)/projects, "export-B/project")
	b.StartTimer()
}
