package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A claim says which delivery of a message key is being handled now, as Powertools'
// idempotency records an in-progress item: a conditional put that a second delivery of
// the same key cannot make until the first releases it or its time runs out (a
// handler killed at its timeout never releases).
const (
	skClaim      = "CLAIM#"
	attrOwner    = "owner"
	attrUntil    = "until" // Unix milliseconds
	attrClaimMsg = "message_id"
)

// Claim is the delivery holding a key.
type Claim struct {
	Owner     string    // unique per delivery
	MessageID string    // the SQS message it handles
	Until     time.Time // when the claim lapses if not released
}

// Claim takes the key of a run for c.Owner until c.Until, unless another delivery holds
// it and its claim has not lapsed; then ok is false and held is that claim.
func (s *Store) Claim(ctx context.Context, runID, key string, c Claim) (held Claim, ok bool, err error) {
	now := s.opts.Now()
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			attrPK: str(runPK(runID)), attrSK: str(skClaim + key),
			attrOwner: str(c.Owner), attrClaimMsg: str(c.MessageID), attrUntil: num(c.Until.UnixMilli()),
			// DynamoDB's TTL removes released-by-timeout claims a day later.
			attrExpires: num(c.Until.Add(24 * time.Hour).Unix()),
		},
		ConditionExpression:                 aws.String("attribute_not_exists(#pk) OR #until < :now"),
		ExpressionAttributeNames:            map[string]string{"#pk": attrPK, "#until": attrUntil},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": num(now.UnixMilli())},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		until, _ := numAttr(ccf.Item, attrUntil)
		return Claim{Owner: strAttr(ccf.Item, attrOwner), MessageID: strAttr(ccf.Item, attrClaimMsg), Until: time.UnixMilli(until)}, false, nil
	}
	if err != nil {
		return Claim{}, false, fmt.Errorf("claim %s of run %s: %w", key, runID, err)
	}
	return Claim{}, true, nil
}

// Release gives up owner's claim of the key; a claim that lapsed and was taken by
// another delivery is left to it.
func (s *Store) Release(ctx context.Context, runID, k, owner string) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(runPK(runID), skClaim+k),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": str(owner)},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("release %s of run %s: %w", k, runID, err)
	}
	return nil
}
