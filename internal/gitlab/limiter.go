package gitlab

import (
	"context"
	"time"
)

// Limiter paces requests. The client calls Wait before every request, retries included,
// and reports what GitLab said about its limits so that every worker sharing the
// limiter backs off together. internal/budget implements it in memory, internal/dynamobudget in DynamoDB.
type Limiter interface {
	// Wait blocks until a request may be sent. It returns an error wrapping
	// budget.ErrExhausted when the run's MAX_API_CALLS is spent, or ctx's error.
	Wait(ctx context.Context) error
	// Observe reports the rate-limit headers of a response: the limit GitLab announces
	// (requests per minute, 0 when absent), what remains, and when the window resets.
	// A limiter never paces faster than limit, and pauses until reset when remaining is 0
	// (a zero or past reset: no pause; at most MaxPause).
	Observe(ctx context.Context, limit, remaining int, reset time.Time)
	// PauseUntil stops every request until t (a 429's Retry-After or reset time), at
	// most MaxPause from now. It only ever moves the pause forward.
	PauseUntil(ctx context.Context, t time.Time)
}

// Adaptive is a Limiter that also learns from every answer — its status (0: none
// arrived) and latency — to adapt its pace when GitLab announces no limit
// (budget.Memory and dynamobudget.Budget with an adaptive budget.Pace). The transport
// reports every attempt to it except 429s that limit one endpoint class only.
type Adaptive interface {
	Answer(ctx context.Context, status int, latency time.Duration)
}

// Paced is a Limiter that tells its pace, for the discovery_rate_limit_effective_rpm
// gauge.
type Paced interface {
	EffectiveRPM() float64 // requests per minute; 0 when nothing limits the rate
}

// Observer receives the client's measurements (Prometheus in local mode, EMF in Lambda).
// endpoint is a bounded class such as "projects/:id/merge_requests", never a raw path.
type Observer interface {
	Request(endpoint string, status int, d time.Duration) // status 0: no response (timeout, network)
	Retry(reason string)                                  // "429", "5xx", "timeout", "network", "malformed"
	RateLimitRemaining(remaining int)
	EffectiveRPM(rpm float64) // the shared limiter's pace after an answer (0: unlimited)
}
