package lambdaapp

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/dynamostore"
	"github.com/gl2gh/discovery-agent/internal/mototest"
)

func sqsSend(queueURL, body string) *sqs.SendMessageInput {
	return &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)}
}

func TestSettingsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		serve   bool // ServeSettingsFromEnv
		wantErr string
		check   func(t *testing.T, s Settings)
	}{
		{
			name: "defaults",
			env:  map[string]string{"STORE_TABLE": "store"},
			check: func(t *testing.T, s Settings) {
				if s.MaxReceiveCount != 5 || s.MessageConcurrency != 4 || s.DeadlineMargin != 30*time.Second ||
					s.RetryDelay != 30*time.Second || s.MetricsNamespace != "DiscoveryAgent" || s.RunTTL != dynamostore.DefaultTTL ||
					s.BudgetChunk != 0 || s.ExportPrefix != "" {
					t.Errorf("defaults = %+v", s)
				}
			},
		},
		{
			name: "every variable",
			env: map[string]string{
				"STORE_TABLE": "store", "BUDGET_TABLE": "budget", "SCAN_QUEUE_URL": "https://q/scan",
				"EXPORT_QUEUE_URL": "https://q/export", "EXPORT_BUCKET": "b", "EXPORT_PREFIX": "/discovery",
				"GITLAB_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:t", "MAX_RECEIVE_COUNT": "3",
				"MESSAGE_CONCURRENCY": "2", "DEADLINE_MARGIN": "45s", "RETRY_DELAY": "10", "RUN_RETENTION_DAYS": "30",
				"BUDGET_CHUNK": "20", "METRICS_NAMESPACE": "X", "ROOT_GROUPS": "a, b/c",
				"SCAN_DLQ_URL": " https://q/scan-dlq", "EXPORT_DLQ_URL": "https://q/export-dlq ",
			},
			check: func(t *testing.T, s Settings) {
				if s.ScanDLQURL != "https://q/scan-dlq" || s.ExportDLQURL != "https://q/export-dlq" {
					t.Errorf("DLQ URLs = %q, %q", s.ScanDLQURL, s.ExportDLQURL)
				}
				if s.ExportPrefix != "discovery/" {
					t.Errorf("EXPORT_PREFIX = %q, want discovery/", s.ExportPrefix)
				}
				if s.MaxReceiveCount != 3 || s.MessageConcurrency != 2 || s.DeadlineMargin != 45*time.Second ||
					s.RetryDelay != 10*time.Second || s.RunTTL != 720*time.Hour || s.BudgetChunk != 20 {
					t.Errorf("settings = %+v", s)
				}
				if len(s.Config.RootGroups) != 2 || s.Config.RootGroups[1] != "b/c" {
					t.Errorf("root groups = %v", s.Config.RootGroups)
				}
			},
		},
		{
			name:    "token in the environment on AWS",
			env:     map[string]string{"GITLAB_TOKEN": token},
			wantErr: "GITLAB_TOKEN_SECRET_ARN",
		},
		{
			name: "token in the environment against an emulator",
			env:  map[string]string{"GITLAB_TOKEN": token, "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"},
			check: func(t *testing.T, s Settings) {
				if s.Config.Token != token {
					t.Error("the token was not taken from GITLAB_TOKEN")
				}
			},
		},
		{
			name:  "token in the serving agent's own environment",
			env:   map[string]string{"GITLAB_TOKEN": token},
			serve: true,
			check: func(t *testing.T, s Settings) {
				if s.Config.Token != token {
					t.Error("the token was not taken from GITLAB_TOKEN")
				}
			},
		},
		{
			// A file is not the function's configuration: any mode may read one.
			name: "token in a file on AWS",
			env:  map[string]string{"GITLAB_TOKEN_FILE": tokenFile(t)},
			check: func(t *testing.T, s Settings) {
				if s.Config.Token != token {
					t.Error("the token was not read from GITLAB_TOKEN_FILE")
				}
			},
		},
		{name: "bad count", env: map[string]string{"MAX_RECEIVE_COUNT": "0"}, wantErr: `MAX_RECEIVE_COUNT="0": want an integer of at least 1`},
		{name: "bad retention", env: map[string]string{"RUN_RETENTION_DAYS": "0"}, wantErr: `RUN_RETENTION_DAYS="0": want an integer of at least 1`},
		{name: "bad shared variable", env: map[string]string{"RATE_LIMIT_RPM": "fast"}, wantErr: `RATE_LIMIT_RPM="fast"`},
		{name: "bad duration", env: map[string]string{"DEADLINE_MARGIN": "soon"}, wantErr: "DEADLINE_MARGIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"GITLAB_TOKEN", "GITLAB_TOKEN_FILE", "AWS_ENDPOINT_URL", "STORE_TABLE", "EXPORT_PREFIX", "MAX_RECEIVE_COUNT", "DEADLINE_MARGIN", "RUN_RETENTION_DAYS", "RATE_LIMIT_RPM"} {
				t.Setenv(k, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			read := SettingsFromEnv
			if tt.serve {
				read = ServeSettingsFromEnv
			}
			s, err := read()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), token) {
					t.Error("the error quotes the token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestValidate(t *testing.T) {
	full := Settings{
		Config:     config.Config{GitLabURL: "https://gitlab.example.com"},
		StoreTable: "store", BudgetTable: "budget", ScanQueueURL: "https://q/scan", ExportQueueURL: "https://q/export",
		ExportBucket: "bucket", TokenSecretARN: "arn:aws:secretsmanager:eu-west-1:1:secret:t",
	}
	empty := Settings{}
	tests := []struct {
		name string
		role config.Role
		s    Settings
		want string // the exact error; "" = valid
	}{
		{"scheduler", RoleScheduler, full, ""},
		{"worker", RoleWorker, full, ""},
		{"exporter", RoleExporter, full, ""},
		{"serve-aws", RoleServeAWS, full, ""},
		{"function", RoleFunction, full, ""},
		{"scheduler, nothing set", RoleScheduler, empty, "STORE_TABLE is not set\nBUDGET_TABLE is not set\nSCAN_QUEUE_URL is not set\n" +
			"EXPORT_QUEUE_URL is not set\nGITLAB_URL is not set\nGITLAB_TOKEN_SECRET_ARN is not set"},
		{"worker, nothing set", RoleWorker, empty, "STORE_TABLE is not set\nBUDGET_TABLE is not set\nSCAN_QUEUE_URL is not set\n" +
			"EXPORT_QUEUE_URL is not set\nGITLAB_URL is not set\nGITLAB_TOKEN_SECRET_ARN is not set"},
		{"exporter, nothing set", RoleExporter, empty, "STORE_TABLE is not set\nEXPORT_QUEUE_URL is not set\nEXPORT_BUCKET is not set"},
		{"serve-aws, nothing set", RoleServeAWS, empty, "STORE_TABLE is not set\nBUDGET_TABLE is not set\nSCAN_QUEUE_URL is not set\n" +
			"EXPORT_QUEUE_URL is not set\nEXPORT_BUCKET is not set\nGITLAB_URL is not set\nGITLAB_TOKEN is not set (nor GITLAB_TOKEN_SECRET_ARN)"},
		{"function, nothing set", RoleFunction, empty, "STORE_TABLE is not set"},
		{"exporter needs no GitLab", RoleExporter, with(full, func(s *Settings) { s.Config.GitLabURL, s.TokenSecretARN, s.BudgetTable = "", "", "" }), ""},
		{"worker with the token read", RoleWorker, with(full, func(s *Settings) { s.TokenSecretARN, s.Config.Token = "", token }), ""},
		{"serve-aws with GITLAB_TOKEN", RoleServeAWS, with(full, func(s *Settings) { s.TokenSecretARN, s.Config.Token = "", token }), ""},
		{"URL without a scheme", RoleWorker, with(full, func(s *Settings) { s.Config.GitLabURL = "gitlab" }),
			`GITLAB_URL "gitlab" must start with http:// or https://`},
		{"a local role", config.RoleScan, full, `no configuration rules for role "scan"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := tt.s.Validate(tt.role); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate(%s) =\n%s\nwant\n%s", tt.role, got, tt.want)
			}
		})
	}
}

func with(s Settings, change func(*Settings)) Settings {
	change(&s)
	return s
}

// Every rule is about a declared variable, and every role requires at least its store.
func TestRequired(t *testing.T) {
	declared := map[string]bool{}
	for _, v := range append(config.Vars(), Vars()...) {
		declared[v.Name] = true
	}
	for _, r := range rules {
		if !declared[r.Var] {
			t.Errorf("a rule is about %s, which is not declared", r.Var)
		}
	}
	if got, want := Required(RoleExporter), []string{"STORE_TABLE", "EXPORT_QUEUE_URL", "EXPORT_BUCKET"}; !slices.Equal(got, want) {
		t.Errorf("Required(exporter) = %v, want %v", got, want)
	}
}

// The documented defaults are the defaults: setting every variable to its documented
// default changes nothing.
func TestDocumentedDefaults(t *testing.T) {
	var unset, documented Settings
	if err := unset.declare().Parse(func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, v := range Vars() {
		docs[v.Name] = v.Default
	}
	if err := documented.declare().Parse(func(k string) string { return docs[k] }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(unset, documented) {
		t.Errorf("unset: %+v\nat the documented defaults: %+v", unset, documented)
	}
}

// docs/DEPLOY.md's table of the functions' variables is the declarations.
func TestDeployTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/DEPLOY.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Environment variables of the functions\n")
	if !ok {
		t.Fatal("docs/DEPLOY.md has no section Environment variables of the functions")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, d := range config.DiffTable(section, Vars()) {
		t.Errorf("docs/DEPLOY.md: %s", d)
	}
}

func TestReadToken(t *testing.T) {
	srv := mototest.Shared(t, mototest.Serial())
	ctx := context.Background()
	client := secretsmanager.NewFromConfig(srv.Config(ctx))
	tests := []struct {
		name, value, want, wantErr string
	}{
		{name: "bare", value: token + "\n", want: token},
		{name: "json", value: `{"token":"` + token + `"}`, want: token},
		{name: "empty json", value: `{"token":""}`, wantErr: "holds no GitLab token"},
		{name: "blank", value: "  ", wantErr: "holds no GitLab token"},
		{name: "broken json", value: `{"token":"` + token, wantErr: "not a token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
				Name: aws.String(mototest.Name("tok")), SecretString: aws.String(tt.value),
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := readToken(ctx, client, aws.ToString(out.ARN))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), token) {
					t.Error("the error quotes the secret")
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("readToken = %q, %v", got, err)
			}
		})
	}
	if _, err := readToken(ctx, client, "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing"); err == nil {
		t.Error("a missing secret was read")
	}
}

// tokenFile writes the token to a file and returns its path.
func tokenFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
