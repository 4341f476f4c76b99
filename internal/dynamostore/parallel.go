package dynamostore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DefaultReadParallelism is how many segments of a run's records the exporter's
// reads query at once (Options.ReadParallelism).
const DefaultReadParallelism = 8

const (
	// segmentsPerReader: more segments than readers, so that a reader's segment is
	// small (a few pages) and a reader never waits long for the consumer.
	segmentsPerReader = 8
	// readAhead is how many pages (at most 1 MB each) a reader queues before waiting
	// for the consumer: memory is at most ReadParallelism x readAhead pages.
	readAhead = 4
)

type page = []map[string]types.AttributeValue

// segment is one ID range's pages, in order, and how its read ended.
type segment struct {
	span  [2]string
	pages chan page
	err   error // set before pages is closed
}

// parallel splits the records under prefix into segments of equal ID ranges and
// queries up to ReadParallelism of them at once, each into a queue of readAhead pages,
// while the caller's goroutine consumes the segments in order: the records still come
// in ascending ID order. A reader starts only when a reader slot is free, and a slot
// frees when the consumer has finished that segment, which bounds memory whatever the
// skew of the IDs.
func (s *Store) parallel(ctx context.Context, runID, prefix string, consume func(page) error) error {
	lo, hi, ok, err := s.idBounds(ctx, runID, prefix)
	if err != nil || !ok {
		return err
	}
	segs := split(prefix, lo, hi, s.opts.ReadParallelism*segmentsPerReader)
	ctx, cancel := context.WithCancel(ctx)
	slots := make(chan struct{}, s.opts.ReadParallelism)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // readers blocked on a full queue see the cancel
	wg.Add(1)
	go func() { // starts the readers in order, as slots free
		defer wg.Done()
		for _, seg := range segs {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				seg.err = ctx.Err()
				close(seg.pages)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(seg.pages)
				seg.err = s.queryRange(ctx, runID, prefix, &seg.span, func(p page) error {
					select {
					case seg.pages <- p:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				})
			}()
		}
	}()
	for _, seg := range segs {
		for p := range seg.pages {
			if err := consume(p); err != nil {
				return err
			}
		}
		if seg.err != nil {
			return seg.err
		}
		<-slots
	}
	return nil
}

// split cuts [lo, hi] into at most n ranges of equal width, as sort-key spans.
func split(prefix string, lo, hi int64, n int) []*segment {
	width := max((hi-lo+1+int64(n)-1)/int64(n), 1)
	var segs []*segment
	for start := lo; start <= hi; start += width {
		end := min(start+width-1, hi)
		segs = append(segs, &segment{span: [2]string{idSK(prefix, start), idSK(prefix, end)}, pages: make(chan page, readAhead)})
		if end == hi {
			break
		}
	}
	return segs
}

// idBounds returns the lowest and highest record IDs under prefix; ok false when
// there are none.
func (s *Store) idBounds(ctx context.Context, runID, prefix string) (lo, hi int64, ok bool, err error) {
	edge := func(forward bool) (int64, bool, error) {
		out, err := s.client.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
			ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(runPK(runID)), ":prefix": str(prefix)},
			ProjectionExpression:      aws.String("#sk"),
			ScanIndexForward:          aws.Bool(forward),
			Limit:                     aws.Int32(1),
			ConsistentRead:            aws.Bool(true),
		})
		if err != nil {
			return 0, false, fmt.Errorf("query %s bounds of run %s: %w", strings.TrimSuffix(prefix, "#"), runID, err)
		}
		if len(out.Items) == 0 {
			return 0, false, nil
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(strAttr(out.Items[0], attrSK), prefix), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s record of run %s: %w", strings.TrimSuffix(prefix, "#"), runID, err)
		}
		return id, true, nil
	}
	if lo, ok, err = edge(true); err != nil || !ok {
		return 0, 0, false, err
	}
	if hi, ok, err = edge(false); err != nil || !ok {
		return 0, 0, false, err
	}
	return lo, hi, true, nil
}
