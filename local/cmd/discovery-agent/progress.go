package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gl2gh/discovery-agent/local/runner"
	"github.com/schollz/progressbar/v3"
)

// A terminal gets a progress bar: done/total, %, rate and ETA (runner.Snapshot's
// recent rate), redrawn every second. Anything else gets the progress log line every
// 30 s, which log collectors keep.

// barWriter is the terminal both the bar and the log lines write to: a log line clears
// the bar first, and the bar is drawn again on its next tick.
type barWriter struct {
	mu  sync.Mutex
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (b *barWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		b.bar.Clear()
	}
	return b.w.Write(p)
}

// showBar draws the bar on w until the returned function is called, which leaves the
// last state on its own line.
func showBar(ctx context.Context, p *runner.Progress, w *barWriter) func() {
	w.mu.Lock()
	w.bar = progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w.w),
		progressbar.OptionSetDescription("projects"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionSetRenderBlankState(false),
		progressbar.OptionThrottle(0),
		// Drawn only by tick, under w.mu: the library's own spinner goroutine would
		// draw between log lines, and outlives a bar that never finishes.
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
	w.mu.Unlock()
	tick := func() {
		s := p.Snapshot()
		w.mu.Lock()
		defer w.mu.Unlock()
		if s.Total > 0 {
			// A resumed run profiles again the projects of the pages that were in
			// flight, and projects created since the start join in: the count can pass
			// the total, which the bar does not.
			s.Projects = min(s.Projects, s.Total)
			if w.bar.GetMax64() != s.Total {
				w.bar.ChangeMax64(s.Total)
			}
		}
		_ = w.bar.Set64(s.Projects)
		w.bar.Describe(barDetail(s)) // the frame to read: count and detail of one snapshot
	}
	return every(ctx, time.Second, tick, func() {
		tick()
		w.mu.Lock()
		defer w.mu.Unlock()
		fmt.Fprintln(w.w)
		w.bar = nil
	})
}

// barDetail is what follows the bar: the rate, the ETA and the counters a bar has no
// room for.
func barDetail(s runner.Snapshot) string {
	eta := "?"
	if d, ok := s.ETA(); ok {
		eta = d.Round(time.Second).String()
	}
	pace := "unlimited"
	if s.EffectiveRPM > 0 {
		pace = fmt.Sprintf("%.0f/min", s.EffectiveRPM)
	}
	d := fmt.Sprintf("%.1f/s  eta %s  groups %d  errors %d  api calls %d%s  pace %s", s.Rate(), eta, s.Groups, s.Errors, s.APICalls, s.PerProject(), pace)
	if s.Total == 0 {
		d = "(total unknown)  " + d
	}
	if s.Resumed > 0 {
		d += fmt.Sprintf("  resumed at %d", s.Resumed)
	}
	return d
}

// logProgress logs the progress line every 30 s until the returned function is called.
func logProgress(ctx context.Context, p *runner.Progress, log *slog.Logger) func() {
	return every(ctx, 30*time.Second, func() {
		s := p.Snapshot()
		log.Info("progress", "run_id", s.RunID, "groups", s.Groups, "projects", s.Projects, "projects_in_scope", s.Total,
			"resumed_at", s.Resumed, "errors", s.Errors, "api_calls", s.APICalls, "rate_remaining", s.RateRemaining,
			"projects_per_second", s.Rate(), "eta_seconds", etaSeconds(s), "pace_rpm", s.EffectiveRPM)
	}, func() {})
}

func etaSeconds(s runner.Snapshot) any {
	if d, ok := s.ETA(); ok {
		return int64(d.Seconds())
	}
	return nil
}

// every calls tick every period until ctx is done or the returned function is called,
// and then last; the returned function waits for it.
func every(ctx context.Context, period time.Duration, tick, last func()) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				last()
				return
			case <-t.C:
				tick()
			}
		}
	}()
	return func() { cancel(); <-done }
}
