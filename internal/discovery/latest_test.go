package discovery_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// A failed run never replaces latest/: an export message that reaches it (a duplicate,
// or one queued before the failure) is dropped without writing anything.
func TestFailedRunLeavesLatest(t *testing.T) {
	w, st := newWorker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	run := inventory.Run{ID: "r1", Status: inventory.RunRunning, StartedAt: time.Now()}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.Status, run.Reason = inventory.RunFailed, "root group missing"
	if err := st.UpdateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if err := w.Handle(ctx, work.Message{Kind: work.KindExport, RunID: "r1"}, false); err != nil {
		t.Fatalf("export of a failed run: %v", err)
	}
	dir := w.Sink.(export.DirSink).Dir
	if _, err := os.Stat(filepath.Join(dir, export.LatestPrefix)); !os.IsNotExist(err) {
		t.Errorf("latest/ after a failed run's export message: %v, want none", err)
	}
	if r, _ := st.GetRun(ctx, "r1"); r.Status != inventory.RunFailed || r.Reason != "root group missing" {
		t.Errorf("run after the export message: %s %q, want it failed as it was", r.Status, r.Reason)
	}
}
