package gitlabsim

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// limiter is one fixed-window throttle for the one accepted token: GitLab's
// authenticated-API throttle (Rack::Attack) or an endpoint class's own limit
// (Gitlab::ApplicationRateLimiter). Windows are aligned to the Unix epoch, as
// both of GitLab's limiters align them.
type limiter struct {
	name      string // RateLimit-Name
	perMinute int    // RateLimit-Limit: GitLab announces limits per minute
	limit     int64  // per window
	window    time.Duration

	mu    sync.Mutex
	index int64 // current window number since the Unix epoch
	count int64
}

// newLimiter is the authenticated-API throttle: rpm a minute, scaled to the window.
func newLimiter(rpm int, window time.Duration) *limiter {
	perWindow := int64(math.Round(float64(rpm) * window.Seconds() / 60))
	return &limiter{name: "throttle_authenticated_api", perMinute: rpm, limit: max(perWindow, 1), window: window}
}

// newEndpointLimiter is a class's own limit; a window other than a minute is
// announced as the nearest rate per minute, as GitLab announces it.
func newEndpointLimiter(l EndpointLimit) *limiter {
	l = l.withDefaults()
	perMinute := int(math.Round(float64(l.Limit) * 60 / l.Window.Seconds()))
	return &limiter{name: l.Name, perMinute: max(perMinute, 1), limit: int64(l.Limit), window: l.Window}
}

// limitState is what one request learned about its window.
type limitState struct {
	name      string
	perMinute int
	observed  int64
	limit     int64
	window    time.Duration
	reset     time.Time
	ok        bool
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
	return limitState{
		name: l.name, perMinute: l.perMinute, observed: n, limit: l.limit, window: l.window,
		reset: time.Unix(0, (idx+1)*int64(l.window)), ok: n <= l.limit,
	}
}

// setHeaders writes GitLab's rate-limit headers. The limit is announced per minute,
// as GitLab does; Remaining and Reset describe the current window.
func (st limitState) setHeaders(h http.Header) {
	h.Set("RateLimit-Name", st.name)
	h.Set("RateLimit-Limit", strconv.Itoa(st.perMinute))
	h.Set("RateLimit-Observed", strconv.FormatInt(st.observed, 10))
	h.Set("RateLimit-Remaining", strconv.FormatInt(max(st.limit-st.observed, 0), 10))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilUnix(st.reset), 10))
}

// rateLimitHeaders are the informational headers; Retry-After is not one of them.
var rateLimitHeaders = []string{"RateLimit-Name", "RateLimit-Limit", "RateLimit-Observed", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-ResetTime"}

func dropRateLimitHeaders(h http.Header) {
	for _, k := range rateLimitHeaders {
		h.Del(k)
	}
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

// admit applies the authenticated-API throttle, then the class's own limit: GitLab's
// order, Rack::Attack in front of the endpoint, so a request the first refuses is
// not counted by the second. It writes the rate-limit headers the answer carries
// and, when a limit refuses the request, the 429; false then.
func (s *Server) admit(c *call) bool {
	now := time.Now()
	h := c.w.Header()
	announce := func(st limitState) bool { return !s.hideHeaders && (st.ok || !c.fs.NoHeaders429) }
	if s.lim != nil {
		st := s.lim.take(now)
		if announce(st) {
			st.setHeaders(h)
		}
		if !st.ok {
			c.throttle(st.retryAfter(now), st.reset)
			return false
		}
	}
	cl := s.classLim[c.route.cls]
	if cl == nil || (c.r.Method != http.MethodGet && c.r.Method != http.MethodHead) {
		return true
	}
	st := cl.take(now)
	if !s.quietClassLimits && announce(st) {
		st.setHeaders(h) // the answer describes the limit that binds this class
	}
	if !st.ok {
		c.throttleEndpoint(st, now)
		return false
	}
	return true
}
