package mototest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/gl2gh/discovery-agent/internal/mototest"
)

func TestMain(m *testing.M) { mototest.Main(m) }

func TestCreateTables(t *testing.T) {
	srv := mototest.Shared(t)
	ctx := context.Background()
	db := srv.DynamoDB()
	store, budget := mototest.Name("store"), mototest.Name("budget")
	if err := mototest.CreateTables(ctx, db, store, budget); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		table string
		keys  []string
	}{
		{store, []string{"pk", "sk"}},
		{budget, []string{"key"}},
	}
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			d, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tt.table)})
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, k := range d.Table.KeySchema {
				keys = append(keys, aws.ToString(k.AttributeName))
			}
			if len(keys) != len(tt.keys) || keys[0] != tt.keys[0] || (len(keys) > 1 && keys[1] != tt.keys[1]) {
				t.Errorf("key schema = %v, want %v", keys, tt.keys)
			}
			if d.Table.BillingModeSummary == nil || d.Table.BillingModeSummary.BillingMode != ddbtypes.BillingModePayPerRequest {
				t.Errorf("billing mode = %+v, want PAY_PER_REQUEST", d.Table.BillingModeSummary)
			}
			ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tt.table)})
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(ttl.TimeToLiveDescription.AttributeName); got != mototest.TTLAttribute ||
				ttl.TimeToLiveDescription.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled {
				t.Errorf("TTL = %s %s, want %s ENABLED", got, ttl.TimeToLiveDescription.TimeToLiveStatus, mototest.TTLAttribute)
			}
			pitr, err := db.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: aws.String(tt.table)})
			if err != nil {
				t.Fatal(err)
			}
			if got := pitr.ContinuousBackupsDescription.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus; got != ddbtypes.PointInTimeRecoveryStatusEnabled {
				t.Errorf("point-in-time recovery = %s, want ENABLED", got)
			}
		})
	}
}

func TestCreateQueue(t *testing.T) {
	srv := mototest.Shared(t)
	ctx := context.Background()
	client := srv.SQS()
	q, err := mototest.CreateQueue(ctx, client, mototest.Name("work"), mototest.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceiveCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(q.URL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := got.Attributes["VisibilityTimeout"]; v != "30" {
		t.Errorf("VisibilityTimeout = %q, want 30", v)
	}
	var redrive struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     int    `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(got.Attributes["RedrivePolicy"]), &redrive); err != nil {
		t.Fatalf("RedrivePolicy %q: %v", got.Attributes["RedrivePolicy"], err)
	}
	if redrive.DeadLetterTargetArn != q.DLQARN || redrive.MaxReceiveCount != 3 {
		t.Errorf("RedrivePolicy = %+v, want DLQ %s after 3 receives", redrive, q.DLQARN)
	}
	if q.DLQURL == "" || q.DLQURL == q.URL {
		t.Errorf("DLQ URL %q, queue URL %q", q.DLQURL, q.URL)
	}
}

func TestCreateBucket(t *testing.T) {
	srv := mototest.Shared(t)
	ctx := context.Background()
	client := srv.S3()
	bucket := mototest.Name("exports")
	if err := mototest.CreateBucket(ctx, client, bucket); err != nil {
		t.Fatal(err)
	}
	enc, err := client.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	rules := enc.ServerSideEncryptionConfiguration.Rules
	if len(rules) != 1 || rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != "AES256" {
		t.Errorf("encryption rules = %+v, want one AES256 rule", rules)
	}
	pab, err := client.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if c := pab.PublicAccessBlockConfiguration; !aws.ToBool(c.BlockPublicAcls) || !aws.ToBool(c.BlockPublicPolicy) ||
		!aws.ToBool(c.IgnorePublicAcls) || !aws.ToBool(c.RestrictPublicBuckets) {
		t.Errorf("public access block = %+v, want all true", c)
	}
}

func TestStartStop(t *testing.T) {
	srv := mototest.Start(t)
	ctx := context.Background()
	if _, err := srv.DynamoDB().ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("a fresh server should answer: %v", err)
	}
	srv.Stop()
	srv.Stop() // idempotent
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := srv.DynamoDB().ListTables(ctx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }); err == nil {
		t.Fatal("a stopped server still answers")
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("MOTO_SERVER", "no-such-moto-server-binary")
	_, err := mototest.StartProcess(context.Background())
	if err == nil {
		t.Fatal("StartProcess found a binary that does not exist")
	}
	if !errors.Is(err, mototest.ErrNotInstalled) {
		t.Fatalf("err = %v, want ErrNotInstalled", err)
	}
}

// TestSerialIsolatesTransactions counts with transactions from many goroutines while
// as many others run transactions that are canceled: threaded moto restores a table
// snapshot on cancellation, losing the increments made meanwhile, so the total is
// exact only when moto handles one request at a time.
func TestSerialIsolatesTransactions(t *testing.T) {
	srv := mototest.Start(t, mototest.Serial())
	ctx := context.Background()
	db := srv.DynamoDB()
	table := mototest.Name("store")
	if err := mototest.CreateTables(ctx, db, table, mototest.Name("budget")); err != nil {
		t.Fatal(err)
	}
	const workers, each = 10, 20
	s := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
	counter := map[string]ddbtypes.AttributeValue{"pk": s("c"), "sk": s("c")}
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
					{Update: &ddbtypes.Update{
						TableName:                 aws.String(table),
						Key:                       counter,
						UpdateExpression:          aws.String("ADD n :one"),
						ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": &ddbtypes.AttributeValueMemberN{Value: "1"}},
					}},
					{Put: &ddbtypes.Put{
						TableName: aws.String(table),
						Item:      map[string]ddbtypes.AttributeValue{"pk": s("m"), "sk": s(fmt.Sprintf("%d-%d", w, i))},
					}},
				}})
				if err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			for i := range each {
				_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
					{Put: &ddbtypes.Put{
						TableName: aws.String(table),
						Item:      map[string]ddbtypes.AttributeValue{"pk": s("x"), "sk": s(fmt.Sprintf("%d-%d", w, i))},
					}},
					{ConditionCheck: &ddbtypes.ConditionCheck{
						TableName:           aws.String(table),
						Key:                 map[string]ddbtypes.AttributeValue{"pk": s("never"), "sk": s("there")},
						ConditionExpression: aws.String("attribute_exists(pk)"),
					}},
				}})
				var tce *ddbtypes.TransactionCanceledException
				if !errors.As(err, &tce) {
					errs <- fmt.Errorf("a transaction that must be canceled returned %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: counter, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if n := out.Item["n"].(*ddbtypes.AttributeValueMemberN).Value; n != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s after %d transactions", n, workers*each)
	}
}
