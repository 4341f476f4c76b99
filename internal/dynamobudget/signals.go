package dynamobudget

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gl2gh/discovery-agent/internal/budget"
)

// Observe shares what GitLab said: an announced limit below RPM lowers every worker's
// rate, and little remaining (at most one chunk, which the fleet's requests in flight
// will use) pauses every worker until reset.
func (d *Budget) Observe(ctx context.Context, limit, remaining int, reset time.Time) {
	if limit > 0 {
		d.announce(ctx, limit)
	}
	d.mu.Lock()
	chunk := d.chunk(d.interval(d.cfg.Now()))
	d.mu.Unlock()
	if remaining <= max(budget.Reserve, chunk) && !reset.IsZero() {
		d.PauseUntil(ctx, reset)
	}
}

// announce stores limit on the item when it lowers the rate there, or refreshes it
// when it is about to lapse; otherwise it costs nothing.
func (d *Budget) announce(ctx context.Context, limit int) {
	now := d.cfg.Now()
	d.mu.Lock()
	current := d.limit > 0 && now.Before(d.limitUntil)
	skip := (d.cfg.RPM > 0 && limit >= d.cfg.RPM) || // never raises above RPM
		(current && limit > d.limit) || // a lower limit holds until it lapses
		(current && limit == d.limit && d.limitUntil.Sub(now) > announcedFor/2)
	if !skip {
		d.limit, d.limitUntil = limit, now.Add(announcedFor)
	}
	d.mu.Unlock()
	if skip {
		return
	}
	_, err := d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(d.table),
		Key:                 d.itemKey(),
		UpdateExpression:    aws.String("SET #limit = :limit, #until = :until, #exp = :exp"),
		ConditionExpression: aws.String("attribute_not_exists(#until) OR #until <= :now OR #limit >= :limit"),
		ExpressionAttributeNames: map[string]string{
			"#limit": attrLimit, "#until": attrLimitUntil, "#exp": attrExpires,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":limit": num(int64(limit)),
			":until": micros(now.Add(announcedFor)),
			":now":   micros(now),
			":exp":   num(now.Add(itemTTL).Unix()),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	d.afterSignal(ctx, err, "store announced limit", slog.Int("limit", limit))
}

// PauseUntil stops every worker's requests until t, at most budget.MaxPause from now.
// The item's pause only moves forward; an earlier or past t changes nothing.
func (d *Budget) PauseUntil(ctx context.Context, t time.Time) {
	now := d.cfg.Now()
	t, ok := budget.CapPause(now, t)
	d.mu.Lock()
	known := !ok || !t.After(d.pause)
	if !known {
		d.pause = t
	}
	d.mu.Unlock()
	if known {
		return
	}
	_, err := d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 d.itemKey(),
		UpdateExpression:                    aws.String("SET #pause = :t, #exp = :exp"),
		ConditionExpression:                 aws.String("attribute_not_exists(#pause) OR #pause < :t OR #pause > :far"),
		ExpressionAttributeNames:            map[string]string{"#pause": attrPause, "#exp": attrExpires},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":t": micros(t), ":far": micros(farPause(now)), ":exp": num(now.Add(itemTTL).Unix())},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	d.afterSignal(ctx, err, "share pause", slog.Time("until", t))
}

// pauseLocked moves the local pause forward to the item's pause t, capped to
// budget.MaxPause from now; a t beyond farPause is ignored. d.mu must be held.
func (d *Budget) pauseLocked(t time.Time) {
	now := d.cfg.Now()
	if t.After(farPause(now)) {
		return
	}
	if t, ok := budget.CapPause(now, t); ok && t.After(d.pause) {
		d.pause = t
	}
}

// farPause is the latest shared pause honoured at now.
func farPause(now time.Time) time.Time { return now.Add(budget.MaxPause + pauseSlack) }

// afterSignal handles the result of a write that has no caller to return an error to:
// a refused condition means the item already says more, and its image is kept.
func (d *Budget) afterSignal(ctx context.Context, err error, what string, attr slog.Attr) {
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
	case errors.As(err, &ccf):
		if ccf.Item != nil {
			d.mu.Lock()
			d.absorb(ccf.Item)
			d.mu.Unlock()
		}
	default:
		// The local state already holds the signal; other workers learn it from
		// GitLab themselves.
		d.log.WarnContext(ctx, "budget: "+what+" failed", slog.String("budget_key", d.key), attr, slog.Any("error", err))
	}
}
