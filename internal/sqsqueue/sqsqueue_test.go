package sqsqueue_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/gl2gh/discovery-agent/internal/mototest"
	"github.com/gl2gh/discovery-agent/internal/sqsqueue"
	"github.com/gl2gh/discovery-agent/internal/work"
)

func TestMain(m *testing.M) { mototest.Main(m) }

func newQueue(t *testing.T, opts mototest.QueueOptions, optFns ...func(*sqs.Options)) (*sqsqueue.Queue, mototest.Queues, *sqs.Client) {
	t.Helper()
	client := mototest.Shared(t).SQS(optFns...)
	q, err := mototest.CreateQueue(context.Background(), client, mototest.Name("work"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return sqsqueue.New(client, q.URL), q, client
}

func groupMessages(n int) []work.Message {
	msgs := make([]work.Message, n)
	for i := range msgs {
		msgs[i] = work.Message{Kind: work.KindGroup, RunID: "run-1", GroupID: int64(i + 1), GroupPath: "acme/g", Page: 1}
	}
	return msgs
}

// receiveAll receives until want messages came or the queue stays empty.
func receiveAll(t *testing.T, q *sqsqueue.Queue, want int) []types.Message {
	t.Helper()
	var got []types.Message
	for empty := 0; len(got) < want && empty < 3; {
		msgs, err := q.Receive(context.Background(), 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			empty++
		}
		got = append(got, msgs...)
	}
	return got
}

func keys(t *testing.T, msgs []types.Message) []string {
	t.Helper()
	var ks []string
	for _, m := range msgs {
		wm, err := work.Decode([]byte(aws.ToString(m.Body)))
		if err != nil {
			t.Fatalf("body %q: %v", aws.ToString(m.Body), err)
		}
		ks = append(ks, wm.RunID+"/"+wm.Key())
	}
	slices.Sort(ks)
	return ks
}

func wantKeys(msgs []work.Message) []string {
	var ks []string
	for _, m := range msgs {
		ks = append(ks, m.RunID+"/"+m.Key())
	}
	slices.Sort(ks)
	return ks
}

func depth(t *testing.T, q *sqsqueue.Queue) int64 {
	t.Helper()
	n, err := q.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRoundTrip(t *testing.T) {
	q, _, _ := newQueue(t, mototest.QueueOptions{})
	ctx := context.Background()
	sent := groupMessages(25) // three batches: 10, 10, 5
	if err := q.Send(ctx, sent...); err != nil {
		t.Fatal(err)
	}
	if n := depth(t, q); n != 25 {
		t.Fatalf("Depth after sending 25 = %d", n)
	}
	got := receiveAll(t, q, 25)
	if g, w := keys(t, got), wantKeys(sent); !slices.Equal(g, w) {
		t.Fatalf("received %v, want %v", g, w)
	}
	for _, m := range got {
		if c := m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]; c != "1" {
			t.Fatalf("ApproximateReceiveCount = %q, want 1", c)
		}
	}
	if n := depth(t, q); n != 25 {
		t.Fatalf("Depth with 25 in flight = %d, want 25", n)
	}
	for _, m := range got {
		if err := q.Delete(ctx, aws.ToString(m.ReceiptHandle)); err != nil {
			t.Fatal(err)
		}
	}
	if n := depth(t, q); n != 0 {
		t.Fatalf("Depth after deleting all = %d", n)
	}
	if err := q.Send(ctx); err != nil {
		t.Fatalf("sending nothing: %v", err)
	}
}

func TestRedriveToDLQ(t *testing.T) {
	const maxReceives = 2
	q, names, client := newQueue(t, mototest.QueueOptions{MaxReceiveCount: maxReceives})
	ctx := context.Background()
	sent := groupMessages(1)
	if err := q.Send(ctx, sent...); err != nil {
		t.Fatal(err)
	}
	// A handler that keeps failing: each receive ends with the message made visible
	// again, as Lambda does after an error.
	for i := range maxReceives {
		got := receiveAll(t, q, 1)
		if len(got) != 1 {
			t.Fatalf("receive %d: %d messages, want 1", i+1, len(got))
		}
		if _, err := client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(names.URL), ReceiptHandle: got[0].ReceiptHandle, VisibilityTimeout: 0,
		}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := q.Receive(ctx, 10, 0); err != nil || len(got) != 0 {
		t.Fatalf("receive past maxReceiveCount = %d messages, %v; want none", len(got), err)
	}
	dlq := sqsqueue.New(client, names.DLQURL)
	if n := depth(t, dlq); n != 1 {
		t.Fatalf("DLQ depth = %d, want 1", n)
	}
	if n := depth(t, q); n != 0 {
		t.Fatalf("queue depth = %d after redrive, want 0", n)
	}
	if g, w := keys(t, receiveAll(t, dlq, 1)), wantKeys(sent); !slices.Equal(g, w) {
		t.Fatalf("DLQ holds %v, want %v", g, w)
	}
}

// failEntry makes SQS fail (as far as the client can tell) the batch entry id the
// first time a batch carries it: the entry is taken out of the request before it goes
// to the server and reported back as failed, as SendMessageBatch does on a partial
// failure. calls records the entries of every SendMessageBatch call.
func failEntry(id string, senderFault bool, mu *sync.Mutex, calls *[][]string) func(*sqs.Options) {
	failed := false
	return func(o *sqs.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("failEntry",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					input, ok := in.Parameters.(*sqs.SendMessageBatchInput)
					if !ok {
						return next.HandleInitialize(ctx, in)
					}
					mu.Lock()
					var ids []string
					for _, e := range input.Entries {
						ids = append(ids, aws.ToString(e.Id))
					}
					*calls = append(*calls, ids)
					inject := !failed && slices.Contains(ids, id)
					failed = failed || inject
					mu.Unlock()
					if !inject {
						return next.HandleInitialize(ctx, in)
					}
					cp := *input
					cp.Entries = slices.DeleteFunc(slices.Clone(input.Entries), func(e types.SendMessageBatchRequestEntry) bool { return aws.ToString(e.Id) == id })
					in.Parameters = &cp
					out, md, err := next.HandleInitialize(ctx, in)
					if err != nil {
						return out, md, err
					}
					res := out.Result.(*sqs.SendMessageBatchOutput)
					res.Failed = append(res.Failed, types.BatchResultErrorEntry{
						Id: aws.String(id), Code: aws.String("InternalError"), Message: aws.String("injected"), SenderFault: senderFault,
					})
					return out, md, nil
				}), middleware.After)
		})
	}
}

func TestSendRetriesOnlyFailedEntries(t *testing.T) {
	tests := []struct {
		name        string
		senderFault bool
		wantCalls   [][]string // entry ids per SendMessageBatch call
		wantErr     string     // "" for success
	}{
		{
			name:      "server fault is retried alone",
			wantCalls: [][]string{{"m0", "m1", "m2", "m3"}, {"m2"}},
		},
		{
			name:        "sender fault is not retried",
			senderFault: true,
			wantCalls:   [][]string{{"m0", "m1", "m2", "m3"}},
			wantErr:     "group:3:1 (run run-1): InternalError: injected",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				calls [][]string
			)
			q, _, _ := newQueue(t, mototest.QueueOptions{}, failEntry("m2", tt.senderFault, &mu, &calls))
			sent := groupMessages(4)
			err := q.Send(context.Background(), sent...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Send: %v", err)
			case tt.wantErr != "" && (!errors.Is(err, sqsqueue.ErrSendFailed) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Send = %v, want ErrSendFailed naming %q", err, tt.wantErr)
			}
			mu.Lock()
			gotCalls := calls
			mu.Unlock()
			if !slices.EqualFunc(gotCalls, tt.wantCalls, slices.Equal) {
				t.Fatalf("SendMessageBatch calls = %v, want %v", gotCalls, tt.wantCalls)
			}
			want := wantKeys(sent)
			if tt.senderFault {
				want = slices.DeleteFunc(want, func(k string) bool { return k == "run-1/group:3:1" })
			}
			if got := keys(t, receiveAll(t, q, len(want))); !slices.Equal(got, want) {
				t.Fatalf("queue holds %v, want %v (each once)", got, want)
			}
		})
	}
}

func TestSendRejectsMalformed(t *testing.T) {
	q, _, _ := newQueue(t, mototest.QueueOptions{})
	msgs := append(groupMessages(3), work.Message{Kind: work.KindGroup, RunID: "run-1"}) // no group
	if err := q.Send(context.Background(), msgs...); !errors.Is(err, work.ErrMalformed) {
		t.Fatalf("Send = %v, want ErrMalformed", err)
	}
	if n := depth(t, q); n != 0 {
		t.Fatalf("%d messages sent from a call that failed validation", n)
	}
}

func TestMissingQueue(t *testing.T) {
	client := mototest.Shared(t).SQS()
	q := sqsqueue.New(client, mototest.Shared(t).Endpoint()+"/123456789012/no-such-queue")
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"Send", func() error { return q.Send(ctx, groupMessages(1)...) }},
		{"Depth", func() error { _, err := q.Depth(ctx); return err }},
		{"Receive", func() error { _, err := q.Receive(ctx, 1, 0); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The SDK's error stays reachable through the context added to it.
			var api smithy.APIError
			if err := tt.call(); !errors.As(err, &api) || !strings.Contains(api.ErrorCode(), "NonExistentQueue") && api.ErrorCode() != "QueueDoesNotExist" {
				t.Fatalf("err = %v, want the SDK's non-existent queue error wrapped", err)
			}
		})
	}
}
