package mototest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// TTLAttribute is the attribute holding an item's expiry (Unix seconds) in both tables.
const TTLAttribute = "expires_at"

// CreateTables creates the two DynamoDB tables as the deployment template declares them
// and waits until they are active. The template must mirror this:
//
// Store table (internal/dynamostore), one table for every run:
//
//	KeySchema:            pk (S) HASH, sk (S) RANGE   — no secondary indexes
//	BillingMode:          PAY_PER_REQUEST
//	SSESpecification:     SSEEnabled: true
//	PointInTimeRecovery:  enabled
//	TimeToLive:           AttributeName: expires_at, Enabled: true
//
// Budget table (internal/dynamobudget), one item per GitLab host and token:
//
//	KeySchema:            key (S) HASH
//	BillingMode:          PAY_PER_REQUEST
//	SSESpecification:     SSEEnabled: true
//	PointInTimeRecovery:  enabled
//	TimeToLive:           AttributeName: expires_at, Enabled: true
func CreateTables(ctx context.Context, client *dynamodb.Client, storeTable, budgetTable string) error {
	tables := []struct {
		name string
		keys []ddbtypes.KeySchemaElement
	}{
		{storeTable, []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: ddbtypes.KeyTypeRange},
		}},
		{budgetTable, []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String("key"), KeyType: ddbtypes.KeyTypeHash},
		}},
	}
	for _, tb := range tables {
		defs := make([]ddbtypes.AttributeDefinition, len(tb.keys))
		for i, k := range tb.keys {
			defs[i] = ddbtypes.AttributeDefinition{AttributeName: k.AttributeName, AttributeType: ddbtypes.ScalarAttributeTypeS}
		}
		_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(tb.name),
			KeySchema:            tb.keys,
			AttributeDefinitions: defs,
			BillingMode:          ddbtypes.BillingModePayPerRequest,
			SSESpecification:     &ddbtypes.SSESpecification{Enabled: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("create table %s: %w", tb.name, err)
		}
		if err := dynamodb.NewTableExistsWaiter(client).Wait(ctx,
			&dynamodb.DescribeTableInput{TableName: aws.String(tb.name)}, 2*time.Minute); err != nil {
			return fmt.Errorf("wait for table %s: %w", tb.name, err)
		}
		if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName: aws.String(tb.name),
			TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{
				AttributeName: aws.String(TTLAttribute),
				Enabled:       aws.Bool(true),
			},
		}); err != nil {
			return fmt.Errorf("enable TTL on %s: %w", tb.name, err)
		}
		if _, err := client.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{
			TableName: aws.String(tb.name),
			PointInTimeRecoverySpecification: &ddbtypes.PointInTimeRecoverySpecification{
				PointInTimeRecoveryEnabled: aws.Bool(true),
			},
		}); err != nil {
			return fmt.Errorf("enable point-in-time recovery on %s: %w", tb.name, err)
		}
	}
	return nil
}

// QueueOptions shape the work queue. Zero values take the template's defaults.
type QueueOptions struct {
	// VisibilityTimeout must be at least six times the worker function's timeout, as
	// AWS recommends for SQS event sources. Default 900 s.
	VisibilityTimeout time.Duration
	// MaxReceiveCount is how many receives a message gets before it moves to the DLQ.
	// Default 5.
	MaxReceiveCount int
}

// Queues names the work queue and its dead-letter queue.
type Queues struct {
	URL, ARN       string
	DLQURL, DLQARN string
}

// CreateQueue creates the work queue <name> and its dead-letter queue <name>-dlq as the
// template declares them:
//
//	<name>-dlq: MessageRetentionPeriod 1209600 (14 days), SqsManagedSseEnabled true
//	<name>:     VisibilityTimeout 900, MessageRetentionPeriod 1209600 (14 days),
//	            SqsManagedSseEnabled true,
//	            RedrivePolicy {deadLetterTargetArn: <dlq arn>, maxReceiveCount: 5}
func CreateQueue(ctx context.Context, client *sqs.Client, name string, opts QueueOptions) (Queues, error) {
	if opts.VisibilityTimeout == 0 {
		opts.VisibilityTimeout = 900 * time.Second
	}
	if opts.MaxReceiveCount == 0 {
		opts.MaxReceiveCount = 5
	}
	var q Queues
	var err error
	q.DLQURL, q.DLQARN, err = createQueue(ctx, client, name+"-dlq", map[string]string{
		string(sqstypes.QueueAttributeNameMessageRetentionPeriod): "1209600",
		string(sqstypes.QueueAttributeNameSqsManagedSseEnabled):   "true",
	})
	if err != nil {
		return Queues{}, err
	}
	redrive, err := json.Marshal(map[string]any{
		"deadLetterTargetArn": q.DLQARN,
		"maxReceiveCount":     opts.MaxReceiveCount,
	})
	if err != nil {
		return Queues{}, fmt.Errorf("encode redrive policy: %w", err)
	}
	q.URL, q.ARN, err = createQueue(ctx, client, name, map[string]string{
		string(sqstypes.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(int(opts.VisibilityTimeout / time.Second)),
		string(sqstypes.QueueAttributeNameMessageRetentionPeriod): "1209600",
		string(sqstypes.QueueAttributeNameSqsManagedSseEnabled):   "true",
		string(sqstypes.QueueAttributeNameRedrivePolicy):          string(redrive),
	})
	if err != nil {
		return Queues{}, err
	}
	return q, nil
}

func createQueue(ctx context.Context, client *sqs.Client, name string, attrs map[string]string) (url, arn string, err error) {
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	got, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("read ARN of queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], nil
}

// CreateBucket creates the export bucket as the template declares it:
//
//	BucketEncryption:               SSE-S3 (AES256)
//	PublicAccessBlockConfiguration: all four settings true
//
// The sink also asks for AES256 on every PutObject, so objects are encrypted even in a
// bucket created elsewhere.
func CreateBucket(ctx context.Context, client *s3.Client, bucket string) error {
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	if _, err := client.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
		Bucket: aws.String(bucket),
		ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
			Rules: []s3types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{
					SSEAlgorithm: s3types.ServerSideEncryptionAes256,
				},
			}},
		},
	}); err != nil {
		return fmt.Errorf("set encryption of bucket %s: %w", bucket, err)
	}
	if _, err := client.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
		Bucket: aws.String(bucket),
		PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
			BlockPublicAcls:       aws.Bool(true),
			BlockPublicPolicy:     aws.Bool(true),
			IgnorePublicAcls:      aws.Bool(true),
			RestrictPublicBuckets: aws.Bool(true),
		},
	}); err != nil {
		return fmt.Errorf("block public access to bucket %s: %w", bucket, err)
	}
	return nil
}

// Deployment names the resources of one agent deployment, created as template.yaml
// declares them.
type Deployment struct {
	StoreTable, BudgetTable string
	Scan, Export            Queues
	Bucket                  string
}

// CreateDeployment creates, under fresh names, the store and budget tables, the scan
// and export queues (each with its dead-letter queue) and the export bucket.
func (p *Process) CreateDeployment(ctx context.Context, scan, export QueueOptions) (Deployment, error) {
	d := Deployment{StoreTable: Name("store"), BudgetTable: Name("budget"), Bucket: Name("exports")}
	if err := CreateTables(ctx, p.DynamoDB(), d.StoreTable, d.BudgetTable); err != nil {
		return d, err
	}
	var err error
	if d.Scan, err = CreateQueue(ctx, p.SQS(), Name("scan"), scan); err != nil {
		return d, err
	}
	if d.Export, err = CreateQueue(ctx, p.SQS(), Name("export"), export); err != nil {
		return d, err
	}
	return d, CreateBucket(ctx, p.S3(), d.Bucket)
}
