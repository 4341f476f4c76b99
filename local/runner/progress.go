package runner

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
)

// Progress counts what a run has done, for the terminal progress line, and passes every
// event on to the telemetry (Prometheus) when there is one.
type Progress struct {
	next Telemetry

	runID     atomic.Value // string
	started   atomic.Int64 // unix nanos
	total     atomic.Int64 // projects in scope, 0 unknown
	groups    atomic.Int64 // of the run, those done before this process included
	projects  atomic.Int64 // of the run, those done before this process included
	resumed   atomic.Int64 // projects the run had done before this process took it on
	errors    atomic.Int64
	remaining atomic.Int64 // last RateLimit-Remaining seen, -1 unknown
	pending   atomic.Int64
	graphql   atomic.Int64 // GraphQL requests, retries included, as the client counts
	client    atomic.Pointer[gitlab.Client]
	limiter   atomic.Pointer[budget.Memory]

	window rateWindow
}

// start points the counters at a run whose groups and projects done so far (by an
// earlier process: a resume) are groups and projects, so that a resumed run shows the
// run's progress, not the resumed part's.
func (p *Progress) start(runID string, total, groups, projects int64, c *gitlab.Client, l *budget.Memory) {
	p.runID.Store(runID)
	p.total.Store(total)
	p.groups.Store(groups)
	p.projects.Store(projects)
	p.resumed.Store(projects)
	p.window.reset()
	p.errors.Store(0)
	p.started.Store(time.Now().UnixNano())
	p.remaining.Store(-1)
	p.pending.Store(-1)
	p.graphql.Store(0)
	p.client.Store(c)
	p.limiter.Store(l)
}

func (p *Progress) Request(endpoint string, status int, d time.Duration) {
	if endpoint == gitlab.GraphQLClass {
		p.graphql.Add(1)
	}
	if p.next != nil {
		p.next.Request(endpoint, status, d)
	}
}

func (p *Progress) Retry(reason string) {
	if p.next != nil {
		p.next.Retry(reason)
	}
}

func (p *Progress) RateLimitRemaining(n int) {
	p.remaining.Store(int64(n))
	if p.next != nil {
		p.next.RateLimitRemaining(n)
	}
}

func (p *Progress) EffectiveRPM(rpm float64) {
	if p.next != nil {
		p.next.EffectiveRPM(rpm)
	}
}

func (p *Progress) GroupDone(status string) {
	p.groups.Add(1)
	if p.next != nil {
		p.next.GroupDone(status)
	}
}

func (p *Progress) ProjectDone(status, readiness string) {
	p.projects.Add(1)
	if p.next != nil {
		p.next.ProjectDone(status, readiness)
	}
}

func (p *Progress) ScanError(kind, step string) {
	p.errors.Add(1)
	if p.next != nil {
		p.next.ScanError(kind, step)
	}
}

func (p *Progress) QueueDepth(n int64) {
	p.pending.Store(n)
	if p.next != nil {
		p.next.QueueDepth(n)
	}
}

// Snapshot is the progress of the current run.
type Snapshot struct {
	RunID         string
	Elapsed       time.Duration
	Groups        int64 // done in the run, by this process and any before it (a resume)
	Projects      int64 // done in the run, by this process and any before it (a resume)
	Resumed       int64 // projects done before this process resumed the run
	Total         int64 // projects in scope, counted when the run started; 0 unknown
	Errors        int64
	APICalls      int64
	GraphQLCalls  int64 // of APICalls, those to GraphQL (GITLAB_API); the rest are REST
	RateRemaining int64 // -1 unknown
	PendingGroups int64 // -1 unknown
	BudgetTokens  float64
	EffectiveRPM  float64 // the budget's pace, requests per minute; 0 unlimited
	// RecentRate is projects a second over the last rateWindow of this process's work
	// (from its first project on); 0 before there is one.
	RecentRate float64
}

// Snapshot returns the counters now.
func (p *Progress) Snapshot() Snapshot {
	s := Snapshot{
		Groups: p.groups.Load(), Projects: p.projects.Load(), Total: p.total.Load(), Errors: p.errors.Load(),
		RateRemaining: p.remaining.Load(), PendingGroups: p.pending.Load(), GraphQLCalls: p.graphql.Load(),
		Resumed: p.resumed.Load(),
	}
	if id, ok := p.runID.Load().(string); ok {
		s.RunID = id
	}
	if t := p.started.Load(); t != 0 {
		s.Elapsed = time.Since(time.Unix(0, t))
		s.RecentRate = p.window.observe(s.Elapsed, s.Projects-s.Resumed)
	}
	if c := p.client.Load(); c != nil {
		s.APICalls = c.Calls()
	}
	if l := p.limiter.Load(); l != nil {
		s.BudgetTokens = l.Available()
		s.EffectiveRPM = l.EffectiveRPM()
	}
	return s
}

// Rate is the projects done a second: the recent rate when known, else this process's
// average so far.
func (s Snapshot) Rate() float64 {
	if s.RecentRate > 0 {
		return s.RecentRate
	}
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Projects-s.Resumed) / s.Elapsed.Seconds()
}

// ETA estimates the time left from the projects still to do at Rate, or at the pace
// when that is slower: the budget starts with a burst, and a run that the pace holds
// back goes at EffectiveRPM over the calls a project takes (so far), whatever its
// first seconds did. Not known without a total or before this process's first project.
func (s Snapshot) ETA() (time.Duration, bool) {
	rate := s.Rate()
	done := s.Projects - s.Resumed
	if s.Total <= 0 || done <= 0 || rate <= 0 {
		return 0, false
	}
	if s.EffectiveRPM > 0 && s.APICalls > 0 {
		paced := s.EffectiveRPM / 60 / (float64(s.APICalls) / float64(done))
		rate = min(rate, paced)
	}
	left := max(s.Total-s.Projects, 0)
	return time.Duration(float64(left) / rate * float64(time.Second)), true
}

// rateWindow is the recent rate: projects done over the last rateWindowSpan, measured
// from this process's first project on, so that neither the start-up (counting the
// scope, listing the first groups: no projects yet) nor a resume skews it once the
// window spans rateWindowMin; until then Rate is the average since the start. An average
// since the start was 3× off early in a long run; a window follows the pace the run has now.
type rateWindow struct {
	mu      sync.Mutex
	samples []rateSample // oldest first, at least rateSampleEvery apart
}

type rateSample struct {
	at   time.Duration // since the process started
	done int64
}

const (
	rateWindowSpan  = 60 * time.Second
	rateSampleEvery = 250 * time.Millisecond
	// rateWindowMin is the least span the recent rate is measured over: shorter, a
	// page of projects finishing at once swings it (a 40% ETA error in BenchmarkIncremental
	// against 25% for the average since the start).
	rateWindowMin = 10 * time.Second
)

func (w *rateWindow) reset() {
	w.mu.Lock()
	w.samples = nil
	w.mu.Unlock()
}

// observe records done projects at elapsed and returns the rate over the window.
func (w *rateWindow) observe(at time.Duration, done int64) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if done <= 0 {
		return 0
	}
	if n := len(w.samples); n == 0 || at-w.samples[n-1].at >= rateSampleEvery {
		w.samples = append(w.samples, rateSample{at, done})
	}
	// Keep one sample at or beyond the span's start, so the window is always full.
	i := 0
	for i+1 < len(w.samples) && at-w.samples[i+1].at >= rateWindowSpan {
		i++
	}
	w.samples = w.samples[i:]
	first := w.samples[0]
	if d := at - first.at; d >= rateWindowMin && done > first.done {
		return float64(done-first.done) / d.Seconds()
	}
	return 0
}

func (s Snapshot) String() string {
	rate := "?"
	if s.RateRemaining >= 0 {
		rate = fmt.Sprint(s.RateRemaining)
	}
	pace := "unlimited"
	if s.EffectiveRPM > 0 {
		pace = fmt.Sprintf("%.0f/min", s.EffectiveRPM)
	}
	eta := "?"
	if d, ok := s.ETA(); ok {
		eta = d.Round(time.Second).String()
	}
	projects := fmt.Sprint(s.Projects)
	if s.Total > 0 {
		projects = fmt.Sprintf("%d/%d (%.0f%%)", s.Projects, s.Total, 100*float64(s.Projects)/float64(s.Total))
	}
	if s.Resumed > 0 {
		projects += fmt.Sprintf(" (%d before resuming)", s.Resumed)
	}
	return fmt.Sprintf("projects %s  %.1f/s  groups %d  errors %d  api calls %d%s  pace %s  rate remaining %s  elapsed %s  eta %s",
		projects, s.Rate(), s.Groups, s.Errors, s.APICalls, s.PerProject(), pace, rate, s.Elapsed.Round(time.Second), eta)
}

// PerProject is this process's calls per project it did, by API kind, e.g. " (rest
// 5.8, graphql 0.15 per project)"; "" before its first project.
func (s Snapshot) PerProject() string {
	n := float64(s.Projects - s.Resumed)
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" (rest %.2f, graphql %.2f per project)", float64(s.APICalls-s.GraphQLCalls)/n, float64(s.GraphQLCalls)/n)
}
