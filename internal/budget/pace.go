package budget

import (
	"net/http"
	"time"
)

// Pace is how a limiter chooses its rate below the limits it knows. RATE_LIMIT_RPM=auto
// (the default) and RATE_LIMIT_TARGET set it; the zero Pace paces at the limits
// themselves and never adapts, as every limiter did before.
type Pace struct {
	// Target is the share of every limit the pace aims at: GitLab's announced
	// RateLimit-Limit, RPM, an endpoint class's limit. 0 means 1.
	Target float64
	// Adaptive paces by the answers themselves while GitLab announces no limit:
	// AIMD, starting at StartRPM, bounded by RPM and by Concurrency requests in
	// flight (see AIMD).
	Adaptive bool
	// Concurrency is the most requests in flight (CONCURRENT_REQUESTS); it bounds the
	// adaptive rate at what that many requests can use at the lowest latency seen.
	Concurrency int
}

// share returns Target, 1 when unset.
func (p Pace) share() float64 {
	if p.Target <= 0 || p.Target > 1 {
		return 1
	}
	return p.Target
}

// Rate returns the pace in requests per minute below the limits known: Target of the
// lower of rpm (0: none) and announced (0: none); else the adaptive rate when there
// is one (adaptive > 0), within Target of rpm; else 0, unlimited.
func (p Pace) Rate(rpm, announced int, adaptive float64) float64 {
	limit := rpm
	if announced > 0 && (limit == 0 || announced < limit) {
		limit = announced
	}
	switch {
	case announced > 0 || (limit > 0 && adaptive <= 0):
		return p.share() * float64(limit)
	case adaptive > 0 && limit > 0:
		return min(adaptive, p.share()*float64(limit))
	default:
		return adaptive
	}
}

// The AIMD pace's constants; docs/RUNBOOK.md ("Pacing") describes them.
const (
	// StartRPM is the adaptive pace before any answer: 5 requests a second, a
	// quarter of GitLab.com's 2,000/min. An announced limit replaces it with the
	// first answer that carries one.
	StartRPM = 300
	// MinRPM is the adaptive pace's floor: one request every two seconds.
	MinRPM = 30
	// aimdWindow and aimdMinAnswers close a measuring window: at least this long and
	// this many answers, so one slow answer or one 5xx is not a trend.
	aimdWindow     = 250 * time.Millisecond
	aimdMinAnswers = 10
	// cut429 and cutCongestion are the multiplicative decreases: GitLab's 429 says
	// outright that we are too fast; 5xx and latency only suggest it.
	cut429        = 0.5
	cutCongestion = 0.7
	// latencyRise is how much slower than the lowest window mean a window may answer
	// before it counts as congestion, and latencySlack the absolute margin that keeps
	// sub-millisecond noise from counting.
	latencyRise  = 1.5
	latencySlack = 5 * time.Millisecond
	// headroom lets the concurrency bound sit a little above what the requests in
	// flight can use, so that the pace, not the rate, is never the only brake.
	headroom = 1.25
)

// AIMD is the adaptive pace (additive increase, multiplicative decrease, as TCP): until
// the first sign of congestion ("slow start") every good answer raises the rate by one
// request per that answer's latency — as TCP's window grows by one segment per
// acknowledgement, doubling the rate with every round trip at full use — then it
// grows by a twentieth of its bound per clean measuring window; it is cut
// to half on a 429 and to 70% when a window's 5xx (and network errors) or latency
// rise. A window's errors rise when there are at least two and their share exceeds
// twice the usual share plus 2 points; its latency rises when its mean exceeds 1.5 ×
// the lowest window mean plus 5 ms. The lowest mean follows a lasting change slowly
// (an eighth of the gap per window), so a slower server is accepted after a few
// windows. The rate stays between MinRPM and the bound: Target of RPM, and Concurrency
// × 1.25 requests per lowest mean latency.
//
// AIMD is not safe for concurrent use: the limiters call it under their lock.
type AIMD struct {
	pace    Pace
	ceiling float64 // Target × RPM; 0 = none
	rate    float64
	slow    bool // slow start: grow with every good answer

	winStart time.Time
	answers  int
	errors   int
	latency  time.Duration // sum over the window

	baseLatency time.Duration // lowest window mean, drifting up slowly
	errShare    float64       // usual error share (moving average)
	lastCut     time.Time
}

// NewAIMD returns the adaptive pace within Target × rpm (0: no rpm).
func NewAIMD(p Pace, rpm int) *AIMD {
	a := &AIMD{pace: p, rate: StartRPM, slow: true}
	if rpm > 0 {
		a.ceiling = p.share() * float64(rpm)
		a.rate = min(a.rate, a.ceiling)
	}
	return a
}

// Rate returns the adaptive rate in requests per minute.
func (a *AIMD) Rate() float64 { return a.rate }

// bound is the highest rate: the ceiling and what Concurrency requests can use.
func (a *AIMD) bound() float64 {
	b := a.ceiling
	if a.pace.Concurrency > 0 && a.baseLatency > 0 {
		c := headroom * float64(a.pace.Concurrency) * float64(time.Minute) / float64(a.baseLatency)
		if b == 0 || c < b {
			b = c
		}
	}
	return b
}

// Answer records one answer: its status (0: no answer, a timeout or network error)
// and latency.
func (a *AIMD) Answer(now time.Time, status int, latency time.Duration) {
	if status == http.StatusTooManyRequests {
		a.cut(now, cut429)
		return
	}
	if a.winStart.IsZero() {
		a.winStart = now
	}
	a.answers++
	a.latency += latency
	if status == 0 || status >= 500 {
		a.errors++
	} else if a.slow {
		a.rate += float64(time.Minute) / float64(max(latency, time.Millisecond))
		a.clamp()
	}
	if now.Sub(a.winStart) < aimdWindow || a.answers < aimdMinAnswers {
		return
	}
	mean := a.latency / time.Duration(a.answers)
	share := float64(a.errors) / float64(a.answers)
	errorsRose := a.errors >= 2 && share > 2*a.errShare+0.02
	slower := a.baseLatency > 0 && float64(mean) > latencyRise*float64(a.baseLatency)+float64(latencySlack)
	a.errShare = 0.75*a.errShare + 0.25*share
	switch {
	case a.baseLatency == 0 || mean < a.baseLatency:
		a.baseLatency = mean
	default:
		a.baseLatency += (mean - a.baseLatency) / 8
	}
	if errorsRose || slower {
		a.cut(now, cutCongestion)
		return
	}
	if !a.slow {
		// Additive increase: a twentieth of the bound, at least 60 a minute.
		a.rate += max(60, a.bound()/20)
	}
	a.clamp()
	a.resetWindow(now)
}

// clamp keeps the rate within the bound; reaching it ends slow start.
func (a *AIMD) clamp() {
	if b := a.bound(); b > 0 && a.rate >= b {
		a.rate, a.slow = b, false
	}
}

// cut lowers the rate by factor, at most once per window: the answers of requests
// sent before the cut say nothing about the new rate.
func (a *AIMD) cut(now time.Time, factor float64) {
	if !a.lastCut.IsZero() && now.Sub(a.lastCut) < aimdWindow {
		return
	}
	a.rate = max(MinRPM, a.rate*factor)
	if a.ceiling > 0 {
		a.rate = min(a.rate, a.ceiling)
	}
	a.slow = false
	a.lastCut = now
	a.resetWindow(now)
}

func (a *AIMD) resetWindow(now time.Time) {
	a.winStart, a.answers, a.errors, a.latency = now, 0, 0, 0
}
