package filestore

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

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

// TestStreamAcrossBatches streams more than two read batches: each batch resumes after
// the last key of the one before, and the callback, which runs between transactions,
// may write.
func TestStreamAcrossBatches(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	var ids []int64
	for i := range 2*streamBatch + 17 {
		ids = append(ids, int64(1000+i*7))
	}
	shuffled := slices.Clone(ids)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, id := range shuffled {
		if err := s.PutProject(ctx, "r", inventory.Project{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	err := s.Projects(ctx, "r", func(p inventory.Project) error {
		got = append(got, p.ID)
		return s.AddAPICalls(ctx, "r", 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("streamed %d projects, want %d in ascending order", len(got), len(ids))
	}
	if n, _ := s.APICalls(ctx, "r"); n != int64(len(ids)) {
		t.Errorf("callback writes = %d, want %d", n, len(ids))
	}
}

// TestEmptyMarkersOfOlderFiles: earlier versions stored pending and done markers with
// empty values; a file written by them must still count each key once.
func TestEmptyMarkersOfOlderFiles(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.CreateRun(ctx, inventory.Run{ID: "r"}); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for bucket, key := range map[string]string{"pending": "a", "done": "b"} {
			k, err := runKey("r", key)
			if err != nil {
				return err
			}
			if err := tx.Bucket([]byte(bucket)).Put(k, nil); err != nil {
				return err
			}
		}
		c, _ := runKey("r", counterPending)
		return putInt64(tx.Bucket(bucketCounters), c, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path)
	if err := s.AddPending(ctx, "r", "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	// a was pending already, b done: only c is new.
	if n, _ := s.Pending(ctx, "r"); n != 2 {
		t.Errorf("Pending = %d, want 2 (a and c)", n)
	}
	if done, _ := s.IsDone(ctx, "r", "b"); !done {
		t.Error("an empty done marker reads as not done")
	}
	if remaining, first, err := s.Done(ctx, "r", "a"); err != nil || !first || remaining != 1 {
		t.Errorf("Done(a) = %d, %v, %v; want 1, true", remaining, first, err)
	}
	if _, first, _ := s.Done(ctx, "r", "b"); first {
		t.Error("Done(b) reported first over an empty done marker")
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
