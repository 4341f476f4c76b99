package filestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

var _ discovery.Store = (*Store)(nil)

// openTemp opens a store in a fresh directory that does not exist yet, closing it at
// the end of the test.
func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "nested", "discovery.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func reopen(t testing.TB, s *Store, path string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenLockedByAnotherHandle(t *testing.T) {
	_, path := openTemp(t)
	// flock is per open file, so a second Open in this process contends like another
	// process would.
	s2, err := Open(path)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "data dir locked by another process") {
		t.Errorf("second Open: %v, want ErrLocked", err)
	}
}

func TestRunLifecycle(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	r1 := inventory.Run{ID: "r1", GitLabURL: "https://gitlab.example", RootGroups: []string{"acme"}, StartedAt: t0, Status: "whatever"}

	if _, ok, err := s.ActiveRun(ctx); err != nil || ok {
		t.Fatalf("ActiveRun on empty store = %v, %v", ok, err)
	}
	if err := s.CreateRun(ctx, r1); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	got, err := s.GetRun(ctx, "r1")
	if err != nil || got.Status != inventory.RunRunning || got.GitLabURL != r1.GitLabURL || !got.StartedAt.Equal(t0) {
		t.Fatalf("GetRun = %+v, %v; want r1 running", got, err)
	}

	r2 := inventory.Run{ID: "r2", StartedAt: t0.Add(time.Hour)}
	for _, status := range []string{inventory.RunRunning, inventory.RunExporting} {
		if err := s.UpdateRun(ctx, inventory.Run{ID: "r1", Status: status}); err != nil {
			t.Fatalf("UpdateRun %s: %v", status, err)
		}
		if err := s.CreateRun(ctx, r2); !errors.Is(err, discovery.ErrRunActive) {
			t.Errorf("CreateRun while r1 is %s = %v, want ErrRunActive", status, err)
		}
		active, ok, err := s.ActiveRun(ctx)
		if err != nil || !ok || active.ID != "r1" {
			t.Errorf("ActiveRun while r1 is %s = %v, %v, %v", status, active.ID, ok, err)
		}
	}

	finished := t0.Add(30 * time.Minute)
	if err := s.UpdateRun(ctx, inventory.Run{ID: "r1", Status: inventory.RunFailed, FinishedAt: finished, Reason: "budget"}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetRun(ctx, "r1")
	want := r1
	want.Status, want.FinishedAt, want.Reason = inventory.RunFailed, finished, "budget"
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after UpdateRun: %+v, want %+v (other fields kept)", got, want)
	}
	if _, ok, _ := s.ActiveRun(ctx); ok {
		t.Error("a failed run is still active")
	}
	if err := s.CreateRun(ctx, r2); err != nil {
		t.Fatalf("CreateRun after r1 finished: %v", err)
	}
	if err := s.UpdateRun(ctx, inventory.Run{ID: "r2", Status: inventory.RunSucceeded}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRun(ctx, r1); err == nil || errors.Is(err, discovery.ErrRunActive) {
		t.Errorf("CreateRun of an existing finished ID = %v, want a duplicate-ID error", err)
	}

	for name, err := range map[string]error{
		"GetRun":    func() error { _, err := s.GetRun(ctx, "nope"); return err }(),
		"UpdateRun": s.UpdateRun(ctx, inventory.Run{ID: "nope", Status: inventory.RunFailed}),
		"PreviousRun": func() error {
			_, _, err := s.PreviousRun(ctx, "nope")
			return err
		}(),
	} {
		if !errors.Is(err, discovery.ErrNotFound) {
			t.Errorf("%s of a missing run = %v, want ErrNotFound", name, err)
		}
	}
}

func TestPreviousRun(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	// Created in this order; started at t0 + hours.
	runs := []struct {
		id     string
		hours  int
		status string
	}{
		{"a", 1, inventory.RunSucceeded},
		{"b", 2, inventory.RunFailed},
		{"c", 3, inventory.RunSucceeded},
		{"early", 0, inventory.RunSucceeded}, // created late, started first
		{"d", 4, inventory.RunRunning},
	}
	for _, r := range runs {
		if err := s.CreateRun(ctx, inventory.Run{ID: r.id, StartedAt: t0.Add(time.Duration(r.hours) * time.Hour)}); err != nil {
			t.Fatalf("CreateRun %s: %v", r.id, err)
		}
		if r.status != inventory.RunRunning {
			if err := s.UpdateRun(ctx, inventory.Run{ID: r.id, Status: r.status}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		run  string
		want string // "" for none
	}{
		{"d", "c"},
		{"c", "a"},
		{"b", "a"},
		{"a", "early"},
		{"early", ""},
	}
	for _, tt := range tests {
		prev, ok, err := s.PreviousRun(ctx, tt.run)
		if err != nil {
			t.Fatalf("PreviousRun(%s): %v", tt.run, err)
		}
		if got := map[bool]string{true: prev.ID}[ok]; got != tt.want {
			t.Errorf("PreviousRun(%s) = %q, want %q", tt.run, got, tt.want)
		}
	}
}

func TestPendingDone(t *testing.T) {
	type step struct {
		add       []string // AddPending these keys, or
		done      string   // Done this key
		wantFirst bool
		want      int64 // pending after the step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"add then done", []step{
			{add: []string{"a", "b", "c"}, want: 3},
			{done: "b", wantFirst: true, want: 2},
			{done: "a", wantFirst: true, want: 1},
			{done: "c", wantFirst: true, want: 0},
		}},
		{"same key added twice counts once", []step{
			{add: []string{"a"}, want: 1},
			{add: []string{"a", "b", "a"}, want: 2},
		}},
		{"done twice is first once", []step{
			{add: []string{"a", "b"}, want: 2},
			{done: "a", wantFirst: true, want: 1},
			{done: "a", wantFirst: false, want: 1},
			{done: "b", wantFirst: true, want: 0},
			{done: "b", wantFirst: false, want: 0},
		}},
		{"done of a key never added", []step{
			{done: "x", wantFirst: true, want: 0},
			{done: "x", wantFirst: false, want: 0},
			{add: []string{"a"}, want: 1},
			{done: "y", wantFirst: true, want: 1},
		}},
		{"added after done is not pending", []step{
			{done: "a", wantFirst: true, want: 0},
			{add: []string{"a", "b"}, want: 1},
			{done: "a", wantFirst: false, want: 1},
			{done: "b", wantFirst: true, want: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openTemp(t)
			// A second run with the same keys must not disturb the first.
			if err := s.AddPending(ctx, "other", "a", "b", "c", "x", "y"); err != nil {
				t.Fatal(err)
			}
			for i, st := range tt.steps {
				if st.add != nil {
					if err := s.AddPending(ctx, "run", st.add...); err != nil {
						t.Fatalf("step %d AddPending: %v", i, err)
					}
				} else {
					remaining, first, err := s.Done(ctx, "run", st.done)
					if err != nil {
						t.Fatalf("step %d Done: %v", i, err)
					}
					if first != st.wantFirst || remaining != st.want {
						t.Errorf("step %d Done(%s) = %d, %v; want %d, %v", i, st.done, remaining, first, st.want, st.wantFirst)
					}
					if done, err := s.IsDone(ctx, "run", st.done); err != nil || !done {
						t.Errorf("step %d IsDone(%s) = %v, %v", i, st.done, done, err)
					}
				}
				if n, err := s.Pending(ctx, "run"); err != nil || n != st.want {
					t.Errorf("step %d Pending = %d, %v; want %d", i, n, err, st.want)
				}
			}
			if n, _ := s.Pending(ctx, "other"); n != 5 {
				t.Errorf("other run's pending = %d, want 5", n)
			}
			if done, _ := s.IsDone(ctx, "other", "a"); done {
				t.Error("Done leaked into another run")
			}
		})
	}
}

func TestDoneConcurrentFirstOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	keys := []string{"a", "b", "c", "d"}
	if err := s.AddPending(ctx, "run", keys...); err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		firsts = map[string]int{}
	)
	for range 8 {
		wg.Go(func() {
			for _, k := range keys {
				_, first, err := s.Done(ctx, "run", k)
				if err != nil {
					t.Error(err)
					return
				}
				if first {
					mu.Lock()
					firsts[k]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for _, k := range keys {
		if firsts[k] != 1 {
			t.Errorf("key %s reported first %d times, want 1", k, firsts[k])
		}
	}
	if n, _ := s.Pending(ctx, "run"); n != 0 {
		t.Errorf("Pending = %d, want 0", n)
	}
}

func TestCheckpointsAndAPICalls(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if p, err := s.Checkpoint(ctx, "run", "group:1:1"); err != nil || p != 0 {
		t.Fatalf("Checkpoint of an unsaved key = %d, %v; want 0", p, err)
	}
	for _, page := range []int{3, 7, 5} {
		if err := s.SaveCheckpoint(ctx, "run", "group:1:1", page); err != nil {
			t.Fatal(err)
		}
		if p, err := s.Checkpoint(ctx, "run", "group:1:1"); err != nil || p != page {
			t.Errorf("Checkpoint = %d, %v; want %d (last saved)", p, err, page)
		}
	}
	if p, _ := s.Checkpoint(ctx, "other", "group:1:1"); p != 0 {
		t.Errorf("other run's checkpoint = %d, want 0", p)
	}
	if err := s.SaveCheckpoint(ctx, "run", "group:1:1", -1); err == nil {
		t.Error("SaveCheckpoint accepted a negative page")
	}

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 10 {
				if err := s.AddAPICalls(ctx, "run", 3); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n, err := s.APICalls(ctx, "run"); err != nil || n != 300 {
		t.Errorf("APICalls = %d, %v; want 300", n, err)
	}
	if n, _ := s.APICalls(ctx, "other"); n != 0 {
		t.Errorf("other run's APICalls = %d, want 0", n)
	}
}

func TestRecordsUpsertAndOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	// IDs chosen to break any ordering by string or by low byte; more than one stream
	// batch so that resuming between batches is exercised.
	ids := []int64{1, 2, 9, 10, 255, 256, 65535, 65536, 1 << 40, 100}
	for i := range 2*streamBatch + 17 {
		ids = append(ids, int64(1000+i*7))
	}
	shuffled := slices.Clone(ids)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, id := range shuffled {
		if err := s.PutProject(ctx, "r", inventory.Project{ID: id, Name: "old"}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutGroup(ctx, "r", inventory.Group{ID: id, FullPath: "old"}); err != nil {
			t.Fatal(err)
		}
	}
	// Upsert: the second write replaces the first.
	for _, id := range ids {
		if err := s.PutProject(ctx, "r", inventory.Project{ID: id, Name: fmt.Sprint("p", id)}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutGroup(ctx, "r", inventory.Group{ID: id, FullPath: fmt.Sprint("g", id)}); err != nil {
			t.Fatal(err)
		}
	}
	// Runs whose IDs share a prefix must stay apart.
	for _, run := range []string{"r1", "rr"} {
		if err := s.PutProject(ctx, run, inventory.Project{ID: 5, Name: run}); err != nil {
			t.Fatal(err)
		}
	}

	want := slices.Sorted(slices.Values(ids))
	var gotP, gotG []int64
	err := s.Projects(ctx, "r", func(p inventory.Project) error {
		if p.Name != fmt.Sprint("p", p.ID) {
			t.Errorf("project %d name %q: upsert kept an old value", p.ID, p.Name)
		}
		gotP = append(gotP, p.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Groups(ctx, "r", func(g inventory.Group) error {
		if g.FullPath != fmt.Sprint("g", g.ID) {
			t.Errorf("group %d path %q: upsert kept an old value", g.ID, g.FullPath)
		}
		gotG = append(gotG, g.ID)
		// The callback runs outside a transaction, so it may write.
		return s.AddAPICalls(ctx, "r", 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotP, want) || !slices.Equal(gotG, want) {
		t.Errorf("streamed %d projects, %d groups, want %d each in ascending order", len(gotP), len(gotG), len(want))
	}
	var r1 []string
	if err := s.Projects(ctx, "r1", func(p inventory.Project) error { r1 = append(r1, p.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r1, []string{"r1"}) {
		t.Errorf("run r1 streamed %v, want only its own project", r1)
	}

	stop := errors.New("stop")
	n := 0
	err = s.Projects(ctx, "r", func(inventory.Project) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("stream after callback error: %v after %d calls, want stop after 3", err, n)
	}
}

func TestNegativeIDsSortFirst(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for _, id := range []int64{5, -1, 0, -300} {
		if err := s.PutGroup(ctx, "r", inventory.Group{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	if err := s.Groups(ctx, "r", func(g inventory.Group) error { got = append(got, g.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []int64{-300, -1, 0, 5}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestPersistence(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateRun(ctx, inventory.Run{ID: "r", StartedAt: time.Now().UTC()}))
	must(s.AddPending(ctx, "r", "a", "b"))
	_, _, err := s.Done(ctx, "r", "a")
	must(err)
	must(s.SaveCheckpoint(ctx, "r", "b", 4))
	must(s.AddAPICalls(ctx, "r", 42))
	must(s.PutProject(ctx, "r", inventory.Project{ID: 7, Name: "seven", Statistics: &inventory.Statistics{RepositorySize: 1}}))
	must(s.PutGroup(ctx, "r", inventory.Group{ID: 3, FullPath: "acme"}))

	s = reopen(t, s, path)
	run, err := s.GetRun(ctx, "r")
	if err != nil || run.Status != inventory.RunRunning {
		t.Errorf("run after reopen = %+v, %v", run, err)
	}
	if n, _ := s.Pending(ctx, "r"); n != 1 {
		t.Errorf("Pending after reopen = %d, want 1", n)
	}
	if done, _ := s.IsDone(ctx, "r", "a"); !done {
		t.Error("done key lost on reopen")
	}
	if _, first, _ := s.Done(ctx, "r", "a"); first {
		t.Error("Done after reopen reported first again")
	}
	if p, _ := s.Checkpoint(ctx, "r", "b"); p != 4 {
		t.Errorf("Checkpoint after reopen = %d, want 4", p)
	}
	if n, _ := s.APICalls(ctx, "r"); n != 42 {
		t.Errorf("APICalls after reopen = %d, want 42", n)
	}
	var projects []inventory.Project
	must(s.Projects(ctx, "r", func(p inventory.Project) error { projects = append(projects, p); return nil }))
	if len(projects) != 1 || projects[0].Name != "seven" || projects[0].Statistics == nil || projects[0].Statistics.RepositorySize != 1 {
		t.Errorf("projects after reopen = %+v", projects)
	}
}

func TestCancelledContext(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]error{
		"CreateRun":      s.CreateRun(ctx, inventory.Run{ID: "r"}),
		"AddPending":     s.AddPending(ctx, "r", "a"),
		"SaveCheckpoint": s.SaveCheckpoint(ctx, "r", "a", 1),
		"PutProject":     s.PutProject(ctx, "r", inventory.Project{ID: 1}),
		"Projects":       s.Projects(ctx, "r", func(inventory.Project) error { return nil }),
		"Send":           s.Queue().Send(ctx),
	}
	for name, err := range calls {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", name, err)
		}
	}
	if _, ok, _ := s.ActiveRun(context.Background()); ok {
		t.Error("CreateRun wrote despite a cancelled context")
	}
}

func TestInvalidKeys(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for name, err := range map[string]error{
		"empty run":     s.AddPending(ctx, "", "a"),
		"empty key":     s.AddPending(ctx, "r", "a", ""),
		"long run":      s.PutProject(ctx, strings.Repeat("x", 2000), inventory.Project{ID: 1}),
		"empty run ID":  s.CreateRun(ctx, inventory.Run{}),
		"done no key":   func() error { _, _, err := s.Done(ctx, "r", ""); return err }(),
		"checkpoint no": s.SaveCheckpoint(ctx, "", "k", 1),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n, _ := s.Pending(ctx, "r"); n != 0 {
		t.Errorf("a rejected AddPending counted %d keys", n)
	}
}

func TestGetProjectForCache(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.PutProject(ctx, "r", inventory.Project{ID: 7, Name: "seven"}); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := s.GetProject(ctx, "r", 7); err != nil || !ok || p.Name != "seven" {
		t.Fatalf("GetProject(7) = %+v, %v, %v", p, ok, err)
	}
	if _, ok, err := s.GetProject(ctx, "r", 8); err != nil || ok {
		t.Fatalf("GetProject(8) = %v, %v; want absent", ok, err)
	}
}
