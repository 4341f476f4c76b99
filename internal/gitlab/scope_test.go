package gitlab

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
)

// ansLimiter is a recLimiter that also records the answers fed to the adaptive pace.
type ansLimiter struct {
	*recLimiter
	amu     sync.Mutex
	answers []int
}

func (l *ansLimiter) Answer(ctx context.Context, status int, d time.Duration) {
	l.amu.Lock()
	l.answers = append(l.answers, status)
	l.amu.Unlock()
	l.Memory.Answer(ctx, status, d)
}

// paceObserver records the pace and remaining-calls reports.
type paceObserver struct {
	mu      sync.Mutex
	paces   []float64
	remains []int
}

func (o *paceObserver) Request(string, int, time.Duration) {}
func (o *paceObserver) Retry(string)                       {}
func (o *paceObserver) RateLimitRemaining(n int) {
	o.mu.Lock()
	o.remains = append(o.remains, n)
	o.mu.Unlock()
}
func (o *paceObserver) EffectiveRPM(rpm float64) {
	o.mu.Lock()
	o.paces = append(o.paces, rpm)
	o.mu.Unlock()
}

// TestClassScoped429 checks whose pause a 429 on an endpoint class is: the class's
// when the class has a limiter and the answer names no token-wide throttle, else
// everyone's.
func TestClassScoped429(t *testing.T) {
	tests := []struct {
		name        string
		headers     map[string]string
		classLimit  bool
		wantClass   bool // the class limiter paused (else the shared one)
		wantAnswers []int
	}{
		{"GitLab.com's quiet per-endpoint 429 pauses the class", map[string]string{"Retry-After": "1"}, true, true, []int{200}},
		{"a class's named limit pauses the class", map[string]string{"Retry-After": "1", "RateLimit-Name": "project_api"}, true, true, []int{200}},
		{"the token's throttle pauses everyone", map[string]string{"Retry-After": "1", "RateLimit-Name": "throttle_authenticated_api"}, true, false, []int{429, 200}},
		{"no class limit known pauses everyone", map[string]string{"Retry-After": "1"}, false, false, []int{429, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					for k, v := range tt.headers {
						w.Header().Set(k, v)
					}
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				fmt.Fprint(w, `{"id":1,"full_path":"g"}`)
			}))
			defer ts.Close()
			shared := &ansLimiter{recLimiter: &recLimiter{Memory: budget.NewMemory(budget.Config{Pace: budget.Pace{Adaptive: true}})}}
			class := &recLimiter{Memory: budget.NewMemory(budget.Config{})}
			opts := Options{Limiter: shared, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxRetries: 3}
			if tt.classLimit {
				opts.EndpointLimiters = map[string]Limiter{"groups/:id": class}
			}
			c, err := New(ts.URL, secret, opts)
			if err != nil {
				t.Fatal(err)
			}
			// Pauses are honoured: give the retry after Retry-After time to pass.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := c.Group(ctx, "g"); err != nil {
				t.Fatalf("Group: %v", err)
			}
			if got := len(class.pauses) == 1; got != tt.wantClass {
				t.Errorf("class limiter paused %d times, want class pause %v", len(class.pauses), tt.wantClass)
			}
			if got := len(shared.pauses) == 1; got == tt.wantClass {
				t.Errorf("shared limiter paused %d times, want shared pause %v", len(shared.pauses), !tt.wantClass)
			}
			if !slices.Equal(shared.answers, tt.wantAnswers) {
				t.Errorf("adaptive pace fed %v, want %v (a class's 429 says nothing of the shared pace)", shared.answers, tt.wantAnswers)
			}
		})
	}
}

// A class's own rate-limit headers pace the class, not everyone; the token's pace
// everyone and reach the remaining-calls gauge; every answer reports the pace.
func TestClassHeadersReachTheClassLimiter(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.URL.Path == "/api/v4/groups/g" {
			h.Set("RateLimit-Name", "group_api")
			h.Set("RateLimit-Limit", "400")
			h.Set("RateLimit-Remaining", "399")
		} else {
			h.Set("RateLimit-Name", "throttle_authenticated_api")
			h.Set("RateLimit-Limit", "2000")
			h.Set("RateLimit-Remaining", "1999")
		}
		fmt.Fprint(w, `{"id":1,"full_path":"g","username":"u"}`)
	}))
	defer ts.Close()
	shared := &recLimiter{Memory: budget.NewMemory(budget.Config{Pace: budget.Pace{Target: 0.95, Adaptive: true}})}
	class := &recLimiter{Memory: budget.NewMemory(budget.Config{})}
	obs := &paceObserver{}
	c, err := New(ts.URL, secret, Options{Limiter: shared, Observer: obs, EndpointLimiters: map[string]Limiter{"groups/:id": class}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Group(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CurrentUser(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(class.limits, []int{400}) || !slices.Equal(shared.limits, []int{2000}) {
		t.Errorf("class limiter saw limits %v, shared %v; want [400] and [2000]", class.limits, shared.limits)
	}
	if !slices.Equal(obs.remains, []int{1999}) {
		t.Errorf("remaining-calls gauge got %v, want only the token's [1999]", obs.remains)
	}
	// Before the first announcement the adaptive pace, grown by the first good answer
	// from the start pace (slow start); after it 95% of 2,000.
	if len(obs.paces) != 2 || obs.paces[0] <= budget.StartRPM || obs.paces[1] != 1900 {
		t.Errorf("paces reported %v, want [above %v, 1900]", obs.paces, budget.StartRPM)
	}
}
