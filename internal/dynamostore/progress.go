package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gl2gh/discovery-agent/internal/discovery"
)

// maxDoneRounds bounds Done's alternation between its two transactions.
const maxDoneRounds = 6

// AddPending counts the keys as pending work of the run. A key added before is not
// counted again, nor is a key already marked done. Keys go in transactions of up to 49:
// each key's marker is put on condition that it does not exist, and the run's counter
// grows by the number of markers put.
func (s *Store) AddPending(ctx context.Context, runID string, keys ...string) error {
	seen := make(map[string]bool, len(keys))
	uniq := make([]string, 0, len(keys))
	for _, k := range keys {
		if len(skPending)+len(k) > maxPendingKeySize {
			return fmt.Errorf("add pending to run %s: key %.40q... longer than %d bytes", runID, k, maxPendingKeySize-len(skPending))
		}
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	for start := 0; start < len(uniq); start += keysPerTx {
		if err := s.addPending(ctx, runID, uniq[start:min(start+keysPerTx, len(uniq))]); err != nil {
			return fmt.Errorf("add pending to run %s: %w", runID, err)
		}
	}
	return nil
}

func (s *Store) addPending(ctx context.Context, runID string, keys []string) error {
	pk := runPK(runID)
	for len(keys) > 0 {
		items := make([]types.TransactWriteItem, 0, 1+2*len(keys))
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:                 aws.String(s.table),
			Key:                       key(pk, skMeta),
			UpdateExpression:          aws.String("ADD #pending :n"),
			ConditionExpression:       aws.String("attribute_exists(#pk)"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#pending": attrPending},
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(int64(len(keys)))},
		}})
		for _, k := range keys {
			items = append(items, s.putMarker(pk, skPending+k, "attribute_not_exists(#pk)"), s.checkMarker(pk, skDone+k, "attribute_not_exists(#pk)"))
		}
		err := s.transact(ctx, items)
		if err == nil {
			return nil
		}
		codes, canceled := cancelReasons(err)
		if !canceled || len(codes) != len(items) || retryable(codes) {
			return err
		}
		if codes[0] == reasonCondition {
			return fmt.Errorf("run %q: %w", runID, discovery.ErrNotFound)
		}
		// Drop the keys already pending; record the keys already done without counting
		// them; try the rest again.
		var next []string
		for i, k := range keys {
			switch {
			case codes[1+2*i] == reasonCondition:
			case codes[2+2*i] == reasonCondition:
				if err := s.markUncounted(ctx, pk, k); err != nil {
					return err
				}
			default:
				next = append(next, k)
			}
		}
		if len(next) == len(keys) {
			return fmt.Errorf("transaction canceled without a reason naming a key: %w", err)
		}
		keys = next
	}
	return nil
}

// markUncounted puts the pending marker of a key that is already done.
func (s *Store) markUncounted(ctx context.Context, pk, k string) error {
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(skPending + k), attrExpires: s.expires()},
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("mark %s pending: %w", k, err)
	}
	return nil
}

func (s *Store) putMarker(pk, sk, cond string) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{
		TableName:                aws.String(s.table),
		Item:                     map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk), attrExpires: s.expires()},
		ConditionExpression:      aws.String(cond),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK},
	}}
}

func (s *Store) checkMarker(pk, sk, cond string) types.TransactWriteItem {
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName:                aws.String(s.table),
		Key:                      key(pk, sk),
		ConditionExpression:      aws.String(cond),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK},
	}}
}

// doneOutcome is what one of Done's transactions found.
type doneOutcome int

const (
	doneMarked     doneOutcome = iota // the done marker was put (and counted, if pending)
	doneBefore                        // the key was done before: nothing written
	doneRetryOther                    // the pending marker is not as assumed: try the other transaction
)

// Done marks key finished. Only the first call for a key decrements the pending count,
// and only if the key was added. first reports whether this call was the first.
//
// remaining is the count after this call, read consistently after its transaction.
// Should later calls have changed the counter meanwhile and it now reads 0, this call
// did not bring it there and reports 1: of concurrent calls finishing the last keys,
// exactly one sees first with remaining 0 and queues the export.
func (s *Store) Done(ctx context.Context, runID, key string) (remaining int64, first bool, err error) {
	pk := runPK(runID)
	outcome := doneRetryOther
	// The common case assumes the key is pending; the other, that it never was. They
	// alternate only while an AddPending of the same key races with this call.
	for round := 0; outcome == doneRetryOther; round++ {
		if round == maxDoneRounds {
			return 0, false, fmt.Errorf("mark %s done in run %s: still racing with AddPending after %d rounds", key, runID, round)
		}
		if round%2 == 0 {
			outcome, err = s.donePending(ctx, pk, key)
		} else {
			outcome, err = s.doneUnpended(ctx, pk, key)
		}
		if errors.Is(err, discovery.ErrNotFound) {
			return 0, false, fmt.Errorf("mark %s done: run %q: %w", key, runID, err)
		}
		if err != nil {
			return 0, false, fmt.Errorf("mark %s done in run %s: %w", key, runID, err)
		}
	}
	first = outcome == doneMarked
	meta, err := s.get(ctx, pk, skMeta, attrPending, attrLastDone)
	if err != nil {
		return 0, false, fmt.Errorf("mark %s done in run %s: read pending: %w", key, runID, err)
	}
	if meta == nil {
		return 0, false, fmt.Errorf("mark %s done: run %q: %w", key, runID, discovery.ErrNotFound)
	}
	if remaining, err = numAttr(meta, attrPending); err != nil {
		return 0, false, fmt.Errorf("mark %s done in run %s: %w", key, runID, err)
	}
	if first && remaining == 0 && strAttr(meta, attrLastDone) != key {
		remaining = 1
	}
	return remaining, first, nil
}

// donePending marks a pending key done and counts it down, in one transaction.
func (s *Store) donePending(ctx context.Context, pk, k string) (doneOutcome, error) {
	err := s.transact(ctx, []types.TransactWriteItem{
		{Update: &types.Update{
			TableName:                 aws.String(s.table),
			Key:                       key(pk, skMeta),
			UpdateExpression:          aws.String("ADD #pending :minus SET #last = :key, #lastAt = :now"),
			ConditionExpression:       aws.String("attribute_exists(#pk)"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#pending": attrPending, "#last": attrLastDone, "#lastAt": attrLastDoneAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{":minus": num(-1), ":key": str(k), ":now": num(s.opts.Now().UnixMilli())},
		}},
		s.putMarker(pk, skDone+k, "attribute_not_exists(#pk)"),
		s.checkMarker(pk, skPending+k, "attribute_exists(#pk)"),
	})
	return doneResult(err)
}

// doneUnpended marks a key done that was never added, without counting it down.
func (s *Store) doneUnpended(ctx context.Context, pk, k string) (doneOutcome, error) {
	err := s.transact(ctx, []types.TransactWriteItem{
		s.checkMarker(pk, skMeta, "attribute_exists(#pk)"),
		s.putMarker(pk, skDone+k, "attribute_not_exists(#pk)"),
		s.checkMarker(pk, skPending+k, "attribute_not_exists(#pk)"),
	})
	return doneResult(err)
}

// doneResult reads the cancellation reasons of Done's transactions, whose actions are
// [run item, done marker, pending marker].
func doneResult(err error) (doneOutcome, error) {
	if err == nil {
		return doneMarked, nil
	}
	codes, canceled := cancelReasons(err)
	switch {
	case !canceled || len(codes) != 3 || retryable(codes):
		return 0, err
	case codes[0] == reasonCondition:
		return 0, discovery.ErrNotFound
	case codes[1] == reasonCondition:
		return doneBefore, nil
	default:
		return doneRetryOther, nil
	}
}

// IsDone reports whether key was marked finished.
func (s *Store) IsDone(ctx context.Context, runID, key string) (bool, error) {
	item, err := s.get(ctx, runPK(runID), skDone+key, attrPK)
	if err != nil {
		return false, fmt.Errorf("is %s done in run %s: %w", key, runID, err)
	}
	return item != nil, nil
}

// LastDone returns when a pending message of the run was last done; zero before any.
func (s *Store) LastDone(ctx context.Context, runID string) (time.Time, error) {
	ms, err := s.counter(ctx, runID, attrLastDoneAt)
	if err != nil || ms == 0 {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}

// Pending returns the run's pending count.
func (s *Store) Pending(ctx context.Context, runID string) (int64, error) {
	return s.counter(ctx, runID, attrPending)
}

// APICalls returns the run's API call count.
func (s *Store) APICalls(ctx context.Context, runID string) (int64, error) {
	return s.counter(ctx, runID, attrAPICalls)
}

func (s *Store) counter(ctx context.Context, runID, name string) (int64, error) {
	item, err := s.get(ctx, runPK(runID), skMeta, name)
	if err != nil {
		return 0, fmt.Errorf("read %s of run %s: %w", name, runID, err)
	}
	if item == nil {
		return 0, fmt.Errorf("read %s: run %q: %w", name, runID, discovery.ErrNotFound)
	}
	n, err := numAttr(item, name)
	if err != nil {
		return 0, fmt.Errorf("read %s of run %s: %w", name, runID, err)
	}
	return n, nil
}

// AddAPICalls adds n to the run's API call counter.
func (s *Store) AddAPICalls(ctx context.Context, runID string, n int64) error {
	if n == 0 {
		return nil
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(runPK(runID), skMeta),
		UpdateExpression:          aws.String("ADD #calls :n"),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#calls": attrAPICalls},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(n)},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("add API calls: run %q: %w", runID, discovery.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("add %d API calls to run %s: %w", n, runID, err)
	}
	return nil
}

// Checkpoint returns the next project page to scan for a message key, 0 when none.
func (s *Store) Checkpoint(ctx context.Context, runID, key string) (int, error) {
	item, err := s.get(ctx, runPK(runID), skCheckpoint+key, attrPage)
	if err != nil {
		return 0, fmt.Errorf("read checkpoint %s of run %s: %w", key, runID, err)
	}
	page, err := numAttr(item, attrPage)
	if err != nil {
		return 0, fmt.Errorf("read checkpoint %s of run %s: %w", key, runID, err)
	}
	return int(page), nil
}

// SaveCheckpoint records the next project page for a message key. A negative page is
// refused, as the file store refuses it.
func (s *Store) SaveCheckpoint(ctx context.Context, runID, key string, page int) error {
	if page < 0 {
		return fmt.Errorf("save checkpoint %s of run %s: negative page %d", key, runID, page)
	}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			attrPK: str(runPK(runID)), attrSK: str(skCheckpoint + key),
			attrPage: num(int64(page)), attrExpires: s.expires(),
		},
	})
	if err != nil {
		return fmt.Errorf("save checkpoint %s=%s of run %s: %w", key, strconv.Itoa(page), runID, err)
	}
	return nil
}
