package lambdaapp

import (
	"errors"
	"os"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/dynamostore"
)

// Settings are a function's configuration: the agent's shared variables (config) plus
// the Lambda-only ones that name the AWS resources. template.yaml sets them.
type Settings struct {
	Config config.Config

	StoreTable     string // STORE_TABLE: run state and records (internal/dynamostore)
	BudgetTable    string // BUDGET_TABLE: the shared API-rate budget (internal/dynamobudget)
	ScanQueueURL   string // SCAN_QUEUE_URL: group-scan messages, consumed by the worker
	ExportQueueURL string // EXPORT_QUEUE_URL: export messages, consumed by the exporter
	ExportBucket   string // EXPORT_BUCKET
	// ScanDLQURL and ExportDLQURL are the queues' dead-letter queues (SCAN_DLQ_URL,
	// EXPORT_DLQ_URL), read only by `discovery-agent serve` with BACKEND=aws for its
	// dead-letter gauge; unset, they count as empty.
	ScanDLQURL   string
	ExportDLQURL string
	ExportPrefix string // EXPORT_PREFIX: key prefix in the bucket, e.g. "discovery/"

	// TokenSecretARN names the Secrets Manager secret holding the GitLab token
	// (GITLAB_TOKEN_SECRET_ARN). Functions that never call GitLab (the exporter) have none.
	TokenSecretARN string
	// Endpoint is AWS_ENDPOINT_URL: set only against an emulator (moto, local tests).
	// Only then may the token come from GITLAB_TOKEN.
	Endpoint string

	MaxReceiveCount    int           // MAX_RECEIVE_COUNT: the queues' maxReceiveCount; default 5
	MessageConcurrency int           // MESSAGE_CONCURRENCY: records of a batch handled at once; default 4
	DeadlineMargin     time.Duration // DEADLINE_MARGIN: stop taking pages this long before the deadline; default 30s
	RetryDelay         time.Duration // RETRY_DELAY: first redelivery delay of a failed message; default 30s
	RunTTL             time.Duration // RUN_RETENTION_DAYS: how long run data stays in DynamoDB; default 90 days
	BudgetChunk        int           // BUDGET_CHUNK: tokens one budget lease takes; default from RATE_LIMIT_RPM
	MetricsNamespace   string        // METRICS_NAMESPACE: CloudWatch namespace of the EMF metrics
}

// Vars are the variables only the Lambda functions read, besides config.Vars;
// template.yaml sets them and docs/DEPLOY.md lists them.
var Vars = []config.Var{
	{Name: "STORE_TABLE", Default: "", Meaning: "DynamoDB table of run state and records (required)"},
	{Name: "BUDGET_TABLE", Default: "", Meaning: "DynamoDB table of the shared API-rate budget (scheduler, worker)"},
	{Name: "SCAN_QUEUE_URL", Default: "", Meaning: "SQS queue of group-scan messages (scheduler, worker)"},
	{Name: "EXPORT_QUEUE_URL", Default: "", Meaning: "SQS queue of export messages (scheduler, worker, exporter)"},
	{Name: "EXPORT_BUCKET", Default: "", Meaning: "S3 bucket of the exports (exporter)"},
	{Name: "SCAN_DLQ_URL", Default: "", Meaning: "serve with BACKEND=aws: the scan queue's dead-letter queue, counted by discovery_dead_letters; unset counts 0"},
	{Name: "EXPORT_DLQ_URL", Default: "", Meaning: "serve with BACKEND=aws: the export queue's dead-letter queue, counted by discovery_dead_letters; unset counts 0"},
	{Name: "EXPORT_PREFIX", Default: "", Meaning: "Key prefix of the exports in the bucket, e.g. discovery/"},
	{Name: "GITLAB_TOKEN_SECRET_ARN", Default: "", Meaning: "Secrets Manager secret holding the GitLab token, read once per cold start (scheduler, worker)"},
	{Name: "AWS_ENDPOINT_URL", Default: "", Meaning: "AWS endpoint override, for emulators only; only then may GITLAB_TOKEN be set instead of the secret"},
	{Name: "MAX_RECEIVE_COUNT", Default: "5", Meaning: "The scan queue's maxReceiveCount: the delivery that reaches it records a failing group as an error"},
	{Name: "MESSAGE_CONCURRENCY", Default: "4", Meaning: "Records of one SQS batch handled at once"},
	{Name: "DEADLINE_MARGIN", Default: "30s", Meaning: "A group stops taking pages this long before the function's deadline and continues in a new message"},
	{Name: "RETRY_DELAY", Default: "30s", Meaning: "Delay before a failed message's next delivery, doubling per receive, at most 15m"},
	{Name: "RUN_RETENTION_DAYS", Default: "90", Meaning: "Days run data stays in DynamoDB (TTL)"},
	{Name: "BUDGET_CHUNK", Default: "", Meaning: "Calls one budget lease takes from DynamoDB; default RATE_LIMIT_RPM/60, at most 50"},
	{Name: "METRICS_NAMESPACE", Default: "DiscoveryAgent", Meaning: "CloudWatch namespace of the EMF metrics"},
}

// maxRetryDelay bounds the redelivery backoff; SQS allows up to 12 hours.
const maxRetryDelay = 15 * time.Minute

// SettingsFromEnv reads the settings from the process environment, as config.FromEnv
// does for the shared variables.
func SettingsFromEnv() (Settings, error) { return settingsFromEnv(false) }

// ServeSettingsFromEnv reads the settings of `discovery-agent serve` with BACKEND=aws.
// Unlike a Lambda function's, the agent's environment is its own, so GITLAB_TOKEN is
// accepted there as in local mode (GITLAB_TOKEN_SECRET_ARN still works).
func ServeSettingsFromEnv() (Settings, error) { return settingsFromEnv(true) }

func settingsFromEnv(serve bool) (Settings, error) {
	get := os.Getenv
	cfg, err := config.FromEnv()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	s := Settings{
		Config:           cfg,
		StoreTable:       strings.TrimSpace(get("STORE_TABLE")),
		BudgetTable:      strings.TrimSpace(get("BUDGET_TABLE")),
		ScanQueueURL:     strings.TrimSpace(get("SCAN_QUEUE_URL")),
		ExportQueueURL:   strings.TrimSpace(get("EXPORT_QUEUE_URL")),
		ExportBucket:     strings.TrimSpace(get("EXPORT_BUCKET")),
		ScanDLQURL:       strings.TrimSpace(get("SCAN_DLQ_URL")),
		ExportDLQURL:     strings.TrimSpace(get("EXPORT_DLQ_URL")),
		ExportPrefix:     strings.TrimLeft(strings.TrimSpace(get("EXPORT_PREFIX")), "/"),
		TokenSecretARN:   strings.TrimSpace(get("GITLAB_TOKEN_SECRET_ARN")),
		Endpoint:         strings.TrimSpace(get("AWS_ENDPOINT_URL")),
		MetricsNamespace: strings.TrimSpace(get("METRICS_NAMESPACE")),
	}
	if s.ExportPrefix != "" && !strings.HasSuffix(s.ExportPrefix, "/") {
		s.ExportPrefix += "/"
	}
	if s.MetricsNamespace == "" {
		s.MetricsNamespace = "DiscoveryAgent"
	}
	s.MaxReceiveCount = config.Int(get, "MAX_RECEIVE_COUNT", 5, 1, &errs)
	s.MessageConcurrency = config.Int(get, "MESSAGE_CONCURRENCY", 4, 1, &errs)
	s.BudgetChunk = config.Int(get, "BUDGET_CHUNK", 0, 0, &errs)
	s.DeadlineMargin = config.Duration(get, "DEADLINE_MARGIN", 30*time.Second, &errs)
	s.RetryDelay = config.Duration(get, "RETRY_DELAY", 30*time.Second, &errs)
	s.RunTTL = dynamostore.DefaultTTL
	if days := config.Int(get, "RUN_RETENTION_DAYS", 0, 1, &errs); days > 0 {
		s.RunTTL = time.Duration(days) * 24 * time.Hour
	}

	// In AWS the token lives in Secrets Manager only: a plain environment variable is
	// visible to anyone who can read the function's configuration.
	if s.Config.Token != "" && s.Endpoint == "" && !serve {
		errs = append(errs, errors.New("GITLAB_TOKEN must not be set on a Lambda function: store the token in Secrets Manager and set GITLAB_TOKEN_SECRET_ARN (GITLAB_TOKEN is accepted only with AWS_ENDPOINT_URL, against an emulator)"))
		s.Config.Token = ""
	}
	return s, errors.Join(errs...)
}
