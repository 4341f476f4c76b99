//go:build unix

package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RecursionLimit is the number of invocations of one function that a chain of
// requests may make before Lambda's recursive loop detection stops the next one
// ("drops requests after exceeding 16 invocations", AWS Compute Blog, July 2023).
const RecursionLimit = 16

// traceHeader is an X-Ray trace header (X-Amzn-Trace-Id, SQS's AWSTraceHeader system
// attribute): Root=…;Parent=…;Sampled=…;Lineage=…. Lambda counts a chain's
// invocations in Lineage, one hash:count entry per function, '|'-separated; the
// harness writes and reads it, the functions only pass it on (the Go SDK v2 copies
// _X_AMZN_TRACE_ID into every request's X-Amzn-Trace-Id header).
type traceHeader struct {
	fields  []string // the fields other than Lineage, in order
	lineage map[string]int
}

func parseTrace(s string) traceHeader {
	t := traceHeader{lineage: map[string]int{}}
	for f := range strings.SplitSeq(s, ";") {
		f = strings.TrimSpace(f)
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		if k != "Lineage" {
			t.fields = append(t.fields, f)
			continue
		}
		for e := range strings.SplitSeq(v, "|") {
			h, n, ok := strings.Cut(e, ":")
			if c, err := strconv.Atoi(n); ok && err == nil {
				t.lineage[h] = c
			}
		}
	}
	return t
}

func (t traceHeader) root() string {
	for _, f := range t.fields {
		if strings.HasPrefix(f, "Root=") {
			return f
		}
	}
	return ""
}

func (t traceHeader) String() string {
	fields := slices.Clone(t.fields)
	if len(t.lineage) > 0 {
		var l []string
		for _, h := range slices.Sorted(maps.Keys(t.lineage)) {
			l = append(l, h+":"+strconv.Itoa(t.lineage[h]))
		}
		fields = append(fields, "Lineage="+strings.Join(l, "|"))
	}
	return strings.Join(fields, ";")
}

// functionHash is a function's key in Lineage.
func functionHash(function string) string {
	sum := sha256.Sum256([]byte(function))
	return hex.EncodeToString(sum[:4])
}

// newTrace starts a chain, as Lambda does for an event that carries no trace header.
func newTrace() traceHeader {
	var b [16]byte
	_, _ = rand.Read(b[:])
	parent := hex.EncodeToString(b[:8])
	root := fmt.Sprintf("Root=1-%s-%s", hex.EncodeToString(b[:4]), hex.EncodeToString(b[4:16]))
	return traceHeader{fields: []string{root, "Parent=" + parent, "Sampled=0"}, lineage: map[string]int{}}
}

// admission is what the recursion model decides for a batch of records.
type admission struct {
	deliver, refuse []int  // record indexes
	header          string // the invocation's trace header
	chain           int    // the invocation's count in its chain
}

// admit plays Lambda's recursive loop detection for an invocation of function with
// records carrying traces (AWSTraceHeader, "" for none). A record whose chain already
// made RecursionLimit invocations of the function is refused unless allow; the
// invocation continues the longest chain among the rest (a batch has one trace
// header; taking the longest counts no chain short), one invocation further.
func admit(function string, traces []string, allow bool) admission {
	h := functionHash(function)
	var a admission
	best := -1
	var bestTrace traceHeader
	for i, s := range traces {
		t := parseTrace(s)
		if t.lineage[h] >= RecursionLimit && !allow {
			a.refuse = append(a.refuse, i)
			continue
		}
		a.deliver = append(a.deliver, i)
		if t.root() != "" && t.lineage[h] > best {
			best, bestTrace = t.lineage[h], t
		}
	}
	if best < 0 {
		bestTrace, best = newTrace(), 0
	}
	bestTrace.lineage[h] = best + 1
	a.header, a.chain = bestTrace.String(), best+1
	return a
}

// RecursiveLoop reads the worker function's RecursiveLoop from a SAM template:
// "Allow", or Lambda's default "Terminate" when the template does not set it.
func RecursiveLoop(templatePath string) (string, error) {
	b, err := os.ReadFile(templatePath)
	if err != nil {
		return "", err
	}
	var tpl struct {
		Resources map[string]struct {
			Properties map[string]any `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &tpl); err != nil {
		return "", fmt.Errorf("%s: %w", templatePath, err)
	}
	w, ok := tpl.Resources["WorkerFunction"]
	if !ok {
		return "", fmt.Errorf("%s: no WorkerFunction", templatePath)
	}
	if v, ok := w.Properties["RecursiveLoop"].(string); ok && v != "" {
		return v, nil
	}
	return "Terminate", nil
}
