package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
)

const secret = "glpat-very-secret-token"

// recLimiter records what the transport reports to the shared limiter.
type recLimiter struct {
	*budget.Memory
	mu      sync.Mutex
	waits   int
	pauses  []time.Time
	limits  []int
	remains []int
}

func (l *recLimiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	l.waits++
	l.mu.Unlock()
	return l.Memory.Wait(ctx)
}

func (l *recLimiter) Observe(ctx context.Context, limit, remaining int, reset time.Time) {
	l.mu.Lock()
	l.limits = append(l.limits, limit)
	l.remains = append(l.remains, remaining)
	l.mu.Unlock()
	l.Memory.Observe(ctx, limit, remaining, reset)
}

func (l *recLimiter) PauseUntil(ctx context.Context, t time.Time) {
	l.mu.Lock()
	l.pauses = append(l.pauses, t)
	l.mu.Unlock()
	l.Memory.PauseUntil(ctx, t)
}

func newTestClient(t *testing.T, h http.HandlerFunc, maxCalls int64) (*Client, *recLimiter) {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	lim := &recLimiter{Memory: budget.NewMemory(budget.Config{MaxCalls: maxCalls})}
	c, err := New(ts.URL, secret, Options{Limiter: lim, Timeout: 300 * time.Millisecond, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxRetries: 3})
	if err != nil {
		t.Fatal(err)
	}
	return c, lim
}

func TestRetriesAndClassification(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int // answered in turn; the last repeats
		wantErr   error
		wantCalls int64
	}{
		{"ok", []int{200}, nil, 1},
		{"5xx then ok", []int{503, 502, 200}, nil, 3},
		{"5xx forever", []int{500}, nil, 4}, // 1 + 3 retries; final status surfaces
		{"401 is not retried", []int{401}, ErrUnauthorized, 1},
		{"403 is not retried", []int{403}, ErrForbidden, 1},
		{"404 is not retried", []int{404}, ErrNotFound, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			c, lim := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				st := tt.statuses[min(i, len(tt.statuses)-1)]
				if r.Header.Get("PRIVATE-TOKEN") != secret {
					st = 401
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(st)
				if st == 200 {
					fmt.Fprint(w, `{"username":"u"}`)
				} else {
					fmt.Fprintf(w, `{"message":"%d oops"}`, st)
				}
			}, 0)
			_, err := c.CurrentUser(context.Background())
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.name == "5xx forever" && Status(err) != 500 {
				t.Fatalf("status = %d (%v), want 500", Status(err), err)
			}
			if tt.wantErr == nil && tt.name != "5xx forever" && err != nil {
				t.Fatal(err)
			}
			if got := c.Calls(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			if lim.waits != int(tt.wantCalls) {
				t.Errorf("limiter waits = %d, want one per attempt (%d)", lim.waits, tt.wantCalls)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestRateLimitHeadersReachTheLimiter(t *testing.T) {
	var n atomic.Int64
	reset := time.Now().Add(2 * time.Second).Unix()
	c, lim := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Limit", "120")
		w.Header().Set("RateLimit-Remaining", "7")
		w.Header().Set("RateLimit-Reset", fmt.Sprint(reset))
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			fmt.Fprint(w, "Retry later")
			return
		}
		fmt.Fprint(w, `{"username":"u"}`)
	}, 0)
	before := time.Now()
	if _, err := c.CurrentUser(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(lim.pauses) != 1 {
		t.Fatalf("pauses = %v, want one from the 429", lim.pauses)
	}
	if d := lim.pauses[0].Sub(before); d < time.Second {
		t.Errorf("pause of %v is shorter than Retry-After 1s", d)
	}
	if len(lim.limits) != 2 || lim.limits[0] != 120 || lim.remains[1] != 7 {
		t.Errorf("observed limits %v remaining %v, want 120 and 7 from both responses", lim.limits, lim.remains)
	}
}

func TestMalformedBodyIsRetried(t *testing.T) {
	var n atomic.Int64
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			fmt.Fprint(w, `{"username":`)
			return
		}
		fmt.Fprint(w, `{"username":"u"}`)
	}, 0)
	u, err := c.CurrentUser(context.Background())
	if err != nil || u != "u" {
		t.Fatalf("got %q, %v", u, err)
	}
	if c.Calls() != 2 {
		t.Errorf("calls = %d, want 2", c.Calls())
	}
}

func TestTimeoutIsRetried(t *testing.T) {
	var n atomic.Int64
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		fmt.Fprint(w, `{"username":"u"}`)
	}, 0)
	if _, err := c.CurrentUser(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.Calls() != 2 {
		t.Errorf("calls = %d, want 2", c.Calls())
	}
}

func TestBudgetsStopRequests(t *testing.T) {
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"username":"u"}`)
	}, 3)
	ctx, made := WithCallCounter(context.Background(), 2)
	for range 2 {
		if _, err := c.CurrentUser(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CurrentUser(ctx); !errors.Is(err, ErrProjectBudget) {
		t.Fatalf("third call in a 2-call project budget: %v", err)
	}
	if made() != 2 {
		t.Errorf("counted %d, want 2", made())
	}
	// The run budget (MAX_API_CALLS=3) allows one more, then refuses without retrying.
	if _, err := c.CurrentUser(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CurrentUser(context.Background()); !errors.Is(err, budget.ErrExhausted) {
		t.Fatalf("past MAX_API_CALLS: %v", err)
	}
	if c.Calls() != 3 {
		t.Errorf("calls = %d, want 3", c.Calls())
	}
}

func TestEndpointClass(t *testing.T) {
	tests := map[string]string{
		"/api/v4/projects/42/merge_requests":                     "projects/:id/merge_requests",
		"/api/v4/projects/42":                                    "projects/:id",
		"/api/v4/groups/a%2Fb/projects":                          "groups/:id/projects",
		"/api/v4/projects/7/repository/files/.gitlab-ci.yml/raw": "projects/:id/repository/files/:path/raw",
		"/api/v4/projects/7/registry/repositories":               "projects/:id/registry/repositories",
		"/api/v4/user":               "user",
		"/api/v4/projects/7/unknown": "other",
		"/elsewhere":                 "other",
	}
	for in, want := range tests {
		if got := EndpointClass(in); got != want {
			t.Errorf("EndpointClass(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEndpointLimiterPacesItsClassOnly(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"username":"u","id":1}`)
	}))
	defer ts.Close()
	users := &recLimiter{Memory: budget.NewMemory(budget.Config{})}
	c, err := New(ts.URL, secret, Options{Limiter: budget.NewMemory(budget.Config{}),
		EndpointLimiters: map[string]Limiter{"user": users}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.CurrentUser(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Group(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	if users.waits != 3 {
		t.Errorf("the user-class limiter was asked %d times, want 3 (not for groups/:id)", users.waits)
	}
}

func TestFailureClassesAfterRetries(t *testing.T) {
	garbled, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"username":`) }, 0)
	if _, err := garbled.CurrentUser(context.Background()); !errors.Is(err, ErrMalformed) {
		t.Errorf("always-garbled body: %v, want ErrMalformed", err)
	}
	slow, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}, 0)
	if _, err := slow.CurrentUser(context.Background()); !IsTimeout(err) {
		t.Errorf("always-hanging server: %v, want a timeout", err)
	}
}
