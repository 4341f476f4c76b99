package service

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/filestore"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/metrics"
	"github.com/gl2gh/discovery-agent/local/runner"
)

// fakeBackend is a Backend and DeadLetterQueue whose answers a test sets, counting the
// state changes it is asked for.
type fakeBackend struct {
	mu                       sync.Mutex
	starts, redrives, purges int
	full                     []bool // per start: whether it was asked for a full run

	startGate   chan struct{} // when set, Start waits for it to close (a paused GitLab)
	startRun    inventory.Run
	startErr    error
	storeErr    error
	gitlabErr   error
	deadLetters []filestore.DeadLetter
	purgeErr    error
}

func (f *fakeBackend) Start(ctx context.Context) (inventory.Run, bool, error) {
	f.mu.Lock()
	f.starts++
	f.full = append(f.full, discovery.IsFull(ctx))
	gate := f.startGate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return inventory.Run{}, false, ctx.Err()
		}
	}
	if f.startErr != nil {
		return inventory.Run{}, false, f.startErr
	}
	return f.startRun, true, nil
}

func (f *fakeBackend) count(n *int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *n
}

func (f *fakeBackend) Work(ctx context.Context) { <-ctx.Done() }
func (f *fakeBackend) ActiveRun(context.Context) (inventory.Run, bool, error) {
	return inventory.Run{}, false, nil
}
func (f *fakeBackend) LastSucceeded(context.Context) (inventory.Run, bool, error) {
	return inventory.Run{}, false, nil
}
func (f *fakeBackend) Track(string)                                 {}
func (f *fakeBackend) OnRunFinished(func(inventory.Run))            {}
func (f *fakeBackend) CheckStore(context.Context) error             { return f.storeErr }
func (f *fakeBackend) CheckGitLab(context.Context) error            { return f.gitlabErr }
func (f *fakeBackend) Snapshot() runner.Snapshot                    { return runner.Snapshot{} }
func (f *fakeBackend) Gauges(context.Context) (float64, int, error) { return 1, 0, nil }

func (f *fakeBackend) DeadLetters(context.Context) ([]filestore.DeadLetter, error) {
	return append([]filestore.DeadLetter(nil), f.deadLetters...), nil
}

func (f *fakeBackend) RedriveDeadLetters(context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.redrives++
	return 0, nil
}

func (f *fakeBackend) PurgeDeadLetters(context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.purges++
	return 0, f.purgeErr
}

// syncBuffer is a log destination for goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestService is a Service on b, set up as Run sets it up, without listening; its
// log is returned.
func newTestService(t *testing.T, b Backend, adminToken string, secrets ...string) (*Service, *syncBuffer) {
	t.Helper()
	logs := new(syncBuffer)
	s := &Service{Backend: b, Metrics: metrics.New(), Log: slog.New(slog.NewJSONHandler(logs, nil)), Version: "test",
		AdminToken: adminToken, Secrets: secrets}
	if err := s.setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.starts.Wait)
	return s, logs
}
