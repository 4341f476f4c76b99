package e2e

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/gl2gh/discovery-agent/internal/dynamostore"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/mototest"
)

// What `make sam-local-env` creates for `sam local invoke`, under the names
// events/env.json gives the functions and the run IDs the sample events name.
const (
	SamStoreTable  = "discovery-store"
	SamBudgetTable = "discovery-budget"
	SamScanQueue   = "discovery-scan"
	SamExportQueue = "discovery-export"
	SamBucket      = "discovery-exports"
	// SamTokenSecret is the secret's name: GetSecretValue takes a name as well as an
	// ARN, so env.json can name it before it exists (an ARN ends in a random suffix).
	SamTokenSecret = "discovery-agent-local/gitlab-token"
	SamToken       = "sim-token"
	// SamScanRun is the running run the group samples belong to; the schedule sample
	// finds it active. SamExportRun has scanned everything and waits for its export,
	// the export sample's run.
	SamScanRun   = "20251125T020000Z-1a2b3c"
	SamExportRun = "20251124T020000Z-9f8e7d"
)

// SamSimOptions is the simulated GitLab of `make sam-local-env`: the sample events'
// groups (platform, 11 platform/services, 17 platform/shared/tools) are among its.
var SamSimOptions = gitlabsim.Options{Seed: 1, Groups: 6, Projects: 300, Token: SamToken}

// SamClients are the AWS clients SetUpSamLocal creates resources with.
type SamClients struct {
	DynamoDB       *dynamodb.Client
	SQS            *sqs.Client
	S3             *s3.Client
	SecretsManager *secretsmanager.Client
}

// NewSamClients returns clients for the emulator at endpoint, with test credentials.
func NewSamClients(endpoint string) SamClients {
	cfg := aws.Config{
		Region:       mototest.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
	return SamClients{
		DynamoDB:       dynamodb.NewFromConfig(cfg),
		SQS:            sqs.NewFromConfig(cfg),
		S3:             s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }),
		SecretsManager: secretsmanager.NewFromConfig(cfg),
	}
}

// SetUpSamLocal creates, as template.yaml declares them, the tables, queues (with
// their dead-letter queues), bucket and token secret events/env.json names, and the
// two runs the sample events name.
func SetUpSamLocal(ctx context.Context, c SamClients) error {
	if err := mototest.CreateTables(ctx, c.DynamoDB, SamStoreTable, SamBudgetTable); err != nil {
		return err
	}
	for _, q := range []string{SamScanQueue, SamExportQueue} {
		if _, err := mototest.CreateQueue(ctx, c.SQS, q, mototest.QueueOptions{VisibilityTimeout: 5400 * time.Second}); err != nil {
			return err
		}
	}
	if err := mototest.CreateBucket(ctx, c.S3, SamBucket); err != nil {
		return err
	}
	if _, err := c.SecretsManager.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(SamTokenSecret), SecretString: aws.String(SamToken),
	}); err != nil {
		return fmt.Errorf("create secret %s: %w", SamTokenSecret, err)
	}
	return createSamRuns(ctx, dynamostore.New(c.DynamoDB, SamStoreTable, dynamostore.Options{}))
}

// createSamRuns records both runs although only one may be active: the export run
// is created and ended (releasing the lock), the scan run takes the lock, and the
// export run is then set to exporting, which changes its item alone.
func createSamRuns(ctx context.Context, st *dynamostore.Store) error {
	start := time.Date(2025, 11, 24, 2, 0, 0, 0, time.UTC)
	exp := inventory.Run{ID: SamExportRun, Status: inventory.RunRunning, StartedAt: start}
	if err := st.CreateRun(ctx, exp); err != nil {
		return err
	}
	exp.Status = inventory.RunFailed
	if err := st.UpdateRun(ctx, exp); err != nil {
		return err
	}
	if err := st.CreateRun(ctx, inventory.Run{ID: SamScanRun, Status: inventory.RunRunning, StartedAt: start.Add(24 * time.Hour)}); err != nil {
		return err
	}
	exp.Status = inventory.RunExporting
	return st.UpdateRun(ctx, exp)
}
