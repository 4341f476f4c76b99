package dynamobudget

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func (d *Budget) isEnsured() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ensured
}

// ensureRun creates the run maps on the item (a nested SET needs its parent map) and
// removes counters of runs idle for a week, so the item does not grow without bound.
func (d *Budget) ensureRun(ctx context.Context) error {
	now := d.cfg.Now()
	out, err := d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       d.itemKey(),
		UpdateExpression:          aws.String("SET #runs = if_not_exists(#runs, :empty), #runsAt = if_not_exists(#runsAt, :empty), #exp = :exp"),
		ExpressionAttributeNames:  map[string]string{"#runs": attrRuns, "#runsAt": attrRunsAt, "#exp": attrExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{":empty": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}, ":exp": num(now.Add(itemTTL).Unix())},
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return fmt.Errorf("prepare run %s on budget %q: %w", d.cfg.RunID, d.key, err)
	}
	var stale []string
	if at, ok := out.Attributes[attrRunsAt].(*types.AttributeValueMemberM); ok {
		for run, v := range at.Value {
			if sec, ok := intAttr(v); ok && run != d.cfg.RunID && now.Sub(time.Unix(sec, 0)) > staleRun {
				stale = append(stale, run)
			}
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		if err := d.prune(ctx, stale[:min(len(stale), 50)]); err != nil {
			return err
		}
	}
	d.mu.Lock()
	d.ensured = true
	d.absorb(out.Attributes)
	d.mu.Unlock()
	return nil
}

func (d *Budget) prune(ctx context.Context, runs []string) error {
	names := map[string]string{"#runs": attrRuns, "#runsAt": attrRunsAt}
	var paths []string
	for i, run := range runs {
		n := "#r" + strconv.Itoa(i)
		names[n] = run
		paths = append(paths, "#runs."+n, "#runsAt."+n)
	}
	_, err := d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(d.table),
		Key:                      d.itemKey(),
		UpdateExpression:         aws.String("REMOVE " + strings.Join(paths, ", ")),
		ExpressionAttributeNames: names,
	})
	if err != nil {
		return fmt.Errorf("remove %d stale run counters from budget %q: %w", len(runs), d.key, err)
	}
	return nil
}

// Release gives the tokens this instance holds back: their time to the bucket, so other
// workers may spend it (giveTime), and their count to the run's MaxCalls. A Lambda
// handler calls it before returning, since a frozen instance cannot spend them.
func (d *Budget) Release(ctx context.Context) error {
	d.mu.Lock()
	now := d.cfg.Now()
	give := d.unused + int64(d.tokens)
	var span time.Duration
	if d.tokens > 0 && d.leaseIv > 0 && now.Before(d.validUntil) {
		span = time.Duration(d.tokens) * d.leaseIv
	}
	d.unused, d.tokens = 0, 0
	d.mu.Unlock()
	var timeErr error
	if span > 0 {
		timeErr = d.giveTime(ctx, now, span)
	}
	if give == 0 || d.cfg.MaxCalls == 0 {
		return timeErr
	}
	_, err := d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       d.itemKey(),
		UpdateExpression:          aws.String("SET #runs.#run = #runs.#run - :n"),
		ConditionExpression:       aws.String("attribute_exists(#runs.#run)"),
		ExpressionAttributeNames:  map[string]string{"#runs": attrRuns, "#run": d.cfg.RunID},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(give)},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // the counter is gone (item reset or pruned): nothing to give back to
	}
	if err != nil {
		d.mu.Lock()
		d.unused += give // try again with the next lease
		d.mu.Unlock()
		return errors.Join(timeErr, fmt.Errorf("give %d unused calls back to run %s on budget %q: %w", give, d.cfg.RunID, d.key, err))
	}
	return timeErr
}
