//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/gl2gh/discovery-agent/internal/lambdaapp"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// What aws-lambda-rie does not model and the harness does, as options (see Options):
// Lambda's recursive loop detection (Recursion), SQS's message retention (Retention,
// ExpireOne) with the scheduled reconciler (ReconcileEvery), and the function timeout
// (the emulator's own: an invocation past it answers "Task timed out", the harness
// counts it in Report.TimedOut and replaces the environment; its messages return
// after the visibility timeout).

// ErrLoopStopped is a run the recursion model cut: records were refused and nothing
// is left on the scan queue to finish the run.
var ErrLoopStopped = errors.New("recursive loop detection stopped the run's chain: refused records went to the dead-letter queue and the run cannot complete")

// sentAt is when SQS first received m (SentTimestamp, kept across receives).
func sentAt(m sqstypes.Message) (time.Time, bool) {
	ms, err := strconv.ParseInt(m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// retain plays SQS's retention on received scan messages: one older than
// Options.Retention is deleted unseen. With ExpireOne, the first subgroup message is
// instead hidden past the retention, so that it expires mid-run.
func (h *Harness) retain(ctx context.Context, msgs []sqstypes.Message, mu *sync.Mutex, rep *Report) []sqstypes.Message {
	if h.opts.Retention <= 0 {
		return msgs
	}
	kept := msgs[:0]
	for _, m := range msgs {
		receipt := aws.ToString(m.ReceiptHandle)
		if at, ok := sentAt(m); ok && time.Since(at) > h.opts.Retention {
			h.log.Info("message past the retention period: deleted unseen", "message_id", aws.ToString(m.MessageId), "age", time.Since(at).Round(time.Millisecond))
			if err := h.scan.Delete(ctx, receipt); err == nil {
				mu.Lock()
				rep.Expired++
				mu.Unlock()
			}
			continue
		}
		if h.opts.ExpireOne && isSubgroup(m) && h.held.CompareAndSwap(false, true) {
			h.log.Info("holding a subgroup message past the retention period", "message_id", aws.ToString(m.MessageId), "body", aws.ToString(m.Body))
			if err := h.scan.ChangeVisibility(ctx, receipt, h.opts.Retention+2*time.Second); err == nil {
				mu.Lock()
				rep.Held++
				mu.Unlock()
				continue
			}
		}
		kept = append(kept, m)
	}
	return kept
}

func isSubgroup(m sqstypes.Message) bool {
	var w work.Message
	return json.Unmarshal([]byte(aws.ToString(m.Body)), &w) == nil && w.Kind == work.KindGroup && w.ParentID != 0 && w.Page <= 1 && w.Resume == 0
}

func isResume(m sqstypes.Message) bool {
	var w work.Message
	return json.Unmarshal([]byte(aws.ToString(m.Body)), &w) == nil && w.Resume > 0
}

// admitScan plays Lambda's recursive loop detection for a worker invocation: it
// returns the records to deliver and the invocation's trace header, and moves a
// refused record to the scan queue's dead-letter queue, as Lambda does when the
// function's RecursiveLoop is Terminate. Without Options.Recursion every record is
// delivered, with a trace header all the same (Lambda propagates one either way).
func (h *Harness) admitScan(ctx context.Context, msgs []sqstypes.Message, mu *sync.Mutex, rep *Report) ([]sqstypes.Message, string, error) {
	traces := make([]string, len(msgs))
	for i, m := range msgs {
		traces[i] = h.model.trace(aws.ToString(m.MessageId))
	}
	a := admit("worker", traces, h.allowLoop || !h.opts.Recursion)
	for _, i := range a.refuse {
		m := msgs[i]
		h.log.Warn("recursive loop detected: record refused", "message_id", aws.ToString(m.MessageId), "trace", traces[i])
		if _, err := h.moto.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(h.scanDLQ), MessageBody: m.Body}); err != nil {
			return nil, "", err
		}
		if err := h.scan.Delete(ctx, aws.ToString(m.ReceiptHandle)); err != nil {
			return nil, "", err
		}
	}
	deliver := make([]sqstypes.Message, 0, len(a.deliver))
	for _, i := range a.deliver {
		deliver = append(deliver, msgs[i])
	}
	mu.Lock()
	rep.Refused += len(a.refuse)
	if len(deliver) > 0 {
		rep.MaxChain = max(rep.MaxChain, a.chain)
	}
	for _, m := range deliver {
		if isResume(m) {
			rep.Resumed++
		}
	}
	mu.Unlock()
	return deliver, a.header, nil
}

// reconcile invokes the reconciler every ReconcileEvery until ctx ends, as its
// schedule does.
func (h *Harness) reconcile(ctx context.Context, mu *sync.Mutex, rep *Report) {
	if h.reconciler == nil {
		return
	}
	for ctx.Err() == nil {
		sleep(ctx, h.opts.ReconcileEvery)
		if ctx.Err() != nil {
			return
		}
		var res lambdaapp.ReconcileResult
		err := h.reconciler.Invoke(ctx, map[string]string{"trigger": "reconcile"}, &res)
		mu.Lock()
		rep.Invocations["reconciler"]++
		rep.Resent += res.Resent
		mu.Unlock()
		if err != nil && ctx.Err() == nil {
			h.log.Warn("reconciler failed", "err", err)
		}
		if res.Resent > 0 {
			h.log.Info("reconciler re-sent lost messages", "message", res.Message)
		}
	}
}

// timedOut tells an invocation the emulator ended at the function's timeout.
func timedOut(err error) bool { return err != nil && strings.Contains(err.Error(), "Task timed out") }

// deadLettered counts the scan dead-letter queue's messages.
func (h *Harness) deadLettered(ctx context.Context) int64 {
	out, err := h.moto.SQS().GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(h.scanDLQ),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		return -1
	}
	var n int64
	for _, v := range out.Attributes {
		c, _ := strconv.ParseInt(v, 10, 64)
		n += c
	}
	return n
}
