package gitlabsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// instanceDigest hashes what a scanner can observe of an instance: the streamed
// truth, every /projects keyset page, every group's project listing and each
// project's detail with statistics.
func instanceDigest(t *testing.T, o Options) string {
	t.Helper()
	s := newTestServer(t, o)
	h := sha256.New()
	if err := s.writeTruth(h); err != nil {
		t.Fatalf("writeTruth: %v", err)
	}
	get := func(path string) []byte {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Private-Token", "sim-token")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		io.WriteString(h, path+"\n"+strconv.Itoa(rec.Code)+"\n"+rec.Header().Get("Link")+"\n")
		h.Write(rec.Body.Bytes())
		return rec.Body.Bytes()
	}
	var ids []int64
	for after := int64(0); ; {
		var page []struct {
			ID int64 `json:"id"`
		}
		body := get("/api/v4/projects?pagination=keyset&order_by=id&sort=asc&per_page=100&statistics=true&id_after=" + strconv.FormatInt(after, 10))
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("decode /projects: %v", err)
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			ids = append(ids, p.ID)
		}
		after = page[len(page)-1].ID
	}
	for _, g := range s.in.groups {
		for p := 1; p <= 1+len(g.projects)/100; p++ {
			get("/api/v4/groups/" + strconv.FormatInt(g.id, 10) + "/projects?per_page=100&page=" + strconv.Itoa(p))
		}
	}
	for _, id := range ids {
		get("/api/v4/projects/" + strconv.FormatInt(id, 10) + "?statistics=true")
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestInstanceWithoutUsersUnchanged pins what instances without users serve to the
// digests recorded before user namespaces existed: adding them must not move a
// single id, path, count or byte. (Re-recorded when the truth gained environments,
// after checking that the truth without them was unchanged; and again when projects
// gained custom CI paths, CODEOWNERS in docs/ counted, and the truth under faults said
// unknown: with the first two turned off only the faulted digest moved; and again when
// the truth gained namespace_kind, stale and the instance: with those fields
// left out of the JSON every digest was unchanged; and when it gained fork parents,
// submodule targets and CI include/trigger projects, checked the same way; and when
// it gained owners (members): with owners left out of the JSON only the faulted digest
// moved, its 403 lists now naming projects/:id/members/all; and when local CI includes
// gained their files and their jobs counted: the generator draws nothing more, only
// ci.jobs and ci.local_includes of the truth moved.)
func TestInstanceWithoutUsersUnchanged(t *testing.T) {
	tests := []struct {
		o    Options
		want string
	}{
		{Options{Seed: 1, Groups: 50, Projects: 2000}, "de8a2585fa7d96724b5c9db6c9dfc41e6d8c90987635b487bb489dfa205c8f44"},
		{Options{Seed: 1, Groups: 50, Projects: 2000, Users: 0, PersonalProjects: 0}, "de8a2585fa7d96724b5c9db6c9dfc41e6d8c90987635b487bb489dfa205c8f44"},
		{Options{Seed: 1, Groups: 12, Projects: 300, Faults: Faults{ForbiddenRate: 0.1, ForbiddenEndpoints: []string{"*"}, DeletedRate: 0.05}}, "30dba04212c3d5748435cc37b3b8c4b9468990900fd590b88fd0f99fdede0a27"},
		{Options{Seed: 7, Groups: 3, Projects: 40}, "ed9824f0608535db503cf7ff03d018bee6231023711a3c9f2ca780e1cf09edf6"},
	}
	for _, tt := range tests {
		if got := instanceDigest(t, tt.o); got != tt.want {
			t.Errorf("seed %d, %d groups, %d projects: digest %s, want %s", tt.o.Seed, tt.o.Groups, tt.o.Projects, got, tt.want)
		}
	}
}

// TestPersonalProjects: with users, /projects lists group and personal projects once
// each in id order as the truth has them, personal ones come after every group
// project, carry a user namespace and appear in no group listing.
func TestPersonalProjects(t *testing.T) {
	o := Options{Seed: 5, Groups: 8, Projects: 150, Users: 5, PersonalProjects: 40}
	s, ts := startSim(t, o)
	cl := newClient(t, ts.URL, "sim-token")
	tr := s.Truth()
	if len(tr.Projects) != o.Projects+o.PersonalProjects || len(tr.Groups) != o.Groups {
		t.Fatalf("truth has %d projects and %d groups, want %d and %d", len(tr.Projects), len(tr.Groups), o.Projects+o.PersonalProjects, o.Groups)
	}
	groupIDs := map[int64]bool{}
	for _, g := range tr.Groups {
		groupIDs[g.ID] = true
	}
	personal := map[int64]inventory.Project{}
	var lastGroupProject int64
	for _, p := range tr.Projects {
		if groupIDs[p.GroupID] {
			lastGroupProject = max(lastGroupProject, p.ID)
			continue
		}
		personal[p.ID] = p
		if p.GroupID < userIDBase || !strings.HasPrefix(p.PathWithNamespace, p.GroupFullPath+"/") || strings.Contains(p.GroupFullPath, "/") {
			t.Errorf("personal project %d: namespace %d %q, path %q", p.ID, p.GroupID, p.GroupFullPath, p.PathWithNamespace)
		}
	}
	if len(personal) != o.PersonalProjects {
		t.Fatalf("%d personal projects in the truth, want %d", len(personal), o.PersonalProjects)
	}
	for id := range personal {
		if id <= lastGroupProject {
			t.Errorf("personal project %d is not after the last group project %d", id, lastGroupProject)
		}
	}

	// Keyset over /projects with statistics, following Link rel="next".
	want := truthByID(tr)
	var got []int64
	opt := &gitlab.ListProjectsOptions{ListOptions: gitlab.ListOptions{Pagination: "keyset", OrderBy: "id", Sort: "asc", PerPage: 20}}
	opts := []gitlab.RequestOptionFunc{withQuery("statistics", "true")}
	for {
		list, resp, err := cl.Projects.ListProjects(opt, opts...)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list {
			got = append(got, p.ID)
			sameJSON(t, fmt.Sprintf("listed project %d", p.ID), identity(p), onlyIdentity(want[p.ID]))
			kind := "group"
			if _, ok := personal[p.ID]; ok {
				kind = "user"
			}
			if p.Namespace == nil || p.Namespace.Kind != kind {
				t.Errorf("project %d: namespace %+v, want kind %q", p.ID, p.Namespace, kind)
			}
		}
		if resp.NextLink == "" {
			break
		}
		next, err := url.Parse(resp.NextLink)
		if err != nil || next.Query().Get("id_after") != strconv.FormatInt(list[len(list)-1].ID, 10) || next.Query().Get("statistics") != "true" {
			t.Fatalf("next link %q does not continue after %d with statistics", resp.NextLink, list[len(list)-1].ID)
		}
		opts = []gitlab.RequestOptionFunc{gitlab.WithKeysetPaginationParameters(resp.NextLink)}
	}
	wantIDs := make([]int64, len(tr.Projects))
	for i, p := range tr.Projects {
		wantIDs[i] = p.ID
	}
	if !slices.Equal(got, wantIDs) {
		t.Errorf("keyset /projects listed %d projects, want the truth's %d in id order", len(got), len(wantIDs))
	}

	// Offset /projects counts them too.
	_, resp, err := cl.Projects.ListProjects(&gitlab.ListProjectsOptions{ListOptions: gitlab.ListOptions{PerPage: 1}})
	if err != nil || resp.TotalItems != int64(len(tr.Projects)) {
		t.Errorf("offset /projects: X-Total %v (%v), want %d", resp, err, len(tr.Projects))
	}

	// No group listing holds a personal project.
	for _, g := range tr.Groups {
		for page := int64(1); ; page++ {
			list, resp, err := cl.Groups.ListGroupProjects(g.ID, &gitlab.ListGroupProjectsOptions{
				ListOptions: gitlab.ListOptions{Page: page, PerPage: 100}, IncludeSubGroups: gitlab.Ptr(true)})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range list {
				if _, ok := personal[p.ID]; ok {
					t.Errorf("personal project %d listed in group %s", p.ID, g.FullPath)
				}
			}
			if resp.NextPage == 0 {
				break
			}
		}
	}

	// A user's listing, by id and by username, is exactly that user's projects.
	byUser := map[int64][]int64{}
	users := map[int64]string{}
	for _, p := range tr.Projects {
		if _, ok := personal[p.ID]; ok {
			byUser[p.GroupID] = append(byUser[p.GroupID], p.ID)
			users[p.GroupID] = p.GroupFullPath
		}
	}
	for uid, ids := range byUser {
		for _, ref := range []any{int(uid), users[uid]} {
			list, _, err := cl.Projects.ListUserProjects(ref, &gitlab.ListProjectsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}})
			if err != nil {
				t.Fatalf("user %v projects: %v", ref, err)
			}
			var listed []int64
			for _, p := range list {
				listed = append(listed, p.ID)
			}
			if !slices.Equal(listed, ids) {
				t.Errorf("user %v lists %v, want %v", ref, listed, ids)
			}
		}
	}
	if _, resp, err := cl.Projects.ListUserProjects("nobody.here", nil); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown user: %v", err)
	}
}

// TestPersonalProjectEndpoints: a personal project answers projects/:id, by id and by
// path, and the endpoints below it as a group project does, faults included.
func TestPersonalProjectEndpoints(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 9, Groups: 4, Projects: 30, Users: 3, PersonalProjects: 25})
	cl := newClient(t, ts.URL, "sim-token")
	tr := s.Truth()
	var p inventory.Project
	for _, tp := range tr.Projects {
		if tp.GroupID >= userIDBase && inventory.Is(tp.Features.HasCI) && !tp.EmptyRepo {
			p = tp
			break
		}
	}
	if p.ID == 0 {
		t.Fatal("no non-empty personal project with CI in the instance")
	}
	sameJSON(t, "scan of a personal project", scanProject(t, t.Context(), cl, p.ID), p)
	for _, ref := range []any{int(p.ID), p.PathWithNamespace} {
		got, _, err := cl.Projects.GetProject(ref, nil)
		if err != nil {
			t.Fatalf("project %v: %v", ref, err)
		}
		if got.ID != p.ID || got.Namespace.Kind != "user" || got.Namespace.FullPath != p.GroupFullPath || got.Namespace.Path != p.GroupFullPath ||
			got.Namespace.ID != p.GroupID || got.WebURL != p.WebURL || got.Owner == nil || got.Owner.Username != p.GroupFullPath {
			t.Errorf("project %v: namespace %+v, web_url %q, owner %+v", ref, got.Namespace, got.WebURL, got.Owner)
		}
	}

	s.SetFaults(Faults{ForbiddenRate: 1, ForbiddenEndpoints: []string{"projects/:id/hooks"}})
	if _, resp, _ := cl.Projects.ListProjectHooks(int(p.ID), nil); resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("forbidden hooks on a personal project: %v", resp)
	}
	if f := s.Truth().Faults.Forbidden[p.ID]; !slices.Equal(f, []string{"projects/:id/hooks"}) {
		t.Errorf("truth faults of personal project %d: %v", p.ID, f)
	}
	s.SetFaults(Faults{DeletedRate: 1})
	if _, resp, _ := cl.Projects.GetProject(int(p.ID), nil); resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleted personal project: %v", resp)
	}
}

// TestPersonalProjectsDeterministic: the same options give the same instance, served
// bytes included; another seed gives another.
func TestPersonalProjectsDeterministic(t *testing.T) {
	o := Options{Seed: 3, Groups: 5, Projects: 60, Users: 5, PersonalProjects: 40}
	a, b := instanceDigest(t, o), instanceDigest(t, o)
	if a != b {
		t.Fatal("two instances from the same options differ")
	}
	o.Seed = 4
	if instanceDigest(t, o) == a {
		t.Fatal("seeds 3 and 4 give the same instance")
	}
}

func TestUsernamesUniqueAndIDsApart(t *testing.T) {
	tests := []struct {
		o        Options
		pastBase bool // the group ids reach userIDBase
	}{
		{Options{Seed: 1, Groups: 10, Users: 900, PersonalProjects: 50}, false}, // more users than name pairs
		{Options{Seed: 2, Groups: 450_000, Users: 3}, true},
	}
	for _, tt := range tests {
		s := newTestServer(t, tt.o)
		last := s.in.groups[len(s.in.groups)-1].id
		if (last >= userIDBase) != tt.pastBase {
			t.Fatalf("%d groups end at id %d: the case does not test what it says", tt.o.Groups, last)
		}
		seen := map[string]bool{}
		for k, u := range s.in.users {
			if seen[u.username] || !strings.Contains(u.username, ".") {
				t.Errorf("username %q repeated or without a dot", u.username)
			}
			seen[u.username] = true
			if u.id <= last || (k > 0 && u.id <= s.in.users[k-1].id) {
				t.Errorf("user %q id %d not ascending above the last group id %d", u.username, u.id, last)
			}
		}
	}
}
