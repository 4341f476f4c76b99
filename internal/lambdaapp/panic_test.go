package lambdaapp

import (
	"context"
	"strings"
	"testing"
	"time"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// A panic while handling one record fails that record, is logged, and leaves the rest
// of the batch and the process alone.
func TestPanicIsTheRecordsFailure(t *testing.T) {
	f := newFixture(t, gitlabsim.Options{Seed: 3, Groups: 1, Projects: 1})
	ctx := context.Background()
	a := f.app(t)
	if err := sendRaw(ctx, f, `{"kind":"group","run_id":"r","group_id":1}`, `{"kind":"group","run_id":"r","group_id":2}`); err != nil {
		t.Fatal(err)
	}
	msgs, err := receive(ctx, f.scan, 2, 5*time.Second)
	for err == nil && len(msgs) < 2 {
		var more []sqstypes.Message
		more, err = receive(ctx, f.scan, 2, 5*time.Second)
		msgs = append(msgs, more...)
	}
	if err != nil {
		t.Fatal(err)
	}
	ev := f.event(msgs)
	handled := map[int64]bool{}
	resp := a.batch(ctx, a.log, ev, f.settings.ScanQueueURL, work.KindGroup, func(_ context.Context, m work.Message, _ bool) error {
		if m.GroupID == 1 {
			var nilMap map[string]int
			nilMap["boom"]++ // a nil map write: a runtime panic
		}
		handled[m.GroupID] = true
		return nil
	})
	var panicked string
	for _, r := range ev.Records {
		if strings.Contains(r.Body, `"group_id":1}`) {
			panicked = r.MessageId
		}
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != panicked {
		t.Errorf("batch item failures = %+v, want only the panicking record %s", resp.BatchItemFailures, panicked)
	}
	if !handled[2] {
		t.Error("the other record of the batch was not handled")
	}
	if !strings.Contains(f.logs.String(), "panic handling message") || !strings.Contains(f.logs.String(), "nil map") {
		t.Errorf("no log line records the panic:\n%s", f.logs.String())
	}
}
