package discovery_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/filestore"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// queued drains what the scheduler queued.
func queued(t *testing.T, st *filestore.Store) []work.Message {
	t.Helper()
	var out []work.Message
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		ds, err := st.Queue().Receive(ctx, 10)
		cancel()
		if err != nil {
			return out
		}
		for _, d := range ds {
			out = append(out, d.Msg)
		}
	}
}

func TestSchedulerRoots(t *testing.T) {
	w, _ := newWorker(t)
	ctx := context.Background()
	top, err := w.GitLab.TopLevelGroups(ctx)
	if err != nil || len(top) == 0 {
		t.Fatalf("top-level groups: %v, %d", err, len(top))
	}
	root := top[0]
	subs, err := w.GitLab.Subgroups(ctx, root.ID)
	if err != nil || len(subs) == 0 {
		t.Fatalf("subgroups of %s: %v, %d (the test needs one)", root.FullPath, err, len(subs))
	}
	tests := []struct {
		name      string
		roots     []string
		personal  bool
		wantErr   error
		wantInErr []string
		wantRoots []int64 // group IDs queued
	}{
		{name: "one root", roots: []string{root.FullPath}, wantRoots: []int64{root.ID}},
		{name: "twice, by path and ID, and a subgroup of it: scanned once",
			roots:     []string{root.FullPath, root.FullPath, strconv.FormatInt(root.ID, 10), subs[0].FullPath},
			wantRoots: []int64{root.ID}},
		{name: "a subgroup alone", roots: []string{subs[0].FullPath}, wantRoots: []int64{subs[0].ID}},
		{name: "missing roots are named", roots: []string{root.FullPath, "no-such-group", "nope/deeper"},
			wantErr: discovery.ErrRootsMissing, wantInErr: []string{`"no-such-group" (404)`, `"nope/deeper" (404)`, "ROOT_GROUPS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, st := newWorker(t)
			s := &discovery.Scheduler{Store: st, Queue: st.Queue(), GitLab: w.GitLab, GitLabURL: "https://gl.example", RootGroups: tt.roots}
			run, started, err := s.Start(ctx)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || started {
					t.Fatalf("Start = started %v, %v; want %v", started, err, tt.wantErr)
				}
				for _, want := range tt.wantInErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if _, active, _ := st.ActiveRun(ctx); active {
					t.Error("a run was created")
				}
				return
			}
			if err != nil || !started {
				t.Fatalf("Start = %v, %v", started, err)
			}
			if run.Scope == nil || !slices.Equal(run.Scope.RootGroups, tt.roots) || run.Scope.IncludePersonal {
				t.Errorf("scope %+v, want the configured roots %v", run.Scope, tt.roots)
			}
			var ids []int64
			for _, m := range queued(t, st) {
				ids = append(ids, m.GroupID)
			}
			if !slices.Equal(ids, tt.wantRoots) {
				t.Errorf("queued groups %v, want %v", ids, tt.wantRoots)
			}
			if n, _ := st.Pending(ctx, run.ID); n != int64(len(tt.wantRoots)) {
				t.Errorf("pending %d, want %d", n, len(tt.wantRoots))
			}
		})
	}
}

// A token that sees no group starts no run: an empty inventory would read as an
// estate without projects.
func TestSchedulerRefusesATokenThatSeesNothing(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v4/user":
			w.Write([]byte(`{"id":1,"username":"nobody"}`))
		default:
			w.Write([]byte(`[]`))
		}
	}))
	defer ts.Close()
	gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	_, st := newWorker(t)
	s := &discovery.Scheduler{Store: st, Queue: st.Queue(), GitLab: gl}
	_, started, err := s.Start(context.Background())
	if !errors.Is(err, discovery.ErrSeesNothing) || started {
		t.Fatalf("Start = started %v, %v; want ErrSeesNothing", started, err)
	}
	if _, active, _ := st.ActiveRun(context.Background()); active {
		t.Error("a run was created")
	}
}
