//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RIEBinary is the Runtime Interface Emulator's executable name.
const RIEBinary = "aws-lambda-rie"

// ErrNoRIE reports that aws-lambda-rie is not installed.
var ErrNoRIE = errors.New("aws-lambda-rie not found on PATH or in $(go env GOPATH)/bin (make lambda-tools)")

// FindRIE returns the path of aws-lambda-rie: on PATH, else in GOPATH/bin, where
// `go install` puts it.
func FindRIE() (string, error) {
	if p, err := exec.LookPath(RIEBinary); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", RIEBinary)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p, nil
			}
		}
	}
	return "", ErrNoRIE
}

// Function is one Lambda function running under aws-lambda-rie: one execution
// environment, so one invocation at a time, as in Lambda.
type Function struct {
	Name string

	rie, bootstrap string
	api            *runtimeAPI // the Runtime API the function sees
	wrapped        string      // bootstrap, run against api
	dir            string
	env            []string
	timeout        time.Duration

	mu      sync.Mutex
	cmd     *exec.Cmd
	url     string
	exited  chan struct{}
	out     *output
	reports []time.Duration // Duration of every REPORT line, across restarts
	markR   int             // reports before the mark
	markOut int             // output bytes before the mark
}

// output keeps everything the emulator and the function print, and parses the
// emulator's REPORT lines as they come.
type output struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []string
	f     *Function
	tail  []byte
}

var reportDuration = regexp.MustCompile(`REPORT RequestId: \S+\s+(?:Init Duration: [\d.]+ ms\s+)?Duration: ([\d.]+) ms`)

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	o.tail = append(o.tail, p...)
	for {
		i := bytes.IndexByte(o.tail, '\n')
		if i < 0 {
			break
		}
		line := string(o.tail[:i])
		o.tail = o.tail[i+1:]
		if m := reportDuration.FindStringSubmatch(line); m != nil {
			if ms, err := strconv.ParseFloat(m[1], 64); err == nil {
				o.f.mu.Lock()
				o.f.reports = append(o.f.reports, time.Duration(ms*float64(time.Millisecond)))
				o.f.mu.Unlock()
			}
		}
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// StartFunction runs bootstrap under the emulator with env (KEY=value) on free
// loopback ports. timeout is the function's timeout, which the emulator enforces and
// hands to the function as its context deadline.
func StartFunction(ctx context.Context, name, rie, bootstrap string, env []string, timeout time.Duration) (*Function, error) {
	f := &Function{Name: name, rie: rie, bootstrap: bootstrap, env: env, timeout: timeout}
	f.out = &output{f: f}
	var err error
	if f.dir, err = os.MkdirTemp("", "e2e-fn-"); err != nil {
		return nil, err
	}
	if f.api, err = startRuntimeAPI(); err == nil {
		f.wrapped, err = f.api.wrapBootstrap(f.dir, bootstrap)
	}
	if err == nil {
		err = f.start(ctx)
	}
	if err != nil {
		f.Stop()
		return nil, err
	}
	return f, nil
}

func (f *Function) start(ctx context.Context) error {
	var lastErr error
	for range 3 { // a free port can be taken between finding and binding it
		addr, err1 := freeAddr()
		api, err2 := freeAddr()
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		cmd := exec.Command(f.rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", api, f.wrapped)
		cmd.Env = append(append([]string{}, f.env...),
			"AWS_LAMBDA_FUNCTION_NAME="+f.Name,
			"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(f.timeout/time.Second)),
		)
		cmd.Stdout, cmd.Stderr = f.out, f.out
		f.api.setTarget(api)
		// Its own process group: Kill must end the emulator and the function it started.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s under %s: %w", f.Name, f.rie, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if err := awaitListening(ctx, addr, exited); err != nil {
			killGroup(cmd)
			<-exited
			lastErr = fmt.Errorf("%s: %w; output: %s", f.Name, err, lastLines(f.out.String(), 20))
			continue
		}
		f.mu.Lock()
		f.cmd, f.exited, f.url = cmd, exited, "http://"+addr+"/2015-03-31/functions/function/invocations"
		f.mu.Unlock()
		return nil
	}
	return lastErr
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func awaitListening(ctx context.Context, addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("the emulator exited before listening")
		case <-ctx.Done():
			return fmt.Errorf("the emulator is not listening on %s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// FunctionError is an invocation that the function answered with an error.
type FunctionError struct {
	Function string
	Message  string `json:"errorMessage"`
	Type     string `json:"errorType"`
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("%s: %s (%s)", e.Function, e.Message, e.Type)
}

// Invoke sends payload to the function and decodes its answer into result. A
// function error is a *FunctionError; a killed or timed-out function another error.
func (f *Function) Invoke(ctx context.Context, payload, result any) error {
	return f.InvokeTraced(ctx, "", payload, result)
}

// InvokeTraced is Invoke in the trace trace (an X-Amzn-Trace-Id header; "" none): the
// emulator hands it to the runtime, which sets _X_AMZN_TRACE_ID for the invocation.
func (f *Function) InvokeTraced(ctx context.Context, trace string, payload, result any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", f.Name, err)
	}
	f.mu.Lock()
	url := f.url
	f.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("invoke %s: %w", f.Name, err)
	}
	// The emulator drops the header (its tracer is a no-op): the Runtime API proxy
	// hands the trace to the runtime, as Lambda does.
	if trace == "" {
		trace = newTrace().String()
	}
	req.Header.Set("X-Amzn-Trace-Id", trace)
	f.api.setTrace(trace)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", f.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("invoke %s: read answer: %w", f.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("invoke %s: HTTP %d: %s", f.Name, resp.StatusCode, b)
	}
	if bytes.HasPrefix(b, []byte("Task timed out")) {
		return fmt.Errorf("invoke %s: %s", f.Name, b)
	}
	var fe FunctionError
	if json.Unmarshal(b, &fe) == nil && fe.Message != "" && fe.Type != "" {
		fe.Function = f.Name
		return &fe
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(b, result); err != nil {
		return fmt.Errorf("invoke %s: answer %q: %w", f.Name, b, err)
	}
	return nil
}

// Kill ends the execution environment at once, as a crash or a Lambda host failure
// would, and Restart starts a fresh one (a cold start).
func (f *Function) Kill() {
	f.mu.Lock()
	cmd, exited := f.cmd, f.exited
	f.mu.Unlock()
	if cmd == nil {
		return
	}
	killGroup(cmd)
	<-exited
}

// Restart replaces a killed environment with a new one.
func (f *Function) Restart(ctx context.Context) error {
	f.Kill()
	return f.start(ctx)
}

// Stop ends the function for good.
func (f *Function) Stop() {
	f.Kill()
	if f.api != nil {
		f.api.close()
	}
	if f.dir != "" {
		os.RemoveAll(f.dir)
	}
}

// Durations returns the Duration of every invocation the emulator reported.
func (f *Function) Durations() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.reports...)
}

// mark starts a measurement: sinceMark returns what came after it.
func (f *Function) mark() {
	out := f.out.String()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.markR, f.markOut = len(f.reports), len(out)
}

// sinceMark returns the invocation durations and the output since mark.
func (f *Function) sinceMark() ([]time.Duration, string) {
	out := f.out.String()
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.reports[f.markR:]...), out[min(f.markOut, len(out)):]
}

// Output is everything the emulator and the function printed (logs, EMF lines, REPORTs).
func (f *Function) Output() string { return f.out.String() }

// killGroup ends the emulator and everything it started. The emulator starts the
// function's runtime in a process group of its own, so killing the emulator's group
// alone would leave the runtime running its invocation to the end; its processes are
// found in /proc and killed first, and killGroup returns once they are gone.
func killGroup(cmd *exec.Cmd) {
	below := descendants(cmd.Process.Pid)
	for _, pid := range below {
		_ = syscall.Kill(-pid, syscall.SIGKILL) // its group, when it leads one
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// The emulator reaps its runtime; killed before that, it would leave a zombie.
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range below {
		for exists(pid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		_ = cmd.Process.Kill()
	}
}

// descendants lists the processes below pid, from /proc (empty where there is none).
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parent, ok := parentOf(p); ok {
			children[parent] = append(children[parent], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// statFields returns the fields of /proc/<pid>/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func parentOf(pid int) (int, bool) {
	f := statFields(pid)
	if len(f) < 2 {
		return 0, false
	}
	p, err := strconv.Atoi(f[1])
	return p, err == nil
}

// exists reports whether pid is a process, a zombie included.
func exists(pid int) bool { return statFields(pid) != nil }

func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
