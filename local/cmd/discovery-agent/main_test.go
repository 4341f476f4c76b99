package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
)

const token = "sim-token-cli-secret-77"

// binDir holds the binaries the tests build, once per test process.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "discovery-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var builds sync.Map // package dir -> func() (string, error)

// build compiles the command in pkg (relative to this package) once per test process.
func build(t *testing.T, pkg, name string) string {
	t.Helper()
	f, _ := builds.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		bin := filepath.Join(binDir, name)
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		return bin, nil
	}))
	bin, err := f.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func buildAgent(t *testing.T) string { return build(t, ".", "discovery-agent") }

func startSim(t *testing.T, opts gitlabsim.Options) (*gitlabsim.Server, string) {
	t.Helper()
	opts.Token = token
	sim, err := gitlabsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); ts.Close() })
	return sim, ts.URL
}

func agentCmd(bin string, env map[string]string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// A scan killed with SIGKILL mid-run resumes on the next `scan`: the same run finishes
// and its exports equal the truth with every project once.
func TestKillNineResumes(t *testing.T) {
	bin := buildAgent(t)
	sim, url := startSim(t, gitlabsim.Options{Seed: 21, Groups: 12, Projects: 500, Faults: gitlabsim.Faults{Latency: time.Millisecond}})
	dir := t.TempDir()
	env := map[string]string{
		"GITLAB_URL": url, "GITLAB_TOKEN": token, "DATA_DIR": filepath.Join(dir, "data"),
		"EXPORT_DIR": filepath.Join(dir, "exports"), "RATE_LIMIT_RPM": "0", "CONCURRENT_REQUESTS": "4",
	}
	var log1 bytes.Buffer
	first := agentCmd(bin, env, "scan")
	first.Stderr = &log1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for sim.Stats().Requests < 1500 {
		if time.Now().After(deadline) {
			t.Fatal("the scan made too few requests to be killed mid-run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	if _, err := os.Stat(filepath.Join(dir, "exports", "latest", "summary.json")); err == nil {
		t.Fatal("the first scan finished before it was killed: make the instance bigger")
	}

	var out, log2 bytes.Buffer
	second := agentCmd(bin, env, "scan")
	second.Stdout, second.Stderr = &out, &log2
	if err := second.Run(); err != nil {
		t.Fatalf("second scan: %v\n%s", err, log2.String())
	}
	if !strings.Contains(log2.String(), "resuming unfinished run") {
		t.Errorf("second scan did not say it resumed:\n%s", log2.String())
	}
	runs, _ := os.ReadDir(filepath.Join(dir, "exports", "runs"))
	if len(runs) != 1 {
		t.Fatalf("%d runs exported, want the one resumed run", len(runs))
	}
	if !strings.Contains(out.String(), runs[0].Name()) || !strings.Contains(out.String(), "exports:") {
		t.Errorf("scan did not print where the exports are:\n%s", out.String())
	}
	groups, projects, err := scancheck.ReadExportDir(filepath.Join(dir, "exports", "latest"))
	if err != nil {
		t.Fatal(err)
	}
	if d := scancheck.Diff(sim.Truth(), groups, projects); len(d) > 0 {
		t.Fatalf("resumed scan differs from the truth:\n%s", strings.Join(d, "\n"))
	}
	for _, s := range []string{log1.String(), log2.String(), out.String()} {
		if strings.Contains(s, token) {
			t.Error("output contains the token")
		}
	}
}

func TestScanFailsWithOneLineReason(t *testing.T) {
	bin := buildAgent(t)
	_, url := startSim(t, gitlabsim.Options{Seed: 1, Groups: 2, Projects: 4})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	tests := []struct {
		name string
		env  map[string]string
		want string
		code int
	}{
		{"bad token", map[string]string{"GITLAB_URL": url, "GITLAB_TOKEN": "wrong-secret-token"}, "401", exitAuth},
		{"no token", map[string]string{"GITLAB_URL": url}, "GITLAB_TOKEN is not set", exitUsage},
		{"unreachable", map[string]string{"GITLAB_URL": closed, "GITLAB_TOKEN": token, "REQUEST_TIMEOUT": "1s"}, "connection refused", exitFailed},
		{"bad config", map[string]string{"GITLAB_URL": url, "GITLAB_TOKEN": token, "MAX_API_CALLS": "many"}, "MAX_API_CALLS", exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.env["DATA_DIR"], tt.env["EXPORT_DIR"] = filepath.Join(dir, "d"), filepath.Join(dir, "e")
			var stderr bytes.Buffer
			cmd := agentCmd(bin, tt.env, "scan")
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != tt.code {
				t.Fatalf("exit: %v, want %d\n%s", err, tt.code, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "discovery-agent: ") || !strings.Contains(last, tt.want) {
				t.Errorf("last line %q, want a one-line reason mentioning %q", last, tt.want)
			}
			if strings.Contains(stderr.String(), "wrong-secret-token") || strings.Contains(stderr.String(), token) {
				t.Error("output contains the token")
			}
		})
	}
}
