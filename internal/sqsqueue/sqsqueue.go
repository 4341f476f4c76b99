// Package sqsqueue carries work messages on an SQS standard queue: the scheduler and
// workers send with it (discovery.Queue); harnesses and the local BACKEND=aws mode
// also receive, delete and measure the queue with it. In Lambda, receiving is the SQS
// event source's job.
package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/gl2gh/discovery-agent/internal/backoff"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/work"
)

var _ discovery.Queue = (*Queue)(nil)

const (
	batchSize = 10 // SendMessageBatch's limit
	// sendAttempts bounds the sends of a batch entry SQS failed on its side.
	sendAttempts    = 5
	backoffStart    = 100 * time.Millisecond
	backoffMax      = 2 * time.Second
	maxWait         = 20 * time.Second // ReceiveMessage's longest poll
	maxReceiveBatch = 10
)

// ErrSendFailed marks messages SQS refused or kept failing; the error names them.
var ErrSendFailed = errors.New("SQS did not accept every message")

// Queue is one SQS queue. It is safe for concurrent use.
type Queue struct {
	client *sqs.Client
	url    string
}

// New returns the queue at queueURL.
func New(client *sqs.Client, queueURL string) *Queue {
	return &Queue{client: client, url: queueURL}
}

// Send queues msgs in batches of ten. Entries SQS fails on its side are sent again,
// only those, with backoff, up to five times; entries it rejects as the sender's fault
// are not. The error names every message that did not go out (by key and run). A
// message that went out is not taken back, so a failed Send may have sent some:
// receivers deduplicate by key.
func (q *Queue) Send(ctx context.Context, msgs ...work.Message) error {
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("send %s of run %s: %w", m.Key(), m.RunID, err)
		}
	}
	var failed []string
	for start := 0; start < len(msgs); start += batchSize {
		batch := msgs[start:min(start+batchSize, len(msgs))]
		f, err := q.sendBatch(ctx, batch)
		if err != nil {
			return err
		}
		failed = append(failed, f...)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %d of %d: %s", ErrSendFailed, len(failed), len(msgs), strings.Join(failed, "; "))
	}
	return nil
}

// sendBatch sends up to ten messages and returns a description of each that failed
// for good.
func (q *Queue) sendBatch(ctx context.Context, batch []work.Message) ([]string, error) {
	byID := make(map[string]work.Message, len(batch))
	entries := make([]types.SendMessageBatchRequestEntry, len(batch))
	for i, m := range batch {
		id := "m" + strconv.Itoa(i)
		byID[id] = m
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(string(m.Encode()))}
	}
	var failed []string
	for attempt := 1; len(entries) > 0; attempt++ {
		out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
		if err != nil {
			// The SDK has retried what it could; nothing of this call is known to be sent.
			return nil, fmt.Errorf("send %s: %w", describe(byID, entries), err)
		}
		var retry []types.SendMessageBatchRequestEntry
		for _, f := range out.Failed {
			id := aws.ToString(f.Id)
			entry, ok := entryByID(entries, id)
			if !ok {
				return nil, fmt.Errorf("send %s: SQS reported a failure for unknown entry %q", describe(byID, entries), id)
			}
			why := fmt.Sprintf("%s (run %s): %s: %s", byID[id].Key(), byID[id].RunID, aws.ToString(f.Code), aws.ToString(f.Message))
			if f.SenderFault || attempt == sendAttempts {
				failed = append(failed, why)
				continue
			}
			retry = append(retry, entry)
		}
		entries = retry
		if len(entries) > 0 {
			if err := backoff.Sleep(ctx, pause(attempt)); err != nil {
				return nil, fmt.Errorf("send %s: %w", describe(byID, entries), err)
			}
		}
	}
	return failed, nil
}

func entryByID(entries []types.SendMessageBatchRequestEntry, id string) (types.SendMessageBatchRequestEntry, bool) {
	for _, e := range entries {
		if aws.ToString(e.Id) == id {
			return e, true
		}
	}
	return types.SendMessageBatchRequestEntry{}, false
}

func describe(byID map[string]work.Message, entries []types.SendMessageBatchRequestEntry) string {
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = byID[aws.ToString(e.Id)].Key()
	}
	run := ""
	if len(entries) > 0 {
		run = byID[aws.ToString(entries[0].Id)].RunID
	}
	return fmt.Sprintf("%d messages of run %s [%s]", len(entries), run, strings.Join(keys, " "))
}

// backoff is the pause before resending after attempt n (from 1): exponential with
// jitter, so that many senders throttled together do not retry together.
func pause(n int) time.Duration { return backoff.Exp(backoffStart, backoffMax, n-1) }

// Receive long-polls for up to n messages (at most 10) for up to wait (at most 20 s). Messages carry their system attributes, ApproximateReceiveCount among them.
// Decode a body with work.Decode; delete a message once handled.
func (q *Queue) Receive(ctx context.Context, n int, wait time.Duration) ([]types.Message, error) {
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.url),
		MaxNumberOfMessages:         int32(min(max(n, 1), maxReceiveBatch)),
		WaitTimeSeconds:             int32(min(max(wait, 0), maxWait) / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", q.url, err)
	}
	return out.Messages, nil
}

// Delete removes a received message.
func (q *Queue) Delete(ctx context.Context, receiptHandle string) error {
	if _, err := q.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{
		QueueUrl:      aws.String(q.url),
		ReceiptHandle: aws.String(receiptHandle),
	}); err != nil {
		return fmt.Errorf("delete message from %s: %w", q.url, err)
	}
	return nil
}

// ChangeVisibility makes a received message visible again after d (0: at once).
func (q *Queue) ChangeVisibility(ctx context.Context, receiptHandle string, d time.Duration) error {
	if _, err := q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(receiptHandle), VisibilityTimeout: int32(d / time.Second),
	}); err != nil {
		return fmt.Errorf("change visibility in %s: %w", q.url, err)
	}
	return nil
}

// Depth returns the messages waiting plus those in flight (received, not yet deleted
// or back). SQS reports both approximately.
func (q *Queue) Depth(ctx context.Context) (int64, error) {
	names := []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	}
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.url), AttributeNames: names})
	if err != nil {
		return 0, fmt.Errorf("depth of %s: %w", q.url, err)
	}
	var depth int64
	for _, name := range names {
		v, ok := out.Attributes[string(name)]
		if !ok {
			return 0, fmt.Errorf("depth of %s: no %s in the answer", q.url, name)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("depth of %s: %s: %w", q.url, name, err)
		}
		depth += n
	}
	return depth, nil
}

// Status is what the reconciler reads of a queue.
type Status struct {
	// Messages counts every message the queue holds: waiting, in flight and delayed
	// (SQS reports each approximately, about a minute behind).
	Messages int64
	// Retention is the queue's MessageRetentionPeriod: SQS deletes a message this long
	// after it was first sent, received or not.
	Retention time.Duration
}

// Status reads the queue's message counts and retention period.
func (q *Queue) Status(ctx context.Context) (Status, error) {
	counts := []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}
	names := append(counts, types.QueueAttributeNameMessageRetentionPeriod)
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.url), AttributeNames: names})
	if err != nil {
		return Status{}, fmt.Errorf("status of %s: %w", q.url, err)
	}
	var st Status
	for _, name := range names {
		v, ok := out.Attributes[string(name)]
		if !ok {
			return Status{}, fmt.Errorf("status of %s: no %s in the answer", q.url, name)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Status{}, fmt.Errorf("status of %s: %s: %w", q.url, name, err)
		}
		if name == types.QueueAttributeNameMessageRetentionPeriod {
			st.Retention = time.Duration(n) * time.Second
		} else {
			st.Messages += n
		}
	}
	return st, nil
}
