// Package backoff is the agent's one way to wait: a context-aware sleep and the
// exponential, jittered delay every retry loop uses.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep waits for d or until ctx is done, whichever is first, and returns ctx's error
// in the second case. A d of zero or less returns at once.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Exp returns the delay before retry n (from 0): base doubled n times, at most
// ceiling, jittered over its upper half so that workers failing together do not retry
// together.
func Exp(base, ceiling time.Duration, n int) time.Duration {
	d := base << min(max(n, 0), 30)
	if d > ceiling || d <= 0 {
		d = ceiling
	}
	return d/2 + rand.N(d/2+1)
}
