package dynamostore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// healthTTL is how long the health item outlives its last write: long enough to
// inspect, short enough that a stopped agent leaves nothing behind.
const healthTTL = time.Hour

// Ping proves the table writable (the service's readiness check): it puts the health
// item, unconditionally, so a ping never fails on another ping's write.
func (s *Store) Ping(ctx context.Context) error {
	now := s.opts.Now()
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			attrPK: str(pkHealth), attrSK: str(skHealth),
			attrAt:      str(now.UTC().Format(time.RFC3339Nano)),
			attrExpires: num(now.Add(healthTTL).Unix()),
		},
	})
	if err != nil {
		return fmt.Errorf("store not writable: table %s: %w", s.table, err)
	}
	return nil
}
