package lambdaapp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

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
					s.RetryDelay != 30*time.Second || s.MetricsNamespace != "DiscoveryAgent" {
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
		{name: "bad count", env: map[string]string{"MAX_RECEIVE_COUNT": "0"}, wantErr: "MAX_RECEIVE_COUNT"},
		{name: "bad duration", env: map[string]string{"DEADLINE_MARGIN": "soon"}, wantErr: "DEADLINE_MARGIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"GITLAB_TOKEN", "AWS_ENDPOINT_URL", "STORE_TABLE", "EXPORT_PREFIX", "MAX_RECEIVE_COUNT", "DEADLINE_MARGIN"} {
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
