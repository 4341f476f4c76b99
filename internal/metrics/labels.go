package metrics

import (
	"strconv"
	"strings"
	"sync"
)

// Label values must stay bounded: every distinct value is a new time series in
// Prometheus and a new custom metric (billed) in CloudWatch. Callers are expected to pass
// bounded values already (endpoint classes from gitlab.EndpointClass, the fixed kinds and
// steps of the profiler); the functions here are the cheap safety net behind that
// contract: closed sets are allow-listed and open sets are capped, anything else becomes
// "other".

// other replaces a label value that is unknown or over a cap.
const other = "other"

// Caps on the open label sets. Well above what the agent produces (about 25 endpoint
// classes, about 20 profiling steps) and well below what would hurt a Prometheus.
const (
	maxEndpoints = 64
	maxSteps     = 64
)

// RetryReasons are the values of gitlab_api_retries_total's reason label: the GitLab
// client's retry reasons (gitlab.Observer.Retry).
var RetryReasons = []string{"429", "5xx", "timeout", "network", "malformed"}

// ErrorKinds are the values of discovery_errors_total's type label: the kinds the
// discovery Recorder reports (discovery.Recorder.ScanError), "other" for the rest.
var ErrorKinds = []string{"forbidden", "not_found", "budget", "server", "timeout", "malformed", other}

// GroupStep is the step of a failed group scan, the one step every error kind can
// occur at; its series start at zero (see New).
const GroupStep = "group"

var (
	retryReasons = set(RetryReasons...)
	// inventory.Status* constants.
	scanStatuses = set("complete", "partial", "forbidden", "not_found", "error")
	// inventory.Ready, NeedsAttention, Blocked; "none" for a project without a verdict.
	readinesses = set("ready", "needs_attention", "blocked", noReadiness)
	errorKinds  = set(ErrorKinds...)
	// The repository files the profiler reads: a step "file:<name>" keeps its name only
	// for these, since file paths are otherwise unbounded (CI includes, nested files).
	knownFiles = set(".gitlab-ci.yml", ".gitmodules", ".gitattributes", ".lfsconfig",
		"CODEOWNERS", ".gitlab/CODEOWNERS", "docs/CODEOWNERS")
)

// noReadiness labels a project that got no readiness verdict (e.g. forbidden).
const noReadiness = "none"

func set(vs ...string) map[string]bool {
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

func allowed(allow map[string]bool, v string) string {
	if allow[v] {
		return v
	}
	return other
}

// statusCodes holds the label value of every valid HTTP status, so that recording a
// request allocates nothing.
var statusCodes = func() [600]string {
	var s [600]string
	s[0] = "0"
	for i := 100; i < len(s); i++ {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// statusLabel is the status_code label: "0" when there was no response.
func statusLabel(status int) string {
	if status < 0 || status >= len(statusCodes) || statusCodes[status] == "" {
		return other
	}
	return statusCodes[status]
}

func readinessLabel(r string) string {
	if r == "" {
		return noReadiness
	}
	return allowed(readinesses, r)
}

// capped admits the first max distinct values of an open label set.
type capped struct {
	max  int
	mu   sync.Mutex
	seen map[string]struct{}
}

func newCapped(max int) *capped {
	return &capped{max: max, seen: make(map[string]struct{}, max)}
}

func (c *capped) label(v string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[v]; ok {
		return v
	}
	if len(c.seen) >= c.max {
		return other
	}
	c.seen[v] = struct{}{}
	return v
}

// labels turns caller values into bounded label values. One per Metrics or EMF, so the
// caps apply per sink.
type labels struct {
	endpoints *capped
	steps     *capped
}

func newLabels() *labels {
	return &labels{endpoints: newCapped(maxEndpoints), steps: newCapped(maxSteps)}
}

// endpoint admits an endpoint class. A raw path (a numeric segment, a query, an
// encoded character) means the caller did not classify it: "other".
func (l *labels) endpoint(e string) string {
	if !plainLabel(e, 100, true) {
		return other
	}
	for seg := range strings.SplitSeq(e, "/") {
		if isDigits(seg) {
			return other
		}
	}
	return l.endpoints.label(e)
}

// step admits a profiling step: "file:<name>" for a known file, "file:other" for any
// other file, otherwise a short identifier-like name.
func (l *labels) step(s string) string {
	if name, ok := strings.CutPrefix(s, "file:"); ok {
		if knownFiles[name] {
			return s
		}
		return "file:" + other
	}
	if !plainLabel(s, 40, false) {
		return other
	}
	return l.steps.label(s)
}

// plainLabel reports whether v is short and made of [a-z0-9_:.-] (and '/' when slash).
func plainLabel(v string, maxLen int, slash bool) bool {
	if v == "" || len(v) > maxLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_', c == ':', c == '.', c == '-':
		case c == '/' && slash:
		default:
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
