package budget

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when a waiter sleeps on it, so pacing can be
// counted exactly without wall-clock time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// newFake returns a limiter on a fake clock whose sleeps advance that clock.
func newFake(cfg Config) (*Memory, *fakeClock) {
	clk := &fakeClock{t: epoch}
	cfg.Now = clk.Now
	m := NewMemory(cfg)
	m.sleep = func(ctx context.Context, d time.Duration) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		clk.Advance(d)
		return nil
	}
	return m, clk
}

// grantsWithin counts the calls Wait grants before the fake clock passes window.
func grantsWithin(t *testing.T, m *Memory, clk *fakeClock, window time.Duration) int {
	t.Helper()
	start := clk.Now()
	for n := 0; ; n++ {
		if err := m.Wait(context.Background()); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if clk.Now().Sub(start) >= window {
			return n
		}
	}
}

func TestPacing(t *testing.T) {
	// A GCRA bucket grants Burst calls at once, then one per interval: within a
	// half-open window of length w, Burst + w/interval - 1 calls.
	tests := []struct {
		name   string
		cfg    Config
		window time.Duration
		want   int
	}{
		{"600rpm default burst 10", Config{RPM: 600}, time.Minute, 10 + 600 - 1},
		{"600rpm burst 1", Config{RPM: 600, Burst: 1}, time.Minute, 600},
		{"60rpm default burst 1", Config{RPM: 60}, time.Minute, 60},
		{"120rpm burst 5 half minute", Config{RPM: 120, Burst: 5}, 30 * time.Second, 5 + 60 - 1},
		{"2000rpm ten minutes", Config{RPM: 2000}, 10 * time.Minute, 33 + 20000 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, clk := newFake(tt.cfg)
			if got := grantsWithin(t, m, clk, tt.window); got != tt.want {
				t.Errorf("granted %d calls in %v, want %d", got, tt.window, tt.want)
			}
		})
	}
}

func TestObservedLimit(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		limit int
		want  int // calls granted in a minute after Observe
	}{
		{"lower announced limit slows", Config{RPM: 600}, 60, 60},
		{"higher announced limit does not speed up", Config{RPM: 600}, 6000, 10 + 600 - 1},
		{"announced limit paces an unlimited config", Config{}, 120, 2 + 120 - 1},
		{"absent limit leaves the rate", Config{RPM: 60}, 0, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, clk := newFake(tt.cfg)
			m.Observe(context.Background(), tt.limit, 1000, time.Time{})
			if got := grantsWithin(t, m, clk, time.Minute); got != tt.want {
				t.Errorf("granted %d calls in a minute, want %d", got, tt.want)
			}
		})
	}
}

func TestObservedLimitFollowsLatest(t *testing.T) {
	m, clk := newFake(Config{RPM: 600})
	m.Observe(context.Background(), 60, 50, time.Time{})
	if got := grantsWithin(t, m, clk, time.Minute); got != 60 {
		t.Fatalf("at announced 60/min: %d calls in a minute, want 60", got)
	}
	m.Observe(context.Background(), 300, 250, time.Time{})
	// The call that ended the first minute left a one-second backlog: at 300/min that
	// is the whole burst of 5, so calls resume one per 200ms from +200ms: 299.
	if got := grantsWithin(t, m, clk, time.Minute); got != 299 {
		t.Errorf("at announced 300/min: %d calls in a minute, want 299", got)
	}
}

func TestPause(t *testing.T) {
	ctx := context.Background()
	at := func(d time.Duration) time.Time { return epoch.Add(d) }
	tests := []struct {
		name   string
		act    func(m *Memory)
		wantAt time.Duration // when the next call is granted
	}{
		{"PauseUntil", func(m *Memory) { m.PauseUntil(ctx, at(10*time.Second)) }, 10 * time.Second},
		{"PauseUntil never moves back", func(m *Memory) {
			m.PauseUntil(ctx, at(20*time.Second))
			m.PauseUntil(ctx, at(5*time.Second))
		}, 20 * time.Second},
		{"PauseUntil in the past", func(m *Memory) { m.PauseUntil(ctx, at(-time.Second)) }, 0},
		{"remaining 0 pauses until reset", func(m *Memory) { m.Observe(ctx, 600, 0, at(30*time.Second)) }, 30 * time.Second},
		{"remaining within reserve pauses", func(m *Memory) { m.Observe(ctx, 600, Reserve, at(30*time.Second)) }, 30 * time.Second},
		{"remaining above reserve does not pause", func(m *Memory) { m.Observe(ctx, 600, Reserve+1, at(30*time.Second)) }, 0},
		{"remaining 0 without reset does not pause", func(m *Memory) { m.Observe(ctx, 0, 0, time.Time{}) }, 0},
		{"PauseUntil a century ahead lasts MaxPause", func(m *Memory) { m.PauseUntil(ctx, at(100*365*24*time.Hour)) }, MaxPause},
		{"PauseUntil at the end of time lasts MaxPause", func(m *Memory) { m.PauseUntil(ctx, time.Unix(1<<62, 0)) }, MaxPause},
		{"reset in 2126 lasts MaxPause", func(m *Memory) {
			m.Observe(ctx, 600, 0, time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC))
		}, MaxPause},
		{"reset before 1970 is ignored", func(m *Memory) { m.Observe(ctx, 600, 0, time.Unix(-5, 0)) }, 0},
		{"past reset is ignored", func(m *Memory) { m.Observe(ctx, 600, 0, at(-time.Minute)) }, 0},
		{"Observe never moves the pause back", func(m *Memory) {
			m.PauseUntil(ctx, at(time.Minute))
			m.Observe(ctx, 600, 0, at(30*time.Second))
		}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, clk := newFake(Config{})
			tt.act(m)
			if tt.wantAt > 0 {
				if got := m.Available(); got != 0 {
					t.Errorf("Available while paused = %v, want 0", got)
				}
			}
			if err := m.Wait(ctx); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if got := clk.Now().Sub(epoch); got != tt.wantAt {
				t.Errorf("call granted at +%v, want +%v", got, tt.wantAt)
			}
		})
	}
}

func TestMaxCallsExactUnderConcurrency(t *testing.T) {
	const (
		goroutines = 50
		perG       = 40
		maxCalls   = 1000
	)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"unlimited rate", Config{MaxCalls: maxCalls}},
		{"paced", Config{RPM: 6000, MaxCalls: maxCalls}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newFake(tt.cfg)
			var (
				wg        sync.WaitGroup
				mu        sync.Mutex
				granted   int
				exhausted int
				other     []error
			)
			for range goroutines {
				wg.Go(func() {
					for range perG {
						err := m.Wait(context.Background())
						mu.Lock()
						switch {
						case err == nil:
							granted++
						case errors.Is(err, ErrExhausted):
							exhausted++
						default:
							other = append(other, err)
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(other) > 0 {
				t.Fatalf("unexpected errors: %v", other)
			}
			if granted != maxCalls || exhausted != goroutines*perG-maxCalls {
				t.Errorf("granted %d, exhausted %d; want %d and %d", granted, exhausted, maxCalls, goroutines*perG-maxCalls)
			}
			if got := m.Used(); got != maxCalls {
				t.Errorf("Used = %d, want %d", got, maxCalls)
			}
		})
	}
}

func TestWaitHonoursContext(t *testing.T) {
	tests := []struct {
		name   string
		paused bool
		ctx    func() (context.Context, context.CancelFunc)
		want   error
	}{
		{"cancelled while paused", true, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(10*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline while paused", true, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 10*time.Millisecond)
		}, context.DeadlineExceeded},
		{"already cancelled with tokens available", false, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMemory(Config{RPM: 60}) // real clock and timer
			if tt.paused {
				m.PauseUntil(context.Background(), time.Now().Add(time.Hour))
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- m.Wait(ctx) }()
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) {
					t.Errorf("Wait = %v, want %v", err, tt.want)
				}
			case <-time.After(10 * time.Second): // a hang guard, not a speed assertion
				t.Fatal("Wait did not return after its context ended")
			}
			if got := m.Used(); got != 0 {
				t.Errorf("Used = %d after a cancelled Wait, want 0", got)
			}
		})
	}
}

func TestAvailable(t *testing.T) {
	m, clk := newFake(Config{RPM: 600}) // burst 10, one token per 100ms
	if got := m.Available(); got != 10 {
		t.Errorf("fresh bucket: Available = %v, want 10", got)
	}
	for range 4 {
		if err := m.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Available(); got != 6 {
		t.Errorf("after 4 calls: Available = %v, want 6", got)
	}
	clk.Advance(250 * time.Millisecond)
	if got := m.Available(); math.Abs(got-8.5) > 1e-9 {
		t.Errorf("after 250ms: Available = %v, want 8.5", got)
	}
	clk.Advance(time.Hour)
	if got := m.Available(); got != 10 {
		t.Errorf("after an idle hour: Available = %v, want 10 (the burst)", got)
	}
	if got := NewMemory(Config{}).Available(); !math.IsInf(got, 1) {
		t.Errorf("unlimited: Available = %v, want +Inf", got)
	}
}

// BenchmarkWait measures the limiter's own cost per granted call, uncontended and
// with every core contending for it.
func BenchmarkWait(b *testing.B) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		m := NewMemory(Config{})
		b.ReportAllocs()
		for range b.N {
			if err := m.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		m := NewMemory(Config{RPM: math.MaxInt32, MaxCalls: math.MaxInt64})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := m.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func TestStartRunResetsTheRunCap(t *testing.T) {
	m := NewMemory(Config{MaxCalls: 2})
	ctx := context.Background()
	for range 2 {
		if err := m.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Wait(ctx); !errors.Is(err, ErrExhausted) {
		t.Fatalf("third call: %v, want ErrExhausted", err)
	}
	m.StartRun(0)
	if err := m.Wait(ctx); err != nil {
		t.Fatalf("first call of the next run: %v", err)
	}
	m.StartRun(2) // a resumed run that had used its two calls
	if err := m.Wait(ctx); !errors.Is(err, ErrExhausted) {
		t.Fatalf("resumed run past its cap: %v, want ErrExhausted", err)
	}
}
