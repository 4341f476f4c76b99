package metrics

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// EMF is the Lambda sink: it aggregates events in memory and Flush writes them as
// CloudWatch Embedded Metric Format lines (one JSON object per line, to stdout in
// Lambda), which CloudWatch Logs turns into metrics without an API call.
//
// Names and dimensions are those of Metrics. Counters are the increase since the last
// Flush (unit Count), durations are the observed values in seconds (unit Seconds, at
// most 100 per line as EMF allows; more are split over lines), gauges are the last value
// set since the last Flush (unit None). A gauge not set since the last Flush is not
// written again, so a warm Lambda does not repeat stale values. The memory and CPU
// limits and build info are not written: Lambda reports its own.
//
// Its methods are safe for concurrent use.
type EMF struct {
	namespace string
	labels    *labels
	now       func() time.Time

	mu       sync.Mutex // guards the fields below
	runID    string
	counters map[emfKey]float64
	gauges   map[emfKey]float64
	values   map[emfKey][]float64

	wmu sync.Mutex // serialises writes so lines of two Flushes do not interleave
	w   io.Writer
}

var _ Sink = (*EMF)(nil)

// emfKey is one metric and its dimension values (at most two).
type emfKey struct {
	name   string
	k1, v1 string
	k2, v2 string
}

func (k emfKey) dims() []string {
	switch {
	case k.k2 != "":
		return []string{k.k1, k.k2}
	case k.k1 != "":
		return []string{k.k1}
	default:
		return []string{}
	}
}

// maxEMFValues is EMF's limit on the values of one metric in one line.
const maxEMFValues = 100

// NewEMF returns an EMF sink writing to w under the CloudWatch namespace.
func NewEMF(w io.Writer, namespace string) *EMF {
	return &EMF{
		namespace: namespace,
		labels:    newLabels(),
		now:       time.Now,
		counters:  make(map[emfKey]float64),
		gauges:    make(map[emfKey]float64),
		values:    make(map[emfKey][]float64),
		w:         w,
	}
}

func (e *EMF) add(k emfKey, n float64) {
	e.mu.Lock()
	e.counters[k] += n
	e.mu.Unlock()
}

// set records a gauge. CloudWatch rejects NaN and infinities (and JSON cannot carry
// them), so those are dropped.
func (e *EMF) set(k emfKey, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	e.mu.Lock()
	e.gauges[k] = v
	e.mu.Unlock()
}

// Request counts one GitLab API request and records its latency.
func (e *EMF) Request(endpoint string, status int, d time.Duration) {
	ep := e.labels.endpoint(endpoint)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counters[emfKey{name: nameRequests, k1: "endpoint", v1: ep, k2: "status_code", v2: statusLabel(status)}]++
	k := emfKey{name: nameRequestSeconds, k1: "endpoint", v1: ep}
	e.values[k] = append(e.values[k], d.Seconds())
}

// Retry counts one retried request.
func (e *EMF) Retry(reason string) {
	e.add(emfKey{name: nameRetries, k1: "reason", v1: allowed(retryReasons, reason)}, 1)
}

// RateLimitRemaining records GitLab's RateLimit-Remaining header.
func (e *EMF) RateLimitRemaining(remaining int) {
	e.set(emfKey{name: nameRateLimit}, float64(remaining))
}

// EffectiveRPM records the shared rate budget's pace.
func (e *EMF) EffectiveRPM(rpm float64) {
	e.set(emfKey{name: nameEffectiveRPM}, rpm)
}

// GroupDone counts one scanned group.
func (e *EMF) GroupDone(status string) {
	e.add(emfKey{name: nameGroups, k1: "status", v1: allowed(scanStatuses, status)}, 1)
	e.set(emfKey{name: nameLastProgress}, unixSeconds(e.now()))
}

// ProjectDone counts one profiled project.
func (e *EMF) ProjectDone(status, readiness string) {
	e.add(emfKey{name: nameProjects, k1: "status", v1: allowed(scanStatuses, status),
		k2: "readiness", v2: readinessLabel(readiness)}, 1)
	e.set(emfKey{name: nameLastProgress}, unixSeconds(e.now()))
}

// ScanError counts one failed profiling step.
func (e *EMF) ScanError(kind, step string) {
	e.add(emfKey{name: nameErrors, k1: "type", v1: allowed(errorKinds, kind),
		k2: "step", v2: e.labels.step(step)}, 1)
}

// QueueDepth records the run's pending work.
func (e *EMF) QueueDepth(n int64) { e.set(emfKey{name: nameQueueDepth}, float64(n)) }

// RunStarted marks a run in progress; its ID is written as a property (not a
// dimension) of every following line, to search the logs by run.
func (e *EMF) RunStarted(runID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runID = runID
	e.gauges[emfKey{name: nameRunInProgress}] = 1
	e.gauges[emfKey{name: nameLastProgress}] = unixSeconds(e.now())
}

// RunFinished marks the run over and records its duration, and its end time when it
// succeeded.
func (e *EMF) RunFinished(success bool, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gauges[emfKey{name: nameRunInProgress}] = 0
	e.gauges[emfKey{name: nameRunSeconds}] = d.Seconds()
	if success {
		e.gauges[emfKey{name: nameLastSuccess}] = unixSeconds(e.now())
	}
}

// SetRunID sets the run_id property without marking a run started: a Lambda worker
// handles messages of a run that another function started.
func (e *EMF) SetRunID(runID string) {
	e.mu.Lock()
	e.runID = runID
	e.mu.Unlock()
}

// SetBudgetTokens records the API calls the shared budget can grant now.
func (e *EMF) SetBudgetTokens(tokens float64) { e.set(emfKey{name: nameBudgetTokens}, tokens) }

// RunIdle records how long the running run has gone without finishing a message (the
// Lambda reconciler measures it from the store; the NoProgress alarm watches it).
func (e *EMF) RunIdle(d time.Duration) { e.set(emfKey{name: nameRunIdle}, d.Seconds()) }

// SetDeadLetters records the dead-letter queue's length.
func (e *EMF) SetDeadLetters(n int) { e.set(emfKey{name: nameDeadLetters}, float64(n)) }

// emfMetadata is the "_aws" member of an EMF line.
type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"` // milliseconds since the epoch
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// Flush writes what was recorded since the last Flush, one line per metric and
// dimension set, in a stable order, and starts over. Lambda handlers call it before
// returning. What a failed write did not write is lost.
func (e *EMF) Flush() error {
	e.mu.Lock()
	counters, gauges, values, runID := e.counters, e.gauges, e.values, e.runID
	e.counters = make(map[emfKey]float64, len(counters))
	e.gauges = make(map[emfKey]float64, len(gauges))
	e.values = make(map[emfKey][]float64, len(values))
	e.mu.Unlock()

	ts := e.now().UnixMilli()
	var buf bytes.Buffer
	line := func(k emfKey, unit string, v any) error {
		fields := map[string]any{k.name: v}
		if k.k1 != "" {
			fields[k.k1] = k.v1
		}
		if k.k2 != "" {
			fields[k.k2] = k.v2
		}
		if runID != "" {
			fields["run_id"] = runID
		}
		fields["_aws"] = emfMetadata{Timestamp: ts, CloudWatchMetrics: []emfDirective{{
			Namespace:  e.namespace,
			Dimensions: [][]string{k.dims()},
			Metrics:    []emfMetric{{Name: k.name, Unit: unit}},
		}}}
		b, err := json.Marshal(fields)
		if err != nil {
			return fmt.Errorf("encode EMF line for %s: %w", k.name, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
		return nil
	}
	for _, k := range sortedKeys(counters) {
		if err := line(k, "Count", counters[k]); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(values) {
		for chunk := range slices.Chunk(values[k], maxEMFValues) {
			if err := line(k, "Seconds", chunk); err != nil {
				return err
			}
		}
	}
	for _, k := range sortedKeys(gauges) {
		unit := "None"
		if k.name == nameRunSeconds {
			unit = "Seconds"
		}
		if err := line(k, unit, gauges[k]); err != nil {
			return err
		}
	}
	if buf.Len() == 0 {
		return nil
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if _, err := e.w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write EMF lines: %w", err)
	}
	return nil
}

func sortedKeys[V any](m map[emfKey]V) []emfKey {
	return slices.SortedFunc(maps.Keys(m), func(a, b emfKey) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.v1, b.v1), cmp.Compare(a.v2, b.v2))
	})
}
