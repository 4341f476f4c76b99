package awsagent

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/gl2gh/discovery-agent/local/runner"
)

// progress counts what this process did for the current run, for /health and the
// snapshot, and passes every event on to the telemetry. Other processes working on
// the same queues (Lambda workers, other agents) are not counted.
type progress struct {
	next   Telemetry
	budget func() float64

	runID     atomic.Value // string
	started   atomic.Int64 // unix nanos
	groups    atomic.Int64
	projects  atomic.Int64
	errors    atomic.Int64
	requests  atomic.Int64
	remaining atomic.Int64  // last RateLimit-Remaining seen, -1 unknown
	pace      atomic.Uint64 // float64 bits of the last effective rpm
	pending   atomic.Int64  // -1 unknown
	total     atomic.Int64  // the run's projects in scope; 0 unknown
}

func (p *progress) start(runID string) {
	p.runID.Store(runID)
	p.groups.Store(0)
	p.projects.Store(0)
	p.errors.Store(0)
	p.requests.Store(0)
	p.pending.Store(-1)
	p.total.Store(0)
	p.started.Store(time.Now().UnixNano())
}

// setTotal records the projects in scope of run runID, if it is still the one tracked.
func (p *progress) setTotal(runID string, n int64) {
	if id, _ := p.runID.Load().(string); id == runID {
		p.total.Store(n)
	}
}

func (p *progress) Request(endpoint string, status int, d time.Duration) {
	p.requests.Add(1) // a request without a response was sent all the same
	if p.next != nil {
		p.next.Request(endpoint, status, d)
	}
}

func (p *progress) Retry(reason string) {
	if p.next != nil {
		p.next.Retry(reason)
	}
}

func (p *progress) RateLimitRemaining(n int) {
	p.remaining.Store(int64(n))
	if p.next != nil {
		p.next.RateLimitRemaining(n)
	}
}

func (p *progress) EffectiveRPM(rpm float64) {
	p.pace.Store(math.Float64bits(rpm))
	if p.next != nil {
		p.next.EffectiveRPM(rpm)
	}
}

func (p *progress) GroupDone(status string) {
	p.groups.Add(1)
	if p.next != nil {
		p.next.GroupDone(status)
	}
}

func (p *progress) ProjectDone(status, readiness string) {
	p.projects.Add(1)
	if p.next != nil {
		p.next.ProjectDone(status, readiness)
	}
}

func (p *progress) ScanError(kind, step string) {
	p.errors.Add(1)
	if p.next != nil {
		p.next.ScanError(kind, step)
	}
}

func (p *progress) QueueDepth(n int64) {
	p.pending.Store(n)
	if p.next != nil {
		p.next.QueueDepth(n)
	}
}

func (p *progress) snapshot() runner.Snapshot {
	s := runner.Snapshot{
		Groups: p.groups.Load(), Projects: p.projects.Load(), Errors: p.errors.Load(), APICalls: p.requests.Load(),
		Total: p.total.Load(), RateRemaining: p.remaining.Load(), PendingGroups: p.pending.Load(),
		EffectiveRPM: math.Float64frombits(p.pace.Load()),
	}
	if id, ok := p.runID.Load().(string); ok {
		s.RunID = id
	}
	if t := p.started.Load(); t != 0 {
		s.Elapsed = time.Since(time.Unix(0, t))
	}
	if p.budget != nil {
		s.BudgetTokens = p.budget()
	}
	return s
}
