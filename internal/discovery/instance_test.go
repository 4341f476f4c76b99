package discovery_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/filestore"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// The scheduler records the instance's version and, for an admin token only, its
// totals on the run, with STALE_AFTER: the exporter reads both from the run.
func TestSchedulerRecordsInstance(t *testing.T) {
	for _, notAdmin := range []bool{false, true} {
		t.Run(map[bool]string{false: "admin", true: "not admin"}[notAdmin], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sim, err := gitlabsim.New(gitlabsim.Options{Seed: 1, Groups: 3, Projects: 10, Token: "t", NotAdmin: notAdmin})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(sim)
			defer ts.Close()
			st, err := filestore.Open(filepath.Join(t.TempDir(), "db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{})})
			if err != nil {
				t.Fatal(err)
			}
			s := &discovery.Scheduler{Store: st, Queue: st.Queue(), GitLab: gl, GitLabURL: ts.URL, StaleAfter: 48 * time.Hour}
			run, started, err := s.Start(ctx)
			if err != nil || !started {
				t.Fatalf("start: %v, started %v", err, started)
			}
			stored, err := st.GetRun(ctx, run.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := sim.Truth().Instance
			if !reflect.DeepEqual(stored.Instance, want) {
				t.Fatalf("stored instance %+v, want %+v", stored.Instance, want)
			}
			if (stored.Instance.Users == nil) != notAdmin {
				t.Errorf("users %v with notAdmin %v", stored.Instance.Users, notAdmin)
			}
			if stored.StaleAfter != 48*time.Hour {
				t.Errorf("stored stale_after %v, want 48h", stored.StaleAfter)
			}
		})
	}
}
