package discovery_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// syncBuffer is a log destination the worker's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The messages a group queues (its listed descendants) are one hop further from the
// scheduler than it.
func TestSubgroupMessagesCountHops(t *testing.T) {
	sim, err := gitlabsim.New(gitlabsim.Options{Seed: 2, Groups: 8, Projects: 10, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	defer ts.Close()
	w, st := newWorker(t)
	if w.GitLab, err = gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{})}); err != nil {
		t.Fatal(err)
	}
	var root inventory.Group
	subs := map[int64]int{}
	for _, g := range sim.Truth().Groups {
		subs[g.ParentID]++
	}
	for _, g := range sim.Truth().Groups {
		if g.ParentID == 0 && subs[g.ID] > 0 {
			root = g
			break
		}
	}
	if root.ID == 0 {
		t.Fatal("the simulated estate has no root with subgroups")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := st.CreateRun(ctx, inventory.Run{ID: "h", Status: inventory.RunRunning, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	m := work.Message{Kind: work.KindGroup, RunID: "h", GroupID: root.ID, GroupPath: root.FullPath, Hops: 7}
	if err := st.AddPending(ctx, "h", m.Key()); err != nil {
		t.Fatal(err)
	}
	if err := w.Handle(ctx, m, false); err != nil {
		t.Fatal(err)
	}
	qctx, qcancel := context.WithTimeout(ctx, time.Second)
	defer qcancel()
	ds, _ := st.Queue().Receive(qctx, 100)
	groups := 0
	for _, d := range ds {
		if d.Msg.Kind != work.KindGroup {
			continue
		}
		groups++
		if d.Msg.Hops != m.Hops+1 {
			t.Errorf("subgroup message %+v has hops %d, want %d", d.Msg, d.Msg.Hops, m.Hops+1)
		}
	}
	if groups == 0 {
		t.Errorf("group %s queued no subgroup messages; it has %d subgroups", root.FullPath, subs[root.ID])
	}
}

// A message past work.MaxHops is refused: its group is recorded as an error without a
// GitLab call, the log says "hop cap reached", and the run still ends.
func TestHopCapRefusesTheMessage(t *testing.T) {
	w, st := newWorker(t)
	logs := new(syncBuffer)
	w.Log = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := st.CreateRun(ctx, inventory.Run{ID: "loop", Status: inventory.RunRunning, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	m := work.Message{Kind: work.KindGroup, RunID: "loop", GroupID: 2, GroupPath: "g2", Page: 4, Hops: work.MaxHops + 1}
	if err := st.AddPending(ctx, "loop", m.Key()); err != nil {
		t.Fatal(err)
	}
	if err := w.Handle(ctx, m, false); err != nil {
		t.Fatalf("Handle = %v; want the message completed as an error", err)
	}
	if out := logs.String(); !strings.Contains(out, "hop cap reached") || !strings.Contains(out, "more than work.MaxHops") {
		t.Errorf("log lacks the hop cap's reason:\n%s", out)
	}
	var got []inventory.Group
	if err := st.Groups(ctx, "loop", func(g inventory.Group) error { got = append(got, g); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != 2 || got[0].ScanStatus != inventory.StatusError {
		t.Errorf("groups recorded = %+v; want group 2 with scan_status error", got)
	}
	if n, _ := st.Pending(ctx, "loop"); n != 0 {
		t.Errorf("pending = %d, want 0: the refused message is complete", n)
	}
	if next := receive(t, st.Queue()); next.Kind != work.KindExport {
		t.Errorf("queued %+v, want the run's export", next)
	}

	// At the cap itself the message is scanned as any other.
	atCap := work.Message{Kind: work.KindGroup, RunID: "loop", GroupID: 3, GroupPath: "g3", Hops: work.MaxHops}
	logs.mu.Lock()
	logs.b.Reset()
	logs.mu.Unlock()
	if err := st.AddPending(ctx, "loop", atCap.Key()); err != nil {
		t.Fatal(err)
	}
	if err := w.Handle(ctx, atCap, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "hop cap reached") {
		t.Errorf("a message at the cap was refused:\n%s", logs.String())
	}
}
