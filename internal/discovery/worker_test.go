package discovery_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/filestore"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
	"github.com/gl2gh/discovery-agent/internal/work"
)

func newWorker(t *testing.T) (*discovery.Worker, *filestore.Store) {
	t.Helper()
	sim, err := gitlabsim.New(gitlabsim.Options{Seed: 1, Groups: 3, Projects: 10, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	st, err := filestore.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	return &discovery.Worker{Store: st, Queue: st.Queue(), GitLab: gl, Sink: export.DirSink{Dir: t.TempDir()},
		Thresholds: readiness.DefaultThresholds()}, st
}

func receive(t *testing.T, q *filestore.Queue) work.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ds, err := q.Receive(ctx, 1)
	if err != nil {
		t.Fatalf("nothing queued: %v", err)
	}
	if err := q.Ack(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	return ds[0].Msg
}

// A worker that died after marking its message done but before queueing the export
// must not strand the run: the redelivered message queues the export.
func TestRedeliveredLastMessageQueuesExport(t *testing.T) {
	w, st := newWorker(t)
	ctx := context.Background()
	run := inventory.Run{ID: "r1", Status: inventory.RunRunning, StartedAt: time.Now()}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	m := work.Message{Kind: work.KindGroup, RunID: "r1", GroupID: 1, GroupPath: "g"}
	if err := st.AddPending(ctx, "r1", m.Key()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Done(ctx, "r1", m.Key()); err != nil { // ... and then the process died
		t.Fatal(err)
	}
	if err := w.Handle(ctx, m, false); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, st.Queue()); got.Kind != work.KindExport || got.RunID != "r1" {
		t.Fatalf("queued %+v, want the export of r1", got)
	}
	if err := w.Handle(ctx, work.Message{Kind: work.KindExport, RunID: "r1"}, false); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.GetRun(ctx, "r1"); r.Status != inventory.RunSucceeded {
		t.Fatalf("run %s after export, want succeeded", r.Status)
	}
}

func TestExportWaitsForPendingGroups(t *testing.T) {
	w, st := newWorker(t)
	ctx := context.Background()
	if err := st.CreateRun(ctx, inventory.Run{ID: "r2", Status: inventory.RunRunning, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddPending(ctx, "r2", "group:5:1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Handle(ctx, work.Message{Kind: work.KindExport, RunID: "r2"}, false); err == nil {
		t.Fatal("an export with a group still pending succeeded")
	}
	if r, _ := st.GetRun(ctx, "r2"); r.Status != inventory.RunRunning {
		t.Fatalf("run %s, want still running", r.Status)
	}
}

func TestMalformedMessages(t *testing.T) {
	w, _ := newWorker(t)
	tests := []work.Message{
		{Kind: "bogus", RunID: "r"},
		{Kind: work.KindGroup},
		{Kind: work.KindGroup, RunID: "r"},
		{Kind: work.KindGroup, RunID: "no-such-run", GroupID: 3},
	}
	for _, m := range tests {
		if err := w.Handle(context.Background(), m, true); !errors.Is(err, work.ErrMalformed) {
			t.Errorf("Handle(%+v) = %v, want ErrMalformed", m, err)
		}
	}
}

// A message whose deadline is too near to scan even one page is delivered again rather
// than continued under its own key (which would be dropped as a duplicate).
func TestDeadlineTooNearForAPage(t *testing.T) {
	w, st := newWorker(t)
	w.DeadlineMargin = time.Hour
	ctx := context.Background()
	if err := st.CreateRun(ctx, inventory.Run{ID: "r3", Status: inventory.RunRunning, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	m := work.Message{Kind: work.KindGroup, RunID: "r3", GroupID: 10, GroupPath: "platform"} // the simulator's first group
	if err := st.AddPending(ctx, "r3", m.Key()); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := w.Handle(dctx, m, false); err == nil || !strings.Contains(err.Error(), "deadline too near") {
		t.Fatalf("Handle = %v, want a deadline error without scanning a page", err)
	}
	if done, _ := st.IsDone(ctx, "r3", m.Key()); done {
		t.Fatal("the message was completed without its group being scanned")
	}
}

// failingQueue refuses every message, as an unreachable SQS would.
type failingQueue struct{}

func (failingQueue) Send(context.Context, ...work.Message) error { return errors.New("queue down") }

func TestSchedulerFailsARunItCannotQueue(t *testing.T) {
	w, st := newWorker(t)
	s := &discovery.Scheduler{Store: st, Queue: failingQueue{}, GitLab: w.GitLab, RootGroups: []string{"platform"}}
	run, _, err := s.Start(context.Background())
	if err == nil {
		t.Fatal("Start succeeded with a queue that refuses messages")
	}
	got, gerr := st.GetRun(context.Background(), run.ID)
	if gerr != nil || got.Status != inventory.RunFailed {
		t.Fatalf("run %+v (%v), want failed", got, gerr)
	}
	if _, active, _ := st.ActiveRun(context.Background()); active {
		t.Fatal("the failed run still blocks the next one")
	}
}

// A personal-projects walk that nears its deadline after a page continues in a new
// message from its cursor, and the two messages together store every personal project.
func TestPersonalWalkContinuesBeforeTheDeadline(t *testing.T) {
	sim, err := gitlabsim.New(gitlabsim.Options{Seed: 4, Groups: 4, Projects: 80, Users: 4, PersonalProjects: 30, Token: "t",
		Faults: gitlabsim.Faults{Latency: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	defer ts.Close()
	w, st := newWorker(t)
	gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	w.GitLab = gl
	w.API = discovery.APIREST // about 12 requests a project: the first page is slow enough
	ctx := context.Background()
	if err := st.CreateRun(ctx, inventory.Run{ID: "p", Status: inventory.RunRunning, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	first := work.Message{Kind: work.KindPersonal, RunID: "p"}
	if err := st.AddPending(ctx, "p", first.Key()); err != nil {
		t.Fatal(err)
	}
	// 10.5 s to the deadline, a 10 s margin: the first page (over a second at 50 ms a
	// request) starts, and by its end the margin says continue in another message.
	w.DeadlineMargin = 10 * time.Second
	dctx, cancel := context.WithTimeout(ctx, 10500*time.Millisecond)
	defer cancel()
	if err := w.Handle(dctx, first, false); err != nil {
		t.Fatal(err)
	}
	next := receive(t, st.Queue())
	if next.Kind != work.KindPersonal || next.After == 0 || next.Hops != first.Hops+1 {
		t.Fatalf("queued %+v, want a personal continuation with a cursor, one hop further", next)
	}
	w.DeadlineMargin = 0
	if err := w.Handle(ctx, next, false); err != nil {
		t.Fatal(err)
	}
	truth := sim.Truth()
	inGroup := map[int64]bool{}
	for _, g := range truth.Groups {
		inGroup[g.ID] = true
	}
	want := map[int64]bool{}
	for _, p := range truth.Projects {
		if !inGroup[p.GroupID] {
			want[p.ID] = true
		}
	}
	stored := 0
	err = st.Projects(ctx, "p", func(p inventory.Project) error {
		if !want[p.ID] {
			t.Errorf("project %d (%s) is not personal but the personal walk stored it", p.ID, p.PathWithNamespace)
		}
		stored++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored != len(want) || len(want) != 30 {
		t.Errorf("%d personal projects stored, the truth has %d (want 30)", stored, len(want))
	}
	if n, _ := st.Pending(ctx, "p"); n != 0 {
		t.Errorf("pending = %d after both messages, want 0", n)
	}
}

// A page resumed after a crash profiles only the projects the crashed delivery did not
// store; a first delivery asks the store nothing per project.
func TestResumedPageSkipsStoredProjects(t *testing.T) {
	sim, err := gitlabsim.New(gitlabsim.Options{Seed: 1, Groups: 1, Projects: 30, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	defer ts.Close()
	w, st := newWorker(t)
	if w.GitLab, err = gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{})}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	truth := sim.Truth()
	g := truth.Groups[0]
	m := work.Message{Kind: work.KindGroup, RunID: "c", GroupID: g.ID, GroupPath: g.FullPath}
	if err := st.CreateRun(ctx, inventory.Run{ID: "c", Status: inventory.RunRunning, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddPending(ctx, "c", m.Key()); err != nil {
		t.Fatal(err)
	}
	// The crashed delivery had started page 1 and stored 12 projects.
	if err := st.SaveCheckpoint(ctx, "c", m.Key(), 1); err != nil {
		t.Fatal(err)
	}
	for _, p := range truth.Projects[:12] {
		if err := st.PutProject(ctx, "c", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Handle(ctx, m, false); err != nil {
		t.Fatal(err)
	}
	if got, want := sim.Stats().ByClass["projects/:id/hooks"], int64(len(truth.Projects)-12); got != want {
		t.Errorf("hooks counted for %d projects, want %d (the ones not stored before)", got, want)
	}
	n := 0
	if err := st.Projects(ctx, "c", func(inventory.Project) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != len(truth.Projects) {
		t.Errorf("%d projects stored, want %d", n, len(truth.Projects))
	}
}

// A page the deadline overtakes part-way (a slow GitLab, a long 429 pause) is not
// killed with it: the page stops at its soft deadline, half the margin before the
// real one, and continues in a message for the same page, one hop and one resume
// further, which skips the projects stored; together they store every project once.
func TestSlowPageContinuesInsideThePage(t *testing.T) {
	for _, tt := range []struct {
		api     string
		latency time.Duration
		class   string // asked once a project profiled
	}{
		// About 12 requests a project through REST, 5 through GraphQL (a query each).
		{discovery.APIREST, 20 * time.Millisecond, "projects/:id/repository/branches"},
		{discovery.APIAuto, 50 * time.Millisecond, gitlab.GraphQLClass},
	} {
		t.Run(tt.api, func(t *testing.T) { slowPageContinues(t, tt.api, tt.latency, tt.class) })
	}
}

func slowPageContinues(t *testing.T, api string, latency time.Duration, class string) {
	sim, err := gitlabsim.New(gitlabsim.Options{Seed: 1, Groups: 1, Projects: 100, Token: "t",
		Faults: gitlabsim.Faults{Latency: latency}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	defer ts.Close()
	w, st := newWorker(t)
	if w.GitLab, err = gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{})}); err != nil {
		t.Fatal(err)
	}
	w.API = api
	ctx := context.Background()
	if err := st.CreateRun(ctx, inventory.Run{ID: "s", Status: inventory.RunRunning, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	truth := sim.Truth()
	if len(truth.Groups) != 1 {
		t.Fatalf("%d groups, want one", len(truth.Groups))
	}
	g := truth.Groups[0]
	first := work.Message{Kind: work.KindGroup, RunID: "s", GroupID: g.ID, GroupPath: g.FullPath, Hops: 3}
	if err := st.AddPending(ctx, "s", first.Key()); err != nil {
		t.Fatal(err)
	}
	// The page takes seconds (8 requests at a time); the margin lets it start and its
	// soft deadline, a second in, stops it part-way, with projects stored.
	w.DeadlineMargin = 2 * time.Second
	dctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	defer cancel()
	if err := w.Handle(dctx, first, false); err != nil {
		t.Fatalf("Handle = %v, want the page continued", err)
	}
	if dctx.Err() != nil {
		t.Fatal("the page ran to the hard deadline")
	}
	storedFirst := 0
	if err := st.Projects(ctx, "s", func(inventory.Project) error { storedFirst++; return nil }); err != nil {
		t.Fatal(err)
	}
	next := receive(t, st.Queue())
	if next.Kind != work.KindGroup || max(next.Page, 1) != 1 || next.Resume != 1 || next.Hops != first.Hops+1 || next.Key() == first.Key() {
		t.Fatalf("queued %+v, want page 1 again, resume 1, one hop further", next)
	}
	if storedFirst == 0 || storedFirst >= 100 {
		t.Fatalf("%d projects stored before the soft deadline, want some of 100", storedFirst)
	}
	before := sim.Stats().ByClass[class]
	w.DeadlineMargin = 0
	if err := w.Handle(ctx, next, false); err != nil {
		t.Fatal(err)
	}
	// The continuation profiled only the projects not stored (one request of class
	// each).
	if asked := sim.Stats().ByClass[class] - before; asked > int64(100-storedFirst) {
		t.Errorf("the continuation asked %s %d times, %d projects were left", class, asked, 100-storedFirst)
	}
	stored := 0
	if err := st.Projects(ctx, "s", func(inventory.Project) error { stored++; return nil }); err != nil {
		t.Fatal(err)
	}
	if stored != 100 {
		t.Errorf("%d projects stored, want 100", stored)
	}
	if n, _ := st.Pending(ctx, "s"); n != 0 {
		t.Errorf("pending = %d after both messages, want 0", n)
	}
}
