package mototest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Server is a moto_server owned by a test (or, through Shared, by a test binary).
type Server struct {
	*Process
}

// Start runs a moto_server for t and stops it in t.Cleanup. Without the binary the test
// is skipped, or fails when REQUIRE_INTEGRATION=1.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	p, err := StartProcess(context.Background(), opts...)
	if err != nil {
		skipOrFatal(t, err)
	}
	t.Cleanup(p.Stop)
	return &Server{Process: p}
}

// shared is the one server of a test binary, started on first use by Shared.
var shared struct {
	inMain atomic.Bool
	once   sync.Once
	p      *Process
	err    error
}

// Main runs a package's tests and then stops the server Shared started, if any. Call it
// from TestMain:
//
//	func TestMain(m *testing.M) { mototest.Main(m) }
func Main(m *testing.M) {
	shared.inMain.Store(true)
	code := m.Run()
	if shared.p != nil {
		shared.p.Stop()
	}
	os.Exit(code)
}

// Shared returns the test binary's server, starting it on first use, so a package pays
// moto's start-up once. It requires Main in TestMain, which stops the server. Tests
// sharing it isolate themselves with resource names from Name. The first call's opts
// apply; a package passes the same ones everywhere.
func Shared(t testing.TB, opts ...Option) *Server {
	t.Helper()
	if !shared.inMain.Load() {
		t.Fatal("mototest.Shared needs mototest.Main(m) in the package's TestMain to stop the server")
	}
	shared.once.Do(func() {
		shared.p, shared.err = StartProcess(context.Background(), opts...)
	})
	if shared.err != nil {
		skipOrFatal(t, shared.err)
	}
	return &Server{Process: shared.p}
}

func skipOrFatal(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNotInstalled) && os.Getenv("REQUIRE_INTEGRATION") != "1" {
		t.Skipf("skipping AWS integration test: %v", err)
	}
	t.Fatalf("moto_server: %v", err)
}

var nameSeq atomic.Int64

// Name returns a resource name unique within the test binary and the server's life,
// valid as a DynamoDB table, SQS queue and S3 bucket name: lowercase letters, digits and
// hyphens, at most 63 characters. prefix should be short and lowercase.
func Name(prefix string) string {
	prefix = strings.ToLower(prefix)
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), nameSeq.Add(1))
}
