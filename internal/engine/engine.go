// Package engine is the agent's one composition root: it turns the configuration and
// the backends a mode chose (store, queue, export sink, rate budget, telemetry) into the
// GitLab client, the discovery worker and the scheduler. The local runner, the Lambda
// functions and `serve` (either backend) all build their engine here, so a setting
// means the same in every mode and none of them sets a worker field by hand.
package engine

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// Telemetry is what the engine reports GitLab calls and discovery progress to
// (Prometheus locally, EMF in Lambda).
type Telemetry interface {
	gitlab.Observer
	discovery.Recorder
}

// Backends are what a mode chose to run on.
type Backends struct {
	Store discovery.Store
	Queue discovery.Queue
	// Sink receives the exports; nil where the process never exports.
	Sink      export.Sink
	Telemetry Telemetry    // optional
	Log       *slog.Logger // default slog.Default()
}

// Options are what a mode sets beyond the shared configuration.
type Options struct {
	// DeadlineMargin is the Lambda functions' DEADLINE_MARGIN; 0 = the worker's default.
	DeadlineMargin time.Duration
	// OnRunFinished is called when a run ends (the worker's hook).
	OnRunFinished func(inventory.Run, inventory.Summary)
	// EndpointLimiter builds the limiter of one endpoint class (GitLab.com's limits,
	// RATE_LIMIT_ENDPOINTS) where the processes of a mode share it (Lambda: DynamoDB);
	// nil keeps it in memory, shared by every client of this process. c.RPM is the
	// class's limit, c.Pace how far below it to pace.
	EndpointLimiter func(class string, c budget.Config) gitlab.Limiter
	// GitLab overrides client options (tests: retry policy; Lambda: a shared transport).
	// Limiter, EndpointLimiters, Observer, Concurrency and Timeout always come from the
	// configuration.
	GitLab gitlab.Options
}

// Engine builds the handlers of one process. It is safe for concurrent use.
type Engine struct {
	cfg        config.Config
	b          Backends
	opts       Options
	thresholds readiness.Thresholds
	// endpoint limiters pace GitLab's per-endpoint-class limits (RATE_LIMIT_ENDPOINTS);
	// they are per process, shared by every client the engine builds.
	endpoint map[string]gitlab.Limiter
}

// New checks the configuration a GitLab-calling process needs and loads what it names
// (the readiness thresholds).
func New(cfg config.Config, b Backends, opts Options) (*Engine, error) {
	th, err := readiness.Load(cmp.Or(cfg.MigrationPath, readiness.DefaultPath), cfg.Thresholds)
	if err != nil {
		return nil, fmt.Errorf("READINESS_THRESHOLDS: %w", err)
	}
	if b.Log == nil {
		b.Log = slog.Default()
	}
	e := &Engine{cfg: cfg, b: b, opts: opts, thresholds: th, endpoint: map[string]gitlab.Limiter{}}
	newLimiter := opts.EndpointLimiter
	if newLimiter == nil {
		newLimiter = func(_ string, c budget.Config) gitlab.Limiter { return budget.NewMemory(c) }
	}
	for class, rpm := range EndpointLimits(cfg) {
		e.endpoint[class] = newLimiter(class, budget.Config{RPM: rpm, Pace: budget.Pace{Target: cfg.RateLimitTarget}})
	}
	return e, nil
}

// GitLabComEndpointRPM are GitLab.com's documented per-endpoint limits ("GitLab.com
// rate limits", https://docs.gitlab.com/user/gitlab_com/rate_limits/) for the endpoint
// classes the agent calls, per minute: the Projects API's 2,000 per 10 minutes is 200.
// The simulator's gitlabsim.GitLabComEndpointLimits states the same limits with their
// windows; a test keeps the two equal.
var GitLabComEndpointRPM = map[string]int{
	"projects":            200,
	"projects/:id":        400,
	"groups":              50,
	"groups/:id":          400,
	"groups/:id/projects": 600,
	// Read only with INCLUDE_MEMBERS: at most 200 profiles a minute on gitlab.com.
	"projects/:id/members/all": 200,
}

// EndpointLimits returns the per-endpoint-class limits a configuration gets:
// GitLab.com's when GITLAB_URL's host is gitlab.com, with RATE_LIMIT_ENDPOINTS
// replacing or adding to them.
func EndpointLimits(cfg config.Config) map[string]int {
	out := map[string]int{}
	if u, err := url.Parse(cfg.GitLabURL); err == nil && strings.EqualFold(u.Hostname(), "gitlab.com") {
		maps.Copy(out, GitLabComEndpointRPM)
	}
	maps.Copy(out, cfg.EndpointRPM)
	return out
}

// Config returns the configuration the engine was built from.
func (e *Engine) Config() config.Config { return e.cfg }

// Budget returns the shared budget's settings for a run: RATE_LIMIT_RPM,
// RATE_LIMIT_TARGET, CONCURRENT_REQUESTS (the adaptive pace's bound) and MAX_API_CALLS.
// Each mode keeps the budget where its processes share it (in memory, in DynamoDB).
func (e *Engine) Budget() budget.Config {
	return budget.Config{
		RPM: e.cfg.RateLimitRPM, MaxCalls: e.cfg.MaxAPICalls,
		Pace: budget.Pace{Target: e.cfg.RateLimitTarget, Adaptive: e.cfg.RateLimitAuto, Concurrency: e.cfg.Concurrency},
	}
}

// Client returns a GitLab client whose requests wait on lim, the shared budget.
func (e *Engine) Client(lim gitlab.Limiter) (*gitlab.Client, error) {
	o := e.opts.GitLab
	o.Limiter = lim
	o.EndpointLimiters = e.endpoint
	if e.b.Telemetry != nil {
		o.Observer = e.b.Telemetry
	}
	o.Concurrency = e.cfg.Concurrency
	o.Timeout = e.cfg.RequestTimeout
	return gitlab.New(e.cfg.GitLabURL, e.cfg.Token, o)
}

// Worker returns the message handler calling GitLab through gl; gl is nil in a process
// that only exports.
func (e *Engine) Worker(gl *gitlab.Client) *discovery.Worker {
	w := &discovery.Worker{
		Store: e.b.Store, Queue: e.b.Queue, GitLab: gl, Log: e.b.Log,
		Thresholds:         e.thresholds,
		MaxPerProjectCalls: e.cfg.MaxPerProjectCalls,
		IncludeMembers:     e.cfg.IncludeMembers,
		Concurrency:        e.cfg.Concurrency,
		FullScanEvery:      e.cfg.FullScanEvery,
		API:                e.cfg.API,
		DeadlineMargin:     e.opts.DeadlineMargin,
		OnRunFinished:      e.opts.OnRunFinished,
	}
	if e.b.Sink != nil {
		w.Sink = e.b.Sink
	}
	if e.b.Telemetry != nil {
		w.Recorder = e.b.Telemetry
	}
	return w
}

// Scheduler returns the run starter calling GitLab through gl.
func (e *Engine) Scheduler(gl *gitlab.Client) *discovery.Scheduler {
	return &discovery.Scheduler{
		Store: e.b.Store, Queue: e.b.Queue, GitLab: gl, Log: e.b.Log,
		GitLabURL: e.cfg.GitLabURL, RootGroups: e.cfg.RootGroups, IncludePersonal: e.cfg.IncludePersonal,
		RPM: e.cfg.RateLimitRPM, StaleAfter: e.cfg.StaleAfter, IncludeMembers: e.cfg.IncludeMembers,
		API: e.cfg.API,
	}
}

// Effective is what a built worker and client really use: the settings test compares
// it across the composition roots.
type Effective struct {
	FullScanEvery      time.Duration
	EndpointRPM        map[string]int
	MaxPerProjectCalls int
	Concurrency        int // projects profiled at once
	RequestConcurrency int // requests in flight
	RequestTimeout     time.Duration
	DeadlineMargin     time.Duration
	Thresholds         readiness.Thresholds
	RootGroups         []string
	IncludePersonal    bool
	API                string // GITLAB_API
	IncludeMembers     bool
}

// Describe reads the effective settings off a built worker, scheduler and client.
func Describe(w *discovery.Worker, s *discovery.Scheduler, gl *gitlab.Client) Effective {
	cs := gl.Settings()
	eff := Effective{
		FullScanEvery: w.FullScanEvery, MaxPerProjectCalls: w.MaxPerProjectCalls, Concurrency: w.Concurrency,
		DeadlineMargin: w.DeadlineMargin, Thresholds: w.Thresholds,
		RequestConcurrency: cs.Concurrency, RequestTimeout: cs.Timeout,
		RootGroups: s.RootGroups, IncludePersonal: s.IncludePersonal, API: w.API, IncludeMembers: w.IncludeMembers,
	}
	for class, l := range cs.EndpointLimiters {
		if r, ok := l.(interface{ RPM() int }); ok {
			if eff.EndpointRPM == nil {
				eff.EndpointRPM = map[string]int{}
			}
			eff.EndpointRPM[class] = r.RPM()
		}
	}
	return eff
}

// Equal reports whether two descriptions match.
func (a Effective) Equal(b Effective) bool {
	return a.FullScanEvery == b.FullScanEvery && maps.Equal(a.EndpointRPM, b.EndpointRPM) &&
		a.MaxPerProjectCalls == b.MaxPerProjectCalls && a.Concurrency == b.Concurrency &&
		a.RequestConcurrency == b.RequestConcurrency && a.RequestTimeout == b.RequestTimeout &&
		a.DeadlineMargin == b.DeadlineMargin && a.Thresholds == b.Thresholds &&
		fmt.Sprint(a.RootGroups) == fmt.Sprint(b.RootGroups) && a.IncludePersonal == b.IncludePersonal &&
		a.API == b.API && a.IncludeMembers == b.IncludeMembers
}
