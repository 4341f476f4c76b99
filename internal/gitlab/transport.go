package gitlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gl2gh/discovery-agent/internal/backoff"
	"github.com/gl2gh/discovery-agent/internal/budget"
)

// transport is the client's only way to GitLab. Every attempt, retries included, first
// waits on the shared Limiter; every response's rate-limit headers go back to it; 429,
// 5xx, timeouts and network errors are retried with bounded exponential backoff. It
// sends nothing outside its origin, caps every body (capBody) and hands client-go only
// well-formed Link headers (sanitizeLinks).
type transport struct {
	origin      string // scheme://host:port of GITLAB_URL; the token goes nowhere else
	next        http.RoundTripper
	limiter     Limiter
	perEndpoint map[string]Limiter
	observer    Observer
	sem         chan struct{} // bounds in-flight requests (CONCURRENT_REQUESTS)
	maxRetries  int
	baseBackoff time.Duration
	maxBackoff  time.Duration
	timeout     time.Duration // per attempt
	calls       atomic.Int64
}

// callCounter counts the requests made on behalf of one unit of work (a message, a
// project), retries included. Counters nest: a request counts in every enclosing one.
// A counter with a limit refuses requests past it (MAX_PER_PROJECT_CALLS).
type callCounter struct {
	n      atomic.Int64
	limit  int64
	parent *callCounter
}

type counterKey struct{}

// ErrProjectBudget is returned when a project has used its MAX_PER_PROJECT_CALLS.
var ErrProjectBudget = errors.New("per-project API call budget spent")

// WithCallCounter returns a context whose requests are counted, refused past limit
// (0 = unlimited), and a function reporting how many were made.
func WithCallCounter(ctx context.Context, limit int) (context.Context, func() int64) {
	parent, _ := ctx.Value(counterKey{}).(*callCounter)
	c := &callCounter{limit: int64(limit), parent: parent}
	return context.WithValue(ctx, counterKey{}, c), c.n.Load
}

// admit reports whether every counter enclosing ctx allows one more request.
func admit(ctx context.Context) bool {
	for c, _ := ctx.Value(counterKey{}).(*callCounter); c != nil; c = c.parent {
		if c.limit > 0 && c.n.Load() >= c.limit {
			return false
		}
	}
	return true
}

func count(ctx context.Context) {
	for c, _ := ctx.Value(counterKey{}).(*callCounter); c != nil; c = c.parent {
		c.n.Add(1)
	}
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if o := originOf(req.URL); o != t.origin {
		return nil, fmt.Errorf("%w: %s is not %s", ErrRedirect, o, t.origin)
	}
	ctx := req.Context()
	endpoint := EndpointClass(req.URL.Path)
	classLimiter := t.perEndpoint[endpoint]
	if err := rewindable(req); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		resp, err := t.attempt(ctx, req, endpoint, classLimiter)
		reason, wait := t.retryable(resp, err)
		if reason == "" {
			return resp, err
		}
		if attempt >= t.maxRetries || ctx.Err() != nil {
			if err != nil {
				return nil, fmt.Errorf("%s after %d attempts: %w", reason, attempt+1, err)
			}
			return resp, nil // the caller sees the final status
		}
		if resp != nil {
			drain(resp)
		}
		if t.observer != nil {
			t.observer.Retry(reason)
		}
		pause := t.backoff(attempt)
		pause = max(pause, wait)
		if reason == "429" {
			// Every worker sharing the limiter backs off together: all of them, or
			// only their requests to this endpoint class when its own limit answered.
			lim := t.limiter
			if classScoped(resp, classLimiter) {
				lim = classLimiter
			}
			lim.PauseUntil(ctx, time.Now().Add(pause))
			continue // the limiter does the waiting
		}
		if err := backoff.Sleep(ctx, pause); err != nil {
			return nil, err
		}
	}
}

func (t *transport) attempt(ctx context.Context, req *http.Request, endpoint string, classLimiter Limiter) (*http.Response, error) {
	if !admit(ctx) {
		return nil, ErrProjectBudget
	}
	if classLimiter != nil {
		if err := classLimiter.Wait(ctx); err != nil {
			return nil, &waitError{err}
		}
	}
	if err := t.limiter.Wait(ctx); err != nil {
		return nil, &waitError{err}
	}
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.sem }()
	t.calls.Add(1)
	count(ctx)

	actx, cancel := context.WithTimeout(ctx, t.timeout)
	start := time.Now()
	try := req.Clone(actx)
	if req.GetBody != nil {
		// A retried POST (GraphQL) sends its body again, not what the last attempt left.
		body, err := req.GetBody()
		if err != nil {
			cancel()
			return nil, err
		}
		try.Body = body
	}
	resp, err := t.next.RoundTrip(try)
	d := time.Since(start)
	if err != nil {
		cancel()
		if t.observer != nil {
			t.observer.Request(endpoint, 0, d)
		}
		t.answered(ctx, 0, d)
		return nil, err
	}
	// The body is read after RoundTrip returns: cancel the attempt's context only
	// when the caller closes it.
	resp.Body = &cancelBody{ReadCloser: capBody(resp, endpoint), cancel: cancel}
	sanitizeLinks(resp.Header)
	if t.observer != nil {
		t.observer.Request(endpoint, resp.StatusCode, d)
	}
	t.observe(ctx, resp, classLimiter)
	if resp.StatusCode != http.StatusTooManyRequests || !classScoped(resp, classLimiter) {
		t.answered(ctx, resp.StatusCode, d) // a class's 429 says nothing of the shared pace
	}
	return resp, nil
}

// tokenThrottles are the RateLimit-Name prefixes of GitLab's per-user and per-IP
// throttles (Rack::Attack, e.g. throttle_authenticated_api): a 429 under them limits
// the whole token, every endpoint class.
var tokenThrottles = []string{"throttle_authenticated_", "throttle_unauthenticated_"}

// classScoped reports whether resp speaks for its endpoint class's own limit rather
// than the token's: the class has a limiter and the answer names no token-wide
// throttle. GitLab.com's per-endpoint 429s carry no RateLimit header at all; a
// simulator or a self-managed GitLab may name the class's limit (e.g. project_api).
func classScoped(resp *http.Response, classLimiter Limiter) bool {
	if classLimiter == nil || resp == nil {
		return false
	}
	name := resp.Header.Get("RateLimit-Name")
	if name == "" {
		return resp.StatusCode == http.StatusTooManyRequests
	}
	for _, p := range tokenThrottles {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

// answered feeds an adaptive limiter one attempt's status (0: no answer) and latency
// and reports the pace that follows to the observer.
func (t *transport) answered(ctx context.Context, status int, d time.Duration) {
	if a, ok := t.limiter.(Adaptive); ok {
		a.Answer(ctx, status, d)
	}
	if p, ok := t.limiter.(Paced); ok && t.observer != nil {
		t.observer.EffectiveRPM(p.EffectiveRPM())
	}
}

// checkRedirect is the http.Client's redirect policy: a redirect within the origin is
// followed (with the token, as Go forwards it), one to another scheme, host or port is
// refused before anything is sent there.
func (t *transport) checkRedirect(req *http.Request, via []*http.Request) error {
	if o := originOf(req.URL); o != t.origin {
		return fmt.Errorf("%w: GitLab redirected to %s, not %s", ErrRedirect, o, t.origin)
	}
	if len(via) >= 10 {
		return fmt.Errorf("%w: stopped after %d redirects", ErrRedirect, len(via))
	}
	return nil
}

// originOf is scheme://host:port with the default port made explicit, lower case.
func originOf(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// observe feeds GitLab's rate-limit headers back to the shared limiter, or to the
// endpoint class's limiter when they describe the class's own limit (classScoped).
// The remaining-calls gauge follows the token's limit only.
func (t *transport) observe(ctx context.Context, resp *http.Response, classLimiter Limiter) {
	h := resp.Header
	lim, scoped := t.limiter, classScoped(resp, classLimiter)
	if scoped {
		lim = classLimiter
	}
	rem, err := strconv.Atoi(h.Get("RateLimit-Remaining"))
	if err != nil {
		if resp.StatusCode == http.StatusTooManyRequests && t.observer != nil && !scoped {
			// GitLab.com sends some 429s with no rate-limit headers: nothing remains.
			t.observer.RateLimitRemaining(0)
		}
		return
	}
	limit, _ := strconv.Atoi(h.Get("RateLimit-Limit"))
	var reset time.Time // zero: no pause; a past reset is none either
	if s, err := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64); err == nil {
		now := time.Now()
		reset, _ = budget.CapPause(now, unixCapped(now, s))
	}
	lim.Observe(ctx, limit, rem, reset)
	if t.observer != nil && !scoped {
		t.observer.RateLimitRemaining(rem)
	}
}

// retryable says why an attempt should be retried ("" when it should not) and the
// least time GitLab asked us to wait.
func (t *transport) retryable(resp *http.Response, err error) (reason string, wait time.Duration) {
	if err != nil {
		var ne net.Error
		switch {
		case isLimiterError(err), errors.Is(err, ErrProjectBudget), errors.Is(err, context.Canceled), errors.Is(err, ErrRedirect):
			return "", 0
		case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
			return "timeout", 0
		default:
			return "network", 0
		}
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return "429", retryAfter(resp.Header)
	case resp.StatusCode >= 500:
		return "5xx", 0
	}
	return "", 0
}

// waitError marks an error from Limiter.Wait (budget spent, or the context ended):
// retrying cannot help.
type waitError struct{ err error }

func (e *waitError) Error() string { return e.err.Error() }
func (e *waitError) Unwrap() error { return e.err }

func isLimiterError(err error) bool {
	var we *waitError
	return errors.As(err, &we)
}

// retryAfter reads how long a 429 asks us to wait: Retry-After (seconds or an HTTP
// date), else RateLimit-Reset (Unix seconds), at most MaxPause. Zero when neither is
// present or both lie in the past (GitLab.com sends 429s without headers on some
// APIs): exponential backoff applies then.
func retryAfter(h http.Header) time.Duration {
	now := time.Now()
	until := time.Time{}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil {
			// Seconds beyond MaxPause would overflow a Duration long before a year.
			until = now.Add(time.Duration(min(max(s, 0), int64(MaxPause/time.Second))) * time.Second)
		} else if t, err := http.ParseTime(v); err == nil {
			until = t
		}
	}
	if until.IsZero() {
		if s, err := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64); err == nil {
			until = unixCapped(now, s)
		}
	}
	if until, ok := budget.CapPause(now, until); ok {
		return until.Sub(now)
	}
	return 0
}

// unixCapped is the Unix time s, or now+MaxPause when s lies beyond it: time.Unix
// overflows near the end of int64, and such a reset means "far ahead", not "past".
func unixCapped(now time.Time, s int64) time.Time {
	if s > now.Unix()+int64(MaxPause/time.Second) {
		return now.Add(MaxPause)
	}
	return time.Unix(s, 0)
}

func (t *transport) backoff(attempt int) time.Duration {
	return backoff.Exp(t.baseBackoff, t.maxBackoff, attempt)
}

// rewindable makes a request body readable once per attempt: our own bodies (a GraphQL
// query) are small, so one that cannot be rewound is read once and kept.
func rewindable(req *http.Request) error {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, MaxBodySize+1))
	req.Body.Close()
	if err != nil {
		return err
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	req.Body, _ = req.GetBody()
	return nil
}

func drain(resp *http.Response) {
	var buf [4096]byte
	for range 16 { // read a little so the connection can be reused; never unbounded
		if _, err := resp.Body.Read(buf[:]); err != nil {
			break
		}
	}
	resp.Body.Close()
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
