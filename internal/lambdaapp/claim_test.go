package lambdaapp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// TestConcurrentDuplicatesScanOnce: while one delivery of a key is being handled, a
// duplicate message of the key is dropped without handling, and a second delivery of
// the same message is put back for later; once the first is done the key is free.
func TestConcurrentDuplicatesScanOnce(t *testing.T) {
	f := newFixture(t, gitlabsim.Options{Seed: 5, Groups: 1, Projects: 1})
	a := f.app(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body := string(work.Message{Kind: work.KindGroup, RunID: "claim-run", GroupID: 42}.Encode())
	rec := func(id string) events.SQSEvent {
		return events.SQSEvent{Records: []events.SQSMessage{{MessageId: id, Body: body,
			Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}}
	}

	var scans atomic.Int32
	started, finish := make(chan struct{}, 1), make(chan struct{})
	blocking := func(context.Context, work.Message, bool) error {
		scans.Add(1)
		started <- struct{}{}
		<-finish
		return nil
	}
	counting := func(context.Context, work.Message, bool) error { scans.Add(1); return nil }

	first := make(chan events.SQSEventResponse)
	go func() { first <- a.batch(ctx, a.log, rec("m-1"), "", work.KindGroup, blocking) }()
	<-started

	dup := a.batch(ctx, a.log, rec("m-2"), "", work.KindGroup, counting)
	if len(dup.BatchItemFailures) != 0 {
		t.Errorf("a duplicate message of a key in progress: failures %v; want it done (deleted)", dup.BatchItemFailures)
	}
	again := a.batch(ctx, a.log, rec("m-1"), "", work.KindGroup, counting)
	if len(again.BatchItemFailures) != 1 {
		t.Errorf("the same message delivered twice at once: failures %v; want it put back", again.BatchItemFailures)
	}
	if n := scans.Load(); n != 1 {
		t.Fatalf("%d scans while one delivery holds the key; want 1", n)
	}
	close(finish)
	if resp := <-first; len(resp.BatchItemFailures) != 0 {
		t.Errorf("first delivery: failures %v", resp.BatchItemFailures)
	}
	if resp := a.batch(ctx, a.log, rec("m-3"), "", work.KindGroup, counting); len(resp.BatchItemFailures) != 0 || scans.Load() != 2 {
		t.Errorf("after the first delivery released the key: %v, %d scans; want it handled", resp.BatchItemFailures, scans.Load())
	}
}
