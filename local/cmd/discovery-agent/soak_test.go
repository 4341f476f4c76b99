package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
)

// envInt reads a test knob from the environment.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", name, v)
	}
	return n
}

// simProcess is a gitlab-sim process on a free port.
type simProcess struct{ url string }

func startSimProcess(t *testing.T, args ...string) simProcess {
	t.Helper()
	bin := build(t, "../gitlab-sim", "gitlab-sim")
	cmd := exec.Command(bin, append([]string{"--addr", "127.0.0.1:0", "--token", token}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "gitlab-sim listening" {
			go func() { // keep draining, so that the simulator never blocks on a log line
				for sc.Scan() {
				}
			}()
			return simProcess{url: "http://" + line.Addr}
		}
	}
	t.Fatal("gitlab-sim exited without listening")
	return simProcess{}
}

// get decodes a control endpoint's JSON answer into v.
func (s simProcess) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func (s simProcess) requests(t *testing.T) int64 {
	var st gitlabsim.Stats
	s.get(t, "/-/sim/stats", &st)
	return st.Requests
}

var soakSignals = []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL}

// TestSoakInterruptedScans interrupts `scan` SOAK_N times (default 6) with SIGINT,
// SIGTERM or SIGKILL at random moments, against a gitlab-sim process, resuming until
// the run is done; its exports must then equal /-/sim/truth, with nothing dead-lettered.
// SOAK_SEED (default 1) picks the moments and signals; `make soak` runs it longer.
func TestSoakInterruptedScans(t *testing.T) {
	n, seed := envInt(t, "SOAK_N", 6), envInt(t, "SOAK_SEED", 1)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x50a4))
	sim := startSimProcess(t, "--seed", "17", "--groups", strconv.Itoa(8+n/4), "--projects", strconv.Itoa(300+40*n), "--latency", "1ms")
	env := scanEnv(t, sim.url)
	env["CONCURRENT_REQUESTS"] = "4"
	t.Logf("SOAK_N=%d SOAK_SEED=%d", n, seed)

	var (
		interrupted = map[string]int{}
		logs        bytes.Buffer
		done        bool
	)
	for attempt := 0; !done; attempt++ {
		if attempt > n+10 {
			t.Fatalf("the scan did not finish after %d attempts:\n%s", attempt, logs.String())
		}
		cmd := agentCmd(buildAgent(t), env, "scan")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var sig syscall.Signal
		if sum(interrupted) < n {
			sig = soakSignals[rng.IntN(len(soakSignals))]
			if !waitForMoment(t, sim, rng, exited) {
				sig = 0 // it finished first
			} else {
				cmd.Process.Signal(sig)
			}
		}
		var err error
		select {
		case err = <-exited:
		case <-time.After(3 * time.Minute):
			cmd.Process.Kill()
			t.Fatalf("attempt %d (signal %v) did not end:\n%s", attempt+1, sig, logs.String())
		}
		code, signalled := exitOf(err)
		switch {
		case code == 0:
			done = true
		case sig == 0:
			t.Fatalf("attempt %d: exit %d without an interruption:\n%s", attempt+1, code, logs.String())
		case signalled == sig, sig != syscall.SIGKILL && code == exitInterrupted:
			interrupted[sig.String()]++
		default:
			t.Fatalf("attempt %d: %v ended it with exit %d (signal %v); want %d or the signal:\n%s",
				attempt+1, sig, code, signalled, exitInterrupted, logs.String())
		}
	}
	t.Logf("%d interruptions %v, then done", sum(interrupted), interrupted)
	if sum(interrupted) == 0 {
		t.Fatal("no scan was interrupted: the test proves nothing")
	}

	var truth gitlabsim.Truth
	sim.get(t, "/-/sim/truth", &truth)
	groups, projects, err := scancheck.ReadExportDir(filepath.Join(env["EXPORT_DIR"], "latest"))
	if err != nil {
		t.Fatal(err)
	}
	if d := scancheck.Diff(truth, groups, projects); len(d) > 0 {
		t.Fatalf("after %d interruptions the exports differ from the truth:\n%s", sum(interrupted), strings.Join(d, "\n"))
	}
	if runs, _ := os.ReadDir(filepath.Join(env["EXPORT_DIR"], "runs")); len(runs) != 1 {
		t.Errorf("%d runs exported, want the one resumed run", len(runs))
	}
	if strings.Contains(logs.String(), "dead-lettered") {
		t.Errorf("interruptions dead-lettered messages:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Error("output contains the token")
	}
}

// waitForMoment waits for a random moment of the scan: a few milliseconds into its
// start-up, or some hundreds of requests into its work. False means it exited first.
func waitForMoment(t *testing.T, sim simProcess, rng *rand.Rand, exited chan error) bool {
	t.Helper()
	if rng.IntN(4) == 0 {
		select {
		case err := <-exited:
			exited <- err
			return false
		case <-time.After(time.Duration(rng.IntN(150)) * time.Millisecond):
			return true
		}
	}
	target := sim.requests(t) + int64(5+rng.IntN(400))
	for sim.requests(t) < target {
		select {
		case err := <-exited:
			exited <- err
			return false
		case <-time.After(2 * time.Millisecond):
		}
	}
	return true
}

// exitOf returns a finished process's exit code, or the signal that ended it.
func exitOf(err error) (int, syscall.Signal) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err != nil {
			return -1, 0
		}
		return 0, 0
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal()
	}
	return ee.ExitCode(), 0
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
