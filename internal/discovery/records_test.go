package discovery_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/export"
	"github.com/gl2gh/discovery-agent/internal/filestore"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// scanBrokenGroup scans group 1 of a GitLab whose project listing answers listing, and
// returns what the run recorded.
func scanBrokenGroup(t *testing.T, listing http.HandlerFunc) (map[int64]inventory.Project, inventory.Group) {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v4/groups/1/projects" {
			listing(w, r)
			return
		}
		w.Header().Set("X-Total", "0")
		fmt.Fprint(w, `[]`) // subgroups, counts, trees: empty
	}))
	t.Cleanup(ts.Close)
	st, err := filestore.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gl, err := gitlab.New(ts.URL, "records-test-token", gitlab.Options{Limiter: budget.NewMemory(budget.Config{}), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	w := &discovery.Worker{Store: st, Queue: st.Queue(), GitLab: gl, Sink: export.DirSink{Dir: t.TempDir()},
		Thresholds: readiness.DefaultThresholds(), DeadlineMargin: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.CreateRun(ctx, inventory.Run{ID: "r", Status: inventory.RunRunning, StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	m := work.Message{Kind: work.KindGroup, RunID: "r", GroupID: 1, GroupPath: "g"}
	if err := st.AddPending(ctx, "r", m.Key()); err != nil {
		t.Fatal(err)
	}
	if err := w.Handle(ctx, m, false); err != nil {
		t.Fatalf("Handle = %v, want the group done", err)
	}
	projects := map[int64]inventory.Project{}
	st.Projects(ctx, "r", func(p inventory.Project) error { projects[p.ID] = p; return nil })
	var g inventory.Group
	st.Groups(ctx, "r", func(gr inventory.Group) error { g = gr; return nil })
	return projects, g
}

// One wrong record marks its project, not its group; impossible numbers are not facts.
func TestBrokenRecordMarksItsProject(t *testing.T) {
	projects, g := scanBrokenGroup(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `[
			{"id":"x","name":"no id"},
			{"id":11,"name":"negative","empty_repo":true,"statistics":{"repository_size":-5}},
			{"id":12,"name":"typed","empty_repo":true,"statistics":{"repository_size":"big"}},
			{"id":13,"name":"fine","empty_repo":true,"star_count":"abc","statistics":{"repository_size":7}}
		]`)
	})
	if g.ScanStatus != inventory.StatusComplete {
		t.Errorf("group status %q, want complete", g.ScanStatus)
	}
	if _, ok := projects[0]; ok || len(projects) != 3 {
		t.Fatalf("recorded projects %v, want 11, 12 and 13", projects)
	}
	for id, want := range map[int64]string{11: "statistics.repository_size: -5 is negative", 12: "statistics.repository_size: JSON string"} {
		p := projects[id]
		if p.ScanStatus != inventory.StatusError || len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Message, want) {
			t.Errorf("project %d: status %q, errors %+v; want error naming %q", id, p.ScanStatus, p.Errors, want)
		}
		if p.Statistics != nil {
			t.Errorf("project %d: statistics %+v exported as facts", id, *p.Statistics)
		}
	}
	if p := projects[13]; p.ScanStatus != inventory.StatusComplete || p.Statistics == nil || p.Statistics.RepositorySize != 7 {
		t.Errorf("project 13: %q %+v, want complete with its statistics", p.ScanStatus, p.Statistics)
	}
}

// A project listing whose next page points back ends the group with an error.
func TestPageLoopEndsTheGroup(t *testing.T) {
	_, g := scanBrokenGroup(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Next-Page", "1")
		fmt.Fprint(w, `[]`)
	})
	if g.ID != 1 || g.ScanStatus != inventory.StatusError {
		t.Errorf("group %+v, want group 1 with status error", g)
	}
}
