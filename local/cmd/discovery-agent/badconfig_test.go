package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// result is how a finished discovery-agent process ended.
type result struct {
	code           int
	stdout, stderr string
}

// lastLine is the last line of stderr: where the one-line reason goes.
func (r result) lastLine() string {
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	return lines[len(lines)-1]
}

// runAgent runs the agent to its end, within two minutes.
func runAgent(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := buildAgent(t)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = agentCmd(bin, env).Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("discovery-agent %v did not end within its time:\n%s", args, stderr.String())
	case errors.As(err, &ee):
		return result{ee.ExitCode(), stdout.String(), stderr.String()}
	case err != nil:
		t.Fatal(err)
	}
	return result{0, stdout.String(), stderr.String()}
}

// A bad configuration fails before any work, with exit code 2 (exitUsage; 1 when
// GitLab, not the configuration, says no) and one line on stderr that names what is
// wrong.
func TestBadConfiguration(t *testing.T) {
	_, url := startSim(t, gitlabsim.Options{Seed: 1, Groups: 2, Projects: 4})
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v4/user" {
			io.WriteString(w, `{"id":1,"username":"nobody"}`)
			return
		}
		io.WriteString(w, `[]`)
	}))
	defer empty.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	badYAML := filepath.Join(dir, "thresholds.yaml")
	if err := os.WriteFile(badYAML, []byte("large_repo_bytes: [unclosed"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := map[string]string{"GITLAB_URL": url, "GITLAB_TOKEN": token}
	tests := []struct {
		name     string
		env      map[string]string // over good
		args     []string          // after "scan"
		code     int
		want     string
		oneLine  bool // nothing else on stderr: it failed before logging started
		noSimEnv bool // start from an empty environment, not from good
	}{
		{name: "GITLAB_URL unset", env: map[string]string{"GITLAB_TOKEN": token}, noSimEnv: true, code: exitUsage, want: "GITLAB_URL is not set", oneLine: true},
		{name: "GITLAB_URL without a scheme", env: map[string]string{"GITLAB_URL": "gitlab.example.com"}, code: exitUsage, want: "must start with http", oneLine: true},
		{name: "GITLAB_URL of another scheme", env: map[string]string{"GITLAB_URL": "ftp://gitlab.example.com"}, code: exitUsage, want: "must start with http", oneLine: true},
		{name: "credentials in GITLAB_URL", env: map[string]string{"GITLAB_URL": "https://user:url-secret-77@gitlab.example.com"}, code: exitUsage, want: "must not contain credentials", oneLine: true},
		{name: "credentials in --gitlab-url", args: []string{"--gitlab-url", "https://user:url-secret-77@gitlab.example.com"}, code: exitUsage, want: "must not contain credentials", oneLine: true},
		{name: "--gitlab-url not a URL", args: []string{"--gitlab-url", "not a url"}, code: exitUsage, want: "GITLAB_URL", oneLine: true},
		{name: "GITLAB_TOKEN unset", env: map[string]string{"GITLAB_URL": url}, noSimEnv: true, code: exitUsage, want: "GITLAB_TOKEN is not set", oneLine: true},
		{name: "a word for a number", env: map[string]string{"MAX_API_CALLS": "many"}, code: exitUsage, want: "MAX_API_CALLS", oneLine: true},
		{name: "a number below its minimum", env: map[string]string{"CONCURRENT_REQUESTS": "0"}, code: exitUsage, want: "CONCURRENT_REQUESTS", oneLine: true},
		{name: "a negative number", env: map[string]string{"RATE_LIMIT_RPM": "-5"}, code: exitUsage, want: "RATE_LIMIT_RPM", oneLine: true},
		{name: "a bad duration", env: map[string]string{"REQUEST_TIMEOUT": "soon"}, code: exitUsage, want: "REQUEST_TIMEOUT", oneLine: true},
		{name: "a bad boolean", env: map[string]string{"INCLUDE_PERSONAL_PROJECTS": "maybe"}, code: exitUsage, want: "INCLUDE_PERSONAL_PROJECTS", oneLine: true},
		{name: "a thresholds file that does not exist", env: map[string]string{"READINESS_THRESHOLDS": filepath.Join(dir, "nope.yaml")}, code: exitUsage, want: "nope.yaml"},
		{name: "a thresholds file that does not parse", env: map[string]string{"READINESS_THRESHOLDS": badYAML}, code: exitUsage, want: "thresholds"},
		{name: "a thresholds path that is a directory", env: map[string]string{"READINESS_THRESHOLDS": dir}, code: exitUsage, want: "thresholds"},
		{name: "DATA_DIR not writable", env: map[string]string{"DATA_DIR": filepath.Join(file, "data")}, code: exitUsage, want: "DATA_DIR " + filepath.Join(file, "data") + " is not writable", oneLine: true},
		{name: "EXPORT_DIR not writable", env: map[string]string{"EXPORT_DIR": filepath.Join(file, "exports")}, code: exitUsage, want: "EXPORT_DIR " + filepath.Join(file, "exports") + " is not writable", oneLine: true},
		{name: "--out not writable", args: []string{"--out", file}, code: exitUsage, want: "EXPORT_DIR " + file + " is not writable", oneLine: true},
		{name: "a token file that does not exist", env: map[string]string{"GITLAB_TOKEN": "", "GITLAB_TOKEN_FILE": filepath.Join(dir, "no-token")}, code: exitUsage, want: "GITLAB_TOKEN_FILE: open " + filepath.Join(dir, "no-token"), oneLine: true},
		{name: "a word for a number in a flag", args: []string{"--max-api-calls", "many"}, code: exitUsage, want: `--max-api-calls "many": want an integer`, oneLine: true},
		{name: "an unknown flag", args: []string{"--frobnicate"}, code: exitUsage, want: "unknown flag: --frobnicate", oneLine: true},
		{name: "a bad flag value", args: []string{"--redrive=perhaps"}, code: exitUsage, want: "redrive", oneLine: true},
		{name: "a stray argument", args: []string{"extra"}, code: exitUsage, want: `unexpected argument "extra"`, oneLine: true},
		{name: "a root group that does not exist", env: map[string]string{"ROOT_GROUPS": "no-such-group"}, code: exitFailed, want: `"no-such-group" (404)`},
		{name: "a token that sees nothing", env: map[string]string{"GITLAB_URL": empty.URL}, code: exitFailed, want: "sees no groups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			if !tt.noSimEnv {
				for k, v := range good {
					env[k] = v
				}
			}
			for k, v := range tt.env {
				env[k] = v
			}
			d := t.TempDir()
			for k, v := range map[string]string{"DATA_DIR": filepath.Join(d, "data"), "EXPORT_DIR": filepath.Join(d, "exports")} {
				if _, set := env[k]; !set {
					env[k] = v
				}
			}
			res := runAgent(t, env, append([]string{"scan"}, tt.args...)...)
			if res.code != tt.code {
				t.Errorf("exit code %d, want %d\n%s", res.code, tt.code, res.stderr)
			}
			last := res.lastLine()
			if !strings.HasPrefix(last, "discovery-agent: ") || !strings.Contains(last, tt.want) {
				t.Errorf("last stderr line %q, want a one-line reason saying %q", last, tt.want)
			}
			if tt.oneLine && strings.Count(strings.TrimSpace(res.stderr), "\n") > 0 {
				t.Errorf("stderr has more than the one line:\n%s", res.stderr)
			}
			if strings.Contains(res.stderr+res.stdout, token) || strings.Contains(res.stderr+res.stdout, "url-secret-77") {
				t.Error("output contains the token")
			}
			if _, err := os.Stat(filepath.Join(env["EXPORT_DIR"], "latest")); err == nil {
				t.Error("a bad configuration wrote exports")
			}
		})
	}
}
