// Package dynamostore implements discovery.Store on one DynamoDB table, for the
// serverless deployment: Lambda workers write run state and records, the exporter
// streams them back.
//
// # Table
//
// Partition key pk (S), sort key sk (S), TTL on expires_at (see mototest.CreateTables).
// Every item except the active-run lock expires Options.TTL after it was last written.
//
//	pk          sk                          what
//	RUN#<id>    META                        the run: data (JSON of inventory.Run as
//	                                        created), status, finished_at, reason,
//	                                        pending, api_calls, last_done, last_done_at
//	RUN#<id>    GROUP#<20-digit id>         data: JSON inventory.Group
//	RUN#<id>    PROJECT#<20-digit id>       data: JSON inventory.Project
//	RUN#<id>    PENDING#<key>               a message key counted as pending work; msg,
//	                                        sent_at: the message last sent for it, resent
//	RUN#<id>    DONE#<key>                  a message key marked done
//	RUN#<id>    CLAIM#<key>                 owner, until: a delivery handling the key now
//	RUN#<id>    CKPT#<key>                  page: the next project page of a message
//	RUNS        <started>#<id>              run_id: the run index, by start time
//	ACTIVE      RUN                         run_id, status: the one running/exporting run
//	HEALTH      PING                        at: the last readiness ping (expires in an hour)
//
// Zero-padded IDs make a Query return records in ID order; <started> is UTC with a
// fixed nine-digit fraction so that the index sorts as time does.
//
// # Consistency
//
// Record writes are plain PutItems: the same key overwrites, so a redelivered message
// writes the same items. Marker and counter change together in one
// TransactWriteItems, conditioned on the marker, so a key is counted once however
// often it is sent; a condition failure there is read precisely from the
// transaction's cancellation reasons. The active-run lock is a conditional put, so
// only one run is running or exporting at a time, across all Lambdas. Every read that
// decides something is strongly consistent.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gl2gh/discovery-agent/internal/backoff"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/gl2gh/discovery-agent/internal/discovery"
)

var _ discovery.Store = (*Store)(nil)

// DefaultTTL is how long run data stays in the table.
const DefaultTTL = 90 * 24 * time.Hour

// Attribute names.
const (
	attrPK       = "pk"
	attrSK       = "sk"
	attrData     = "data"
	attrExpires  = "expires_at"
	attrStatus   = "status"
	attrFinished = "finished_at"
	attrReason   = "reason"
	// The run's failed counts (inventory.Run.FailedGroups, FailedProjects).
	attrFailedGroups   = "failed_groups"
	attrFailedProjects = "failed_projects"
	attrPending        = "pending"
	attrAPICalls       = "api_calls"
	attrLastDone       = "last_done"
	attrLastDoneAt     = "last_done_at" // Unix milliseconds of the last Done that counted down
	attrRunID          = "run_id"
	attrPage           = "page"
	attrAt             = "at"
)

// Sort keys and prefixes.
const (
	skMeta       = "META"
	skGroup      = "GROUP#"
	skProject    = "PROJECT#"
	skPending    = "PENDING#"
	skDone       = "DONE#"
	skCheckpoint = "CKPT#"
	pkRuns       = "RUNS"
	pkActive     = "ACTIVE"
	skActive     = "RUN"
	pkHealth     = "HEALTH"
	skHealth     = "PING"
)

// Cancellation reason codes of TransactWriteItems.
const (
	reasonNone        = "None"
	reasonCondition   = "ConditionalCheckFailed"
	maxTxAttempts     = 10
	txBackoffStart    = 20 * time.Millisecond
	txBackoffMax      = 2 * time.Second
	keysPerTx         = 49 // 2 actions per key plus the counter: within the 100-action limit
	startedLayout     = "2006-01-02T15:04:05.000000000Z"
	idDigits          = 20
	maxPendingKeySize = 1024 // DynamoDB sort keys are at most 1024 bytes
)

// Options tune a Store.
type Options struct {
	// TTL is how long items live after their last write (expires_at); default 90 days.
	TTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// ReadParallelism is how many segments of a run's records Groups and Projects
	// query at once, still yielding them in ID order; 0 or 1 reads them with one
	// paginated Query. The exporter sets DefaultReadParallelism.
	ReadParallelism int
}

// Store implements discovery.Store and the exporter's source on one DynamoDB table.
// It is safe for concurrent use.
type Store struct {
	client *dynamodb.Client
	table  string
	opts   Options
}

// New returns a store on table.
func New(client *dynamodb.Client, table string, opts Options) *Store {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{client: client, table: table, opts: opts}
}

func runPK(runID string) string { return "RUN#" + runID }

func idSK(prefix string, id int64) string {
	return prefix + fmt.Sprintf("%0*d", idDigits, id)
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func (s *Store) expires() types.AttributeValue {
	return num(s.opts.Now().Add(s.opts.TTL).Unix())
}

func strAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func numAttr(item map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s: %w", name, err)
	}
	return n, nil
}

// get reads one item with a strongly consistent read; nil when it does not exist.
func (s *Store) get(ctx context.Context, pk, sk string, attrs ...string) (map[string]types.AttributeValue, error) {
	in := &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(pk, sk),
		ConsistentRead: aws.Bool(true),
	}
	if len(attrs) > 0 {
		in.ExpressionAttributeNames = make(map[string]string, len(attrs))
		proj := ""
		for i, a := range attrs {
			n := "#a" + strconv.Itoa(i)
			in.ExpressionAttributeNames[n] = a
			if i > 0 {
				proj += ", "
			}
			proj += n
		}
		in.ProjectionExpression = aws.String(proj)
	}
	out, err := s.client.GetItem(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// cancelReasons returns the reason codes of a canceled transaction, one per action in
// order; ok is false when err is not a cancellation.
func cancelReasons(err error) (codes []string, ok bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil, false
	}
	codes = make([]string, len(tce.CancellationReasons))
	for i, r := range tce.CancellationReasons {
		codes[i] = aws.ToString(r.Code)
		if codes[i] == "" {
			codes[i] = reasonNone
		}
	}
	return codes, true
}

// retryable reports whether a canceled transaction failed for a reason other than its
// conditions (a conflict with a concurrent transaction, throttling) and may be retried.
func retryable(codes []string) bool {
	for _, c := range codes {
		if c != reasonNone && c != reasonCondition {
			return true
		}
	}
	return false
}

// retryPause sleeps before retry attempt n (from 1) of a conflicting transaction. The
// counter item is hot at the end of a run, so conflicts are expected and spread out.
func retryPause(ctx context.Context, n int) error {
	return backoff.Sleep(ctx, backoff.Exp(txBackoffStart, txBackoffMax, n-1))
}

// transact runs a transaction, retrying conflicts; a cancellation by conditions is
// returned for the caller to read.
func (s *Store) transact(ctx context.Context, items []types.TransactWriteItem) error {
	for attempt := 1; ; attempt++ {
		_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		codes, canceled := cancelReasons(err)
		if err == nil || !canceled || !retryable(codes) || attempt == maxTxAttempts {
			return err
		}
		if err := retryPause(ctx, attempt); err != nil {
			return err
		}
	}
}
