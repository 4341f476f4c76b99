//go:build unix

package e2e

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// flatGroup is the flat group of TestLambdaRecursionFlat and TestLambdaRecursionBites:
// by default 1,000 projects behind 30 ms of GitLab latency, so that a worker
// invocation (3 s) covers few projects and the group takes more than 16 of them;
// E2E_FLAT_PROJECTS=5000 runs that many at the simulator's full speed (figures in
// docs/BENCHMARKS.md: about 2 minutes, too long for make test on 2 cores).
func flatGroup(t *testing.T) Options {
	o := Options{Seed: 11, Groups: 1, Projects: 1000, Faults: gitlabsim.Faults{Latency: 30 * time.Millisecond}}
	if v := os.Getenv("E2E_FLAT_PROJECTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("E2E_FLAT_PROJECTS=%q: want a positive number", v)
		}
		o.Projects, o.Faults = n, gitlabsim.Faults{}
	}
	o.ScanTimeout = 8 * time.Minute
	return chainOptions(o)
}

// runEqualsTruth runs h once and fails unless the run succeeded with exports equal to
// the simulator's truth.
func runEqualsTruth(t *testing.T, h *Harness, timeout time.Duration) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rep, err := h.Run(ctx)
	t.Log("\n" + rep.Summary())
	if err != nil {
		t.Fatalf("%v\n%s", err, lastLines(h.Output(), 40))
	}
	if len(rep.Diffs) > 0 {
		t.Fatalf("the exports differ from the truth:\n%s", strings.Join(rep.Diffs, "\n"))
	}
	truth := h.Simulator().Truth()
	if rep.Projects != len(truth.Projects) || rep.Groups != len(truth.Groups) {
		t.Fatalf("exports hold %d groups and %d projects, want %d and %d", rep.Groups, rep.Projects, len(truth.Groups), len(truth.Projects))
	}
	if rep.DeadLettered != 0 {
		t.Errorf("%d messages in the scan dead-letter queue, want none", rep.DeadLettered)
	}
	return rep
}

// chainOptions make a worker invocation short (3 s, of which DEADLINE_MARGIN's 2 s
// are kept back), so a group's scan is a long chain of continuations.
func chainOptions(o Options) Options {
	o.Recursion, o.Workers, o.BatchSize = true, 2, 4
	o.WorkerTimeout, o.Visibility = 3*time.Second, 10*time.Second
	return o
}

// TestLambdaRecursionFlat: with Lambda's recursive loop detection modelled, a flat
// group far longer than 16 invocations completes, because the worker sets
// RecursiveLoop: Allow; the model saw the chain pass the limit.
func TestLambdaRecursionFlat(t *testing.T) {
	h := start(t, flatGroup(t))
	rep := runEqualsTruth(t, h, 10*time.Minute)
	if rep.TracedSends == 0 {
		t.Errorf("no SendMessage carried a trace header: the worker does not propagate _X_AMZN_TRACE_ID")
	}
	if rep.Refused != 0 {
		t.Errorf("%d records refused with RecursiveLoop: Allow", rep.Refused)
	}
	if rep.MaxChain <= RecursionLimit {
		t.Errorf("the longest chain made %d worker invocations, want more than %d: the run does not exercise the model", rep.MaxChain, RecursionLimit)
	}
}

// TestLambdaRecursionTree: a tree six levels deep (subgroups five below the top)
// completes under the model (the scheduler queues every group, so its chains are
// short: what counts is that nothing is refused).
func TestLambdaRecursionTree(t *testing.T) {
	h := start(t, chainOptions(Options{Seed: 4, Groups: 40, Projects: 300}))
	depth := 0
	for _, g := range h.Simulator().Truth().Groups {
		depth = max(depth, strings.Count(g.FullPath, "/")+1)
	}
	if depth != 6 {
		t.Fatalf("the simulated tree is %d levels deep, want 6: pick another seed", depth)
	}
	rep := runEqualsTruth(t, h, 10*time.Minute)
	if rep.Refused != 0 || rep.MaxChain == 0 || rep.TracedSends == 0 {
		t.Errorf("refused %d records, longest chain %d, %d traced sends; want none refused, chains counted", rep.Refused, rep.MaxChain, rep.TracedSends)
	}
}

// TestLambdaRecursionBites: the same kind of run, with the worker's RecursiveLoop
// removed from the template, is cut at the 17th invocation of a chain: the record
// goes to the dead-letter queue and the run cannot complete.
func TestLambdaRecursionBites(t *testing.T) {
	o := flatGroup(t)
	o.Template, o.ScanTimeout = withoutRecursiveLoop(t), 3*time.Minute
	h := start(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := h.Run(ctx)
	t.Log("\n" + rep.Summary())
	if !errors.Is(err, ErrLoopStopped) {
		t.Fatalf("run ended %v, want %v", err, ErrLoopStopped)
	}
	if rep.Refused == 0 || rep.MaxChain != RecursionLimit {
		t.Errorf("refused %d records, longest chain %d; want refusals at a chain of %d", rep.Refused, rep.MaxChain, RecursionLimit)
	}
	if dl := h.deadLettered(ctx); dl != int64(rep.Refused) {
		t.Errorf("%d messages in the scan DLQ, want the %d refused", dl, rep.Refused)
	}
}

// TestLambdaMessageExpiry: a subgroup message is held past the scan queue's
// (accelerated) retention and deleted unseen, as SQS does; the reconciler, on its
// schedule, re-sends it and the run completes equal to the truth. 30 s: every other
// message of the run is taken well before it is that old, on a loaded machine too.
func TestLambdaMessageExpiry(t *testing.T) {
	h := start(t, Options{Seed: 3, Groups: 12, Projects: 150, Retention: 30 * time.Second, ExpireOne: true,
		ReconcileEvery: 2 * time.Second})
	rep := runEqualsTruth(t, h, 6*time.Minute)
	if rep.Held != 1 || rep.Expired == 0 || rep.Resent == 0 {
		t.Errorf("held %d, expired %d, re-sent %d; want one message held, expired and re-sent", rep.Held, rep.Expired, rep.Resent)
	}
}

// TestLambdaSoftDeadline: pages slowed by GitLab latency take longer than a worker
// invocation; each stops before the function's timeout and continues in a message
// for the same page: no invocation is killed, nothing reaches the DLQ.
func TestLambdaSoftDeadline(t *testing.T) {
	// A page of 100 projects takes about 13 s at 250 ms a request (about 4 requests a
	// project through GraphQL, 8 at a time); an invocation has 8 s, of which the page
	// may use up to 6 (half of DEADLINE_MARGIN, 2 s, is left to queue the
	// continuation: ample on a loaded machine too).
	h := start(t, Options{Seed: 3, Groups: 2, Projects: 120, Workers: 2, BatchSize: 1,
		WorkerTimeout: 8 * time.Second, DeadlineMargin: 4 * time.Second, Visibility: 20 * time.Second,
		Faults: gitlabsim.Faults{Latency: 250 * time.Millisecond}})
	rep := runEqualsTruth(t, h, 8*time.Minute)
	if rep.TimedOut != 0 || rep.Killed != 0 {
		t.Errorf("%d invocations timed out, %d killed; want none", rep.TimedOut, rep.Killed)
	}
	if rep.Resumed == 0 {
		t.Errorf("no page continued part-way: the latency did not slow a page past the soft deadline")
	}
}
