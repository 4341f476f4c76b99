package gitlabsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// answer serves path in-process and returns status and body.
func answer(s *Server, method, path, body string) (int, string) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Private-Token", "sim-token")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// projectAnswers are the answers a scan reads about one project.
func projectAnswers(s *Server, id int64) []string {
	var out []string
	for _, suffix := range []string{
		"?statistics=true", "/merge_requests?per_page=100", "/merge_requests?state=opened&per_page=100",
		"/pipelines?per_page=100", "/issues?per_page=100", "/repository/branches?per_page=100", "/repository/tree",
	} {
		code, body := answer(s, http.MethodGet, fmt.Sprintf("/api/v4/projects/%d%s", id, suffix), "")
		out = append(out, fmt.Sprint(code, " ", body))
	}
	return out
}

// TestChange: a change touches ⌈share × projects⌉ active projects picked by the seed,
// the truth shows their new activity, commits, size and merge requests, the API
// serves that truth, and every other project answers exactly as before.
func TestChange(t *testing.T) {
	tests := []struct {
		name  string
		o     Options
		share float64
		seed  int64
		want  int // projects changed
	}{
		{"a tenth", Options{Seed: 1, Groups: 12, Projects: 300}, 0.1, 7, 30},
		{"rounds up", Options{Seed: 1, Groups: 12, Projects: 300}, 0.011, 5, 4},
		{"personal projects too", Options{Seed: 2, Groups: 5, Projects: 60, Users: 3, PersonalProjects: 20}, 0.25, 3, 20},
		{"nothing", Options{Seed: 3, Groups: 3, Projects: 40}, 0, 1, 0},
		{"all active ones", Options{Seed: 3, Groups: 3, Projects: 40}, 1, 1, -1}, // -1: every active project
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := startSim(t, tt.o)
			before := truthByID(s.Truth())
			answers := map[int64][]string{}
			for id := range before {
				answers[id] = projectAnswers(s, id)
			}
			want := tt.want
			if want < 0 {
				want = 0
				for _, p := range before {
					if !p.Archived && !p.EmptyRepo {
						want++
					}
				}
			}

			res := s.Change(tt.share, tt.seed)
			if len(res.Changed) != want || !slices.IsSorted(res.Changed) || res.Projects != len(before) {
				t.Fatalf("changed %d projects of %d (sorted %v), want %d of %d", len(res.Changed), res.Projects, slices.IsSorted(res.Changed), want, len(before))
			}
			again := newTestServer(t, tt.o)
			if res2 := again.Change(tt.share, tt.seed); !slices.Equal(res2.Changed, res.Changed) || !res2.Since.Equal(res.Since) {
				t.Errorf("the same change on the same instance changed %v, first %v", res2.Changed, res.Changed)
			}
			after := truthByID(s.Truth())
			sameJSON(t, "truth of a second instance with the same change", truthByID(again.Truth()), after)

			for id, b := range before {
				a := after[id]
				if !slices.Contains(res.Changed, id) {
					sameJSON(t, fmt.Sprintf("unchanged project %d", id), a, b)
					if !slices.Equal(projectAnswers(s, id), answers[id]) {
						t.Errorf("unchanged project %d answers differently", id)
					}
					if a.LastActivityAt.After(res.Since) {
						t.Errorf("unchanged project %d: activity %v after %v", id, a.LastActivityAt, res.Since)
					}
					continue
				}
				checkGrown(t, b, a, res.Since)
			}

			// GET /projects?last_activity_after=since lists exactly the changed projects.
			if got := listedIDs(t, s, "last_activity_after="+res.Since.Format(time.RFC3339)); !slices.Equal(got, res.Changed) {
				t.Errorf("active after %v: %v, want %v", res.Since, got, res.Changed)
			}

			// The API serves the new truth (profiled with client-go as a scan does).
			cl := newClient(t, ts.URL, "sim-token")
			for k, id := range res.Changed {
				if k%4 != 0 {
					continue
				}
				p := scanProject(t, context.Background(), cl, id)
				if p.Features.CI != nil {
					p.Features.CI.Complexity = 0
				}
				sameJSON(t, fmt.Sprintf("changed project %d", id), p, after[id])
			}
		})
	}
}

// checkGrown: a changed project has later activity, more commits, a bigger
// repository and, where merge requests are on, more open ones; nothing else moves.
func checkGrown(t *testing.T, b, a inventory.Project, since time.Time) {
	t.Helper()
	if !a.LastActivityAt.After(since) || !a.LastActivityAt.After(b.LastActivityAt) {
		t.Errorf("project %d: activity %v, was %v, change since %v", a.ID, a.LastActivityAt, b.LastActivityAt, since)
	}
	if a.Statistics.CommitCount <= b.Statistics.CommitCount || a.Statistics.RepositorySize <= b.Statistics.RepositorySize ||
		a.Statistics.StorageSize-b.Statistics.StorageSize != a.Statistics.RepositorySize-b.Statistics.RepositorySize {
		t.Errorf("project %d: statistics %+v, were %+v", a.ID, *a.Statistics, *b.Statistics)
	}
	added := *a.Counts.MergeRequests - *b.Counts.MergeRequests
	capped := slices.Contains(b.Counts.LowerBounds, "merge_requests") // counted up to 10,000 only
	if !capped && (added != *a.Counts.OpenMergeRequests-*b.Counts.OpenMergeRequests || a.Features.MREnabled != (added > 0)) {
		t.Errorf("project %d: merge requests %d (open %d), were %d (open %d)", a.ID,
			*a.Counts.MergeRequests, *a.Counts.OpenMergeRequests, *b.Counts.MergeRequests, *b.Counts.OpenMergeRequests)
	}
	ci := inventory.Is(a.Features.HasCI) && a.Features.JobsEnabled
	if grew := *a.Counts.Pipelines > *b.Counts.Pipelines; grew != ci && !slices.Contains(b.Counts.LowerBounds, "pipelines") {
		t.Errorf("project %d: pipelines %d, were %d, with CI %v", a.ID, *a.Counts.Pipelines, *b.Counts.Pipelines, ci)
	}
	// Everything else stays: identity, features, the other counts and sizes.
	a.LastActivityAt, a.Statistics, b.Statistics = b.LastActivityAt, nil, nil
	a.Counts.MergeRequests, a.Counts.OpenMergeRequests, a.Counts.Pipelines = b.Counts.MergeRequests, b.Counts.OpenMergeRequests, b.Counts.Pipelines
	sameJSON(t, fmt.Sprintf("project %d apart from what changed", a.ID), a, b)
}

// TestChangeKeepsItems: the merge requests and pipelines a project had keep their
// dates; the new ones come after them, up to the new activity, the newest open.
func TestChangeKeepsItems(t *testing.T) {
	s := newTestServer(t, Options{Seed: 1, Groups: 12, Projects: 300})
	oldest := func(id int64, list string) string {
		_, body := answer(s, http.MethodGet, fmt.Sprintf("/api/v4/projects/%d/%s?sort=asc&per_page=100", id, list), "")
		return body
	}
	res := s.Change(0.2, 11)
	// Replay the instance before the change to read the old lists.
	old := newTestServer(t, Options{Seed: 1, Groups: 12, Projects: 300})
	checked := 0
	for _, id := range res.Changed {
		i := mustIndex(t, s, id)
		p := &s.in.projects[i]
		if !p.has(fMRs) || p.countBefore(cMRs) == 0 || p.countBefore(cMRs) > 90 {
			continue
		}
		checked++
		var was, now []apiMergeRequest
		_, body := answer(old, http.MethodGet, fmt.Sprintf("/api/v4/projects/%d/merge_requests?sort=asc&per_page=100", id), "")
		if err := json.Unmarshal([]byte(body), &was); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(oldest(id, "merge_requests")), &now); err != nil {
			t.Fatal(err)
		}
		if len(now) <= len(was) {
			t.Fatalf("project %d: %d merge requests, were %d", id, len(now), len(was))
		}
		sameJSON(t, fmt.Sprintf("project %d: the merge requests it had", id), now[:len(was)], was)
		for _, mr := range now[len(was):] {
			if mr.State != "opened" || !mr.CreatedAt.After(was[len(was)-1].CreatedAt) || mr.CreatedAt.After(time.Unix(p.activity, 0)) {
				t.Errorf("project %d: new merge request %d %s at %v", id, mr.IID, mr.State, mr.CreatedAt)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no changed project with merge requests to check")
	}
}

// TestChangeEndpoint: POST /-/sim/change answers the ChangeResult; a share outside
// [0, 1] or an unknown field is a 400 and changes nothing.
func TestChangeEndpoint(t *testing.T) {
	tests := []struct {
		body     string
		wantCode int
		want     int
	}{
		{`{"share":0.1,"seed":7}`, http.StatusOK, 4},
		{`{"share":0}`, http.StatusOK, 0},
		{`{"share":1.5,"seed":7}`, http.StatusBadRequest, 0},
		{`{"seed":7}`, http.StatusBadRequest, 0},
		{`{"share":0.1,"sede":7}`, http.StatusBadRequest, 0},
		{`{"share":0,"seed":7,"rename":2}`, http.StatusBadRequest, 0},
		{`not json`, http.StatusBadRequest, 0},
	}
	for _, tt := range tests {
		s := newTestServer(t, Options{Seed: 1, Groups: 3, Projects: 40})
		before, _ := json.Marshal(s.Truth())
		code, body := answer(s, http.MethodPost, "/-/sim/change", tt.body)
		if code != tt.wantCode {
			t.Errorf("%s: status %d %s, want %d", tt.body, code, body, tt.wantCode)
			continue
		}
		var res ChangeResult
		if code == http.StatusOK && (json.Unmarshal([]byte(body), &res) != nil || len(res.Changed) != tt.want || res.Projects != 40) {
			t.Errorf("%s: %s, want %d changed of 40", tt.body, body, tt.want)
		}
		after, _ := json.Marshal(s.Truth())
		if changed := string(after) != string(before); changed != (tt.want > 0) {
			t.Errorf("%s: truth changed %v", tt.body, changed)
		}
	}
	if code, _ := answer(newTestServer(t, Options{Groups: 1}), http.MethodGet, "/-/sim/change", ""); code != http.StatusNotFound {
		t.Errorf("GET /-/sim/change: %d, want 404", code)
	}
}

// TestChangeWhileServing: changes and answers interleave safely (run with -race).
func TestChangeWhileServing(t *testing.T) {
	s := newTestServer(t, Options{Seed: 1, Groups: 3, Projects: 40})
	ids := make([]int64, len(s.in.projects))
	for i := range ids {
		ids[i] = s.in.projects[i].id
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 50 && ctx.Err() == nil; k++ {
				id := ids[(w*50+k)%len(ids)]
				if code, body := answer(s, http.MethodGet, fmt.Sprintf("/api/v4/projects/%d?statistics=true", id), ""); code != http.StatusOK {
					t.Errorf("project %d: %d %s", id, code, body)
					return
				}
			}
		}()
	}
	for k := range 20 {
		s.Change(0.3, int64(k))
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("readers did not finish in time")
	}
}

// listedIDs lists GET /projects?query in ascending id order, page by page.
func listedIDs(t *testing.T, s *Server, query string) []int64 {
	t.Helper()
	ids := []int64{}
	for page := 1; ; page++ {
		code, body := answer(s, http.MethodGet, fmt.Sprintf("/api/v4/projects?sort=asc&per_page=100&page=%d&%s", page, query), "")
		var list []struct {
			ID int64 `json:"id"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil {
			t.Fatalf("/projects?%s: %d %s", query, code, body)
		}
		if len(list) == 0 {
			return ids
		}
		for _, p := range list {
			ids = append(ids, p.ID)
		}
	}
}

// TestLastActivityFilter: GET /projects takes last_activity_after and
// last_activity_before as GitLab documents them, strict bounds, ISO 8601.
func TestLastActivityFilter(t *testing.T) {
	s := newTestServer(t, Options{Seed: 1, Groups: 3, Projects: 40})
	tr := s.Truth()
	mid := tr.Projects[len(tr.Projects)/2].LastActivityAt
	var after, before []int64
	for _, p := range tr.Projects {
		if p.LastActivityAt.After(mid) {
			after = append(after, p.ID)
		}
		if p.LastActivityAt.Before(mid) {
			before = append(before, p.ID)
		}
	}
	stamp := mid.Format(time.RFC3339)
	tests := []struct {
		query string
		want  []int64
	}{
		{"last_activity_after=" + stamp, after},
		{"last_activity_before=" + stamp, before},
		{"last_activity_after=" + stamp + "&last_activity_before=" + stamp, []int64{}},
		{"last_activity_after=2000-01-01T00:00:00Z&archived=false", nil}, // nil: the unarchived ones
	}
	for _, tt := range tests {
		want := tt.want
		if want == nil {
			want = listedIDs(t, s, "archived=false")
		}
		if got := listedIDs(t, s, tt.query); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", tt.query, got, want)
		}
	}
	if code, body := answer(s, http.MethodGet, "/api/v4/projects?last_activity_after=yesterday", ""); code != http.StatusBadRequest || !strings.Contains(body, "last_activity_after is invalid") {
		t.Errorf("a bad time: %d %s, want 400", code, body)
	}
}
