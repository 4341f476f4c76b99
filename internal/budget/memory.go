package budget

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/gl2gh/discovery-agent/internal/backoff"
)

// Reserve is the remaining count at or below which Observe pauses until the reset: the
// requests other workers already have in flight will use up the last few.
const Reserve = 5

// Config configures a Memory limiter.
type Config struct {
	RPM      int              // requests per minute shared by all users of this limiter; 0 = unlimited
	Burst    int              // requests allowed at once; default max(1, rate/60)
	MaxCalls int64            // per run, 0 = unlimited
	Now      func() time.Time // for tests; default time.Now
}

// Memory is an in-process limiter: a token bucket at min(RPM, the limit GitLab
// announces) per minute, kept as a GCRA theoretical arrival time so that pacing is
// exact in integer time. It implements gitlab.Limiter (asserted in a test, so that the
// gitlab client may import this package for ErrExhausted). It is safe for concurrent use.
type Memory struct {
	cfg   Config
	sleep func(ctx context.Context, d time.Duration) error // replaced in tests

	mu        sync.Mutex
	announced int       // last limit per minute GitLab announced, 0 when none
	tat       time.Time // theoretical arrival time of the next request when the bucket is full
	pause     time.Time // no request before this
	used      int64
}

// NewMemory returns a limiter for one run.
func NewMemory(cfg Config) *Memory {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Memory{cfg: cfg, sleep: backoff.Sleep}
}

// Wait blocks until a request may be sent. Every nil return counts as one call; once
// MaxCalls calls were granted it returns an error wrapping ErrExhausted.
func (m *Memory) Wait(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := m.reserve()
		if err != nil || d == 0 {
			return err
		}
		if err := m.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// reserve grants a call (0, nil) or says how long to wait before asking again.
func (m *Memory) reserve() (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.MaxCalls > 0 && m.used >= m.cfg.MaxCalls {
		return 0, fmt.Errorf("%d of %d calls used: %w", m.used, m.cfg.MaxCalls, ErrExhausted)
	}
	now := m.cfg.Now()
	if now.Before(m.pause) {
		return m.pause.Sub(now), nil
	}
	interval, burst, limited := m.pacing()
	if limited {
		tat := m.tat
		if tat.Before(now) {
			tat = now
		}
		// GCRA: a request is allowed while the backlog, tat-now, is within the burst.
		if early := tat.Sub(now) - time.Duration(burst-1)*interval; early > 0 {
			return early, nil
		}
		m.tat = tat.Add(interval)
	}
	m.used++
	return 0, nil
}

// pacing returns the interval between requests and the burst; limited is false when
// neither RPM nor GitLab sets a rate. m.mu must be held.
func (m *Memory) pacing() (interval time.Duration, burst int, limited bool) {
	rate := m.cfg.RPM
	if m.announced > 0 && (rate == 0 || m.announced < rate) {
		rate = m.announced
	}
	if rate <= 0 {
		return 0, 0, false
	}
	burst = m.cfg.Burst
	if burst <= 0 {
		burst = max(1, rate/60)
	}
	return time.Minute / time.Duration(rate), burst, true
}

// Observe records the limit GitLab announced (per minute; 0 when absent) and pauses
// until reset when remaining is at or below a small Reserve. A zero or past reset
// carries no information and never pauses; one beyond MaxPause pauses MaxPause. A
// 429's Retry-After arrives through PauseUntil.
func (m *Memory) Observe(ctx context.Context, limit, remaining int, reset time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit > 0 {
		m.announced = limit
	}
	if remaining <= Reserve {
		m.pauseLocked(reset)
	}
}

// PauseUntil stops every request until t, at most MaxPause from now. It only ever
// moves the pause forward.
func (m *Memory) PauseUntil(ctx context.Context, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pauseLocked(t)
}

func (m *Memory) pauseLocked(t time.Time) {
	t, ok := CapPause(m.cfg.Now(), t)
	if ok && t.After(m.pause) {
		m.pause = t
	}
}

// Available returns the tokens in the bucket now (for the
// discovery_budget_tokens_available gauge): 0 while paused, +Inf when unlimited.
func (m *Memory) Available() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	if now.Before(m.pause) {
		return 0
	}
	interval, burst, limited := m.pacing()
	if !limited {
		return math.Inf(1)
	}
	backlog := max(m.tat.Sub(now), 0)
	return max(float64(burst)-float64(backlog)/float64(interval), 0)
}

// RPM returns the configured requests per minute (0 = unlimited).
func (m *Memory) RPM() int { return m.cfg.RPM }

// Used returns how many calls Wait granted.
func (m *Memory) Used() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// StartRun begins counting MaxCalls for a new run (a long-running agent makes many runs
// with one limiter), with the calls the run already made before, e.g. before a restart.
func (m *Memory) StartRun(used int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.used = max(used, 0)
}
