package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gl2gh/discovery-agent/internal/backoff"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// A pending marker also records the message last sent for its key (msg, sent_at) and
// how often the reconciler re-sent it (resent): the queue cannot say which messages it
// still holds, the markers can say which were sent when.
const (
	attrMsg     = "msg"
	attrSentAt  = "sent_at" // Unix milliseconds
	attrResent  = "resent"
	batchGetMax = 100 // BatchGetItem's limit
)

// Undone is a pending key of a run with no done marker: work whose message should be
// in the scan queue.
type Undone struct {
	Key     string
	Msg     []byte    // the message last sent for it; nil when none was recorded
	SentAt  time.Time // when that message was sent; zero when none was recorded
	AddedAt time.Time // when the key was first counted pending
	Resent  int       // the reconciler's re-sends so far
}

// MarkSent records that m went out at at: on m's pending marker, its body and the time.
// A message without a marker (the export, which is not pending work) is skipped.
func (s *Store) MarkSent(ctx context.Context, at time.Time, msgs ...work.Message) error {
	for _, m := range msgs {
		if err := s.markSent(ctx, m, at, false); err != nil {
			return err
		}
	}
	return nil
}

// MarkResent is MarkSent for the reconciler's re-send: it also counts it.
func (s *Store) MarkResent(ctx context.Context, at time.Time, m work.Message) error {
	return s.markSent(ctx, m, at, true)
}

func (s *Store) markSent(ctx context.Context, m work.Message, at time.Time, resent bool) error {
	if m.Kind == work.KindExport {
		return nil
	}
	update := "SET #msg = :msg, #sent = :sent"
	values := map[string]types.AttributeValue{":msg": str(string(m.Encode())), ":sent": num(at.UnixMilli())}
	names := map[string]string{"#pk": attrPK, "#msg": attrMsg, "#sent": attrSentAt}
	if resent {
		update += " ADD #resent :one"
		values[":one"] = num(1)
		names["#resent"] = attrResent
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(runPK(m.RunID), skPending+m.Key()),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("record %s of run %s as sent: %w", m.Key(), m.RunID, err)
	}
	return nil
}

// Unsent returns the messages of msgs whose pending marker records no send yet, in
// order: a redelivered message that lists its subgroups again, or queues the same
// continuation, does not send them twice. The export message is always unsent.
func (s *Store) Unsent(ctx context.Context, msgs ...work.Message) ([]work.Message, error) {
	sent := map[[2]string]bool{}
	var keys []map[string]types.AttributeValue
	for _, m := range msgs {
		if m.Kind != work.KindExport {
			keys = append(keys, key(runPK(m.RunID), skPending+m.Key()))
		}
	}
	for start := 0; start < len(keys); start += batchGetMax {
		if err := s.readSent(ctx, keys[start:min(start+batchGetMax, len(keys))], sent); err != nil {
			return nil, err
		}
	}
	out := msgs[:0:0]
	for _, m := range msgs {
		if m.Kind == work.KindExport || !sent[[2]string{runPK(m.RunID), skPending + m.Key()}] {
			out = append(out, m)
		}
	}
	return out, nil
}

// readSent marks in sent the keys whose marker records a send, reading strongly
// consistently and retrying what DynamoDB leaves unprocessed.
func (s *Store) readSent(ctx context.Context, keys []map[string]types.AttributeValue, sent map[[2]string]bool) error {
	req := map[string]types.KeysAndAttributes{s.table: {
		Keys: keys, ConsistentRead: aws.Bool(true),
		ProjectionExpression:     aws.String("#pk, #sk, #sent"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK, "#sent": attrSentAt},
	}}
	for attempt := 0; len(req) > 0; attempt++ {
		if attempt > 0 {
			if err := backoff.Sleep(ctx, backoff.Exp(txBackoffStart, txBackoffMax, attempt-1)); err != nil {
				return err
			}
		}
		out, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return fmt.Errorf("read sent markers: %w", err)
		}
		for _, item := range out.Responses[s.table] {
			if _, ok := item[attrSentAt]; ok {
				sent[[2]string{strAttr(item, attrPK), strAttr(item, attrSK)}] = true
			}
		}
		req = out.UnprocessedKeys
	}
	return nil
}

// Undone lists the run's pending keys that have no done marker, with what their
// markers record. It reads every marker of the run (two Queries, eventually
// consistent: the reconciler acts only on markers older than minutes).
func (s *Store) Undone(ctx context.Context, runID string) ([]Undone, error) {
	done := map[string]bool{}
	err := s.queryPrefix(ctx, runID, skDone, []string{attrSK}, func(item map[string]types.AttributeValue) error {
		done[strings.TrimPrefix(strAttr(item, attrSK), skDone)] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Undone
	err = s.queryPrefix(ctx, runID, skPending, []string{attrSK, attrMsg, attrSentAt, attrExpires, attrResent}, func(item map[string]types.AttributeValue) error {
		k := strings.TrimPrefix(strAttr(item, attrSK), skPending)
		if done[k] {
			return nil
		}
		u := Undone{Key: k}
		if m := strAttr(item, attrMsg); m != "" {
			u.Msg = []byte(m)
		}
		sent, err := numAttr(item, attrSentAt)
		if err != nil {
			return err
		}
		if sent > 0 {
			u.SentAt = time.UnixMilli(sent)
		}
		// Markers are written with expires_at TTL after their first write.
		exp, err := numAttr(item, attrExpires)
		if err != nil {
			return err
		}
		u.AddedAt = time.Unix(exp, 0).Add(-s.opts.TTL)
		resent, err := numAttr(item, attrResent)
		if err != nil {
			return err
		}
		u.Resent = int(resent)
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) queryPrefix(ctx context.Context, runID, prefix string, attrs []string, fn func(map[string]types.AttributeValue) error) error {
	names := map[string]string{"#pk": attrPK, "#sk": attrSK}
	proj := make([]string, len(attrs))
	for i, a := range attrs {
		n := fmt.Sprintf("#p%d", i)
		names[n] = a
		proj[i] = n
	}
	pages := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(runPK(runID)), ":prefix": str(prefix)},
		ProjectionExpression:      aws.String(strings.Join(proj, ", ")),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("query %s markers of run %s: %w", strings.TrimSuffix(prefix, "#"), runID, err)
		}
		for _, item := range page.Items {
			if err := fn(item); err != nil {
				return fmt.Errorf("%s marker of run %s: %w", strings.TrimSuffix(prefix, "#"), runID, err)
			}
		}
	}
	return nil
}
