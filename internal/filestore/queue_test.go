package filestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gl2gh/discovery-agent/internal/work"
)

func groupMsg(run string, id int64) work.Message {
	return work.Message{Kind: work.KindGroup, RunID: run, GroupID: id}
}

// receive receives with a timeout, failing the test on error.
func receive(t *testing.T, q *Queue, limit int) []Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds, err := q.Receive(ctx, limit)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return ds
}

// assertEmpty checks that nothing is visible: Receive gives up at its deadline.
func assertEmpty(t *testing.T, q *Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	ds, err := q.Receive(ctx, 10)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive on an empty queue = %d deliveries, %v; want DeadlineExceeded", len(ds), err)
	}
}

func keys(ds []Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Msg.Key())
	}
	return out
}

func TestQueueSendReceiveAck(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	q := s.Queue()
	msgs := []work.Message{groupMsg("r", 3), groupMsg("r", 1), {Kind: work.KindExport, RunID: "r"}}
	if err := q.Send(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 3 {
		t.Errorf("Len = %d, want 3", q.Len())
	}
	first := receive(t, q, 2)
	rest := receive(t, q, 10)
	if got, want := keys(append(first, rest...)), []string{"group:3:1", "group:1:1", "export"}; !slices.Equal(got, want) {
		t.Errorf("received %v, want %v in send order", got, want)
	}
	for _, d := range append(first, rest...) {
		if d.Receives != 1 {
			t.Errorf("%s Receives = %d, want 1", d.Msg.Key(), d.Receives)
		}
	}
	if first[0].Msg != msgs[0] {
		t.Errorf("delivered %+v, want %+v", first[0].Msg, msgs[0])
	}
	assertEmpty(t, q) // in flight: invisible
	if q.Len() != 3 {
		t.Errorf("Len with 3 in flight = %d, want 3", q.Len())
	}
	for _, d := range append(first, rest...) {
		if err := q.Ack(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Ack(ctx, first[0]); err != nil {
		t.Errorf("second Ack = %v, want a no-op", err)
	}
	if q.Len() != 0 {
		t.Errorf("Len after acks = %d, want 0", q.Len())
	}
	if err := q.Ack(ctx, Delivery{}); err == nil {
		t.Error("Ack of a zero Delivery succeeded")
	}
}

func TestQueueSendRejectsMalformed(t *testing.T) {
	s, _ := openTemp(t)
	q := s.Queue()
	err := q.Send(context.Background(), groupMsg("r", 1), work.Message{Kind: work.KindGroup, RunID: "r"})
	if !errors.Is(err, work.ErrMalformed) {
		t.Errorf("Send of a group message without a group = %v, want ErrMalformed", err)
	}
	if q.Len() != 0 {
		t.Errorf("Len = %d after a rejected Send, want 0 (all or nothing)", q.Len())
	}
}

func TestQueueDeduplication(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	q := s.Queue()
	send := func(msgs ...work.Message) {
		t.Helper()
		if err := q.Send(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	send(groupMsg("r", 1), groupMsg("r", 1))
	send(groupMsg("r", 1))
	send(work.Message{Kind: work.KindGroup, RunID: "r", GroupID: 1, Page: 1}) // page 0 and 1 are one key
	send(groupMsg("other", 1))                                                // another run: another key
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2", q.Len())
	}
	ds := receive(t, q, 10)
	if len(ds) != 2 {
		t.Fatalf("received %d, want 2", len(ds))
	}

	// Sent again while in flight: queued again, and the old delivery's Ack does not
	// remove the new request.
	send(groupMsg("r", 1))
	if q.Len() != 2 {
		t.Errorf("Len after re-send of an in-flight key = %d, want 2", q.Len())
	}
	for _, d := range ds {
		if err := q.Ack(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	again := receive(t, q, 10)
	if got := keys(again); !slices.Equal(got, []string{"group:1:1"}) || again[0].Msg.RunID != "r" {
		t.Errorf("after ack of the old delivery received %v, want the re-sent group:1:1", got)
	}
	if again[0].Receives != 1 {
		t.Errorf("re-sent message Receives = %d, want 1 (a new message)", again[0].Receives)
	}
	if err := q.Ack(ctx, again[0]); err != nil {
		t.Fatal(err)
	}
	// Once acked, the key may be sent again.
	send(groupMsg("r", 1))
	if q.Len() != 1 {
		t.Errorf("Len after sending an acked key = %d, want 1", q.Len())
	}
}

func TestQueueNackRequeuesBehind(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	q := s.Queue()
	if err := q.Send(ctx, groupMsg("r", 1), groupMsg("r", 2)); err != nil {
		t.Fatal(err)
	}
	d := receive(t, q, 1)[0]
	if err := q.Nack(ctx, d, "transient"); err != nil {
		t.Fatal(err)
	}
	ds := receive(t, q, 10)
	if got := keys(ds); !slices.Equal(got, []string{"group:2:1", "group:1:1"}) {
		t.Errorf("after Nack received %v, want the nacked message last", got)
	}
	if ds[1].Receives != 2 {
		t.Errorf("nacked message Receives = %d, want 2", ds[1].Receives)
	}
	if err := q.Nack(ctx, d, "stale"); err != nil {
		t.Errorf("Nack of a delivery already nacked = %v, want a no-op", err)
	}
	if q.Len() != 2 {
		t.Errorf("Len = %d, want 2", q.Len())
	}
}

func TestQueueDeadLetterAfterMaxReceives(t *testing.T) {
	tests := []struct {
		name        string
		maxReceives int // 0: default
		want        int
	}{
		{"default", 0, DefaultMaxReceives},
		{"custom", 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openTemp(t)
			q := s.Queue()
			if tt.maxReceives > 0 {
				q.SetMaxReceives(tt.maxReceives)
			}
			msg := groupMsg("r", 9)
			if err := q.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= tt.want; i++ {
				ds := receive(t, q, 10)
				if len(ds) != 1 || ds[0].Receives != i {
					t.Fatalf("delivery %d: %d messages, Receives %d", i, len(ds), ds[0].Receives)
				}
				if err := q.Nack(ctx, ds[0], fmt.Sprint("boom ", i)); err != nil {
					t.Fatal(err)
				}
			}
			assertEmpty(t, q)
			if q.Len() != 0 {
				t.Errorf("Len = %d, want 0", q.Len())
			}
			dls, err := q.DeadLetters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(dls) != 1 || dls[0].Msg != msg || dls[0].RunID != "r" || dls[0].Key != msg.Key() || dls[0].Reason != fmt.Sprint("boom ", tt.want) || dls[0].Receives != tt.want || dls[0].At.IsZero() {
				t.Errorf("dead letters = %+v, want %v with the last reason", dls, msg)
			}
			if m, err := work.Decode(dls[0].Body); err != nil || m != msg {
				t.Errorf("dead letter body decodes to %v, %v", m, err)
			}
			// The key is free again: a new send is a new message.
			if err := q.Send(ctx, msg); err != nil || q.Len() != 1 {
				t.Errorf("send after dead-lettering: %v, Len %d", err, q.Len())
			}
		})
	}
}

// putRaw stores a queue record as a writer with a bug, or a damaged disk, might.
func putRaw(t *testing.T, s *Store, v []byte) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQueue)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(seqKey(seq), v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestQueueMalformedStoredBodyIsDeadLettered(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	key, _ := runKey("r", "group:5:1")
	putRaw(t, s, record{key: key, body: []byte(`{"kind":"group",`)}.encode())
	putRaw(t, s, record{key: key, body: []byte(`{"kind":"bogus","run_id":"r"}`)}.encode())
	putRaw(t, s, []byte{0, 1})
	if err := s.Queue().Send(ctx, groupMsg("r", 6)); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path) // recount Len from the file
	q := s.Queue()
	if q.Len() != 4 {
		t.Fatalf("Len = %d, want 4", q.Len())
	}
	ds := receive(t, q, 10)
	if got := keys(ds); !slices.Equal(got, []string{"group:6:1"}) {
		t.Fatalf("received %v, want only the valid message", got)
	}
	if q.Len() != 1 {
		t.Errorf("Len = %d, want 1 (the valid message in flight)", q.Len())
	}
	dls, err := q.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, dl := range dls {
		reasons = append(reasons, dl.Reason)
	}
	if len(dls) != 3 || dls[0].RunID != "r" || dls[0].Key != "group:5:1" || !strings.Contains(reasons[0], "malformed") || !strings.Contains(reasons[1], "unknown kind") ||
		!strings.Contains(reasons[2], "unreadable") || string(dls[0].Body) != `{"kind":"group",` {
		t.Errorf("dead letters: %q", reasons)
	}
}

func TestQueueRedeliversUnackedAfterReopen(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.Queue().Send(ctx, groupMsg("r", 1), groupMsg("r", 2), groupMsg("r", 3)); err != nil {
		t.Fatal(err)
	}
	ds := receive(t, s.Queue(), 2)
	if err := s.Queue().Ack(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path)
	q := s.Queue()
	if q.Len() != 2 {
		t.Errorf("Len after reopen = %d, want 2", q.Len())
	}
	again := receive(t, q, 10)
	if got := keys(again); !slices.Equal(got, []string{"group:2:1", "group:3:1"}) {
		t.Errorf("after reopen received %v, want the in-flight and the queued message", got)
	}
	// The cut-off delivery is no failure: it counts as interrupted, not received.
	if again[0].Receives != 1 || again[0].Interrupted != 1 || again[1].Receives != 1 || again[1].Interrupted != 0 {
		t.Errorf("Receives/Interrupted = %d/%d, %d/%d; want 1/1, 1/0", again[0].Receives, again[0].Interrupted, again[1].Receives, again[1].Interrupted)
	}
	// Still deduplicated across the restart while queued.
	if err := q.Nack(ctx, again[1], "later"); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx, groupMsg("r", 3)); err != nil || q.Len() != 2 {
		t.Errorf("re-send of a queued key after reopen: %v, Len %d, want 2", err, q.Len())
	}
}

// Restarts and kills cut deliveries off; they must never dead-letter healthy work, and
// after MaxInterrupted a crash loop (a message that kills its process) must stop
// blocking the queue.
func TestQueueInterruptionsAreNotFailures(t *testing.T) {
	tests := []struct {
		name           string
		restarts       int
		maxInterrupted int // 0: default
		deadLettered   bool
	}{
		{"five restarts keep the message", 5, 0, false},
		{"many restarts keep the message", 3 * DefaultMaxReceives, 0, false},
		{"a crash loop ends in the dead letters", 3, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, path := openTemp(t)
			if err := s.Queue().Send(ctx, groupMsg("r", 1)); err != nil {
				t.Fatal(err)
			}
			setMax := func() {
				if tt.maxInterrupted > 0 {
					s.Queue().SetMaxInterrupted(tt.maxInterrupted)
				}
			}
			setMax()
			for i := range tt.restarts {
				ds := receive(t, s.Queue(), 1)
				if ds[0].Receives != 1 || ds[0].Interrupted != i {
					t.Fatalf("delivery %d: Receives %d, Interrupted %d; want 1, %d", i+1, ds[0].Receives, ds[0].Interrupted, i)
				}
				s = reopen(t, s, path) // no ack, no nack: cut off
				setMax()
			}
			if err := s.Queue().Send(ctx, groupMsg("r", 2)); err != nil {
				t.Fatal(err)
			}
			got := keys(receive(t, s.Queue(), 10))
			dls, err := s.Queue().DeadLetters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.deadLettered {
				if !slices.Equal(got, []string{"group:1:1", "group:2:1"}) || len(dls) != 0 {
					t.Errorf("received %v with %d dead letters; want both messages, none dead", got, len(dls))
				}
				return
			}
			if !slices.Equal(got, []string{"group:2:1"}) {
				t.Errorf("received %v, want only the healthy message", got)
			}
			if len(dls) != 1 || dls[0].Msg.GroupID != 1 || dls[0].Interrupted != tt.maxInterrupted || dls[0].Receives != 0 ||
				!strings.Contains(dls[0].Reason, "cut off") {
				t.Errorf("dead letters = %+v", dls)
			}
		})
	}
}

// Release hands a delivery back without counting anything: a graceful shutdown.
func TestQueueReleaseCountsNothing(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	q := s.Queue()
	q.SetMaxReceives(1)
	if err := q.Send(ctx, groupMsg("r", 1), groupMsg("r", 2)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		d := receive(t, q, 1)[0]
		if err := q.Release(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	ds := receive(t, q, 10)
	for _, d := range ds {
		if d.Receives != 1 || d.Interrupted != 0 {
			t.Errorf("%s: Receives %d, Interrupted %d after releases; want 1, 0", d.Msg.Key(), d.Receives, d.Interrupted)
		}
		if err := q.Release(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	s = reopen(t, s, path)
	for _, d := range receive(t, s.Queue(), 10) {
		if d.Interrupted != 0 {
			t.Errorf("%s: a released delivery counted as interrupted after a restart", d.Msg.Key())
		}
	}
	if q.Len() != 2 {
		t.Errorf("Len = %d, want 2", q.Len())
	}
	if err := s.Queue().Release(ctx, Delivery{}); err == nil {
		t.Error("Release of a zero Delivery succeeded")
	}
}

func TestQueueRunLen(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	q := s.Queue()
	q.SetMaxReceives(1)
	if err := q.Send(ctx, groupMsg("a", 1), groupMsg("a", 2), groupMsg("ab", 1)); err != nil {
		t.Fatal(err)
	}
	runLen := func(run string) int {
		t.Helper()
		n, err := q.RunLen(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if a, ab := runLen("a"), runLen("ab"); a != 2 || ab != 1 {
		t.Fatalf("RunLen a, ab = %d, %d; want 2, 1", a, ab)
	}
	ds := receive(t, q, 2) // a's two, in flight: still counted
	if runLen("a") != 2 {
		t.Errorf("RunLen with two in flight = %d, want 2", runLen("a"))
	}
	if err := q.Ack(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	if err := q.Nack(ctx, ds[1], "boom"); err != nil { // dead-lettered: no longer queued
		t.Fatal(err)
	}
	if a, ab := runLen("a"), runLen("ab"); a != 0 || ab != 1 {
		t.Errorf("RunLen after ack and dead letter = %d, %d; want 0, 1", a, ab)
	}
	if _, err := q.RunLen(ctx, ""); err == nil {
		t.Error("RunLen of an empty run ID succeeded")
	}
}

// TestQueueCrashHelper is the process TestQueueRedeliversAfterKill kills: it sends
// five messages, receives three, acks one, says "ready" and waits to be killed.
func TestQueueCrashHelper(t *testing.T) {
	path := os.Getenv("FILESTORE_CRASH_DB")
	if path == "" {
		t.Skip("helper process for TestQueueRedeliversAfterKill")
	}
	ctx := context.Background()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	q := s.Queue()
	for id := range int64(5) {
		if err := q.Send(ctx, groupMsg("r", id+1)); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := q.Receive(ctx, 3)
	if err != nil || len(ds) != 3 {
		t.Fatalf("Receive: %d, %v", len(ds), err)
	}
	if err := q.Ack(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // killed long before
}

func TestQueueRedeliversAfterKill(t *testing.T) {
	path := t.TempDir() + "/crash.db"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestQueueCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FILESTORE_CRASH_DB="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := false
	for sc := bufio.NewScanner(out); !ready && sc.Scan(); {
		ready = sc.Text() == "ready"
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no Close, no cleanup
		t.Fatal(err)
	}
	cmd.Wait() // its error is the kill
	if !ready {
		t.Fatal("helper process exited without getting ready")
	}

	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open after kill: %v", err)
	}
	defer s.Close()
	q := s.Queue()
	if q.Len() != 4 {
		t.Errorf("Len after kill = %d, want 4", q.Len())
	}
	ds := receive(t, q, 10)
	if got, want := keys(ds), []string{"group:2:1", "group:3:1", "group:4:1", "group:5:1"}; !slices.Equal(got, want) {
		t.Errorf("after kill -9 received %v, want %v", got, want)
	}
	for _, d := range ds {
		wantCut := 0
		if d.Msg.GroupID <= 3 { // in flight when killed
			wantCut = 1
		}
		if d.Receives != 1 || d.Interrupted != wantCut {
			t.Errorf("%s: Receives %d, Interrupted %d; want 1, %d (a kill is no failure)", d.Msg.Key(), d.Receives, d.Interrupted, wantCut)
		}
	}
}

func TestQueueReceiveBlocksUntilSendOrClose(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	q := s.Queue()

	got := make(chan []Delivery, 1)
	errs := make(chan error, 1)
	go func() {
		ds, err := q.Receive(ctx, 10)
		got <- ds
		errs <- err
	}()
	if err := q.Send(ctx, groupMsg("r", 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case ds := <-got:
		if err := <-errs; err != nil || len(ds) != 1 {
			t.Errorf("blocked Receive woke with %d, %v", len(ds), err)
		}
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("Receive did not wake on Send")
	}

	go func() {
		_, err := q.Receive(ctx, 10)
		errs <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it block; the result is the same if it has not
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Receive on close = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive did not wake on Close")
	}
	if err := q.Send(ctx, groupMsg("r", 2)); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}

func TestQueueConcurrent(t *testing.T) {
	const (
		producers   = 4
		consumers   = 4
		perProducer = 60
		total       = producers * perProducer
	)
	s, _ := openTemp(t)
	q := s.Queue()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		mu       sync.Mutex
		acked    = map[string]int{}
		wg       sync.WaitGroup
		produced atomic.Bool
	)
	// Stop the consumers once the producers are done and the queue is drained.
	stopIfDrained := func() {
		if produced.Load() && q.Len() == 0 {
			cancel()
		}
	}
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				// Every message is sent twice; the second is usually a duplicate.
				m := groupMsg("r", int64(p*perProducer+i+1))
				for range 2 {
					if err := q.Send(ctx, m); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	var cwg sync.WaitGroup
	for range consumers {
		cwg.Go(func() {
			for {
				ds, err := q.Receive(ctx, 5)
				if errors.Is(err, context.Canceled) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				for _, d := range ds {
					// Fail every seventh group once, to mix Nacks in.
					if d.Msg.GroupID%7 == 0 && d.Receives == 1 {
						if err := q.Nack(context.Background(), d, "flaky"); err != nil {
							t.Error(err)
						}
						continue
					}
					// Not ctx: a delivery superseded by a re-send can still be held
					// when the queue drains and ctx is cancelled.
					if err := q.Ack(context.Background(), d); err != nil {
						t.Error(err)
						continue
					}
					mu.Lock()
					acked[d.Msg.Key()]++
					mu.Unlock()
				}
				stopIfDrained()
			}
		})
	}
	wg.Wait()
	produced.Store(true)
	stopIfDrained() // the consumers may have drained it already
	cwg.Wait()
	if q.Len() != 0 {
		t.Errorf("Len = %d after draining, want 0", q.Len())
	}

	distinct := 0
	for key, n := range acked {
		distinct++
		// A duplicate send can land while the first is in flight, and is then a
		// second message by design; more than two would be a bug.
		if n < 1 || n > 2 {
			t.Errorf("%s acked %d times", key, n)
		}
	}
	if distinct != total {
		t.Errorf("%d distinct keys acked, want %d", distinct, total)
	}
	if dls, _ := q.DeadLetters(context.Background()); len(dls) != 0 {
		t.Errorf("%d dead letters, want 0", len(dls))
	}
}

func TestRedriveAndPurgeDeadLetters(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	q := s.Queue()
	q.SetMaxReceives(1)
	good := groupMsg("r", 1)
	if err := q.Send(ctx, good); err != nil {
		t.Fatal(err)
	}
	ds := receive(t, q, 1)
	if err := q.Nack(ctx, ds[0], "boom"); err != nil {
		t.Fatal(err)
	}
	putRaw(t, s, []byte("not a record"))
	assertEmpty(t, q) // the raw record goes to the dead letters on receive
	if dls, _ := q.DeadLetters(ctx); len(dls) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dls))
	}
	n, err := q.RedriveDeadLetters(ctx)
	if err != nil || n != 1 {
		t.Fatalf("redrive = %d, %v; want the one valid message", n, err)
	}
	if ds := receive(t, q, 1); len(ds) != 1 || ds[0].Msg != good || ds[0].Receives != 1 {
		t.Fatalf("redriven delivery %+v", ds)
	}
	n, err = q.PurgeDeadLetters(ctx)
	if err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want the undecodable one", n, err)
	}
	if dls, _ := q.DeadLetters(ctx); len(dls) != 0 {
		t.Fatalf("%d dead letters after purge", len(dls))
	}
}
