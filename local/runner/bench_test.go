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

// BenchmarkIncremental runs a 2,000-project estate three times, as a schedule would:
// first (every project profiled), again unchanged (every project carried over), and
// after the simulator changed 10% of the projects. It reports the API calls per
// project of each run, served by the simulator, and how far the progress line's ETA
// strayed from the truth during the first run once 10% was done (the predicted length
// of the run, elapsed + ETA, against its real length).
func BenchmarkIncremental(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		sim, err := gitlabsim.New(gitlabsim.Options{Seed: 1, Groups: 40, Projects: 2000, Token: "t"})
		if err != nil {
			b.Fatal(err)
		}
		ts := httptest.NewServer(sim)
		dir := b.TempDir()
		cfg := config.Config{GitLabURL: ts.URL, Token: "t", DataDir: filepath.Join(dir, "data"), ExportDir: filepath.Join(dir, "exports"),
			MaxPerProjectCalls: 200, Concurrency: 16, RequestTimeout: 5 * time.Second, FullScanEvery: 7 * 24 * time.Hour}
		r, err := New(cfg, Options{Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), RetryDelay: time.Millisecond,
			GitLab: gitlab.Options{BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}})
		if err != nil {
			b.Fatal(err)
		}
		projects := float64(len(sim.Truth().Projects))
		scan := func(watch bool) (perProject, etaErr float64) {
			before := sim.Stats().Requests
			stop := func() float64 { return 0 }
			if watch {
				stop = watchETA(r.Progress)
			}
			b.StartTimer()
			_, err := r.Scan(context.Background())
			b.StopTimer()
			etaErr = stop()
			if err != nil {
				b.Fatal(err)
			}
			return float64(sim.Stats().Requests-before) / projects, etaErr
		}
		first, etaErr := scan(true)
		unchanged, _ := scan(false)
		sim.Change(0.1, 1)
		changed, _ := scan(false)
		r.Close()
		ts.Close()
		b.ReportMetric(first, "first-calls/project")
		b.ReportMetric(unchanged, "unchanged-calls/project")
		b.ReportMetric(changed, "10%-changed-calls/project")
		b.ReportMetric(etaErr, "eta-max-err-%")
		b.StartTimer()
	}
}

// watchETA samples the progress line until the returned function is called, which
// returns the largest error, in percent, of the time to the last project it predicted
// (elapsed + ETA) once 10% of the projects were done, against the real one.
func watchETA(p *Progress) func() float64 {
	var predicted []time.Duration
	var finished time.Duration // elapsed when the last project was done
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s := p.Snapshot()
				eta, ok := s.ETA()
				switch {
				case !ok || s.Total == 0 || finished > 0:
				case s.Projects >= s.Total:
					finished = s.Elapsed
				case s.Projects*10 >= s.Total:
					predicted = append(predicted, s.Elapsed+eta)
				}
			}
		}
	}()
	return func() float64 {
		close(done)
		<-stopped
		if finished == 0 {
			finished = p.Snapshot().Elapsed
		}
		worst := 0.0
		for _, d := range predicted {
			worst = max(worst, 100*abs(float64(d-finished))/float64(finished))
		}
		return worst
	}
}

func abs(f float64) float64 { return max(f, -f) }
