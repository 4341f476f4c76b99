package gitlabsim

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// limiter is GitLab's authenticated-API throttle for the one accepted token: a
// counter per fixed window.
type limiter struct {
	rpm    int
	limit  int64 // per window
	window time.Duration

	mu    sync.Mutex
	index int64 // current window number since the Unix epoch
	count int64
}

func newLimiter(rpm int, window time.Duration) *limiter {
	perWindow := int64(math.Round(float64(rpm) * window.Seconds() / 60))
	return &limiter{rpm: rpm, limit: max(perWindow, 1), window: window}
}

// limitState is what one request learned about its window.
type limitState struct {
	rpm      int
	observed int64
	limit    int64
	reset    time.Time
	ok       bool
}

func (l *limiter) take(now time.Time) limitState {
	idx := now.UnixNano() / int64(l.window)
	l.mu.Lock()
	if idx != l.index {
		l.index, l.count = idx, 0
	}
	l.count++
	n := l.count
	l.mu.Unlock()
	return limitState{rpm: l.rpm, observed: n, limit: l.limit, reset: time.Unix(0, (idx+1)*int64(l.window)), ok: n <= l.limit}
}

// setHeaders writes GitLab's rate-limit headers. The limit is announced per minute,
// as GitLab does; Remaining and Reset describe the current window.
func (st limitState) setHeaders(h http.Header) {
	h.Set("RateLimit-Name", "throttle_authenticated_api")
	h.Set("RateLimit-Limit", strconv.Itoa(st.rpm))
	h.Set("RateLimit-Observed", strconv.FormatInt(st.observed, 10))
	h.Set("RateLimit-Remaining", strconv.FormatInt(max(st.limit-st.observed, 0), 10))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilUnix(st.reset), 10))
}

func (st limitState) retryAfter(now time.Time) time.Duration { return st.reset.Sub(now) }

// ceilUnix rounds a time up to whole Unix seconds.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
