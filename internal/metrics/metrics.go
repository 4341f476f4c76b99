// Package metrics exposes what the discovery agent measures: as Prometheus metrics for
// the long-running agent (Metrics) and as CloudWatch Embedded Metric Format lines for
// Lambda (EMF). Both take the same events under the same metric names, so the alerts,
// the dashboard and the runbook speak of one set of names.
//
// Callers pass bounded label values: endpoint classes (gitlab.EndpointClass), the
// client's retry reasons, inventory scan statuses and readiness categories, the
// Recorder's error kinds and the profiler's fixed step names ("hooks",
// "file:.gitlab-ci.yml"). Values outside those sets are recorded as "other".
package metrics

import (
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Version is the agent's version in discovery_build_info, set at build time with
// -ldflags "-X github.com/gl2gh/discovery-agent/internal/metrics.Version=v1.2.3".
// When empty the module version or VCS revision from the build info is used.
var Version string

// Sink is what the agent reports to, whichever backend: it is gitlab.Observer and
// discovery.Recorder plus the run lifecycle. *Metrics and *EMF implement it.
type Sink interface {
	// gitlab.Observer
	Request(endpoint string, status int, d time.Duration)
	Retry(reason string)
	RateLimitRemaining(remaining int)
	EffectiveRPM(rpm float64)
	// discovery.Recorder
	GroupDone(status string)
	ProjectDone(status, readiness string)
	ScanError(kind, step string)
	QueueDepth(n int64)
	// Run lifecycle and shared state.
	RunStarted(runID string)
	RunFinished(success bool, d time.Duration)
	SetBudgetTokens(tokens float64)
	SetDeadLetters(n int)
}

// Metric names, shared by Metrics and EMF.
const (
	nameRequests       = "gitlab_api_requests_total"
	nameRequestSeconds = "gitlab_api_request_duration_seconds"
	nameRateLimit      = "gitlab_api_rate_limit_remaining"
	nameEffectiveRPM   = "discovery_rate_limit_effective_rpm"
	nameRetries        = "gitlab_api_retries_total"
	nameGroups         = "discovery_groups_total"
	nameProjects       = "discovery_projects_total"
	nameErrors         = "discovery_errors_total"
	nameRunSeconds     = "discovery_run_duration_seconds"
	nameRunInProgress  = "discovery_run_in_progress"
	nameQueueDepth     = "discovery_queue_depth"
	nameBudgetTokens   = "discovery_budget_tokens_available"
	nameLastSuccess    = "discovery_last_run_success_timestamp_seconds"
	nameLastProgress   = "discovery_last_progress_timestamp_seconds"
	nameDeadLetters    = "discovery_dead_letter_messages"
	// nameRunIdle is EMF only: the Lambda reconciler's view of a running run.
	nameRunIdle     = "discovery_run_idle_seconds"
	nameMemoryLimit = "discovery_memory_limit_bytes"
	nameCPULimit    = "discovery_cpu_limit_cores"
	nameBuildInfo   = "discovery_build_info"
)

// requestBuckets cover GitLab API latencies from 10ms to 30s (the client's timeout
// range), with a bound at 2s, the HighAPILatency threshold, so the alert's p95 is not
// interpolated across a wide bucket.
var requestBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30}

// Metrics is the Prometheus sink. Its methods are safe for concurrent use.
type Metrics struct {
	reg    *prometheus.Registry
	labels *labels

	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	// rateLimit has no labels; a vec so that the series exists only while GitLab's
	// headers have told us something (self-managed instances often send none).
	rateLimit *prometheus.GaugeVec
	// effectiveRPM is the pace; a vec, like rateLimit, so that it shows only during a run.
	effectiveRPM  *prometheus.GaugeVec
	retries       *prometheus.CounterVec
	groups        *prometheus.CounterVec
	projects      *prometheus.CounterVec
	errors        *prometheus.CounterVec
	runSeconds    prometheus.Gauge
	runInProgress prometheus.Gauge
	queueDepth    prometheus.Gauge
	budgetTokens  prometheus.Gauge
	lastSuccess   prometheus.Gauge
	lastProgress  prometheus.Gauge
	deadLetters   prometheus.Gauge
}

var _ Sink = (*Metrics)(nil)

// New returns Metrics registered in a registry of their own, with the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		labels: newLabels(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameRequests,
			Help: "GitLab API requests by endpoint class and HTTP status (0: no response).",
		}, []string{"endpoint", "status_code"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    nameRequestSeconds,
			Help:    "GitLab API request latency by endpoint class, retries counted apart.",
			Buckets: requestBuckets,
		}, []string{"endpoint"}),
		rateLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: nameRateLimit,
			Help: "RateLimit-Remaining of the last GitLab response that carried it; absent outside a run.",
		}, nil),
		effectiveRPM: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: nameEffectiveRPM,
			Help: "Requests per minute the shared rate budget paces at: RATE_LIMIT_TARGET of GitLab's announced limit, else the adaptive (AIMD) rate; 0 when nothing limits it; absent outside a run.",
		}, nil),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameRetries,
			Help: "GitLab API retries by reason (429, 5xx, timeout, network, malformed).",
		}, []string{"reason"}),
		groups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameGroups,
			Help: "Groups scanned, by scan status.",
		}, []string{"status"}),
		projects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameProjects,
			Help: "Projects profiled, by scan status and readiness (none: no verdict).",
		}, []string{"status", "readiness"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameErrors,
			Help: "Failed profiling steps, by error type and step.",
		}, []string{"type", "step"}),
		runSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: nameRunSeconds,
			Help: "Duration of the last finished discovery run.",
		}),
		runInProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: nameRunInProgress,
			Help: "1 while a discovery run is in progress.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: nameQueueDepth,
			Help: "Work messages of the run still pending.",
		}),
		budgetTokens: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: nameBudgetTokens,
			Help: "API calls the shared rate budget can grant right now.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: nameLastSuccess,
			Help: "Unix time the last successful run finished; 0 when none since start.",
		}),
		lastProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: nameLastProgress,
			Help: "Unix time a group or project was last finished (or a run started).",
		}),
		deadLetters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: nameDeadLetters,
			Help: "Messages in the dead-letter queue.",
		}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: nameBuildInfo,
		Help: "Always 1; the agent's version in the version label.",
	}, []string{"version"})
	buildInfo.WithLabelValues(version()).Set(1)

	root := os.DirFS("/")
	memLimit := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: nameMemoryLimit,
		Help: "Memory the agent may use: GOMEMLIMIT, else the cgroup limit, else total RAM.",
	}, func() float64 { return memoryLimit(root, debug.SetMemoryLimit(-1)) })
	cpuLim := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: nameCPULimit,
		Help: "CPU cores the agent may use: the cgroup quota, else the number of CPUs.",
	}, func() float64 { return cpuLimit(root, runtime.NumCPU()) })

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestSeconds, m.rateLimit, m.effectiveRPM, m.retries,
		m.groups, m.projects, m.errors,
		m.runSeconds, m.runInProgress, m.queueDepth, m.budgetTokens,
		m.lastSuccess, m.lastProgress, m.deadLetters,
		memLimit, cpuLim, buildInfo,
	)

	m.zero()
	return m
}

// zero starts the closed label sets at zero, so that rate() and increase() see the
// first event of each, the dashboard's retry and error panels show 0 rather than "No
// data" on a healthy run, and DiscoveryRunStalled has series to look at. Only bounded
// sets: the error kinds at the group step (steps are otherwise open), not endpoints or
// status codes.
func (m *Metrics) zero() {
	for s := range scanStatuses {
		m.groups.WithLabelValues(s)
		for r := range readinesses {
			m.projects.WithLabelValues(s, r)
		}
	}
	for _, r := range RetryReasons {
		m.retries.WithLabelValues(r)
	}
	step := m.labels.step(GroupStep)
	for _, k := range ErrorKinds {
		m.errors.WithLabelValues(k, step)
	}
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for callers that add collectors of their own (e.g.
// HTTP server metrics) or gather directly.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Request counts one GitLab API request and its latency.
func (m *Metrics) Request(endpoint string, status int, d time.Duration) {
	e := m.labels.endpoint(endpoint)
	m.requests.WithLabelValues(e, statusLabel(status)).Inc()
	m.requestSeconds.WithLabelValues(e).Observe(d.Seconds())
}

// Retry counts one retried request.
func (m *Metrics) Retry(reason string) {
	m.retries.WithLabelValues(allowed(retryReasons, reason)).Inc()
}

// RateLimitRemaining records GitLab's RateLimit-Remaining header.
func (m *Metrics) RateLimitRemaining(remaining int) {
	m.rateLimit.WithLabelValues().Set(float64(remaining))
}

// EffectiveRPM records the shared rate budget's pace.
func (m *Metrics) EffectiveRPM(rpm float64) {
	m.effectiveRPM.WithLabelValues().Set(rpm)
}

// GroupDone counts one scanned group.
func (m *Metrics) GroupDone(status string) {
	m.groups.WithLabelValues(allowed(scanStatuses, status)).Inc()
	m.lastProgress.SetToCurrentTime()
}

// ProjectDone counts one profiled project.
func (m *Metrics) ProjectDone(status, readiness string) {
	m.projects.WithLabelValues(allowed(scanStatuses, status), readinessLabel(readiness)).Inc()
	m.lastProgress.SetToCurrentTime()
}

// ScanError counts one failed profiling step.
func (m *Metrics) ScanError(kind, step string) {
	m.errors.WithLabelValues(allowed(errorKinds, kind), m.labels.step(step)).Inc()
}

// QueueDepth records the run's pending work.
func (m *Metrics) QueueDepth(n int64) { m.queueDepth.Set(float64(n)) }

// RunStarted marks a run in progress. The run ID is not a label (one series per run
// would grow without bound); EMF carries it as a property.
func (m *Metrics) RunStarted(runID string) {
	m.runInProgress.Set(1)
	m.lastProgress.SetToCurrentTime()
}

// RunFinished marks the run over and records its duration, and its end time when it
// succeeded. The rate-limit and pace gauges are dropped: outside a run they would only
// be stale.
func (m *Metrics) RunFinished(success bool, d time.Duration) {
	m.runInProgress.Set(0)
	m.runSeconds.Set(d.Seconds())
	if success {
		m.lastSuccess.SetToCurrentTime()
	}
	m.rateLimit.Reset()
	m.effectiveRPM.Reset()
}

// SetLastRunSuccess restores the last successful run's end time, e.g. from the store
// at start-up, so that a restart does not look like a day without a successful run.
func (m *Metrics) SetLastRunSuccess(t time.Time) {
	if !t.IsZero() {
		m.lastSuccess.Set(unixSeconds(t))
	}
}

// SetBudgetTokens records the API calls the shared budget can grant now.
func (m *Metrics) SetBudgetTokens(tokens float64) { m.budgetTokens.Set(tokens) }

// SetDeadLetters records the dead-letter queue's length.
func (m *Metrics) SetDeadLetters(n int) { m.deadLetters.Set(float64(n)) }

// version is the discovery_build_info version label.
func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	return "devel"
}

// unixSeconds converts a time to the float seconds Prometheus timestamps use.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
