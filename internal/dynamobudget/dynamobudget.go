// Package dynamobudget is the rate budget shared by every Lambda worker (and serve with
// BACKEND=aws): a GCRA bucket in one DynamoDB item, leased in chunks. The in-process
// budget is internal/budget.
package dynamobudget

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/gl2gh/discovery-agent/internal/backoff"
	"github.com/gl2gh/discovery-agent/internal/budget"
)

// The budget item's attributes. Times are Unix microseconds from the writer's clock,
// except expires_at (Unix seconds, for DynamoDB TTL).
const (
	attrKey        = "key"
	attrTAT        = "tat"         // GCRA theoretical arrival time: the bucket is empty until then
	attrPause      = "pause_until" // no lease before this
	attrLimit      = "limit_rpm"   // lowest rate GitLab announced lately, per minute
	attrLimitUntil = "limit_until" // when limit_rpm lapses unless announced again
	attrRuns       = "runs"        // map run id -> calls leased for that run
	attrRunsAt     = "runs_at"     // map run id -> Unix seconds of the run's last lease
	attrExpires    = "expires_at"
)

const (
	// announcedFor is how long an announced limit holds without being announced again.
	announcedFor = time.Minute
	// unlimitedHold is how long leased tokens stay valid when no rate applies; it bounds
	// how late a worker learns of a pause another worker set.
	unlimitedHold = 10 * time.Second
	// itemTTL keeps an abandoned host/token item from living forever.
	itemTTL = 30 * 24 * time.Hour
	// staleRun is how long a run's call counter stays on the item after its last lease.
	staleRun = 7 * 24 * time.Hour
	maxChunk = 50
	// minHold is the least time leased tokens stay valid after the lease arrives. At
	// high rates a token is paid for in less than a DynamoDB round trip; without it
	// such a lease would expire before it could be spent, and leasing would never end.
	// A worker holds one lease at a time, so this stays within its one chunk of burst.
	minHold = 100 * time.Millisecond
	// pauseSlack is how far past budget.MaxPause a shared pause may lie and still be
	// honoured (capped to MaxPause): the writer's clock may be ahead. Beyond it the
	// item's pause was not written by a capped limiter and is ignored, so a stale or
	// hostile pause_until cannot hold every worker for good.
	pauseSlack = time.Minute
)

// Config configures a Dynamo limiter.
type Config struct {
	// RPM is the request rate per minute shared by every worker using the same table
	// and key, never exceeded; 0 means no rate of our own (GitLab's announced limit
	// still applies).
	RPM int
	// Pace is how far below the limits to pace (Target) and whether to adapt to the
	// answers while GitLab announces no limit (budget.AIMD, per worker).
	Pace budget.Pace
	// Chunk is the most tokens one lease takes from the table, and the bucket's burst.
	// Default one second at the current pace, at least 1 and at most 50; 50 when no
	// rate applies.
	Chunk int
	// MaxCalls caps the calls of run RunID across all workers; 0 is unlimited.
	MaxCalls int64
	RunID    string
	// Now is the clock (for tests); default time.Now.
	Now func() time.Time
	// Logger receives write failures of Observe and PauseUntil, which have no error
	// result; default slog.Default().
	Logger *slog.Logger
}

// Budget is a gitlab.Limiter whose budget lives in one DynamoDB item, shared by every
// worker (Lambda invocations, local goroutines) that uses the same table and key.
//
// # Design
//
// The item is a GCRA token bucket: tat, the theoretical arrival time, is when the
// bucket would be full again; tokens available at now = (now + Chunk/rate - tat) * rate,
// capped at Chunk. A worker leases n <= Chunk tokens with ONE conditional UpdateItem:
//
//	idle  (tat <= now):                   SET tat = :now + n/rate
//	busy  (now < tat <= now+(Chunk-n)/rate): SET tat = tat + n/rate
//
// both also conditioned on pause_until <= now and, with MaxCalls, on the run's leased
// count leaving room for n. It then hands the tokens out locally, so the table sees
// one write per lease, not per request. Leased tokens are valid until the new tat —
// the moment the lease is paid for — and are dropped after, so a frozen Lambda cannot
// wake up with a stale burst; dropped tokens go back to the run's MaxCalls count with
// the next lease (or Release). The lease size follows demand: the goroutines waiting
// and how much of the previous lease was used, so a worker issuing one request at a
// time does not lease tokens it lets expire.
//
// When the condition fails, the item's old image comes back with the error
// (ReturnValuesOnConditionCheckFailure) and tells how long to wait: until the pause
// ends or enough of the bucket refills. An exhausted MaxCalls returns budget.ErrExhausted.
//
// GitLab's signals are shared through the item: PauseUntil and Observe with little
// remaining write pause_until, at most budget.MaxPause ahead, conditioned so that it
// only moves forward (a pause_until further ahead than MaxPause is ignored); an announced
// limit below RPM is stored with a one-minute lifetime, refreshed while it is
// announced, and only lowered meanwhile, so that endpoints announcing different
// limits do not make the item flap. Every worker applies min(RPM, announced) from the
// item image its last lease returned.
//
// # Bounds
//
// Tokens leased from a cold start up to any time t number at most rate*t + Chunk. As
// a token is spent before its lease's tat, requests in any window of length L number
// at most rate*L + 2*Chunk (one chunk of burst, one of lead). Set RPM a few percent
// below GitLab's limit for GitLab's fixed one-minute windows.
//
// Clock skew: every timestamp is the writing worker's clock. A worker whose clock is
// ahead by s can lease up to s*rate tokens early and ends a pause s early; a clock
// behind only waits longer. The refill never exceeds one chunk (the burst), so skew
// cannot build up credit; a worker also holds at most one lease, and may keep spending
// it for at most Chunk/rate after another worker set a pause. Lambda clocks are
// NTP-synchronised to milliseconds, which at GitLab rates is under one request.
//
// # MaxCalls
//
// The run's call count lives on the same item, in the map runs[run id], so the lease
// stays one write. Entries of runs idle for 7 days are removed when a limiter first
// touches the item. Calls are counted when leased, so MaxCalls is never exceeded;
// tokens that expire unspent are given back.
//
// # Table
//
// Partition key "key" (S), no sort key; TTL on expires_at (see mototest.CreateTables).
// The key must not contain the token: use TokenKey.
type Budget struct {
	client *dynamodb.Client
	table  string
	key    string
	cfg    Config
	log    *slog.Logger
	sleep  func(ctx context.Context, d time.Duration) error

	leasing chan struct{} // held by the one goroutine leasing for this instance

	mu         sync.Mutex
	waiters    int           // goroutines in Wait
	tokens     int           // leased and not spent
	validUntil time.Time     // tokens expire then
	leaseSize  int           // size of the current lease
	leaseIv    time.Duration // the current lease's interval; 0 when no rate applied
	spent      int           // tokens of the current lease spent
	unused     int64         // expired tokens not yet given back to the run's count
	want       int           // lease size the recent demand asks for
	used       int64         // calls granted by this instance
	ensured    bool          // the run maps exist on the item
	seen       bool          // an image of the item arrived: its announced limit is known
	aimd       *budget.AIMD

	// The item as this instance last saw it.
	tat        time.Time
	pause      time.Time
	limit      int
	limitUntil time.Time
	runCalls   int64
}

// New returns a limiter sharing the budget stored under key in table.
func New(client *dynamodb.Client, table, key string, cfg Config) *Budget {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &Budget{
		client:  client,
		table:   table,
		key:     key,
		cfg:     cfg,
		log:     log,
		sleep:   backoff.Sleep,
		leasing: make(chan struct{}, 1),
		want:    1,
	}
	if cfg.Pace.Adaptive {
		d.aimd = budget.NewAIMD(cfg.Pace, cfg.RPM)
	}
	return d
}

// TokenKey returns the budget key for a GitLab host and token: the host and a short
// hash of the token, so that the token itself never reaches the table.
func TokenKey(host, token string) string {
	sum := sha256.Sum256([]byte(token))
	return host + "#" + hex.EncodeToString(sum[:8])
}

// RPM returns the configured requests per minute (0 = only GitLab's announced limit).
func (d *Budget) RPM() int { return d.cfg.RPM }

// Wait blocks until a request may be sent. It returns an error wrapping budget.ErrExhausted
// once the run's MaxCalls are leased and spent, or ctx's error.
func (d *Budget) Wait(ctx context.Context) error {
	d.mu.Lock()
	d.waiters++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.waiters--
		d.mu.Unlock()
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait, ok := d.take()
		if ok {
			return nil
		}
		if wait > 0 {
			if err := d.sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		select {
		case d.leasing <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		err := d.lease(ctx)
		<-d.leasing
		if err != nil {
			return err
		}
	}
}

// take spends a local token, or says how long the local pause lasts (0: lease more).
func (d *Budget) take() (time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.cfg.Now()
	if now.Before(d.pause) {
		return d.pause.Sub(now), false
	}
	d.expire(now)
	if d.tokens == 0 {
		return 0, false
	}
	d.tokens--
	d.spent++
	d.used++
	if d.tokens == 0 && d.spent == d.leaseSize {
		// The whole lease was used in time: demand may be higher.
		d.want = min(2*d.want, d.chunk(d.interval(now)))
	}
	return 0, true
}

// expire drops tokens past their lease's validity. d.mu must be held.
func (d *Budget) expire(now time.Time) {
	if d.tokens == 0 || now.Before(d.validUntil) {
		return
	}
	d.unused += int64(d.tokens)
	d.want = max(1, d.spent)
	d.tokens = 0
}

// lease tries, under d.leasing, to take tokens from the table. It returns nil after a
// successful lease or when the caller should look again: tokens arrived meanwhile, or
// it slept as long as the refused lease's item image said.
func (d *Budget) lease(ctx context.Context) error {
	if d.cfg.MaxCalls > 0 && !d.isEnsured() {
		if err := d.ensureRun(ctx); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		now := d.cfg.Now()
		p := d.plan(now)
		if p.n == 0 {
			return nil // tokens or a pause arrived meanwhile
		}
		out, err := d.client.UpdateItem(ctx, p.input(d, now))
		if err == nil {
			d.granted(p, now, out.Attributes)
			return nil
		}
		var ccf *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &ccf):
			item := ccf.Item
			if item == nil {
				if item, err = d.read(ctx); err != nil {
					return err
				}
			}
			wait, err := d.refused(p, now, item)
			if err != nil {
				return err
			}
			if wait <= 0 && attempt < 3 {
				continue // the image corrected the cached state: the next plan fits
			}
			wait = max(wait, time.Duration(attempt)*time.Millisecond)
			// Wait looks at local state again after the sleep: tokens or a pause may
			// have arrived meanwhile.
			return d.sleep(ctx, wait+jitter(wait))
		case d.cfg.MaxCalls > 0 && isValidation(err) && attempt == 0:
			// The item was deleted (an operator reset) and the run maps with it.
			if err := d.ensureRun(ctx); err != nil {
				return err
			}
		default:
			return fmt.Errorf("lease %d API calls from budget %q: %w", p.n, d.key, err)
		}
	}
}

// leasePlan is one conditional UpdateItem.
type leasePlan struct {
	n        int           // tokens asked for
	delta    int64         // added to the run's count: n minus tokens given back
	interval time.Duration // 0 when no rate applies
	busy     bool          // the bucket is (as far as we know) not idle
	newTAT   time.Time     // idle case: the new tat
	limitTAT time.Time     // busy case: the latest tat that still has n tokens
	give     int64         // tokens given back to the run's count
}

// plan sizes the next lease from demand, MaxCalls and the cached item. n == 0 means
// no lease is needed any more.
func (d *Budget) plan(now time.Time) leasePlan {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now)
	if d.tokens > 0 || now.Before(d.pause) {
		return leasePlan{}
	}
	interval := d.interval(now)
	chunk := d.chunk(interval)
	n := min(max(d.want, d.waiters), chunk)
	if interval > 0 {
		// At most half the bucket: a lease of all of it waits until the bucket is full,
		// and whatever the lease's round trip and jitter add is then lost for good; with
		// half, the bucket goes on filling meanwhile. (Measured: 85% of the rate with
		// three workers leasing whole buckets.)
		n = min(n, max(1, (chunk+1)/2))
	}
	if !d.seen {
		n = 1 // learn the item's announced limit before leasing at the starting pace
	}
	if d.cfg.MaxCalls > 0 {
		left := d.cfg.MaxCalls - (d.runCalls - d.unused)
		if left <= 0 {
			// The cached count may be stale only upwards of what was leased; a lease
			// of 1 asks the table, which refuses with the current count if it is spent.
			left = 1
		}
		n = min(n, int(min(left, int64(chunk))))
	}
	p := leasePlan{n: n, give: d.unused, delta: int64(n) - d.unused, interval: interval}
	if p.interval > 0 {
		span := time.Duration(n) * p.interval
		if d.tat.After(now) {
			p.busy = true
			p.limitTAT = now.Add(time.Duration(chunk)*p.interval - span)
		} else {
			p.newTAT = now.Add(span)
		}
	}
	return p
}

func (p leasePlan) input(d *Budget, now time.Time) *dynamodb.UpdateItemInput {
	names := map[string]string{"#pause": attrPause, "#exp": attrExpires}
	values := map[string]types.AttributeValue{
		":now": micros(now),
		":exp": num(now.Add(itemTTL).Unix()),
	}
	set := []string{"#exp = :exp"}
	values[":far"] = micros(farPause(now))
	cond := []string{"(attribute_not_exists(#pause) OR #pause <= :now OR #pause > :far)"}
	if p.interval > 0 {
		names["#tat"] = attrTAT
		if p.busy {
			set = append(set, "#tat = #tat + :span")
			values[":span"] = num(int64(time.Duration(p.n)*p.interval) / int64(time.Microsecond))
			values[":lim"] = micros(p.limitTAT)
			cond = append(cond, "#tat > :now AND #tat <= :lim")
		} else {
			set = append(set, "#tat = :tat")
			values[":tat"] = micros(p.newTAT)
			cond = append(cond, "(attribute_not_exists(#tat) OR #tat <= :now)")
		}
	}
	if d.cfg.MaxCalls > 0 {
		names["#runs"], names["#runsAt"], names["#run"] = attrRuns, attrRunsAt, d.cfg.RunID
		values[":delta"] = num(p.delta)
		values[":zero"] = num(0)
		values[":room"] = num(d.cfg.MaxCalls - p.delta)
		values[":sec"] = num(now.Unix())
		set = append(set, "#runs.#run = if_not_exists(#runs.#run, :zero) + :delta", "#runsAt.#run = :sec")
		cond = append(cond, "(attribute_not_exists(#runs.#run) OR #runs.#run <= :room)")
	}
	return &dynamodb.UpdateItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 d.itemKey(),
		UpdateExpression:                    aws.String("SET " + strings.Join(set, ", ")),
		ConditionExpression:                 aws.String(strings.Join(cond, " AND ")),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// granted hands out a successful lease's tokens.
func (d *Budget) granted(p leasePlan, now time.Time, item map[string]types.AttributeValue) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.absorb(item)
	d.unused -= p.give
	d.tokens, d.leaseSize, d.spent, d.leaseIv = p.n, p.n, 0, p.interval
	switch {
	case p.interval > 0 && d.tat.After(now):
		d.validUntil = d.tat
	case p.interval > 0:
		d.validUntil = now.Add(time.Duration(p.n) * p.interval)
	default:
		d.validUntil = now.Add(unlimitedHold)
	}
	if least := d.cfg.Now().Add(minHold); d.validUntil.Before(least) {
		d.validUntil = least
	}
}

// refused learns from a refused lease's item image how long to wait.
func (d *Budget) refused(p leasePlan, now time.Time, item map[string]types.AttributeValue) (time.Duration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.absorb(item)
	if now.Before(d.pause) {
		return d.pause.Sub(now), nil
	}
	if d.cfg.MaxCalls > 0 {
		calls := d.runCalls - d.unused // as if the expired tokens were given back
		if calls >= d.cfg.MaxCalls {
			if d.unused > 0 {
				return 0, nil // the next lease gives them back and may fit
			}
			return 0, fmt.Errorf("run %s leased %d of %d calls: %w", d.cfg.RunID, d.runCalls, d.cfg.MaxCalls, budget.ErrExhausted)
		}
		if d.runCalls+p.delta > d.cfg.MaxCalls {
			return 0, nil // the next plan asks for what is left
		}
	}
	if iv := d.interval(now); iv > 0 && d.tat.After(now) {
		// n tokens are back when tat <= now' + (Chunk-n)*interval.
		ready := d.tat.Add(-time.Duration(d.chunk(iv)-p.n) * iv)
		if ready.After(now) {
			return ready.Sub(now), nil
		}
	}
	return 0, nil
}

// absorb caches what an item image says; nil is an item that does not exist. d.mu
// must be held.
func (d *Budget) absorb(item map[string]types.AttributeValue) {
	// A missing attribute is news too: the item was reset, or never had it.
	d.seen = true
	d.tat, _ = timeAttr(item[attrTAT])
	if t, ok := timeAttr(item[attrPause]); ok {
		d.pauseLocked(t) // the local pause only moves forward as well
	}
	limit, _ := intAttr(item[attrLimit])
	d.limit = int(limit)
	d.limitUntil, _ = timeAttr(item[attrLimitUntil])
	if d.cfg.MaxCalls > 0 {
		d.runCalls = 0
		if runs, ok := item[attrRuns].(*types.AttributeValueMemberM); ok {
			d.runCalls, _ = intAttr(runs.Value[d.cfg.RunID])
		}
	}
}

func (d *Budget) read(ctx context.Context) (map[string]types.AttributeValue, error) {
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(d.table),
		Key:            d.itemKey(),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read budget %q: %w", d.key, err)
	}
	return out.Item, nil
}

// Available returns the tokens this instance holds (for the tokens-available gauge):
// 0 while paused.
func (d *Budget) Available() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.cfg.Now()
	if now.Before(d.pause) || !now.Before(d.validUntil) {
		return 0
	}
	return float64(d.tokens)
}

// Used returns how many calls this instance granted.
func (d *Budget) Used() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used
}

func (d *Budget) itemKey() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: &types.AttributeValueMemberS{Value: d.key}}
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func micros(t time.Time) types.AttributeValue { return num(t.UnixMicro()) }

func intAttr(v types.AttributeValue) (int64, bool) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	return i, err == nil
}

func timeAttr(v types.AttributeValue) (time.Time, bool) {
	us, ok := intAttr(v)
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMicro(us), true
}

// jitter spreads workers that learned the same refill time, so they do not all hit
// the item in the same millisecond.
func jitter(d time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(max(d/10, time.Millisecond))))
}

func isValidation(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ValidationException"
}
