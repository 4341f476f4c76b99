package dynamobudget_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/dynamobudget"
	"github.com/gl2gh/discovery-agent/internal/mototest"
)

var auto = budget.Pace{Target: 0.95, Adaptive: true, Concurrency: 8}

// A worker that never saw an answer starts at the adaptive pace, learns the announced
// limit another worker stored from its first lease, and paces at Target of it.
func testAutoPaceLearnsAnnounced(t *testing.T, srv *mototest.Server) {
	ctx := context.Background()
	db := srv.DynamoDB()
	table := newTable(t, srv)
	const key = "gitlab.example#auto"
	clk := &clock{t: time.Now().Truncate(time.Microsecond)}
	a := dynamobudget.New(db, table, key, dynamobudget.Config{Pace: auto, Now: clk.Now})
	if got := a.EffectiveRPM(); got != budget.StartRPM {
		t.Fatalf("before any answer: %v/min, want the start pace %v", got, budget.StartRPM)
	}
	a.Observe(ctx, 600, 599, time.Time{})
	if got := numAttr(t, item(t, db, table, key)["limit_rpm"]); got != 600 {
		t.Fatalf("limit_rpm = %d after announcing 600 with no RPM of our own, want 600", got)
	}
	if got := a.EffectiveRPM(); got != 570 {
		t.Fatalf("announcing worker paces at %v/min, want 95%% of 600", got)
	}
	b := dynamobudget.New(db, table, key, dynamobudget.Config{Pace: auto, Now: clk.Now})
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.EffectiveRPM(); got != 570 {
		t.Fatalf("after its first lease the other worker paces at %v/min, want 570", got)
	}
	// The first lease took one token, at the starting pace: 200 ms of the bucket.
	if got := time.UnixMicro(numAttr(t, item(t, db, table, key)["tat"])).Sub(clk.Now()); got != 200*time.Millisecond {
		t.Fatalf("first lease paid until now+%v, want now+200ms (one token at the start pace)", got)
	}
	// A ceiling below the announcement holds.
	c := dynamobudget.New(db, table, key, dynamobudget.Config{RPM: 400, Pace: auto, Now: clk.Now})
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.EffectiveRPM(); got != 380 {
		t.Fatalf("RPM 400 under an announced 600: %v/min, want 380", got)
	}
}

// Three workers (three Lambdas) of eight goroutines each, sharing one announced limit
// through the item, together stay at Target of it: the bound that keeps GitLab's
// fixed windows from answering 429.
func testAutoPaceFleet(t *testing.T, srv *mototest.Server) {
	const (
		limit   = 3000 // per minute, announced
		workers = 3
		run     = 3 * time.Second
	)
	db := srv.DynamoDB()
	table := newTable(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var (
		granted atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
	)
	start := time.Now()
	for range workers {
		lim := dynamobudget.New(db, table, "gitlab.example#fleet", dynamobudget.Config{Pace: auto})
		for range 8 {
			wg.Go(func() {
				for {
					if err := lim.Wait(ctx); err != nil {
						if !errors.Is(err, context.DeadlineExceeded) {
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
						}
						return
					}
					granted.Add(1)
					lim.Observe(ctx, limit, 1000, time.Time{}) // every answer announces it
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("Wait: %v", errs[0])
	}
	elapsed := time.Since(start)
	perSecond := 0.95 * limit / 60
	chunk := perSecond // one second's worth
	n := float64(granted.Load())
	t.Logf("%d permits in %v: %.1f/s, pace %.1f/s", granted.Load(), elapsed.Round(time.Millisecond), n/elapsed.Seconds(), perSecond)
	// Cold workers start at the start pace, one token each, until they see the limit;
	// then at most the pace plus a burst and a lead per lease in flight.
	if most := perSecond*elapsed.Seconds() + chunk*(2+motoSlack) + workers; n > most {
		t.Fatalf("%v permits in %v, over %.0f: the fleet went faster than 95%% of the announced limit", n, elapsed, most)
	}
	if least := perSecond * elapsed.Seconds() / 5; n < least {
		t.Errorf("%v permits in %v, want at least %.0f", n, elapsed, least)
	}
}

// Release gives the time of unspent tokens back to the bucket, so the fleet does not
// lose it when an invocation ends.
func testReleaseGivesTime(t *testing.T, srv *mototest.Server) {
	ctx := context.Background()
	db := srv.DynamoDB()
	table := newTable(t, srv)
	const key = "gitlab.example#give"
	clk := &clock{t: time.Now().Truncate(time.Microsecond)}
	d := dynamobudget.New(db, table, key, dynamobudget.Config{RPM: 600, Chunk: 10, Now: clk.Now}) // 100 ms a token
	tat := func() time.Duration {
		t.Helper()
		return time.UnixMicro(numAttr(t, item(t, db, table, key)["tat"])).Sub(clk.Now())
	}
	// The first lease takes one token; spent whole, the next takes two.
	for range 2 {
		if err := d.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := tat(); got != 300*time.Millisecond {
		t.Fatalf("after leases of 1 and 2 tokens the bucket is paid until now+%v, want now+300ms", got)
	}
	if err := d.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tat(); got != 200*time.Millisecond {
		t.Fatalf("after releasing one unspent token the bucket is paid until now+%v, want now+200ms", got)
	}
	if d.Available() != 0 {
		t.Errorf("%v tokens left after Release, want 0", d.Available())
	}
	// Nothing left to give: a second Release changes nothing.
	if err := d.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tat(); got != 200*time.Millisecond {
		t.Fatalf("a second Release moved the bucket to now+%v", got)
	}
}
