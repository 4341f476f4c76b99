package budget

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestPaceRate(t *testing.T) {
	auto := Pace{Target: 0.95, Adaptive: true}
	tests := []struct {
		name      string
		pace      Pace
		rpm       int
		announced int
		adaptive  float64
		want      float64
	}{
		{"zero pace: the limit itself", Pace{}, 600, 0, 0, 600},
		{"zero pace: the lower of rpm and announced", Pace{}, 600, 300, 0, 300},
		{"zero pace, nothing known: unlimited", Pace{}, 0, 0, 0, 0},
		{"target of the announced limit", auto, 0, 3000, 250, 2850},
		{"rpm is a ceiling below the announced limit", auto, 1000, 3000, 250, 950},
		{"announced below rpm", auto, 5000, 3000, 250, 2850},
		{"no announcement: the adaptive rate", auto, 0, 0, 250, 250},
		{"adaptive rate within target of rpm", auto, 200, 0, 250, 190},
		{"a target above 1 is taken as 1", Pace{Target: 3}, 600, 0, 0, 600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pace.Rate(tt.rpm, tt.announced, tt.adaptive); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Rate(%d, %d, %v) = %v, want %v", tt.rpm, tt.announced, tt.adaptive, got, tt.want)
			}
		})
	}
}

// feed closes one measuring window after another until the clock passes d — a
// window's length, then a window's worth of answers — and returns the rate after each.
func feed(a *AIMD, clk *fakeClock, d time.Duration, status func(i int) int, latency time.Duration) []float64 {
	if a.winStart.IsZero() {
		a.resetWindow(clk.Now())
	}
	var rates []float64
	end := clk.Now().Add(d)
	for i := 0; clk.Now().Before(end); i++ {
		clk.Advance(aimdWindow)
		for j := range aimdMinAnswers {
			a.Answer(clk.Now(), status(i*aimdMinAnswers+j), latency)
		}
		rates = append(rates, a.Rate())
	}
	return rates
}

func ok(int) int { return 200 }

func TestAIMDSlowStartThenBound(t *testing.T) {
	clk := &fakeClock{t: epoch}
	// 8 in flight at 20 ms: 400 a second, 24,000 a minute; the bound is 1.25 × that.
	a := NewAIMD(Pace{Adaptive: true, Concurrency: 8}, 0)
	if a.Rate() != StartRPM {
		t.Fatalf("start rate %v, want %v", a.Rate(), StartRPM)
	}
	a.resetWindow(clk.Now())
	// Slow start: every good answer adds one request per its latency, 3,000 a minute.
	for k := 1; k <= aimdMinAnswers; k++ {
		a.Answer(clk.Now(), 200, 20*time.Millisecond)
		if want := StartRPM + 3000*float64(k); a.Rate() != want {
			t.Fatalf("after %d answers: rate %v, want %v", k, a.Rate(), want)
		}
	}
	// The first closed window learns the latency, and with it the bound.
	const bound = 1.25 * 8 * 60 / 0.020
	rates := feed(a, clk, 2*time.Second, ok, 20*time.Millisecond)
	for i, r := range rates {
		if math.Abs(r-bound) > 1e-6 {
			t.Fatalf("after window %d: rate %v, want the concurrency bound %v (rates %v)", i+1, r, bound, rates)
		}
	}
	if a.slow {
		t.Error("still in slow start at the bound")
	}
}

func TestAIMDCuts(t *testing.T) {
	const lat = 20 * time.Millisecond
	tests := []struct {
		name   string
		status func(i int) int
		lat    time.Duration
		factor float64
	}{
		{"429 halves", func(i int) int {
			if i == 0 {
				return 429
			}
			return 200
		}, lat, cut429},
		{"rising 5xx cut to 70%", func(i int) int {
			if i%4 == 0 {
				return 503
			}
			return 200
		}, lat, cutCongestion},
		{"network errors count as 5xx", func(i int) int {
			if i%4 == 0 {
				return 0
			}
			return 200
		}, lat, cutCongestion},
		{"doubled latency cut to 70%", ok, 2 * lat, cutCongestion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: epoch}
			a := NewAIMD(Pace{Adaptive: true, Concurrency: 8}, 0)
			feed(a, clk, 3*time.Second, ok, lat)
			before := a.Rate()
			feed(a, clk, aimdWindow, tt.status, tt.lat)
			if got, want := a.Rate(), before*tt.factor; math.Abs(got-want) > 1e-6 {
				t.Fatalf("rate %v after the bad window, want %v × %v = %v", got, before, tt.factor, want)
			}
			if a.slow {
				t.Error("still in slow start after a cut")
			}
			// Clean again, it grows additively: by a twentieth of the bound per window.
			cut := a.Rate()
			rates := feed(a, clk, 2*aimdWindow, ok, lat)
			if step := rates[0] - cut; step <= 0 || step > a.bound()/20+1e-6 {
				t.Errorf("first clean window grew the rate by %v, want (0, %v]", step, a.bound()/20)
			}
		})
	}
}

func TestAIMDSteadyErrorsDoNotStarve(t *testing.T) {
	// 5% 5xx throughout: the first windows may cut, then the usual share is learnt
	// and the rate climbs back to the bound.
	clk := &fakeClock{t: epoch}
	a := NewAIMD(Pace{Adaptive: true, Concurrency: 8}, 0)
	rates := feed(a, clk, 30*time.Second, func(i int) int {
		if i%20 == 0 {
			return 500
		}
		return 200
	}, 20*time.Millisecond)
	if last := rates[len(rates)-1]; last < 0.9*a.bound() {
		t.Fatalf("after 30s at a steady 5%% of 5xx the rate is %v, want at least 90%% of %v", last, a.bound())
	}
}

func TestAIMDFloorAndCeiling(t *testing.T) {
	clk := &fakeClock{t: epoch}
	a := NewAIMD(Pace{Target: 0.5, Adaptive: true, Concurrency: 100}, 1000)
	if a.Rate() != StartRPM {
		t.Fatalf("start %v, want %v", a.Rate(), StartRPM)
	}
	feed(a, clk, 5*time.Second, ok, time.Millisecond)
	if a.Rate() != 500 {
		t.Fatalf("rate %v, want the ceiling Target × RPM = 500", a.Rate())
	}
	for range 40 {
		clk.Advance(aimdWindow)
		a.Answer(clk.Now(), 429, time.Millisecond)
	}
	if a.Rate() != MinRPM {
		t.Fatalf("rate %v after many 429s, want the floor %v", a.Rate(), MinRPM)
	}
	// A burst of 429s within one window cuts once.
	b := NewAIMD(Pace{Adaptive: true}, 0)
	for range 5 {
		b.Answer(clk.Now(), 429, time.Millisecond)
	}
	if b.Rate() != StartRPM*cut429 {
		t.Fatalf("five 429s at once: rate %v, want one cut to %v", b.Rate(), StartRPM*cut429)
	}
}

func TestMemoryAutoPace(t *testing.T) {
	ctx := context.Background()
	m, clk := newFake(Config{Pace: Pace{Target: 0.95, Adaptive: true, Concurrency: 8}})
	if got := m.EffectiveRPM(); got != StartRPM {
		t.Fatalf("before any answer: %v/min, want the start pace %v", got, StartRPM)
	}
	// The first answer announces 3,000/min: the pace is 95% of it at once.
	m.Observe(ctx, 3000, 2999, time.Time{})
	if got := m.EffectiveRPM(); got != 2850 {
		t.Fatalf("after the announcement: %v/min, want 2850", got)
	}
	announcing := func() int {
		start, n := clk.Now(), 0
		for clk.Now().Sub(start) < time.Minute {
			if err := m.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			n++
			m.Observe(ctx, 3000, 1000, time.Time{})
		}
		return n
	}
	// Within any minute at most the rate plus one burst, and no fewer than the rate.
	if n := announcing(); n < 2850 || n > 2850+48 {
		t.Fatalf("%d calls in a minute, want 2850 to %d", n, 2850+48)
	}
	// GitLab stops announcing: a minute later the adaptive pace takes over.
	clk.Advance(announcedFor)
	if got := m.EffectiveRPM(); got != StartRPM {
		t.Fatalf("after the announcement lapsed: %v/min, want the adaptive rate %v", got, StartRPM)
	}
	// A ceiling holds against a higher announcement.
	c, _ := newFake(Config{RPM: 1000, Pace: Pace{Target: 0.95, Adaptive: true}})
	c.Observe(ctx, 3000, 2999, time.Time{})
	if got := c.EffectiveRPM(); got != 950 {
		t.Fatalf("RPM 1000 under an announced 3000: %v/min, want 950", got)
	}
}

func TestMemoryAnswersAdapt(t *testing.T) {
	ctx := context.Background()
	m, clk := newFake(Config{Pace: Pace{Target: 0.95, Adaptive: true, Concurrency: 4}})
	for range 20 {
		for range aimdMinAnswers {
			m.Answer(ctx, 200, 10*time.Millisecond)
		}
		clk.Advance(aimdWindow)
	}
	want := headroom * 4 * 60 / 0.010
	if got := m.EffectiveRPM(); math.Abs(got-want) > 1e-6 {
		t.Fatalf("after 5s of clean 10ms answers: %v/min, want the bound %v", got, want)
	}
	m.Answer(ctx, 429, 10*time.Millisecond)
	if got := m.EffectiveRPM(); math.Abs(got-want/2) > 1e-6 {
		t.Fatalf("after a 429: %v/min, want %v", got, want/2)
	}
	// Without Pace.Adaptive answers change nothing.
	f, _ := newFake(Config{RPM: 600})
	f.Answer(ctx, 429, time.Second)
	if got := f.EffectiveRPM(); got != 600 {
		t.Fatalf("fixed pace after a 429: %v/min, want 600", got)
	}
}
