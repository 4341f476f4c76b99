//go:build unix

package e2e

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/mototest"
)

// start runs a harness for t, skipping when a tool is missing unless
// REQUIRE_INTEGRATION=1.
func start(t testing.TB, opts Options) *Harness {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts.Log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	h, err := Start(ctx, opts)
	if errors.Is(err, ErrNoRIE) || errors.Is(err, mototest.ErrNotInstalled) {
		if os.Getenv("REQUIRE_INTEGRATION") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestLambdaEndToEnd runs a whole discovery through the three functions under the
// Runtime Interface Emulator. One worker environment is killed in the middle of its
// first invocation: its messages come back after the visibility timeout, and the
// exports still equal the truth, without a duplicate row.
func TestLambdaEndToEnd(t *testing.T) {
	h := start(t, Options{Seed: 3, Groups: 12, Projects: 150, Workers: 2, Kill: true})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := h.Run(ctx)
	t.Log("\n" + rep.Summary())
	if err != nil {
		t.Fatalf("%v\n%s", err, lastLines(h.Output(), 60))
	}
	if len(rep.Diffs) > 0 {
		t.Fatalf("the exports differ from the truth:\n%s", strings.Join(rep.Diffs, "\n"))
	}
	if rep.SecondTrigger.Started || rep.SecondTrigger.RunID != rep.RunID || !strings.Contains(rep.SecondTrigger.Message, "already") {
		t.Errorf("a trigger during the run answered %+v, want a no-op naming run %s", rep.SecondTrigger, rep.RunID)
	}
	if rep.Killed != 1 || rep.Redelivered == 0 {
		t.Errorf("killed %d environments, %d records redelivered; want one kill whose batch came back", rep.Killed, rep.Redelivered)
	}
	truth := h.Simulator().Truth()
	if rep.Projects != len(truth.Projects) || rep.Groups != len(truth.Groups) {
		t.Errorf("exports hold %d groups and %d projects, want %d and %d", rep.Groups, rep.Projects, len(truth.Groups), len(truth.Projects))
	}
	if rep.RunAPICalls > rep.APICalls || rep.RunAPICalls == 0 {
		t.Errorf("the run counted %d API calls; the simulator served %d", rep.RunAPICalls, rep.APICalls)
	}
	for _, fn := range Functions {
		if len(rep.Durations) > 0 && rep.Durations[fn] == 0 {
			t.Errorf("no REPORT duration measured for %s", fn)
		}
	}

	// A second run diffs against the first.
	rep2, err := h.Run(ctx)
	if err != nil || len(rep2.Diffs) > 0 {
		t.Fatalf("second run: %v %v\n%s", err, rep2.Diffs, rep2.Summary())
	}
	if !slices.Contains(rep2.Files, export.RunPrefix(rep2.RunID)+export.DiffJSON) {
		t.Errorf("second run's exports %v have no %s", rep2.Files, export.DiffJSON)
	}

	out := h.Output()
	for _, metric := range []string{`"gitlab_api_requests_total"`, `"discovery_projects_total"`, `"discovery_run_in_progress"`} {
		if !strings.Contains(out, metric) {
			t.Errorf("no EMF line for %s in the functions' output", metric)
		}
	}
}

// BenchmarkLambdaRun measures whole runs through the functions: projects a second,
// GitLab requests, DynamoDB writes and worker time per project (the inputs of
// docs/DEPLOY.md's cost figures). go test -run '^$' -bench LambdaRun ./e2e/
func BenchmarkLambdaRun(b *testing.B) {
	b.Setenv("FULL_SCAN_EVERY", "0") // every run a full one: incremental runs have their own figures
	h := start(b, Options{Seed: 5, Groups: 30, Projects: 500, Workers: 2, BatchSize: 1,
		Visibility: 40 * time.Second, WorkerTimeout: 30 * time.Second})
	ctx := context.Background()
	var projects, calls, writes int64
	var worker time.Duration
	for b.Loop() {
		rep, err := h.Run(ctx)
		if err != nil || len(rep.Diffs) > 0 {
			b.Fatalf("%v %v", err, rep.Diffs)
		}
		projects += int64(rep.Projects)
		calls += rep.APICalls
		writes += rep.AWSRequests["dynamodb.PutItem"] + rep.AWSRequests["dynamodb.UpdateItem"] + rep.AWSRequests["dynamodb.TransactWriteItems"]
		worker += rep.Durations["worker"]
	}
	b.ReportMetric(float64(projects)/b.Elapsed().Seconds(), "projects/s")
	b.ReportMetric(float64(calls)/float64(projects), "gitlab-calls/project")
	b.ReportMetric(float64(writes)/float64(projects), "ddb-writes/project")
	b.ReportMetric(float64(worker.Milliseconds())/float64(projects), "worker-ms/project")
}

// BenchmarkLambdaIncremental runs a 2,000-project estate three times through the
// functions, as the schedule would: first, again unchanged, and after the simulator
// changed 10% of the projects; it reports each run's GitLab requests per project.
// go test -run '^$' -bench LambdaIncremental ./e2e/
func BenchmarkLambdaIncremental(b *testing.B) {
	h := start(b, Options{Seed: 1, Groups: 40, Projects: 2000, Workers: 2, BatchSize: 4,
		Visibility: 40 * time.Second, WorkerTimeout: 30 * time.Second})
	ctx := context.Background()
	for b.Loop() {
		var per [3]float64
		for i := range per {
			if i == 2 {
				h.Simulator().Change(0.1, int64(b.N))
			}
			rep, err := h.Run(ctx)
			if err != nil || len(rep.Diffs) > 0 {
				b.Fatalf("run %d: %v %v", i, err, rep.Diffs)
			}
			per[i] = float64(rep.APICalls) / float64(rep.Projects)
		}
		b.ReportMetric(per[0], "first-calls/project")
		b.ReportMetric(per[1], "unchanged-calls/project")
		b.ReportMetric(per[2], "10%-changed-calls/project")
	}
}

// TestLambdaHonoursSettings checks that documented settings take effect in Lambda:
// runs are incremental by default, so a second run of the unchanged estate carries
// every project over (at most 5% of the first run's GitLab requests) and, after the
// simulator changes 10% of the projects, a third profiles only those (the exports
// still equal the truth); and RATE_LIMIT_ENDPOINTS holds an endpoint class to its
// limit across both worker environments, counted at the simulator.
func TestLambdaHonoursSettings(t *testing.T) {
	const class, limit = "projects/:id/hooks", 50 // one request per project: 60 > 50
	t.Setenv("RATE_LIMIT_ENDPOINTS", class+"="+strconv.Itoa(limit))
	// A page of a group waits on the class's limit (1.2 s a project): the worker needs
	// a timeout longer than the harness's default 8 s, as in production (15 min).
	h := start(t, Options{Seed: 5, Groups: 6, Projects: 60, Workers: 2, WorkerTimeout: time.Minute, Visibility: 90 * time.Second})
	// The limit makes the first run last over a minute; a loaded machine needs more.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	first, err := h.Run(ctx)
	if err != nil || len(first.Diffs) > 0 {
		t.Fatalf("first run: %v %v\n%s", err, first.Diffs, first.Summary())
	}
	if got := first.PeakPerMinuteByClass[class]; got == 0 || got > limit {
		t.Errorf("%s: %d requests in the busiest minute, want 1..%d\n%s", class, got, limit, first.Summary())
	}
	second, err := h.Run(ctx)
	if err != nil || len(second.Diffs) > 0 {
		t.Fatalf("second run: %v %v\n%s", err, second.Diffs, second.Summary())
	}
	t.Logf("GitLab requests: first run %d, second run %d (%.1f%%)", first.APICalls, second.APICalls,
		100*float64(second.APICalls)/float64(first.APICalls))
	if second.APICalls*20 > first.APICalls {
		t.Errorf("second run made %d GitLab requests, want at most 5%% of the first's %d", second.APICalls, first.APICalls)
	}

	ch := h.Simulator().Change(0.1, 1)
	third, err := h.Run(ctx)
	if err != nil || len(third.Diffs) > 0 {
		t.Fatalf("run after changing %d projects: %v %v\n%s", len(ch.Changed), err, third.Diffs, third.Summary())
	}
	// The changed projects cost a full profile each; the others, the listing.
	perProject := float64(first.APICalls-second.APICalls) / float64(first.Projects)
	want := float64(second.APICalls) + perProject*float64(len(ch.Changed))
	t.Logf("after changing %d projects: %d GitLab requests, about %.0f expected", len(ch.Changed), third.APICalls, want)
	if got := float64(third.APICalls); got < 0.75*want || got > 1.25*want {
		t.Errorf("after changing %d projects the run made %d GitLab requests, want about %.0f", len(ch.Changed), third.APICalls, want)
	}
}
