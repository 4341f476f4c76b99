package dynamobudget

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// interval is the time one token takes to refill at the pace (budget.Pace.Rate): Target
// of the lower of RPM and the item's announced limit while it holds, else the
// adaptive rate; 0 when nothing sets a rate. d.mu must be held.
func (d *Budget) interval(now time.Time) time.Duration {
	rate := d.rate(now)
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(time.Minute) / rate)
}

// rate is the pace in requests per minute, 0 for none. d.mu must be held.
func (d *Budget) rate(now time.Time) float64 {
	announced := 0
	if d.limit > 0 && now.Before(d.limitUntil) {
		announced = d.limit
	}
	var adaptive float64
	if d.aimd != nil {
		adaptive = d.aimd.Rate()
	}
	return d.cfg.Pace.Rate(d.cfg.RPM, announced, adaptive)
}

// chunk is the most tokens one lease takes and the bucket's burst at interval: Chunk
// when set, else one second's worth, at least 1 and at most maxChunk. A burst of a
// second keeps a fixed one-minute window of GitLab's within the limit at a pace of 95%
// of it even at low limits, where a fixed 50 would not.
func (d *Budget) chunk(interval time.Duration) int {
	switch {
	case d.cfg.Chunk > 0:
		return d.cfg.Chunk
	case interval <= 0:
		return maxChunk
	}
	return min(max(1, int(time.Second/interval)), maxChunk)
}

// EffectiveRPM returns this worker's pace in requests per minute now (for the
// discovery_rate_limit_effective_rpm gauge); 0 when nothing limits the rate.
func (d *Budget) EffectiveRPM() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rate(d.cfg.Now())
}

// Answer feeds this worker's adaptive pace one answer's status (0: none arrived) and
// latency; without Pace.Adaptive it does nothing. Each worker adapts on its own
// answers: the workers of one fleet see the same GitLab, so they adapt alike.
func (d *Budget) Answer(ctx context.Context, status int, latency time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.aimd != nil {
		d.aimd.Answer(d.cfg.Now(), status, latency)
	}
}

// giveTime moves the bucket's tat back by span, the time of tokens leased and not
// spent, so that the fleet can still use them: a worker's invocation ends with up to
// half a bucket leased, every invocation, and dropping it cost the fleet several
// percent of its rate. Only while tat lies at least span ahead — the bucket is never
// credited beyond full; when it is nearly full nobody was waiting for the time.
func (d *Budget) giveTime(ctx context.Context, now time.Time, span time.Duration) error {
	_, err := d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       d.itemKey(),
		UpdateExpression:          aws.String("SET #tat = #tat - :span"),
		ConditionExpression:       aws.String("#tat >= :least"),
		ExpressionAttributeNames:  map[string]string{"#tat": attrTAT},
		ExpressionAttributeValues: map[string]types.AttributeValue{":span": num(span.Microseconds()), ":least": micros(now.Add(span))},
	})
	var ccf *types.ConditionalCheckFailedException
	if err == nil || errors.As(err, &ccf) {
		return nil
	}
	return fmt.Errorf("give %v of unspent budget back to %q: %w", span, d.key, err)
}
