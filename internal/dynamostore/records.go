package dynamostore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// PutGroup upserts a group keyed by run and group ID.
func (s *Store) PutGroup(ctx context.Context, runID string, g inventory.Group) error {
	if err := s.putRecord(ctx, runID, skGroup, g.ID, g); err != nil {
		return fmt.Errorf("put group %d of run %s: %w", g.ID, runID, err)
	}
	return nil
}

// PutProject upserts a project keyed by run and project ID.
func (s *Store) PutProject(ctx context.Context, runID string, p inventory.Project) error {
	if err := s.putRecord(ctx, runID, skProject, p.ID, p); err != nil {
		return fmt.Errorf("put project %d of run %s: %w", p.ID, runID, err)
	}
	return nil
}

func (s *Store) putRecord(ctx context.Context, runID, prefix string, id int64, rec any) error {
	if id <= 0 {
		return fmt.Errorf("invalid ID %d", id) // would sort out of order, or collide
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			attrPK: str(runPK(runID)), attrSK: str(idSK(prefix, id)),
			attrData: str(string(data)), attrExpires: s.expires(),
		},
	})
	return err
}

// Groups streams the run's groups in ascending ID order until fn returns an error,
// which is returned as is.
func (s *Store) Groups(ctx context.Context, runID string, fn func(inventory.Group) error) error {
	return stream(ctx, s, runID, skGroup, fn)
}

// Projects streams the run's projects in ascending ID order until fn returns an error,
// which is returned as is.
func (s *Store) Projects(ctx context.Context, runID string, fn func(inventory.Project) error) error {
	return stream(ctx, s, runID, skProject, fn)
}

// stream reads the records under prefix in ascending ID order and hands them to fn.
// With Options.ReadParallelism above 1 it splits the ID range into segments and
// queries several at once (see parallel); otherwise it pages through one Query.
func stream[T any](ctx context.Context, s *Store, runID, prefix string, fn func(T) error) error {
	decode := func(items []map[string]types.AttributeValue) error {
		for _, item := range items {
			var rec T
			if err := json.Unmarshal([]byte(strAttr(item, attrData)), &rec); err != nil {
				return fmt.Errorf("decode %s record of run %s: %w", strings.TrimSuffix(prefix, "#"), runID, err)
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		return nil
	}
	if s.opts.ReadParallelism <= 1 {
		return s.queryRange(ctx, runID, prefix, nil, func(items []map[string]types.AttributeValue) error { return decode(items) })
	}
	return s.parallel(ctx, runID, prefix, decode)
}

// queryRange queries the records under prefix, between the sort keys of span when
// given, one page (at most 1 MB) at a time, so memory stays flat whatever the run's
// size. The read is strongly consistent: the exporter runs right after the last record
// was written.
func (s *Store) queryRange(ctx context.Context, runID, prefix string, span *[2]string, page func([]map[string]types.AttributeValue) error) error {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK, "#data": attrData},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(runPK(runID)), ":prefix": str(prefix)},
		ProjectionExpression:      aws.String("#data"),
		ConsistentRead:            aws.Bool(true),
	}
	if span != nil {
		in.KeyConditionExpression = aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":pk": str(runPK(runID)), ":lo": str(span[0]), ":hi": str(span[1])}
	}
	pages := dynamodb.NewQueryPaginator(s.client, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("query %s records of run %s: %w", strings.TrimSuffix(prefix, "#"), runID, err)
		}
		if err := page(out.Items); err != nil {
			return err
		}
	}
	return nil
}

// GetProject returns one project of a run (incremental runs carry over profiles of the previous run).
func (s *Store) GetProject(ctx context.Context, runID string, id int64) (inventory.Project, bool, error) {
	item, err := s.get(ctx, runPK(runID), idSK(skProject, id), attrData)
	if err != nil {
		return inventory.Project{}, false, fmt.Errorf("get project %d of run %s: %w", id, runID, err)
	}
	if item == nil {
		return inventory.Project{}, false, nil
	}
	var p inventory.Project
	if err := json.Unmarshal([]byte(strAttr(item, attrData)), &p); err != nil {
		return inventory.Project{}, false, fmt.Errorf("decode project %d of run %s: %w", id, runID, err)
	}
	return p, true, nil
}
