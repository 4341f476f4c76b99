package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/engine"
	"github.com/gl2gh/discovery-agent/internal/lambdaapp"
	"github.com/gl2gh/discovery-agent/internal/readiness"
	"github.com/gl2gh/discovery-agent/local/awsagent"
	"github.com/gl2gh/discovery-agent/local/runner"
)

// TestRootsAgree builds the engine through every composition root — the local runner
// (scan and serve), a Lambda function, and serve with BACKEND=aws — from one
// environment, and checks that each worker and client really uses every setting.
func TestRootsAgree(t *testing.T) {
	dir := t.TempDir()
	th := filepath.Join(dir, "thresholds.yaml")
	if err := os.WriteFile(th, []byte("many_issues: 123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"GITLAB_URL": "http://127.0.0.1:1", "GITLAB_TOKEN": "t",
		"ROOT_GROUPS": "a,b/c", "INCLUDE_PERSONAL_PROJECTS": "true",
		"RATE_LIMIT_RPM": "900", "RATE_LIMIT_ENDPOINTS": "groups/:id/projects=300,projects/:id=200",
		"MAX_API_CALLS": "5000", "MAX_PER_PROJECT_CALLS": "77", "CONCURRENT_REQUESTS": "3",
		"REQUEST_TIMEOUT": "7s", "FULL_SCAN_EVERY": "24h", "GITLAB_API": "rest", "READINESS_THRESHOLDS": th, "MIGRATION_PATH": "gei",
		"DATA_DIR": filepath.Join(dir, "data"), "EXPORT_DIR": filepath.Join(dir, "exports"),
		// The Lambda variables (an emulator endpoint lets GITLAB_TOKEN stand).
		"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "STORE_TABLE": "store", "BUDGET_TABLE": "budget",
		"SCAN_QUEUE_URL": "http://127.0.0.1:1/q/scan", "EXPORT_QUEUE_URL": "http://127.0.0.1:1/q/export",
		"EXPORT_BUCKET": "exports", "DEADLINE_MARGIN": "45s",
		"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	wantTh, err := readiness.PathThresholds(readiness.PathGEI) // the file overrides the path's defaults
	if err != nil {
		t.Fatal(err)
	}
	wantTh.ManyIssues = 123
	want := engine.Effective{
		FullScanEvery: 24 * time.Hour, EndpointRPM: map[string]int{"groups/:id/projects": 300, "projects/:id": 200},
		MaxPerProjectCalls: 77, Concurrency: 3, RequestConcurrency: 3, RequestTimeout: 7 * time.Second,
		Thresholds: wantTh, RootGroups: []string{"a", "b/c"}, IncludePersonal: true, API: "rest",
	}

	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	r, err := runner.New(cfg, runner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	check(t, "local runner", r.Effective(), want)

	// The Lambda functions and serve with BACKEND=aws also stop before their deadline.
	want.DeadlineMargin = 45 * time.Second
	awsCfg := aws.Config{Region: "us-east-1"}
	ls, err := lambdaapp.SettingsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	app, err := lambdaapp.New(context.Background(), ls, awsCfg, lambdaapp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eff, err := app.Effective("run-1")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Lambda worker", eff, want)

	ss, err := lambdaapp.ServeSettingsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	b, err := awsagent.New(context.Background(), ss, awsCfg, awsagent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eff, err = b.Effective("run-1")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "serve BACKEND=aws", eff, want)
}

func check(t *testing.T, root string, got, want engine.Effective) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s: effective settings\n got %+v\nwant %+v", root, got, want)
	}
}
