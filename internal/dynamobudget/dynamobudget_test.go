package dynamobudget_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/dynamobudget"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/mototest"
)

var _ gitlab.Limiter = (*dynamobudget.Budget)(nil)

// moto can let two racing conditional updates both pass (it does not lock items),
// which real DynamoDB never does; on a loaded machine it happened twice in one test, so
// the bounds below allow two extra chunks for it.
const motoSlack = 2

// TestDynamo runs every DynamoDB budget test on one moto_server: the package has no
// TestMain of its own to share one with.
func TestDynamo(t *testing.T) {
	srv := mototest.Start(t)
	tests := []struct {
		name string
		fn   func(*testing.T, *mototest.Server)
	}{
		{"RateBoundUnderConcurrency", testRateBound},
		{"PauseMovesForwardOnly", testPauseForwardOnly},
		{"AnnouncedLimit", testAnnouncedLimit},
		{"MaxCalls", testMaxCalls},
		{"Release", testRelease},
		{"Cancel", testCancel},
		{"HighRateMakesProgress", testHighRate},
		{"AutoPaceLearnsAnnounced", testAutoPaceLearnsAnnounced},
		{"AutoPaceFleet", testAutoPaceFleet},
		{"ReleaseGivesTime", testReleaseGivesTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, srv) })
	}
}

// newTable creates a budget table for one test.
func newTable(t *testing.T, srv *mototest.Server) string {
	t.Helper()
	table := mototest.Name("budget")
	if err := mototest.CreateTables(context.Background(), srv.DynamoDB(), mototest.Name("store"), table); err != nil {
		t.Fatal(err)
	}
	return table
}

// countWrites returns a client option counting successful UpdateItem calls.
func countWrites(n *atomic.Int64) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("countWrites",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleInitialize(ctx, in)
					if _, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok && err == nil {
						n.Add(1)
					}
					return out, md, err
				}), middleware.After)
		})
	}
}

// item reads the budget item.
func item(t *testing.T, db *dynamodb.Client, table, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"key": &types.AttributeValueMemberS{Value: key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func numAttr(t *testing.T, v types.AttributeValue) int64 {
	t.Helper()
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("attribute %#v is not a number", v)
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// testRateBound runs two limiters (two Lambdas) of 30 goroutines each on one key for
// two seconds and checks the GCRA bounds on the permits they granted.
func testRateBound(t *testing.T, srv *mototest.Server) {
	const (
		rpm      = 3000 // 50 per second
		chunk    = 5
		perLimit = 30
		run      = 2 * time.Second
	)
	var writes atomic.Int64
	db := srv.DynamoDB(countWrites(&writes))
	table := newTable(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()

	var (
		mu     sync.Mutex
		stamps []time.Time
		errs   []error
		wg     sync.WaitGroup
	)
	start := time.Now()
	for range 2 {
		lim := dynamobudget.New(db, table, "gitlab.example#abc", dynamobudget.Config{RPM: rpm, Chunk: chunk})
		for range perLimit {
			wg.Go(func() {
				for {
					err := lim.Wait(ctx)
					now := time.Now()
					mu.Lock()
					if err != nil {
						if !errors.Is(err, context.DeadlineExceeded) {
							errs = append(errs, err)
						}
						mu.Unlock()
						return
					}
					stamps = append(stamps, now)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("Wait failed: %v", errs[0])
	}
	slices.SortFunc(stamps, func(a, b time.Time) int { return a.Compare(b) })
	rate := float64(rpm) / 60
	elapsed := time.Since(start)
	t.Logf("%d permits in %v (%.0f/s), %d lease writes", len(stamps), elapsed.Round(time.Millisecond),
		float64(len(stamps))/elapsed.Seconds(), writes.Load())

	// From a cold bucket, the k-th permit comes no earlier than (k - chunk)/rate.
	allow := float64(chunk * (1 + motoSlack))
	for k, at := range stamps {
		if limit := rate*at.Sub(start).Seconds() + allow; float64(k+1) > limit {
			t.Fatalf("permit %d granted %v after start: over rate*t + chunk = %.1f", k+1, at.Sub(start), limit)
		}
	}
	// In any window of length L, at most rate*L + 2 chunks (burst and lead).
	const window = 500 * time.Millisecond
	for i, from := range stamps {
		n, _ := slices.BinarySearchFunc(stamps[i:], from.Add(window), func(a, b time.Time) int { return a.Compare(b) })
		if limit := rate*window.Seconds() + float64(chunk*(2+motoSlack)); float64(n) > limit {
			t.Fatalf("%d permits in the %v from %v: over %.1f", n, window, from.Sub(start), limit)
		}
	}
	// The limiter must not starve either: a fifth of the rate survives a loaded machine.
	if min := rate * elapsed.Seconds() / 5; float64(len(stamps)) < min {
		t.Errorf("%d permits in %v, want at least %.0f", len(stamps), elapsed, min)
	}
	// Tokens are leased in chunks, not one write per request.
	if w := writes.Load(); w*2 > int64(len(stamps)) {
		t.Errorf("%d lease writes for %d permits, want at most one per two permits", w, len(stamps))
	}
}

func testPauseForwardOnly(t *testing.T, srv *mototest.Server) {
	ctx := context.Background()
	db := srv.DynamoDB()
	table := newTable(t, srv)
	const key = "gitlab.example#pause"
	t0 := time.Now().Truncate(time.Microsecond)
	// a and b write with a clock stopped at t0, so that capped pauses are exact.
	frozen := dynamobudget.Config{RPM: 6000, Now: func() time.Time { return t0 }}
	a := dynamobudget.New(db, table, key, frozen)
	b := dynamobudget.New(db, table, key, frozen) // does not know what a wrote
	century := t0.AddDate(100, 0, 0)

	steps := []struct {
		name string
		act  func()
		want time.Time
	}{
		{"first pause", func() { a.PauseUntil(ctx, t0.Add(5*time.Minute)) }, t0.Add(5 * time.Minute)},
		{"earlier pause from another worker", func() { b.PauseUntil(ctx, t0.Add(2*time.Minute)) }, t0.Add(5 * time.Minute)},
		{"later pause", func() { b.PauseUntil(ctx, t0.Add(8*time.Minute)) }, t0.Add(8 * time.Minute)},
		{"remaining 0 pauses until reset", func() { a.Observe(ctx, 0, 0, t0.Add(10*time.Minute)) }, t0.Add(10 * time.Minute)},
		{"plenty remaining does not", func() { b.Observe(ctx, 0, 1000, t0.Add(12*time.Minute)) }, t0.Add(10 * time.Minute)},
		{"earlier reset does not", func() { b.Observe(ctx, 0, 0, t0.Add(7*time.Minute)) }, t0.Add(10 * time.Minute)},
		{"past reset does not", func() { b.Observe(ctx, 0, 0, t0.Add(-time.Hour)) }, t0.Add(10 * time.Minute)},
		{"reset a century ahead pauses MaxPause", func() { a.Observe(ctx, 0, 0, century) }, t0.Add(budget.MaxPause)},
		{"Retry-After of years pauses MaxPause", func() { b.PauseUntil(ctx, t0.Add(999999999*time.Second)) }, t0.Add(budget.MaxPause)},
	}
	for _, s := range steps {
		s.act()
		got := time.UnixMicro(numAttr(t, item(t, db, table, key)["pause_until"]))
		if !got.Equal(s.want) {
			t.Fatalf("after %s: pause_until = %v, want %v", s.name, got.Sub(t0), s.want.Sub(t0))
		}
	}

	// A worker that never paused itself learns the pause from the table.
	cfg := dynamobudget.Config{RPM: 6000}
	c := dynamobudget.New(db, table, key, cfg)
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := c.Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait during a shared pause = %v, want deadline exceeded", err)
	}
	if c.Used() != 0 {
		t.Fatalf("a paused limiter granted %d calls", c.Used())
	}

	// A pause_until beyond MaxPause on the item (an older writer, a hand edit) holds no
	// worker: it is ignored, and the next real pause replaces it.
	_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       map[string]types.AttributeValue{"key": &types.AttributeValueMemberS{Value: key}},
		UpdateExpression:          aws.String("SET pause_until = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberN{Value: strconv.FormatInt(century.UnixMicro(), 10)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := dynamobudget.New(db, table, key, cfg)
	wctx2, cancel2 := context.WithTimeout(ctx, 10*time.Second) // a hang guard
	defer cancel2()
	for range 3 {
		if err := d.Wait(wctx2); err != nil {
			t.Fatalf("Wait under a century-long item pause = %v, want a call", err)
		}
	}
	d.PauseUntil(ctx, time.Now().Add(time.Minute))
	if got := time.UnixMicro(numAttr(t, item(t, db, table, key)["pause_until"])); got.After(time.Now().Add(2 * time.Minute)) {
		t.Fatalf("pause_until = %v after a one-minute pause, want the century replaced", got)
	}
}

// clock is a settable clock; waits are real but computed from it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testAnnouncedLimit(t *testing.T, srv *mototest.Server) {
	ctx := context.Background()
	db := srv.DynamoDB()
	table := newTable(t, srv)
	const key = "gitlab.example#limit"
	clk := &clock{t: time.Now().Truncate(time.Microsecond)}
	cfg := dynamobudget.Config{RPM: 6000, Chunk: 1, Now: clk.Now} // 10 ms a call
	a := dynamobudget.New(db, table, key, cfg)

	announce := []struct {
		limit int
		want  int64
	}{
		{600, 600},   // lowers the shared rate
		{3000, 600},  // a higher limit does not raise it while the lower one holds
		{9000, 600},  // nor does one above RPM
		{300, 300},   // a lower one lowers it further
		{12000, 300}, // above RPM: ignored
	}
	for _, a2 := range announce {
		a.Observe(ctx, a2.limit, 1000, time.Time{})
		if got := numAttr(t, item(t, db, table, key)["limit_rpm"]); got != a2.want {
			t.Fatalf("after announcing %d: limit_rpm = %d, want %d", a2.limit, got, a2.want)
		}
	}

	// b learns the limit from its first lease's item image, paced at its own RPM.
	b := dynamobudget.New(db, table, key, cfg)
	tatAfterWait := func() time.Duration {
		t.Helper()
		if err := b.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		return time.UnixMicro(numAttr(t, item(t, db, table, key)["tat"])).Sub(clk.Now())
	}
	if got := tatAfterWait(); got != 10*time.Millisecond {
		t.Fatalf("first lease paid until now+%v, want now+10ms (RPM, limit not yet seen)", got)
	}
	clk.Advance(10 * time.Millisecond)
	if got := tatAfterWait(); got != 200*time.Millisecond {
		t.Fatalf("second lease paid until now+%v, want now+200ms (announced 300/min)", got)
	}
	// Unannounced for a minute, the limit lapses and RPM applies again.
	clk.Advance(2 * time.Minute)
	if got := tatAfterWait(); got != 10*time.Millisecond {
		t.Fatalf("lease after the limit lapsed paid until now+%v, want now+10ms", got)
	}
}

func testMaxCalls(t *testing.T, srv *mototest.Server) {
	const (
		maxCalls = 37
		chunk    = 5
	)
	db := srv.DynamoDB()
	table := newTable(t, srv)
	const key = "gitlab.example#max"
	ctx := context.Background()

	var (
		granted atomic.Int64
		mu      sync.Mutex
		errs    []error
		wg      sync.WaitGroup
	)
	for range 2 {
		lim := dynamobudget.New(db, table, key, dynamobudget.Config{Chunk: chunk, MaxCalls: maxCalls, RunID: "run-1"})
		for range 10 {
			wg.Go(func() {
				for {
					err := lim.Wait(ctx)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					granted.Add(1)
				}
			})
		}
	}
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, budget.ErrExhausted) {
			t.Fatalf("Wait = %v, want ErrExhausted", err)
		}
	}
	if g := granted.Load(); g > maxCalls+chunk*motoSlack || g < maxCalls-chunk {
		t.Fatalf("granted %d calls, want %d (moto may lose one racing update)", g, maxCalls)
	} else if g != maxCalls {
		t.Logf("granted %d calls, not exactly %d: moto lost a racing update", g, maxCalls)
	}

	// Another run on the same key has a budget of its own.
	other := dynamobudget.New(db, table, key, dynamobudget.Config{Chunk: chunk, MaxCalls: maxCalls, RunID: "run-2"})
	if err := other.Wait(ctx); err != nil {
		t.Fatalf("run-2's first call: %v", err)
	}
	again := dynamobudget.New(db, table, key, dynamobudget.Config{Chunk: chunk, MaxCalls: maxCalls, RunID: "run-1"})
	if err := again.Wait(ctx); !errors.Is(err, budget.ErrExhausted) {
		t.Fatalf("run-1 on a new limiter = %v, want ErrExhausted", err)
	}
}

func testRelease(t *testing.T, srv *mototest.Server) {
	db := srv.DynamoDB()
	table := newTable(t, srv)
	const key = "gitlab.example#release"
	ctx := context.Background()
	runCalls := func() int64 {
		t.Helper()
		runs := item(t, db, table, key)["runs"].(*types.AttributeValueMemberM)
		return numAttr(t, runs.Value["run-1"])
	}
	lim := dynamobudget.New(db, table, key, dynamobudget.Config{Chunk: 8, MaxCalls: 100, RunID: "run-1"})
	// One waiter leases 1, then 2 once it used all of it, then 4.
	for range 4 {
		if err := lim.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := runCalls(); got != 7 {
		t.Fatalf("leased %d calls for 4 sequential waits, want 1+2+4 = 7", got)
	}
	if got, used := lim.Available(), lim.Used(); got != 3 || used != 4 {
		t.Fatalf("Available, Used = %v, %d; want 3 held, 4 used", got, used)
	}
	if err := lim.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := lim.Available(); got != 0 {
		t.Fatalf("Available after Release = %v, want 0", got)
	}
	if got := runCalls(); got != 4 {
		t.Fatalf("after Release the run counts %d calls, want the 4 spent", got)
	}
	if err := lim.Release(ctx); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if got := runCalls(); got != 4 {
		t.Fatalf("a second Release changed the count to %d", got)
	}
}

func testCancel(t *testing.T, srv *mototest.Server) {
	db := srv.DynamoDB()
	table := newTable(t, srv)
	tests := []struct {
		name  string
		cfg   dynamobudget.Config
		block func(*dynamobudget.Budget) // leaves the limiter unable to grant for a long time
	}{
		{"paused", dynamobudget.Config{RPM: 6000}, func(d *dynamobudget.Budget) {
			d.PauseUntil(context.Background(), time.Now().Add(time.Hour))
		}},
		{"rate spent", dynamobudget.Config{RPM: 1, Chunk: 1}, func(d *dynamobudget.Budget) {
			if err := d.Wait(context.Background()); err != nil { // the one call per minute
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := dynamobudget.New(db, table, "gitlab.example#"+strings.ReplaceAll(tt.name, " ", "-"), tt.cfg)
			tt.block(lim)
			ctx, cancel := context.WithCancel(context.Background())
			errs := make(chan error)
			for range 10 {
				go func() { errs <- lim.Wait(ctx) }()
			}
			time.Sleep(100 * time.Millisecond) // let the waiters block before the cancel
			cancel()
			for range 10 {
				if err := <-errs; !errors.Is(err, context.Canceled) {
					t.Errorf("Wait after cancel = %v, want context.Canceled", err)
				}
			}
		})
	}
}

func TestTokenKey(t *testing.T) {
	const token = "glpat-AbCdEf0123456789"
	tests := []struct {
		name        string
		host, token string
		sameAs      string
		differsFrom string
	}{
		{"stable", "gitlab.com", token, dynamobudget.TokenKey("gitlab.com", token), ""},
		{"per token", "gitlab.com", token + "x", "", dynamobudget.TokenKey("gitlab.com", token)},
		{"per host", "gitlab.example", token, "", dynamobudget.TokenKey("gitlab.com", token)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := dynamobudget.TokenKey(tt.host, tt.token)
			if strings.Contains(k, tt.token) || strings.Contains(k, tt.token[6:]) {
				t.Fatalf("key %q contains the token", k)
			}
			if !strings.HasPrefix(k, tt.host+"#") {
				t.Errorf("key %q does not start with the host", k)
			}
			if tt.sameAs != "" && k != tt.sameAs {
				t.Errorf("key %q, want %q", k, tt.sameAs)
			}
			if tt.differsFrom != "" && k == tt.differsFrom {
				t.Errorf("key %q equals %q", k, tt.differsFrom)
			}
		})
	}
}

// BenchmarkDynamoWait measures a permit's cost when many goroutines of one limiter
// share an unlimited budget: the leases (table writes) amortised over their chunk.
func BenchmarkDynamoWait(b *testing.B) {
	srv := mototest.Start(b)
	var writes atomic.Int64
	db := srv.DynamoDB(countWrites(&writes))
	table := mototest.Name("budget")
	if err := mototest.CreateTables(context.Background(), db, mototest.Name("store"), table); err != nil {
		b.Fatal(err)
	}
	for _, chunk := range []int{1, 10, 50} {
		b.Run("chunk="+strconv.Itoa(chunk), func(b *testing.B) {
			lim := dynamobudget.New(db, table, "bench#"+strconv.Itoa(chunk), dynamobudget.Config{Chunk: chunk})
			writes.Store(0)
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := lim.Wait(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(writes.Load())/float64(b.N), "writes/op")
		})
	}
}

// At rates where one token is paid for faster than a DynamoDB round trip, leases must
// still be spendable (they once expired before they arrived, and Wait never returned).
func testHighRate(t *testing.T, srv *mototest.Server) {
	table := newTable(t, srv)
	d := dynamobudget.New(srv.DynamoDB(), table, "high-rate", dynamobudget.Config{RPM: 60000})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 200 {
		if err := d.Wait(ctx); err != nil {
			t.Fatalf("Wait %d at 60,000 rpm: %v", i, err)
		}
	}
	if d.Used() != 200 {
		t.Errorf("Used = %d, want 200", d.Used())
	}
}
