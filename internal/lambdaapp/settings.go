package lambdaapp

import (
	"errors"
	"os"
	"slices"
	"strconv"
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
	BudgetChunk        int           // BUDGET_CHUNK: tokens one budget lease takes; 0 = one second at the current pace
	MetricsNamespace   string        // METRICS_NAMESPACE: CloudWatch namespace of the EMF metrics
}

// declare declares the Lambda-only variables, stored into s; docs/DEPLOY.md's table
// shows them in this order.
func (s *Settings) declare() *config.Set {
	v := new(config.Set)
	v.String(&s.StoreTable, "STORE_TABLE", "", "DynamoDB table of run state and records")
	v.String(&s.BudgetTable, "BUDGET_TABLE", "", "DynamoDB table of the shared API-rate budget")
	v.String(&s.ScanQueueURL, "SCAN_QUEUE_URL", "", "SQS queue of group-scan messages")
	v.String(&s.ExportQueueURL, "EXPORT_QUEUE_URL", "", "SQS queue of export messages")
	v.String(&s.ExportBucket, "EXPORT_BUCKET", "", "S3 bucket the exporter writes to")
	v.Func("EXPORT_PREFIX", "", "Key prefix of the exports in the bucket, e.g. `discovery/`",
		func(p string) error { s.ExportPrefix = exportPrefix(p); return nil })
	v.String(&s.TokenSecretARN, "GITLAB_TOKEN_SECRET_ARN", "", "Secrets Manager secret holding the GitLab token, read once per cold start")
	v.String(&s.Endpoint, "AWS_ENDPOINT_URL", "", "AWS endpoint override, for emulators only; only then may `GITLAB_TOKEN` replace the secret")
	v.String(&s.ScanDLQURL, "SCAN_DLQ_URL", "", "`serve` with `BACKEND=aws` only: the scan queue's dead-letter queue, counted by the `discovery_dead_letter_messages` gauge; unset counts 0")
	v.String(&s.ExportDLQURL, "EXPORT_DLQ_URL", "", "`serve` with `BACKEND=aws` only: the export queue's dead-letter queue, counted by the `discovery_dead_letter_messages` gauge; unset counts 0")
	v.Int(&s.MaxReceiveCount, "MAX_RECEIVE_COUNT", 5, 1, "The queues' `maxReceiveCount`: the delivery that reaches it records a failing group as an error")
	v.Int(&s.MessageConcurrency, "MESSAGE_CONCURRENCY", 4, 1, "Records of one SQS batch handled at once (the template sets `WorkerBatchSize`)")
	v.Duration(&s.DeadlineMargin, "DEADLINE_MARGIN", 30*time.Second, "A group stops taking pages this long before the function's deadline and continues in a new message; a page still running half of it before the deadline stops there and continues in a message for the same page (template: 60s)")
	v.Duration(&s.RetryDelay, "RETRY_DELAY", 30*time.Second, "Delay before a failed message's next delivery, doubling per receive, at most 15m")
	s.RunTTL = dynamostore.DefaultTTL
	v.Func("RUN_RETENTION_DAYS", strconv.Itoa(int(dynamostore.DefaultTTL/(24*time.Hour))), "Days run data stays in DynamoDB (TTL)",
		func(p string) error {
			days, err := config.ParseInt(p, 1)
			if err == nil {
				s.RunTTL = time.Duration(days) * 24 * time.Hour
			}
			return err
		})
	v.Int(&s.BudgetChunk, "BUDGET_CHUNK", 0, 0, "Calls one budget lease takes from DynamoDB; 0 = one second at the current pace (at least 1, at most 50)")
	v.String(&s.MetricsNamespace, "METRICS_NAMESPACE", "DiscoveryAgent", "CloudWatch namespace of the EMF metrics")
	return v
}

// Vars returns the variables only the Lambda functions (and serve with BACKEND=aws)
// read, besides config.Vars, in the order of docs/DEPLOY.md's table. A variable's
// meaning ends with the roles that require it, from the rules Validate checks.
func Vars() []config.Var {
	vars := new(Settings).declare().Vars()
	for i, v := range vars {
		var by []string
		for _, r := range rules {
			if r.Var != v.Name {
				continue
			}
			for _, role := range r.Roles {
				if name := roleNames[role]; name != "" && !slices.Contains(by, name) {
					by = append(by, name)
				}
			}
		}
		if by != nil {
			vars[i].Meaning += " (required by " + strings.Join(by, ", ") + ")"
		}
	}
	return vars
}

// roleNames are the roles as the docs name them; RoleFunction is an implementation
// detail the others include.
var roleNames = map[config.Role]string{
	RoleScheduler: "scheduler", RoleWorker: "worker", RoleExporter: "exporter", RoleReconciler: "reconciler",
	RoleServeAWS: "`serve` with `BACKEND=aws`",
}

// The roles of the AWS deployment, besides config's local ones.
const (
	RoleScheduler config.Role = "scheduler" // the scheduler function
	RoleWorker    config.Role = "worker"    // the worker function
	RoleExporter  config.Role = "exporter"  // the exporter function
	// RoleReconciler is the reconciler function: it re-sends lost messages.
	RoleReconciler config.Role = "reconciler"
	RoleServeAWS   config.Role = "serve-aws" // discovery-agent serve with BACKEND=aws: every role at once
	// RoleFunction is what any function needs before its handler is known (New).
	RoleFunction config.Role = "function"
)

// rules are what each role requires. The token may be in Settings already (GITLAB_TOKEN
// against an emulator or on serve, or read from the secret by New) or still behind
// GITLAB_TOKEN_SECRET_ARN.
var rules = config.Rules[Settings]{
	config.NotEmpty("STORE_TABLE", func(s Settings) string { return s.StoreTable },
		RoleFunction, RoleScheduler, RoleWorker, RoleExporter, RoleReconciler, RoleServeAWS),
	config.NotEmpty("BUDGET_TABLE", func(s Settings) string { return s.BudgetTable }, RoleScheduler, RoleWorker, RoleServeAWS),
	config.NotEmpty("SCAN_QUEUE_URL", func(s Settings) string { return s.ScanQueueURL }, RoleScheduler, RoleWorker, RoleReconciler, RoleServeAWS),
	// The scheduler queues the export itself when a run has no groups; the exporter
	// delays a failed message's redelivery on it.
	config.NotEmpty("EXPORT_QUEUE_URL", func(s Settings) string { return s.ExportQueueURL },
		RoleScheduler, RoleWorker, RoleExporter, RoleReconciler, RoleServeAWS),
	config.NotEmpty("EXPORT_BUCKET", func(s Settings) string { return s.ExportBucket }, RoleExporter, RoleServeAWS),
	{Var: "GITLAB_URL", Roles: []config.Role{RoleScheduler, RoleWorker, RoleServeAWS},
		Check: func(s Settings) error { return config.CheckURL(s.Config.GitLabURL) }},
	{Var: "GITLAB_TOKEN_SECRET_ARN", Roles: []config.Role{RoleScheduler, RoleWorker},
		Check: func(s Settings) error { return hasToken(s, "GITLAB_TOKEN_SECRET_ARN is not set") }},
	{Var: "GITLAB_TOKEN", Roles: []config.Role{RoleServeAWS},
		Check: func(s Settings) error { return hasToken(s, "GITLAB_TOKEN is not set (nor GITLAB_TOKEN_SECRET_ARN)") }},
}

func hasToken(s Settings, missing string) error {
	if s.Config.Token == "" && s.TokenSecretARN == "" {
		return errors.New(missing)
	}
	return nil
}

// Validate checks what role requires and reports every variable it lacks, one line
// each.
func (s Settings) Validate(role config.Role) error { return rules.Validate(s, role) }

// Required lists the variables role must set, in the order Validate checks them.
func Required(role config.Role) []string { return rules.Required(role) }

// exportPrefix makes a key prefix relative and ending in "/", or leaves it empty.
func exportPrefix(p string) string {
	p = strings.TrimLeft(p, "/")
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
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
	var errs []error
	cfg, err := config.FromEnv()
	if err != nil {
		errs = append(errs, err)
	}
	var s Settings
	if err := s.declare().Parse(os.Getenv); err != nil {
		errs = append(errs, err)
	}
	s.Config = cfg

	// In AWS the token lives in Secrets Manager (or a file, GITLAB_TOKEN_FILE): a plain
	// environment variable is visible to anyone who can read the function's configuration.
	if s.Config.Token != "" && !s.Config.TokenFromFile() && s.Endpoint == "" && !serve {
		errs = append(errs, errors.New("GITLAB_TOKEN must not be set on a Lambda function: store the token in Secrets Manager and set GITLAB_TOKEN_SECRET_ARN (GITLAB_TOKEN is accepted only with AWS_ENDPOINT_URL, against an emulator)"))
		s.Config.Token = ""
	}
	return s, errors.Join(errs...)
}
