package gitlabsim

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// listing pages through a REST list under /api/v4 and returns the ids, ascending,
// and the X-Total of its first page.
func listing(t *testing.T, s *Server, path string) ([]int64, int) {
	t.Helper()
	ids := []int64{}
	total := -1
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for page := 1; ; page++ {
		req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/api/v4/%s%sper_page=100&page=%d", path, sep, page), nil)
		req.Header.Set("Private-Token", "sim-token")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		var list []struct {
			ID int64 `json:"id"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		if total < 0 {
			total, _ = strconv.Atoi(rec.Header().Get("X-Total"))
		}
		if len(list) == 0 {
			slices.Sort(ids)
			return ids, total
		}
		for _, p := range list {
			ids = append(ids, p.ID)
		}
	}
}

// namedInTruth are the paths the truth's projects name: CI include and trigger
// targets, submodule targets, external CI configurations and fork parents.
func namedInTruth(tr Truth) map[string]bool {
	named := map[string]bool{}
	for _, p := range tr.Projects {
		f := p.Features
		for _, n := range f.Submodules {
			named[n] = true
		}
		if f.CI != nil {
			for _, n := range append(slices.Clone(f.CI.IncludeProjects), f.CI.TriggerProjects...) {
				named[n] = true
			}
		}
		named[f.CIConfigExternal] = true
		named[p.ForkedFrom] = true
	}
	return named
}

// TestDelete: a deleted project leaves the truth and every listing and count (REST
// with X-Total, group totals, GraphQL connections), answers 404 by id and by path
// and is null in GraphQL; every other project stays as it was; projects others name
// are never deleted; a seed deletes the same projects; and a deleted project is not
// deleted, changed or renamed again.
func TestDelete(t *testing.T) {
	o := Options{Seed: 1, Groups: 12, Projects: 300, Users: 3, PersonalProjects: 20}
	s, ts := startSim(t, o)
	before := s.Truth()
	deleted := s.Delete(0.2, 7)
	if len(deleted) != 64 { // ⌈0.2 × 320⌉
		t.Fatalf("deleted %d projects, want 64", len(deleted))
	}
	was := truthByID(before)
	named := namedInTruth(before)
	gone := map[int64]bool{}
	var personal, inGroup bool
	for _, d := range deleted {
		gone[d.ID] = true
		p := was[d.ID]
		if named[d.Path] || p.PathWithNamespace != d.Path {
			t.Errorf("deleted %d %s (was %s), which other projects name by path", d.ID, d.Path, p.PathWithNamespace)
		}
		personal = personal || p.NamespaceKind == "user"
		inGroup = inGroup || p.NamespaceKind == "group"
	}
	if !personal || !inGroup {
		t.Fatalf("the deletion took personal projects %v, group projects %v: the test needs both", personal, inGroup)
	}
	if again := newTestServer(t, o).Delete(0.2, 7); !reflect.DeepEqual(again, deleted) {
		t.Errorf("the same seed deleted %v, then %v", deleted, again)
	}

	after := s.Truth()
	var want []int64
	for _, p := range before.Projects {
		if !gone[p.ID] {
			want = append(want, p.ID)
		}
	}
	is := truthByID(after)
	if got := slices.Sorted(maps.Keys(is)); !slices.Equal(got, want) || len(after.Projects) != len(want) {
		t.Fatalf("the truth holds %d projects, want the %d not deleted", len(after.Projects), len(want))
	}
	for id, p := range is {
		if !reflect.DeepEqual(p, was[id]) {
			t.Errorf("project %d changed in the truth although it was not deleted", id)
		}
	}
	if *after.Instance.Projects != int64(len(want)) {
		t.Errorf("instance totals: %d projects, want %d", *after.Instance.Projects, len(want))
	}
	checkListings(t, s, after)
	checkDeletedAnswers(t, s, ts, deleted)

	// Deleted projects are passed by from now on.
	for _, d := range s.Delete(0.2, 7) {
		if gone[d.ID] {
			t.Errorf("deleted %d again", d.ID)
		}
	}
	for _, r := range s.Rename(1, 7) {
		if gone[r.ID] {
			t.Errorf("renamed the deleted project %d", r.ID)
		}
	}
	for _, id := range s.Change(1, 7).Changed {
		if gone[id] {
			t.Errorf("changed the deleted project %d", id)
		}
	}
	for _, p := range s.Truth().Projects {
		if gone[p.ID] {
			t.Errorf("the deleted project %d is back in the truth", p.ID)
		}
	}
}

// checkListings compares every REST project listing and count with the truth.
func checkListings(t *testing.T, s *Server, tr Truth) {
	t.Helper()
	all := []int64{}
	direct := map[int64][]int64{} // namespace id -> its projects
	for _, p := range tr.Projects {
		all = append(all, p.ID)
		direct[p.GroupID] = append(direct[p.GroupID], p.ID)
	}
	if ids, total := listing(t, s, "projects?sort=asc"); !slices.Equal(ids, all) || total != len(all) {
		t.Errorf("GET /projects: %d projects, X-Total %d; want %d", len(ids), total, len(all))
	}
	parent := map[int64]int64{}
	for _, g := range tr.Groups {
		parent[g.ID] = g.ParentID
	}
	for _, g := range tr.Groups {
		var sub []int64
		for _, p := range tr.Projects {
			for ns := p.GroupID; ns != 0; ns = parent[ns] {
				if ns == g.ID && p.NamespaceKind == "group" {
					sub = append(sub, p.ID)
					break
				}
			}
		}
		slices.Sort(sub)
		own := slices.Clip(direct[g.ID])
		if ids, total := listing(t, s, fmt.Sprintf("groups/%d/projects", g.ID)); !slices.Equal(ids, own) || total != len(own) || g.Projects != len(own) {
			t.Errorf("group %s: lists %d projects, X-Total %d, truth total %d; want %d", g.FullPath, len(ids), total, g.Projects, len(own))
		}
		if ids, total := listing(t, s, fmt.Sprintf("groups/%d/projects?include_subgroups=true", g.ID)); !slices.Equal(ids, sub) || total != len(sub) {
			t.Errorf("group %s with subgroups: lists %d projects, X-Total %d; want %d", g.FullPath, len(ids), total, len(sub))
		}
	}
	for _, u := range s.in.users {
		own := slices.Clip(direct[u.id])
		if ids, total := listing(t, s, fmt.Sprintf("users/%d/projects", u.id)); !slices.Equal(ids, own) || total != len(own) {
			t.Errorf("user %s: lists %d projects, X-Total %d; want %d", u.username, len(ids), total, len(own))
		}
	}
	code, body := answer(s, http.MethodGet, "/api/v4/application/statistics", "")
	if want := fmt.Sprintf(`"projects":"%d"`, len(all)); code != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("application statistics: %d %s, want %s", code, body, want)
	}
}

// checkDeletedAnswers: each deleted project answers 404 by id and by path, REST
// and GraphQL, and its group's GraphQL connection neither counts nor lists it.
func checkDeletedAnswers(t *testing.T, s *Server, ts *httptest.Server, deleted []Deleted) {
	t.Helper()
	const notFound = `{"message":"404 Project Not Found"}`
	for _, d := range deleted {
		for _, path := range []string{
			fmt.Sprintf("/api/v4/projects/%d", d.ID), "/api/v4/projects/" + url.PathEscape(d.Path),
			fmt.Sprintf("/api/v4/projects/%d/repository/tree", d.ID), fmt.Sprintf("/api/v4/projects/%d/merge_requests", d.ID),
		} {
			if code, body := answer(s, http.MethodGet, path, ""); code != http.StatusNotFound || body != notFound {
				t.Errorf("GET %s: %d %s, want 404 %s", path, code, body, notFound)
			}
		}
		gid := fmt.Sprintf("gid://gitlab/Project/%d", d.ID)
		a := gqlPost(t, ts, "sim-token", `query($p: ID!, $id: ID!) { project(fullPath: $p) { id } projects(ids: [$id]) { count } }`,
			map[string]any{"p": d.Path, "id": gid})
		if string(a.Data["project"]) != "null" || string(a.Data["projects"]) != `{"count":0}` {
			t.Errorf("GraphQL for the deleted %s: %s, want project null and no projects", d.Path, a.raw)
		}
	}
	gone := map[string]bool{}
	for _, d := range deleted {
		gone[fmt.Sprintf("gid://gitlab/Project/%d", d.ID)] = true
	}
	for gi := range s.in.groups {
		g := &s.in.groups[gi]
		var count int
		var ids []string
		var after any // null: the first page
		for {
			a := gqlPost(t, ts, "sim-token", `query($g: ID!, $after: String) { group(fullPath: $g) { projectsCount
				projects(includeSubgroups: true, first: 100, after: $after) { count nodes { id } pageInfo { endCursor hasNextPage } } } }`,
				map[string]any{"g": g.fullPath, "after": after})
			var res struct {
				ProjectsCount int `json:"projectsCount"`
				Projects      struct {
					Count int `json:"count"`
					Nodes []struct {
						ID string `json:"id"`
					} `json:"nodes"`
					PageInfo struct {
						EndCursor   string `json:"endCursor"`
						HasNextPage bool   `json:"hasNextPage"`
					} `json:"pageInfo"`
				} `json:"projects"`
			}
			if len(a.Errors) > 0 {
				t.Fatalf("GraphQL group %s: %s", g.fullPath, a.raw)
			}
			a.decode(t, "group", &res)
			if res.ProjectsCount != len(g.projects) {
				t.Errorf("GraphQL group %s: projectsCount %d, want %d", g.fullPath, res.ProjectsCount, len(g.projects))
			}
			count = res.Projects.Count
			for _, n := range res.Projects.Nodes {
				ids = append(ids, n.ID)
			}
			if !res.Projects.PageInfo.HasNextPage {
				break
			}
			after = res.Projects.PageInfo.EndCursor
		}
		if count != len(g.subtree) || len(ids) != len(g.subtree) {
			t.Errorf("GraphQL group %s with subgroups: count %d, %d nodes; want %d", g.fullPath, count, len(ids), len(g.subtree))
		}
		for _, id := range ids {
			if gone[id] {
				t.Errorf("GraphQL group %s lists the deleted %s", g.fullPath, id)
			}
		}
	}
}

// TestDeleteEndpoint: POST /-/sim/change deletes on "delete" (first, so the same
// call neither changes nor renames a deleted project), answers the deletions, and
// rejects a share outside [0, 1] with a 400 that changes nothing.
func TestDeleteEndpoint(t *testing.T) {
	o := Options{Seed: 1, Groups: 3, Projects: 40}
	tests := []struct {
		body        string
		wantCode    int
		wantErr     string
		wantDeleted int
	}{
		{`{"share":0.5,"seed":7,"rename":0.5,"delete":0.25}`, http.StatusOK, "", 10},
		{`{"share":0,"seed":7,"delete":0}`, http.StatusOK, "", 0},
		{`{"share":0,"seed":7,"delete":1.5}`, http.StatusBadRequest, "change: delete must be a number in [0, 1]", 0},
		{`{"share":0,"seed":7,"delete":-0.1}`, http.StatusBadRequest, "change: delete must be a number in [0, 1]", 0},
		{`{"share":0,"seed":7,"delete":"all"}`, http.StatusBadRequest, "change: json: cannot unmarshal string", 0},
	}
	for _, tt := range tests {
		s := newTestServer(t, o)
		before, _ := json.Marshal(s.Truth())
		code, body := answer(s, http.MethodPost, "/-/sim/change", tt.body)
		if code != tt.wantCode || tt.wantErr != "" && !strings.Contains(body, tt.wantErr) {
			t.Errorf("%s: %d %s, want %d %s", tt.body, code, body, tt.wantCode, tt.wantErr)
			continue
		}
		if code != http.StatusOK {
			if after, _ := json.Marshal(s.Truth()); string(after) != string(before) {
				t.Errorf("%s: a rejected request changed the truth", tt.body)
			}
			continue
		}
		var res struct {
			ChangeResult
			Renamed []Renamed `json:"renamed"`
			Deleted []Deleted `json:"deleted"`
		}
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			t.Fatalf("%s: %v in %s", tt.body, err, body)
		}
		var req struct{ Delete float64 }
		_ = json.Unmarshal([]byte(tt.body), &req)
		want := newTestServer(t, o).Delete(req.Delete, 7)
		if len(res.Deleted) != tt.wantDeleted || fmt.Sprint(res.Deleted) != fmt.Sprint(want) {
			t.Errorf("%s: deleted %v, want %d: %v", tt.body, res.Deleted, tt.wantDeleted, want)
		}
		if n := len(s.Truth().Projects); res.Projects != 40-tt.wantDeleted || n != res.Projects {
			t.Errorf("%s: %d projects after %d deletions, the truth %d", tt.body, res.Projects, len(res.Deleted), n)
		}
		gone := map[int64]bool{}
		for _, d := range res.Deleted {
			gone[d.ID] = true
		}
		for _, id := range res.Changed {
			if gone[id] {
				t.Errorf("%s: changed the deleted project %d", tt.body, id)
			}
		}
		for _, r := range res.Renamed {
			if gone[r.ID] {
				t.Errorf("%s: renamed the deleted project %d", tt.body, r.ID)
			}
		}
	}
}

// TestDeleteKeepsTheDeletedFault: the DeletedRate fault (a deletion during a scan)
// and Delete stay apart: fault-deleted projects that Delete left are still listed,
// in the truth and in its faults, and answer 404 as a fault; deleted ones are in
// neither.
func TestDeleteKeepsTheDeletedFault(t *testing.T) {
	s := newTestServer(t, Options{Seed: 4, Groups: 6, Projects: 120, Faults: Faults{DeletedRate: 0.3}})
	faulted := s.Truth().Faults.Deleted
	deleted := s.Delete(0.25, 2)
	gone := map[int64]bool{}
	for _, d := range deleted {
		gone[d.ID] = true
	}
	var kept []int64
	for _, id := range faulted {
		if !gone[id] {
			kept = append(kept, id)
		}
	}
	if len(kept) == 0 || len(kept) == len(faulted) {
		t.Fatalf("%d of %d fault-deleted projects kept: the test needs some of each", len(kept), len(faulted))
	}
	tr := s.Truth()
	if !slices.Equal(tr.Faults.Deleted, kept) {
		t.Errorf("truth faults: deleted %v, want the fault-deleted projects not deleted %v", tr.Faults.Deleted, kept)
	}
	listed, _ := listing(t, s, "projects?sort=asc")
	in := truthByID(tr)
	for _, id := range kept {
		if _, ok := in[id]; !ok || !slices.Contains(listed, id) {
			t.Errorf("fault-deleted project %d: in the truth %v, listed %v", id, ok, slices.Contains(listed, id))
		}
	}
	for _, id := range listed {
		if gone[id] {
			t.Errorf("deleted project %d is listed", id)
		}
	}
	faults := s.Stats().Faults
	for _, id := range kept {
		if code, _ := answer(s, http.MethodGet, fmt.Sprintf("/api/v4/projects/%d", id), ""); code != http.StatusNotFound {
			t.Errorf("fault-deleted project %d: %d, want 404", id, code)
		}
	}
	if got := s.Stats().Faults - faults; got != int64(len(kept)) {
		t.Errorf("%d fault-deleted projects answered with %d faults counted", len(kept), got)
	}
	faults = s.Stats().Faults
	for _, d := range deleted {
		answer(s, http.MethodGet, fmt.Sprintf("/api/v4/projects/%d", d.ID), "")
	}
	if got := s.Stats().Faults - faults; got != 0 {
		t.Errorf("the deleted projects' 404s counted %d faults, want none: they are gone, not faulted", got)
	}
}

// TestDeleteWhileServing: deletions and answers interleave safely (run with -race),
// and each listing is consistent in itself: as many projects as its X-Total says.
func TestDeleteWhileServing(t *testing.T) {
	s := newTestServer(t, Options{Seed: 1, Groups: 3, Projects: 80})
	done := make(chan struct{})
	errs := make(chan string, 4)
	for range 4 {
		go func() {
			defer func() { errs <- "" }()
			for {
				select {
				case <-done:
					return
				default:
				}
				req := httptest.NewRequest(http.MethodGet, "/api/v4/projects?per_page=100", nil)
				req.Header.Set("Private-Token", "sim-token")
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				var list []struct{ ID int64 }
				if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Header().Get("X-Total") != strconv.Itoa(len(list)) {
					errs <- fmt.Sprintf("%d projects listed, X-Total %s (%v)", len(list), rec.Header().Get("X-Total"), err)
					return
				}
			}
		}()
	}
	deleted := 0
	for k := range 10 {
		deleted += len(s.Delete(0.05, int64(k)))
	}
	close(done)
	for range 4 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	if n := len(s.Truth().Projects); deleted < 10*2 || n != 80-deleted {
		t.Errorf("%d projects left after ten deletions of ⌈5%%⌉ that deleted %d", n, deleted)
	}
}
