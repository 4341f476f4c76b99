package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

func TestParseSchedule(t *testing.T) {
	// A fixed now: 2026 is not a leap year, so 29 February is years ahead.
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		spec    string
		wantErr string // "" valid
	}{
		{"", ""},
		{"24h", ""},
		{"1m", ""},
		{"@daily", ""},
		{"@every 6h", ""},
		{"0 2 * * *", ""},
		{"*/15 * * * 1-5", ""},
		{"0 0 29 2 *", ""}, // 29 February 2028
		{"0 0 31 1,2 *", ""},
		{"CRON_TZ=Europe/Paris 0 2 * * *", ""},
		{"0 0 31 2 *", "never fires"},
		{"0 0 30 2 *", "never fires"},
		{"0 0 31 4,6,9,11 *", "never fires"},
		{"CRON_TZ=UTC 0 0 31 2 *", "never fires"},
		{"30s", "under a minute"},
		{"@every 10s", "under a minute"},
		{"0s", "under a minute"},
		{"-1h", "under a minute"},
		{"0 0 32 * *", "want a cron expression"},
		{"* * * *", "want a cron expression"},
		{"@reboot", "want a cron expression"},
		{"sometimes", "want a cron expression"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			sch, err := parseSchedule(tt.spec, now)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if tt.spec == "" {
					if sch != nil {
						t.Fatal("empty schedule is not nil")
					}
					return
				}
				if next := sch.Next(now); !next.After(now) {
					t.Errorf("Next(%v) = %v", now, next)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if msg := err.Error(); !strings.Contains(msg, "SCAN_SCHEDULE") || strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line naming SCAN_SCHEDULE", msg)
			}
		})
	}
}

// scheduleFunc is a Schedule answering what a test says.
type scheduleFunc func(time.Time) time.Time

func (f scheduleFunc) Next(t time.Time) time.Time { return f(t) }

// A schedule that answers no time ahead stops the loop, with an error in the log,
// instead of firing at once again and again.
func TestScheduleLoopNeverSpins(t *testing.T) {
	tests := []struct {
		name string
		next func(time.Time) time.Time
	}{
		{"zero time", func(time.Time) time.Time { return time.Time{} }},
		{"in the past", func(now time.Time) time.Time { return now.Add(-time.Hour) }},
		{"now", func(now time.Time) time.Time { return now }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeBackend{}
			s, logs := newTestService(t, f, "")
			s.Schedule = scheduleFunc(tt.next)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			done := make(chan struct{})
			go func() { s.scheduleLoop(ctx); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatal("the schedule loop did not stop")
			}
			if n := f.count(&f.starts); n != 0 {
				t.Errorf("%d runs started", n)
			}
			if !strings.Contains(logs.String(), "scheduled runs stopped") {
				t.Errorf("no error logged:\n%s", logs)
			}
			if n := strings.Count(logs.String(), "\n"); n > 2 {
				t.Errorf("%d log lines", n)
			}
		})
	}
}

// A schedule due in a moment starts a run, then waits for the next time.
func TestScheduleLoopStartsRuns(t *testing.T) {
	f := &fakeBackend{startRun: inventory.Run{ID: "r1", Status: inventory.RunRunning}}
	s, _ := newTestService(t, f, "")
	s.Schedule = scheduleFunc(func(now time.Time) time.Time { return now.Add(10 * time.Millisecond) })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { s.scheduleLoop(ctx); close(done) }()
	for f.count(&f.starts) < 2 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if n := f.count(&f.starts); n < 2 {
		t.Errorf("%d runs started on a 10ms schedule within 10s", n)
	}
}

func TestNextFire(t *testing.T) {
	now := time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC)
	sch, err := parseSchedule("0 2 * * *", now)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := nextFire(sch, now); err != nil || !got.Equal(now.Add(2*time.Hour)) {
		t.Errorf("nextFire = %v, %v; want %v", got, err, now.Add(2*time.Hour))
	}
}
