package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// The command line as a user meets it, on the real binary: every command's help exits
// 0 even with a malformed setting in the environment, anything unknown exits 2 with a
// message, a bad setting exits 2, a token GitLab rejects exits 3, and a flag beats its
// variable.
func TestCommandLine(t *testing.T) {
	_, url := startSim(t, gitlabsim.Options{Seed: 1, Groups: 2, Projects: 4})
	good := map[string]string{"GITLAB_URL": url, "GITLAB_TOKEN": token, "RATE_LIMIT_RPM": "0"}
	with := func(kv ...string) map[string]string {
		env := map[string]string{}
		for k, v := range good {
			env[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	// Help never reads the configuration.
	malformed := with("MAX_API_CALLS", "many", "LOG_FORMAT", "xml")
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stdout string // in stdout
		stderr string // in stderr's last line
		not    string // not in stdout
	}{
		{name: "help", env: malformed, args: []string{"--help"}, stdout: "Available Commands:"},
		{name: "no command", env: malformed, args: nil, stdout: "Available Commands:"},
		{name: "help scan", env: malformed, args: []string{"help", "scan"}, stdout: "--root-groups"},
		{name: "scan --help", env: malformed, args: []string{"scan", "--help"}, stdout: "--gitlab-url"},
		{name: "scan -h", env: malformed, args: []string{"scan", "-h"}, stdout: "--dry-run"},
		{name: "serve --help", env: malformed, args: []string{"serve", "--help"}, stdout: "--health-addr"},
		{name: "healthcheck --help", env: malformed, args: []string{"healthcheck", "--help"}, stdout: "--url"},
		{name: "version --help", env: malformed, args: []string{"version", "--help"}, stdout: "version"},
		{name: "completion --help", env: malformed, args: []string{"completion", "--help"}, stdout: "bash"},
		{name: "completion bash --help", env: malformed, args: []string{"completion", "bash", "--help"}, stdout: "bash"},
		{name: "completion bash", env: malformed, args: []string{"completion", "bash"}, stdout: "__start_discovery-agent"},
		{name: "completion zsh", env: malformed, args: []string{"completion", "zsh"}, stdout: "#compdef discovery-agent"},
		{name: "version", env: malformed, args: []string{"version"}, stdout: "commit "},
		{name: "--version", env: malformed, args: []string{"--version"}, stdout: "built "},

		{name: "unknown command", env: good, args: []string{"scna"}, code: exitUsage, stderr: `unknown command "scna"`},
		{name: "unknown flag", env: good, args: []string{"scan", "--frobnicate"}, code: exitUsage, stderr: "unknown flag: --frobnicate"},
		{name: "serve has no --port", env: good, args: []string{"serve", "--port", "1234"}, code: exitUsage, stderr: "unknown flag: --port"},
		{name: "the token is no flag", env: good, args: []string{"scan", "--gitlab-token", "x"}, code: exitUsage, stderr: "unknown flag: --gitlab-token"},
		{name: "a stray argument", env: good, args: []string{"version", "now"}, code: exitUsage, stderr: `unexpected argument "now"`},
		{name: "bad setting", env: with("CONCURRENT_REQUESTS", "none"), args: []string{"scan"}, code: exitUsage, stderr: "CONCURRENT_REQUESTS"},
		{name: "bad flag value", env: good, args: []string{"scan", "--log-format", "xml"}, code: exitUsage, stderr: `--log-format "xml": want auto, json or text`},
		{name: "bad serve setting", env: with("SCAN_SCHEDULE", "every tuesday"), args: []string{"serve"}, code: exitUsage, stderr: "configuration"},
		{name: "a serve flag beats its variable", env: with("BACKEND", "local"), args: []string{"serve", "--backend", "elsewhere"}, code: exitUsage, stderr: `BACKEND "elsewhere": want local or aws`},
		{name: "bad token", env: with("GITLAB_TOKEN", "rejected-token-42"), args: []string{"scan"}, code: exitAuth, stderr: "401"},
		{name: "bad token from a file", env: with("GITLAB_TOKEN", "", "GITLAB_TOKEN_FILE", writeFile(t, "rejected-token-43\n")), args: []string{"scan"}, code: exitAuth, stderr: "401"},
		// The flag beats the malformed variable: the dry run reads it and succeeds.
		{name: "a flag beats its variable", env: with("MAX_API_CALLS", "many"), args: []string{"scan", "--dry-run", "--max-api-calls", "100"}, stdout: "projects in scope"},
		{name: "a flag given twice keeps the last", env: good, args: []string{"scan", "--dry-run", "--max-api-calls", "many", "--max-api-calls", "7"}, stdout: "projects in scope"},
		{name: "a list flag given twice adds", env: good, args: []string{"scan", "--dry-run", "--root-groups", "no-such-group", "--root-group", "other"}, code: exitFailed, stderr: "no-such-group"},
		{name: "a scan prints its summary", env: good, args: []string{"scan"}, stdout: "readiness (mirror): ready "},
		{name: "a quiet scan prints only its result", env: good, args: []string{"scan", "--quiet"}, stdout: "exports: ", not: "readiness"},
		{name: "an aliased flag", env: good, args: []string{"scan", "--dry-run", "--root-group", "no-such-group"}, code: exitFailed, stderr: "no-such-group"},
	}
	bin := buildAgent(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			env := map[string]string{"DATA_DIR": filepath.Join(d, "data"), "EXPORT_DIR": filepath.Join(d, "exports")}
			for k, v := range tt.env {
				env[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			cmd.Env = agentCmd(bin, env).Env
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			code, _ := exitOf(cmd.Run())
			res := result{code, stdout.String(), stderr.String()}
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", res.code, tt.code, res.stdout, res.stderr)
			}
			if !strings.Contains(res.stdout, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, res.stdout)
			}
			if tt.stderr != "" && (!strings.HasPrefix(res.lastLine(), "discovery-agent: ") || !strings.Contains(res.lastLine(), tt.stderr)) {
				t.Errorf("last stderr line %q, want one saying %q", res.lastLine(), tt.stderr)
			}
			if tt.not != "" && strings.Contains(res.stdout, tt.not) {
				t.Errorf("stdout says %q:\n%s", tt.not, res.stdout)
			}
			// Help, version and a quiet scan write nothing else.
			if tt.code == 0 && res.stderr != "" && !slices.Contains(tt.args, "--dry-run") && !slices.Equal(tt.args, []string{"scan"}) {
				t.Errorf("stderr is not empty:\n%s", res.stderr)
			}
			for _, secret := range []string{token, "rejected-token"} {
				if strings.Contains(res.stdout+res.stderr, secret) {
					t.Errorf("output contains a token")
				}
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// `make build`'s linker flags reach `version` and `--version`.
func TestVersionFromLinker(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "discovery-agent")
	ldflags := "-X main.version=v9.8.7 -X main.commit=0123abcd -X main.date=2030-01-02T03:04:05Z"
	if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		want := "discovery-agent v9.8.7 (commit 0123abcd, built 2030-01-02T03:04:05Z"
		if err != nil || !strings.HasPrefix(string(out), want) {
			t.Errorf("%s: %q, %v; want %q…", arg, out, err, want)
		}
	}
}

// SIGINT mid-scan exits 130 with the way on; the next scan resumes the same run and
// completes it, its exports equal to the truth.
func TestInterruptExits130AndResumes(t *testing.T) {
	sim, url := startSim(t, gitlabsim.Options{Seed: 23, Groups: 8, Projects: 300, Faults: gitlabsim.Faults{Latency: time.Millisecond}})
	env := scanEnv(t, url)
	env["CONCURRENT_REQUESTS"] = "4"
	first := agentCmd(buildAgent(t), env, "scan")
	var log1 bytes.Buffer
	first.Stderr = &log1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for sim.Stats().Requests < 600 {
		if time.Now().After(deadline) {
			t.Fatalf("the scan made too few requests to be interrupted mid-run:\n%s", log1.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, sig := exitOf(first.Wait())
	if code != exitInterrupted {
		t.Fatalf("SIGINT: exit %d (signal %v), want %d\n%s", code, sig, exitInterrupted, log1.String())
	}
	last := result{stderr: log1.String()}.lastLine()
	if !strings.Contains(last, "interrupted") || !strings.Contains(last, "run scan again to resume") {
		t.Errorf("last line %q does not say how to resume", last)
	}
	if _, err := os.Stat(filepath.Join(env["EXPORT_DIR"], "latest")); err == nil {
		t.Fatal("the first scan finished before it was interrupted: make the instance bigger")
	}
	res := runAgent(t, env, "scan")
	if res.code != 0 {
		t.Fatalf("resumed scan: exit %d\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "resuming unfinished run") {
		t.Errorf("the second scan did not resume:\n%s", res.stderr)
	}
	if runs := checkLatest(t, sim.Truth(), env["EXPORT_DIR"]); len(runs) != 1 {
		t.Errorf("%d runs exported, want the one resumed run", len(runs))
	}
}
