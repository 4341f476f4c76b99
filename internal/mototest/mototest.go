// Package mototest runs moto_server, a local emulation of the AWS APIs, for the tests of
// the AWS backends and for end-to-end harnesses, and creates the DynamoDB tables, SQS
// queues and S3 buckets exactly as the deployment template declares them.
package mototest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Binary is the moto server executable looked up on PATH, unless MOTO_SERVER names one.
const Binary = "moto_server"

// Region is the region every client of the emulator uses.
const Region = "us-east-1"

// ErrNotInstalled reports that moto_server is not on PATH.
var ErrNotInstalled = errors.New("moto_server not found on PATH (pip install 'moto[server]')")

// startTimeout bounds how long moto may take to answer after it was started; a cold
// Python start on a busy machine takes a few seconds.
const startTimeout = 60 * time.Second

// Process is a running moto_server.
type Process struct {
	endpoint string
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has exited
	waitErr  error         // set before exited is closed
	stopOnce sync.Once
	output   *tailBuffer
	siteDir  string // Serial's sitecustomize, removed by Stop
}

// Option adjusts how moto_server runs.
type Option func(*options)

type options struct {
	serial bool
}

// Serial runs moto_server on one thread, so that it handles one request at a time.
//
// moto serves requests on parallel threads without locking its tables: racing
// conditional writes can both pass, and a TransactWriteItems snapshots and restores a
// whole table around its actions, losing concurrent writes or failing with HTTP 500
// when the table changes under the snapshot. DynamoDB guarantees atomic conditional
// writes and isolated transactions; tests whose assertions rest on those guarantees
// (counters under concurrent transactions) need Serial. It works by putting a
// sitecustomize module on moto's PYTHONPATH that starts werkzeug unthreaded.
func Serial() Option { return func(o *options) { o.serial = true } }

// serialSiteCustomize is loaded by the Python interpreter running moto_server before
// moto itself, which imports run_simple from werkzeug.serving at start-up.
const serialSiteCustomize = `# Written by mototest.Serial: serve one request at a time.
try:
    import werkzeug.serving as _serving
except ImportError:
    pass
else:
    _run_simple = _serving.run_simple

    def _serial_run_simple(*args, **kwargs):
        kwargs["threaded"] = False
        return _run_simple(*args, **kwargs)

    _serving.run_simple = _serial_run_simple
`

// StartProcess starts moto_server on a free port of 127.0.0.1 and waits until it
// answers. The caller must call Stop. ErrNotInstalled is returned when the binary is
// missing.
func StartProcess(ctx context.Context, opts ...Option) (*Process, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin := os.Getenv("MOTO_SERVER")
	if bin == "" {
		bin = Binary
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	// The free port is found by binding and releasing it, so another process can take
	// it in between; a few attempts make that race harmless.
	var lastErr error
	for range 3 {
		p, err := start(ctx, path, o)
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(ctx context.Context, path string, o options) (*Process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// Not exec.CommandContext: the process must outlive ctx, which only bounds start-up.
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	var siteDir string
	if o.serial {
		if siteDir, err = os.MkdirTemp("", "mototest-site-"); err != nil {
			return nil, fmt.Errorf("moto serial mode: %w", err)
		}
		if err := os.WriteFile(filepath.Join(siteDir, "sitecustomize.py"), []byte(serialSiteCustomize), 0o600); err != nil {
			os.RemoveAll(siteDir)
			return nil, fmt.Errorf("moto serial mode: %w", err)
		}
		pythonPath := siteDir
		if prev := os.Getenv("PYTHONPATH"); prev != "" {
			pythonPath += string(os.PathListSeparator) + prev
		}
		cmd.Env = append(os.Environ(), "PYTHONPATH="+pythonPath)
	}
	out := &tailBuffer{max: 8 << 10}
	cmd.Stdout = out
	cmd.Stderr = out
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(siteDir)
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &Process{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		cmd:      cmd,
		exited:   make(chan struct{}),
		output:   out,
		siteDir:  siteDir,
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := p.awaitReady(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// awaitReady polls the server until any HTTP answer comes back.
func (p *Process) awaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.endpoint+"/moto-api/", nil)
		if err != nil {
			return fmt.Errorf("moto readiness request: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("moto_server exited before answering (%v): %s", p.waitErr, p.output.String())
		case <-ctx.Done():
			return fmt.Errorf("moto_server did not answer on %s: %w; output: %s", p.endpoint, ctx.Err(), p.output.String())
		case <-tick.C:
		}
	}
}

// Stop kills the server (its whole process group: the PATH entry may be a shim that
// forks) and waits for it to exit. It is safe to call more than once.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		killProcessGroup(p.cmd)
		<-p.exited
		if p.siteDir != "" {
			os.RemoveAll(p.siteDir)
		}
	})
}

// Endpoint is the server's base URL, e.g. http://127.0.0.1:41234.
func (p *Process) Endpoint() string { return p.endpoint }

// Config returns an AWS configuration for the emulator: static test credentials,
// region us-east-1 and the server as base endpoint. ctx is accepted for symmetry with
// config.LoadDefaultConfig; nothing here needs it, and nothing is read from the
// environment or shared config files, so a developer's AWS profile cannot leak in.
func (p *Process) Config(ctx context.Context) aws.Config {
	_ = ctx
	return aws.Config{
		Region:       Region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("test", "test", "")),
		BaseEndpoint: aws.String(p.endpoint),
	}
}

// DynamoDB returns a DynamoDB client for the emulator; optFns adjust its options
// (e.g. middleware that counts calls).
func (p *Process) DynamoDB(optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	base := func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(p.endpoint) }
	return dynamodb.NewFromConfig(p.Config(context.Background()), append([]func(*dynamodb.Options){base}, optFns...)...)
}

// SQS returns an SQS client for the emulator.
func (p *Process) SQS(optFns ...func(*sqs.Options)) *sqs.Client {
	base := func(o *sqs.Options) { o.BaseEndpoint = aws.String(p.endpoint) }
	return sqs.NewFromConfig(p.Config(context.Background()), append([]func(*sqs.Options){base}, optFns...)...)
}

// S3 returns an S3 client for the emulator, with path-style addressing (bucket names
// are not resolvable host names on 127.0.0.1).
func (p *Process) S3(optFns ...func(*s3.Options)) *s3.Client {
	base := func(o *s3.Options) {
		o.BaseEndpoint = aws.String(p.endpoint)
		o.UsePathStyle = true
	}
	return s3.NewFromConfig(p.Config(context.Background()), append([]func(*s3.Options){base}, optFns...)...)
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
