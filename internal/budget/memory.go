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
	RPM      int              // requests per minute shared by all users of this limiter, never exceeded; 0 = no limit of our own
	Pace     Pace             // how far below the limits to pace, and whether to adapt
	Burst    int              // requests allowed at once; default max(1, rate/60)
	MaxCalls int64            // per run, 0 = unlimited
	Now      func() time.Time // for tests; default time.Now
}

// announcedFor is how long an announced limit holds in an adaptive pace without being
// announced again; then the pace adapts to the answers.
const announcedFor = time.Minute

// Memory is an in-process limiter: a token bucket at Pace.Rate per minute — Target of
// the lower of RPM and the limit GitLab announces, else the adaptive rate — kept as a
// GCRA theoretical arrival time so that pacing is exact. It implements gitlab.Limiter
// (asserted in a test, so that the gitlab client may import this package for
// ErrExhausted). It is safe for concurrent use.
type Memory struct {
	cfg   Config
	sleep func(ctx context.Context, d time.Duration) error // replaced in tests

	mu          sync.Mutex
	announced   int       // last limit per minute GitLab announced, 0 when none
	announcedAt time.Time // when it was last announced
	aimd        *AIMD     // the adaptive rate; nil unless Pace.Adaptive
	tat         time.Time // theoretical arrival time of the next request when the bucket is full
	pause       time.Time // no request before this
	used        int64
}

// NewMemory returns a limiter for one run.
func NewMemory(cfg Config) *Memory {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Memory{cfg: cfg, sleep: backoff.Sleep}
	if cfg.Pace.Adaptive {
		m.aimd = NewAIMD(cfg.Pace, cfg.RPM)
	}
	return m
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
	interval, burst, limited := m.pacing(now)
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
// neither RPM, GitLab nor the adaptive pace sets a rate. m.mu must be held.
func (m *Memory) pacing(now time.Time) (interval time.Duration, burst int, limited bool) {
	rate := m.rate(now)
	if rate <= 0 {
		return 0, 0, false
	}
	burst = m.cfg.Burst
	if burst <= 0 {
		burst = max(1, int(rate/60))
	}
	return time.Duration(float64(time.Minute) / rate), burst, true
}

// rate is the pace in requests per minute, 0 for none. m.mu must be held.
func (m *Memory) rate(now time.Time) float64 {
	announced := m.announced
	var adaptive float64
	if m.aimd != nil {
		if now.Sub(m.announcedAt) >= announcedFor {
			announced = 0 // lapsed: GitLab stopped announcing it
		}
		adaptive = m.aimd.Rate()
	}
	return m.cfg.Pace.Rate(m.cfg.RPM, announced, adaptive)
}

// EffectiveRPM returns the pace in requests per minute now (for the
// discovery_rate_limit_effective_rpm gauge and the progress line); 0 when nothing
// limits the rate.
func (m *Memory) EffectiveRPM() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rate(m.cfg.Now())
}

// Answer feeds the adaptive pace one answer's status (0: none arrived) and latency;
// without Pace.Adaptive it does nothing.
func (m *Memory) Answer(ctx context.Context, status int, latency time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.aimd != nil {
		m.aimd.Answer(m.cfg.Now(), status, latency)
	}
}

// Observe records the limit GitLab announced (per minute; 0 when absent) and pauses
// until reset when remaining is at or below a small Reserve. A zero or past reset
// carries no information and never pauses; one beyond MaxPause pauses MaxPause. A
// 429's Retry-After arrives through PauseUntil.
func (m *Memory) Observe(ctx context.Context, limit, remaining int, reset time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit > 0 {
		m.announced, m.announcedAt = limit, m.cfg.Now()
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
	interval, burst, limited := m.pacing(now)
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
