package discovery_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/filestore"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// Estimate counts the projects in scope from X-Total, walks the IDs where GitLab stops
// counting (over 10,000), reads the announced limit, and asks nothing of a project.
func TestEstimate(t *testing.T) {
	tests := []struct {
		name     string
		opts     gitlabsim.Options
		root     bool // ROOT_GROUPS names the first top-level group
		personal bool
		// requests the count may make at most: the top-level listing, one per root, and
		// one per 100 projects of a root GitLab did not count
		maxRequests int64
		rateLimit   int
		api         string // GITLAB_API
		wantAPI     string // what the estimate counts; auto asks GitLab once
	}{
		{"every top-level group", gitlabsim.Options{Seed: 1, Groups: 12, Projects: 400, RateLimitRPM: 3000}, false, false, 12 + 1, 3000, "", discovery.APIGraphQL},
		{"root groups by path", gitlabsim.Options{Seed: 2, Groups: 12, Projects: 400}, true, false, 2 + 1, 0, discovery.APIAuto, discovery.APIGraphQL}, // look-up, count
		{"personal projects with every group", gitlabsim.Options{Seed: 3, Groups: 6, Projects: 100, Users: 4, PersonalProjects: 20}, false, true, 2, 0, discovery.APIGraphQL, discovery.APIGraphQL},
		{"over GitLab's count cap", gitlabsim.Options{Seed: 4, Groups: 1, Projects: 10_250}, false, false, 2 + 103, 0, discovery.APIREST, discovery.APIREST},
		{"auto without GraphQL", gitlabsim.Options{Seed: 5, Groups: 3, Projects: 50, NoGraphQL: true}, false, false, 3 + 1, 0, discovery.APIAuto, discovery.APIREST},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Token = "t"
			sim, err := gitlabsim.New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(sim)
			defer ts.Close()
			gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{})})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			truth := sim.Truth()
			want := int64(len(truth.Projects))
			var roots []string
			if tt.root {
				for _, g := range truth.Groups {
					if g.ParentID == 0 {
						roots = []string{g.FullPath}
						break
					}
				}
				want = 0
				for _, p := range truth.Projects {
					if strings.HasPrefix(p.PathWithNamespace, roots[0]+"/") {
						want++
					}
				}
			}
			s := &discovery.Scheduler{GitLab: gl, RootGroups: roots, IncludePersonal: tt.personal, RPM: 600, API: tt.api}
			est, err := s.Estimate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if est.Projects != want || want == 0 {
				t.Errorf("%d projects in scope, want %d", est.Projects, want)
			}
			// The simulator counts a request once its handler returns, which can come
			// just after the client read the answer: give the count a moment.
			st := sim.Stats()
			for wait := time.Now().Add(2 * time.Second); st.Requests < est.Requests && time.Now().Before(wait); st = sim.Stats() {
				time.Sleep(10 * time.Millisecond)
			}
			if est.Requests != st.Requests || st.Requests > tt.maxRequests {
				t.Errorf("the estimate says it made %d requests, the simulator served %d, want at most %d", est.Requests, st.Requests, tt.maxRequests)
			}
			for class, n := range st.ByClass {
				if n > 0 && strings.HasPrefix(class, "projects/:id") {
					t.Errorf("the estimate asked %s %d times: no profiling calls", class, n)
				}
			}
			if est.RateLimit != tt.rateLimit {
				t.Errorf("announced rate limit %d, want %d", est.RateLimit, tt.rateLimit)
			}
			wantPace := 600 // the ceiling, or what GitLab announces when lower
			if tt.rateLimit > 0 {
				wantPace = min(tt.rateLimit, 600)
			}
			if est.Pace() != wantPace {
				t.Errorf("pace %d, want %d", est.Pace(), wantPace)
			}
			// REST: a request for each count and the tree; GraphQL: one query and the
			// counts it lacks (webhooks, tags, protected branches).
			lo, hi := 10.0, 20.0
			if tt.wantAPI == discovery.APIGraphQL {
				lo, hi = 3, 5
			}
			if est.API != tt.wantAPI || est.CallsPerProject < lo || est.CallsPerProject > hi || est.MaxCallsPerProject <= est.CallsPerProject ||
				float64(est.Calls()) < float64(want)*lo {
				t.Errorf("through %s: calls per project %.2f..%.2f, %d calls; want %s, %.0f..%.0f a project, derived from the facts",
					est.API, est.CallsPerProject, est.MaxCallsPerProject, est.Calls(), tt.wantAPI, lo, hi)
			}
			if d := est.Duration(); d <= 0 {
				t.Errorf("duration %v with a 600/min ceiling", d)
			}
		})
	}
}

// TestStartCountIsBounded: a run start counts its projects within MaxCountCalls
// requests; a root GitLab does not count (over 10,000 projects, walked 100 a request)
// that needs more starts the run anyway, without a total, and the rest of the start
// is not refused by the spent count budget.
func TestStartCountIsBounded(t *testing.T) {
	sim, err := gitlabsim.New(gitlabsim.Options{Seed: 4, Groups: 1, Projects: 10_250, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	defer ts.Close()
	for _, tc := range []struct {
		name  string
		limit int
		want  int64
	}{
		{"default bound counts it", 0, 10_250},
		{"bound too small", 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			st, err := filestore.Open(filepath.Join(t.TempDir(), "db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{})})
			if err != nil {
				t.Fatal(err)
			}
			sim.ResetStats()
			s := &discovery.Scheduler{Store: st, Queue: st.Queue(), GitLab: gl, GitLabURL: ts.URL, MaxCountCalls: tc.limit}
			run, started, err := s.Start(ctx)
			if err != nil || !started {
				t.Fatalf("start: %v, started %v", err, started)
			}
			if run.ProjectsInScope != tc.want {
				t.Errorf("%d projects in scope, want %d", run.ProjectsInScope, tc.want)
			}
			if n := sim.Stats().ByClass["groups/:id/projects"]; tc.limit > 0 && n > int64(tc.limit) {
				t.Errorf("the count made %d project-list requests, bound %d", n, tc.limit)
			}
		})
	}
}
