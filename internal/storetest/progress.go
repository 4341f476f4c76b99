package storetest

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/discovery"
)

var progressChecks = concat(pendingChecks(), []check{
	{"Pending/ConcurrentDoneIsFirstOnce", concurrentDone},
	{"Pending/ConcurrentAddAndDoneNeverNegative", concurrentAddDone},
	{"Checkpoints/ZeroWhenNoneThenLastSaved", checkpoints},
	{"APICalls/AddUp", apiCalls},
	{"APICalls/ConcurrentAddsAddUp", concurrentAPICalls},
})

// pendingStep is one call: AddPending of add, or else Done of done.
type pendingStep struct {
	add       []string
	done      string
	wantFirst bool  // Done's first
	want      int64 // the pending count after the step (and Done's remaining)
}

// pendingCases drive AddPending and Done. A message sent twice, a root group listed
// twice or a subgroup on two offset pages all add a key again.
var pendingCases = []struct {
	name  string
	steps []pendingStep
}{
	{"AddThenDone", []pendingStep{
		{add: []string{"a", "b", "c"}, want: 3},
		{done: "b", wantFirst: true, want: 2},
		{done: "a", wantFirst: true, want: 1},
		{done: "c", wantFirst: true, want: 0},
	}},
	{"KeyTwiceInOneCallCountsOnce", []pendingStep{
		{add: []string{"a", "a"}, want: 1},
		{add: []string{"b", "c", "b", "a", "c"}, want: 3},
		{done: "a", wantFirst: true, want: 2},
		{done: "b", wantFirst: true, want: 1},
		{done: "c", wantFirst: true, want: 0},
	}},
	{"KeyInTwoCallsCountsOnce", []pendingStep{
		{add: []string{"a"}, want: 1},
		{add: []string{"a"}, want: 1},
		{add: []string{"a", "b"}, want: 2},
		{done: "a", wantFirst: true, want: 1},
		{done: "b", wantFirst: true, want: 0},
	}},
	{"DoneIsFirstOnce", []pendingStep{
		{add: []string{"a", "b"}, want: 2},
		{done: "a", wantFirst: true, want: 1},
		{done: "a", wantFirst: false, want: 1},
		{done: "b", wantFirst: true, want: 0},
		{done: "b", wantFirst: false, want: 0},
	}},
	{"DoneOfAKeyNeverAdded", []pendingStep{
		{done: "x", wantFirst: true, want: 0},
		{done: "x", wantFirst: false, want: 0},
		{add: []string{"a"}, want: 1},
		{done: "y", wantFirst: true, want: 1},
	}},
	{"KeyAddedAfterDoneIsNotPending", []pendingStep{
		{done: "a", wantFirst: true, want: 0},
		{add: []string{"a", "b"}, want: 1},
		{add: []string{"a"}, want: 1},
		{done: "a", wantFirst: false, want: 1},
		{done: "b", wantFirst: true, want: 0},
	}},
}

func pendingChecks() []check {
	var checks []check
	for _, c := range pendingCases {
		checks = append(checks, check{"Pending/" + c.name, func(t *testing.T, s discovery.Store) { runPending(t, s, c.steps) }})
	}
	return checks
}

// runPending plays steps on run "r" while run "other" holds the same keys, and checks
// the count, Done's results and IsDone of every key after each step.
func runPending(t *testing.T, s discovery.Store, steps []pendingStep) {
	ctx := t.Context()
	createRuns(t, s, "other", "r")
	if n, err := s.Pending(ctx, "r"); err != nil || n != 0 {
		t.Fatalf("Pending of a new run = %d, %v; want 0", n, err)
	}
	otherKeys := []string{"a", "b", "c", "x", "y"}
	if err := s.AddPending(ctx, "other", otherKeys...); err != nil {
		t.Fatalf("AddPending(other): %v", err)
	}
	var seen []string
	added, done := map[string]bool{}, map[string]bool{}
	for i, st := range steps {
		if st.add != nil {
			if err := s.AddPending(ctx, "r", st.add...); err != nil {
				t.Fatalf("step %d AddPending(%q): %v", i, st.add, err)
			}
			seen = append(seen, st.add...)
			for _, k := range st.add {
				added[k] = true
			}
		} else {
			remaining, first, err := s.Done(ctx, "r", st.done)
			if err != nil {
				t.Fatalf("step %d Done(%s): %v", i, st.done, err)
			}
			// A store may report 1 for 0 to a call that did not bring the count there.
			excused := !added[st.done] && st.want == 0 && remaining == 1
			if first != st.wantFirst || (remaining != st.want && !excused) {
				t.Errorf("step %d Done(%s) = %d, %v; want %d, %v", i, st.done, remaining, first, st.want, st.wantFirst)
			}
			seen, done[st.done] = append(seen, st.done), true
		}
		if n, err := s.Pending(ctx, "r"); err != nil || n != st.want {
			t.Errorf("step %d Pending = %d, %v; want %d", i, n, err, st.want)
		}
		for _, k := range slices.Compact(slices.Sorted(slices.Values(seen))) {
			if got, err := s.IsDone(ctx, "r", k); err != nil || got != done[k] {
				t.Errorf("step %d IsDone(%s) = %v, %v; want %v", i, k, got, err, done[k])
			}
		}
	}
	if n, err := s.Pending(ctx, "other"); err != nil || n != int64(len(otherKeys)) {
		t.Errorf("the other run's Pending = %d, %v; want %d untouched", n, err, len(otherKeys))
	}
	for _, k := range otherKeys {
		if got, err := s.IsDone(ctx, "other", k); err != nil || got {
			t.Errorf("IsDone(other, %s) = %v, %v: Done leaked into another run", k, got, err)
		}
	}
}

func concurrentDone(t *testing.T, s discovery.Store) {
	ctx := t.Context()
	createRuns(t, s, "r")
	keys := []string{"a", "b", "c", "d"}
	if err := s.AddPending(ctx, "r", keys...); err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		firsts = map[string]int{}
		zeros  atomic.Int64 // first Dones that saw remaining 0
	)
	for range 6 {
		wg.Go(func() {
			for _, k := range keys {
				remaining, first, err := s.Done(ctx, "r", k)
				if err != nil {
					t.Errorf("Done(%s): %v", k, err)
					return
				}
				if first {
					mu.Lock()
					firsts[k]++
					mu.Unlock()
					if remaining == 0 {
						zeros.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	for _, k := range keys {
		if firsts[k] != 1 {
			t.Errorf("Done(%s) reported first %d times, want 1", k, firsts[k])
		}
	}
	// Exactly one caller queues the export.
	if n := zeros.Load(); n != 1 {
		t.Errorf("%d first Dones saw remaining 0, want 1", n)
	}
	if n, err := s.Pending(ctx, "r"); err != nil || n != 0 {
		t.Errorf("Pending = %d, %v; want 0", n, err)
	}
}

// concurrentAddDone has workers add and finish keys at once, each also sending its
// neighbour's first key (a message sent twice), while a watcher checks the count never
// goes negative.
func concurrentAddDone(t *testing.T, s discovery.Store) {
	ctx := t.Context()
	createRuns(t, s, "r")
	const workers, perWorker = 8, 4

	stop := make(chan struct{})
	var negative atomic.Int64
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := s.Pending(ctx, "r")
			if err != nil {
				t.Errorf("Pending: %v", err)
				return
			}
			if n < 0 {
				negative.Store(n)
			}
		}
	})

	var wg sync.WaitGroup
	var firsts atomic.Int64
	for w := range workers {
		wg.Go(func() {
			keys := []string{fmt.Sprintf("k%d", ((w+1)%workers)*perWorker)}
			for i := range perWorker {
				keys = append(keys, fmt.Sprintf("k%d", w*perWorker+i))
			}
			if err := s.AddPending(ctx, "r", keys...); err != nil {
				t.Errorf("AddPending: %v", err)
				return
			}
			for _, k := range keys[1:] {
				_, first, err := s.Done(ctx, "r", k)
				if err != nil {
					t.Errorf("Done(%s): %v", k, err)
					return
				}
				if first {
					firsts.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	if n := negative.Load(); n < 0 {
		t.Errorf("Pending went negative: %d", n)
	}
	if n, err := s.Pending(ctx, "r"); err != nil || n != 0 {
		t.Errorf("final Pending = %d, %v; want 0", n, err)
	}
	if f := firsts.Load(); f != workers*perWorker {
		t.Errorf("%d first Dones, want %d", f, workers*perWorker)
	}
}

func checkpoints(t *testing.T, s discovery.Store) {
	ctx := t.Context()
	createRuns(t, s, "other", "r")
	steps := []struct {
		key  string
		save int // -1: read only
		want int
	}{
		{"group:1:1", -1, 0},
		{"group:1:1", 3, 3},
		{"group:1:1", 7, 7},
		{"group:1:1", 5, 5}, // overwritten, not the highest
		{"group:2:1", -1, 0},
		{"group:1:1", math.MaxInt32, math.MaxInt32}, // the worker's "listing done"
	}
	for i, st := range steps {
		if st.save >= 0 {
			if err := s.SaveCheckpoint(ctx, "r", st.key, st.save); err != nil {
				t.Fatalf("step %d SaveCheckpoint(%s, %d): %v", i, st.key, st.save, err)
			}
		}
		if got, err := s.Checkpoint(ctx, "r", st.key); err != nil || got != st.want {
			t.Errorf("step %d Checkpoint(%s) = %d, %v; want %d", i, st.key, got, err, st.want)
		}
	}
	if got, err := s.Checkpoint(ctx, "other", "group:1:1"); err != nil || got != 0 {
		t.Errorf("the other run's Checkpoint = %d, %v; want 0", got, err)
	}
	if err := s.SaveCheckpoint(ctx, "r", "group:1:1", -1); err == nil {
		t.Error("SaveCheckpoint accepted a negative page")
	}
	if got, err := s.Checkpoint(ctx, "r", "group:1:1"); err != nil || got != math.MaxInt32 {
		t.Errorf("a refused SaveCheckpoint changed the page to %d, %v", got, err)
	}
}

func apiCalls(t *testing.T, s discovery.Store) {
	ctx := t.Context()
	createRuns(t, s, "other", "r")
	if err := s.AddAPICalls(ctx, "other", 11); err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	for _, n := range []int64{0, 5, 0, 7, 1000} {
		if err := s.AddAPICalls(ctx, "r", n); err != nil {
			t.Fatalf("AddAPICalls(%d): %v", n, err)
		}
		want += n
		if got, err := s.APICalls(ctx, "r"); err != nil || got != want {
			t.Errorf("APICalls after adding %d = %d, %v; want %d", n, got, err, want)
		}
	}
	if got, err := s.APICalls(ctx, "other"); err != nil || got != 11 {
		t.Errorf("the other run's APICalls = %d, %v; want 11", got, err)
	}
}

func concurrentAPICalls(t *testing.T, s discovery.Store) {
	ctx := t.Context()
	createRuns(t, s, "r")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if err := s.AddAPICalls(ctx, "r", 3); err != nil {
					t.Errorf("AddAPICalls: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, err := s.APICalls(ctx, "r"); err != nil || got != 8*5*3 {
		t.Errorf("APICalls = %d, %v; want %d", got, err, 8*5*3)
	}
}
