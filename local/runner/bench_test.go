package runner

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// BenchmarkScan runs a whole local discovery of a simulated estate and reports what is
// deterministic (API calls per project, in all and through GraphQL, export bytes per
// project) next to the speed, for each GITLAB_API: rest, and graphql (what auto
// chooses on a GitLab that answers GraphQL). "5xx+malformed" is the fault mix
// (5% 5xx, 1% malformed bodies); "faults" adds forbidden and deleted projects.
func BenchmarkScan(b *testing.B) {
	cases := []struct {
		name    string
		faults  gitlabsim.Faults
		members bool // INCLUDE_MEMBERS
	}{
		{"clean", gitlabsim.Faults{}, false},
		{"5xx+malformed", gitlabsim.Faults{ErrorRate: 0.05, MalformedRate: 0.01}, false},
		{"faults", gitlabsim.Faults{ErrorRate: 0.05, MalformedRate: 0.01, ForbiddenRate: 0.05,
			ForbiddenEndpoints: []string{"projects/:id/hooks", "projects/:id/variables"}, DeletedRate: 0.01}, false},
		{"members", gitlabsim.Faults{}, true},
	}
	for _, api := range []string{"rest", "graphql"} {
		for _, c := range cases {
			b.Run(api+"/"+c.name, func(b *testing.B) {
				for b.Loop() {
					benchScan(b, api, c.faults, c.members)
				}
			})
		}
	}
}

func benchScan(b *testing.B, api string, faults gitlabsim.Faults, members bool) {
	b.StopTimer()
	sim, err := gitlabsim.New(gitlabsim.Options{Seed: 1, Groups: 40, Projects: 2000, Token: "t", Faults: faults})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	defer ts.Close()
	dir := b.TempDir()
	cfg := config.Config{GitLabURL: ts.URL, Token: "t", DataDir: filepath.Join(dir, "data"), ExportDir: filepath.Join(dir, "exports"),
		MaxPerProjectCalls: 200, Concurrency: 16, RequestTimeout: 5 * time.Second, API: api, IncludeMembers: members}
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
	b.ReportMetric(float64(st.ByClass[gitlab.GraphQLClass])/projects, "graphql-calls/project")
	b.ReportMetric(projects/elapsed.Seconds(), "projects/s")
	b.ReportMetric(float64(exportBytes)/projects, "export-B/project")
	b.Logf("calls per project by endpoint class: %s", byClass(st.ByClass, projects))
	b.StartTimer()
}

// byClass lists the endpoint classes served, most requests first, per project: where
// the calls go (docs/BENCHMARKS.md).
func byClass(counts map[string]int64, projects float64) string {
	classes := slices.Collect(maps.Keys(counts))
	slices.SortFunc(classes, func(a, b string) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b)) })
	parts := make([]string, 0, len(classes))
	for _, c := range classes {
		parts = append(parts, fmt.Sprintf("%s %.3f", c, float64(counts[c])/projects))
	}
	return strings.Join(parts, ", ")
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

// BenchmarkPace scans simulated estates with the DEFAULT settings (only GITLAB_URL,
// GITLAB_TOKEN and the directories set) and reports how well the pace uses what
// GitLab allows (docs/BENCHMARKS.md, "Pacing"):
//
//   - announced=N: the simulator announces and enforces N requests a minute.
//     share-of-limit is calls per minute over N; x-ideal is the scan's time over
//     calls ÷ N (the bar: at most 1.1); self-429s are the 429s it answered (no fault
//     injects any).
//   - quiet: no RateLimit header and no limit, 20 ms added to every answer.
//     share-of-concurrency is the throughput over CONCURRENT_REQUESTS ÷ 20 ms (the
//     bar: at least 0.9); with 5% of 5xx the scan must back off and still finish.
//     The unpaced cases (RATE_LIMIT_RPM=0: no pace of our own) are the same scans
//     without the adaptive pace, to tell its cost from the machine's.
//
// Estates are sized so one case takes about 30–50 s.
func BenchmarkPace(b *testing.B) {
	const latency = 20 * time.Millisecond
	quiet := gitlabsim.Options{Faults: gitlabsim.Faults{Latency: latency}}
	errors := gitlabsim.Options{Faults: gitlabsim.Faults{Latency: latency, ErrorRate: 0.05}}
	unpaced := map[string]string{"RATE_LIMIT_RPM": "0"}
	cases := []struct {
		name     string
		projects int
		opts     gitlabsim.Options
		env      map[string]string // beyond the defaults
	}{
		// Sized for GraphQL's 4 calls a project (the default on a GitLab that
		// answers it); a shorter scan would measure its start and end more than its pace.
		{"announced=600", 120, gitlabsim.Options{RateLimitRPM: 600}, nil},
		{"announced=3000", 450, gitlabsim.Options{RateLimitRPM: 3000}, nil},
		{"announced=20000", 3000, gitlabsim.Options{RateLimitRPM: 20000}, nil},
		{"quiet/latency=20ms", 3000, quiet, nil},
		{"quiet/latency=20ms/unpaced", 3000, quiet, unpaced},
		{"quiet/latency=20ms,5xx=5%", 1800, errors, nil},
		{"quiet/latency=20ms,5xx=5%/unpaced", 1800, errors, unpaced},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				benchPace(b, c.projects, c.opts, c.env, latency)
			}
		})
	}
}

func benchPace(b *testing.B, projects int, opts gitlabsim.Options, env map[string]string, latency time.Duration) {
	b.StopTimer()
	opts.Seed, opts.Groups, opts.Projects, opts.Token = 1, max(4, projects/25), projects, "t"
	sim, err := gitlabsim.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	defer ts.Close()
	dir := b.TempDir()
	for k, v := range map[string]string{"GITLAB_URL": ts.URL, "GITLAB_TOKEN": "t",
		"DATA_DIR": filepath.Join(dir, "data"), "EXPORT_DIR": filepath.Join(dir, "exports")} {
		b.Setenv(k, v)
	}
	for k, v := range env {
		b.Setenv(k, v)
	}
	cfg, err := config.FromEnv()
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(cfg, Options{Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	b.StartTimer()
	run, err := r.Scan(ctx)
	b.StopTimer()
	elapsed := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if run.Status != inventory.RunSucceeded {
		b.Fatalf("run %s", run.Status)
	}
	st := sim.Stats()
	calls := float64(st.Requests)
	perMinute := calls / elapsed.Minutes()
	b.ReportMetric(calls, "calls")
	b.ReportMetric(perMinute, "calls/min")
	if opts.RateLimitRPM > 0 {
		limit := float64(opts.RateLimitRPM)
		b.ReportMetric(perMinute/limit, "share-of-limit")
		b.ReportMetric(elapsed.Minutes()/(calls/limit), "x-ideal")
		b.ReportMetric(float64(st.Throttled), "self-429s")
		b.ReportMetric(float64(st.PeakPerMinute), "peak-calls/min")
	} else {
		ceiling := float64(cfg.Concurrency) / latency.Seconds()
		b.ReportMetric(calls/elapsed.Seconds()/ceiling, "share-of-concurrency")
		b.ReportMetric(float64(st.Faults), "5xx")
	}
	b.StartTimer()
}
