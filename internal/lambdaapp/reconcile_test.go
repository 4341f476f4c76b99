package lambdaapp

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/sqsqueue"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// drain receives every message of q and returns their keys; deleteKeys names those
// to delete, the others go back to the queue once all are received (each drain is one
// receive of each message: moto moves it to the DLQ at the fifth).
func drain(t *testing.T, q *sqsqueue.Queue, deleteKeys ...string) []string {
	t.Helper()
	ctx := context.Background()
	var keys, back []string
	for {
		msgs, err := q.Receive(ctx, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			wm, err := work.Decode([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, wm.Key())
			if slices.Contains(deleteKeys, wm.Key()) {
				if err := q.Delete(ctx, aws.ToString(m.ReceiptHandle)); err != nil {
					t.Fatal(err)
				}
			} else {
				back = append(back, aws.ToString(m.ReceiptHandle))
			}
		}
	}
	for _, r := range back {
		if err := q.ChangeVisibility(ctx, r, 0); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(keys)
	return keys
}

// TestReconcileResendsLostMessages: a pending key whose message expired is re-sent
// exactly once while other work is queued; a lost one is re-sent once the queue runs
// dry; live ones are never re-sent; a run left with no pending work gets its export.
func TestReconcileResendsLostMessages(t *testing.T) {
	f := newFixture(t, gitlabsim.Options{Seed: 3, Groups: 1, Projects: 1})
	ctx := context.Background()
	t0 := time.Now()
	clk := &clock{t: t0}
	a, err := New(ctx, f.settings, f.srv.Config(ctx), Options{
		Log: slog.New(slog.NewJSONHandler(f.logs, nil)), Metrics: f.emf, Now: clk.Now,
		GitLab: gitlab.Options{BaseBackoff: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	const run = "reconcile-run"
	if err := a.Store().CreateRun(ctx, inventory.Run{ID: run, StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	msg := func(id int64) work.Message { return work.Message{Kind: work.KindGroup, RunID: run, GroupID: id} }
	expired, live, lostMsg := msg(1), msg(2), msg(3)
	if err := a.Store().AddPending(ctx, run, expired.Key(), live.Key(), lostMsg.Key()); err != nil {
		t.Fatal(err)
	}
	if err := a.queue.Send(ctx, expired); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(10 * 24 * time.Hour))
	if err := a.queue.Send(ctx, live, lostMsg); err != nil {
		t.Fatal(err)
	}
	// A second send of a key already sent does not go out (a redelivered parent).
	if err := a.queue.Send(ctx, live); err != nil {
		t.Fatal(err)
	}
	// SQS deletes the first message at its retention (14 days); the third is lost.
	if got := drain(t, f.scan, expired.Key(), lostMsg.Key()); !slices.Equal(got, []string{expired.Key(), live.Key(), lostMsg.Key()}) {
		t.Fatalf("queued %v", got)
	}

	clk.Set(t0.Add(14*24*time.Hour + time.Hour))
	for i := range 2 {
		res, err := a.Reconcile(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 - i; res.Resent != want || res.Undone != 3 {
			t.Errorf("reconcile %d = %+v; want 3 undone, %d re-sent", i, res, want)
		}
		// Nothing was done since the run started: the NoProgress alarm's metric says so.
		if want := int64((14*24*time.Hour + time.Hour) / time.Second); res.IdleSeconds != want {
			t.Errorf("idle %d s, want %d", res.IdleSeconds, want)
		}
	}
	if !strings.Contains(f.emf.String(), `"discovery_run_idle_seconds":1213200`) {
		t.Errorf("no discovery_run_idle_seconds in the EMF output:\n%s", f.emf.String())
	}
	if got := drain(t, f.scan); !slices.Equal(got, []string{expired.Key(), live.Key()}) {
		t.Fatalf("after reconciling the queue holds %v; want the expired and the live message", got)
	}
	if n := countMessages(t, f.scan); n != 2 {
		t.Errorf("queue holds %d messages, want 2 (each once)", n)
	}

	// The two are handled; the lost one is found once the queue is empty.
	for _, m := range []work.Message{expired, live} {
		if _, _, err := a.Store().Done(ctx, run, m.Key()); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, f.scan, expired.Key(), live.Key())
	clk.Set(clk.Now().Add(time.Hour))
	for i := range 2 {
		res, err := a.Reconcile(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 - i; res.Resent != want || res.Undone != 1 || res.IdleSeconds != 3600 {
			t.Errorf("reconcile %d of an empty queue = %+v; want 1 undone, %d re-sent, idle an hour", i, res, want)
		}
	}
	if got := drain(t, f.scan, lostMsg.Key()); !slices.Equal(got, []string{lostMsg.Key()}) {
		t.Fatalf("queue holds %v; want the lost message", got)
	}

	// All done, never exported: the reconciler queues the export, once.
	if _, _, err := a.Store().Done(ctx, run, lostMsg.Key()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		res, err := a.Reconcile(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Export != (i == 0) {
			t.Errorf("reconcile %d = %+v; want the export queued once", i, res)
		}
	}
	if n := countMessages(t, f.export); n != 1 {
		t.Errorf("export queue holds %d messages, want 1", n)
	}
}

// countMessages is the queue's message count as SQS reports it.
func countMessages(t *testing.T, q *sqsqueue.Queue) int64 {
	t.Helper()
	st, err := q.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Messages
}

// TestLostMessageRunCompletes: a group message lost mid-run leaves the run pending
// with an empty queue; the reconciler re-sends it and the run ends equal to the truth.
func TestLostMessageRunCompletes(t *testing.T) {
	f := newFixture(t, gitlabsim.Options{Seed: 21, Groups: 6, Projects: 60})
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	a, err := New(ctx, f.settings, f.srv.Config(ctx), Options{
		Log: slog.New(slog.NewJSONHandler(f.logs, nil)), Metrics: f.emf, Now: clk.Now,
		GitLab: gitlab.Options{BaseBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Schedule(ctx, nil)
	if err != nil || !res.Started {
		t.Fatalf("schedule: %+v, %v", res, err)
	}
	msgs, err := receive(ctx, f.scan, 1, 5*time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %d, %v", len(msgs), err)
	}
	if err := f.scan.Delete(ctx, aws.ToString(msgs[0].ReceiptHandle)); err != nil { // lost
		t.Fatal(err)
	}
	f.deliver(t, f.scan, a.Work)
	if n, err := a.Store().Pending(ctx, res.RunID); err != nil || n == 0 {
		t.Fatalf("pending after the queue drained = %d, %v; want the lost message's work", n, err)
	}
	resent := 0
	for range 5 {
		clk.Set(clk.Now().Add(time.Hour))
		r, err := a.Reconcile(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		resent += r.Resent
		if r.Pending == 0 {
			break
		}
		f.deliver(t, f.scan, a.Work)
	}
	if resent == 0 {
		t.Fatal("the reconciler re-sent nothing")
	}
	f.deliver(t, f.export, a.Export)
	f.checkExports(t, a, res.RunID)
}
