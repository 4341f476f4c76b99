package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestExp(t *testing.T) {
	for _, c := range []struct {
		base, ceiling time.Duration
		n             int
		lo, hi        time.Duration
	}{
		{time.Second, time.Minute, 0, 500 * time.Millisecond, time.Second},
		{time.Second, time.Minute, 3, 4 * time.Second, 8 * time.Second},
		{time.Second, time.Minute, 10, 30 * time.Second, time.Minute},
		{time.Second, time.Minute, 200, 30 * time.Second, time.Minute}, // no overflow
		{time.Second, time.Minute, -1, 500 * time.Millisecond, time.Second},
	} {
		for range 50 {
			if d := Exp(c.base, c.ceiling, c.n); d < c.lo || d > c.hi {
				t.Fatalf("Exp(%v, %v, %d) = %v, want in [%v, %v]", c.base, c.ceiling, c.n, d, c.lo, c.hi)
			}
		}
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a done context = %v, want context.Canceled", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(0) on a done context = %v, want context.Canceled", err)
	}
}
