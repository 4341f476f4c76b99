package runner

import (
	"fmt"
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
	groups    atomic.Int64
	projects  atomic.Int64
	errors    atomic.Int64
	remaining atomic.Int64 // last RateLimit-Remaining seen, -1 unknown
	pending   atomic.Int64
	graphql   atomic.Int64 // GraphQL requests, retries included, as the client counts
	client    atomic.Pointer[gitlab.Client]
	limiter   atomic.Pointer[budget.Memory]
}

func (p *Progress) start(runID string, total int64, c *gitlab.Client, l *budget.Memory) {
	p.runID.Store(runID)
	p.total.Store(total)
	p.groups.Store(0)
	p.projects.Store(0)
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
	Groups        int64
	Projects      int64
	Total         int64 // projects in scope, counted when the run started; 0 unknown
	Errors        int64
	APICalls      int64
	GraphQLCalls  int64 // of APICalls, those to GraphQL (GITLAB_API); the rest are REST
	RateRemaining int64 // -1 unknown
	PendingGroups int64 // -1 unknown
	BudgetTokens  float64
	EffectiveRPM  float64 // the budget's pace, requests per minute; 0 unlimited
}

// Snapshot returns the counters now.
func (p *Progress) Snapshot() Snapshot {
	s := Snapshot{
		Groups: p.groups.Load(), Projects: p.projects.Load(), Total: p.total.Load(), Errors: p.errors.Load(),
		RateRemaining: p.remaining.Load(), PendingGroups: p.pending.Load(), GraphQLCalls: p.graphql.Load(),
	}
	if id, ok := p.runID.Load().(string); ok {
		s.RunID = id
	}
	if t := p.started.Load(); t != 0 {
		s.Elapsed = time.Since(time.Unix(0, t))
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

// Rate is the projects done a second so far.
func (s Snapshot) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Projects) / s.Elapsed.Seconds()
}

// ETA estimates the time left from the projects still to do at the pace so far; not
// known without a total or before the first project.
func (s Snapshot) ETA() (time.Duration, bool) {
	if s.Total <= 0 || s.Projects == 0 {
		return 0, false
	}
	left := max(s.Total-s.Projects, 0)
	return time.Duration(float64(s.Elapsed) * float64(left) / float64(s.Projects)), true
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
	return fmt.Sprintf("projects %s  %.1f/s  groups %d  errors %d  api calls %d%s  pace %s  rate remaining %s  elapsed %s  eta %s",
		projects, s.Rate(), s.Groups, s.Errors, s.APICalls, s.perProject(), pace, rate, s.Elapsed.Round(time.Second), eta)
}

// perProject is the calls per project done so far by API kind, e.g. " (rest 5.8,
// graphql 0.15 per project)"; "" before the first project.
func (s Snapshot) perProject() string {
	if s.Projects == 0 {
		return ""
	}
	n := float64(s.Projects)
	return fmt.Sprintf(" (rest %.2f, graphql %.2f per project)", float64(s.APICalls-s.GraphQLCalls)/n, float64(s.GraphQLCalls)/n)
}
