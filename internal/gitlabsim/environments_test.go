package gitlabsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestEnvironments: the list is paginated with GitLab's headers, its items are
// distinct and well formed, and it answers 403 when CI/CD is off.
func TestEnvironments(t *testing.T) {
	s := newTestServer(t, Options{Seed: 1, Groups: 12, Projects: 300})
	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Private-Token", "sim-token")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}
	var many, off *project
	for i := range s.in.projects {
		p := &s.in.projects[i]
		switch {
		case many == nil && p.count(cEnvironments) > 5:
			many = p
		case off == nil && !p.has(fJobs):
			off = p
		}
	}
	if many == nil || off == nil {
		t.Fatal("no project with more than 5 environments, or none with CI/CD off")
	}
	base := "/api/v4/projects/" + strconv.FormatInt(many.id, 10) + "/environments"
	n := many.count(cEnvironments)
	names := map[string]bool{}
	for page := int64(1); page <= (n+1)/2; page++ {
		rec := get(base + "?per_page=2&page=" + strconv.FormatInt(page, 10))
		if rec.Code != http.StatusOK || rec.Header().Get("X-Total") != strconv.FormatInt(n, 10) ||
			rec.Header().Get("X-Page") != strconv.FormatInt(page, 10) {
			t.Fatalf("page %d: %d, X-Total %q, X-Page %q; want 200, %d, %d", page, rec.Code, rec.Header().Get("X-Total"), rec.Header().Get("X-Page"), n, page)
		}
		var envs []apiEnvironment
		if err := json.Unmarshal(rec.Body.Bytes(), &envs); err != nil {
			t.Fatal(err)
		}
		for _, e := range envs {
			if e.ID == 0 || e.Name == "" || e.ExternalURL == nil || (e.State != "available" && e.State != "stopped") || names[e.Name] {
				t.Errorf("environment %+v: missing field, bad state or duplicate name", e)
			}
			names[e.Name] = true
		}
	}
	if int64(len(names)) != n || !names["production"] {
		t.Errorf("%d distinct environments listed (production: %v), want %d", len(names), names["production"], n)
	}
	if rec := get("/api/v4/projects/" + strconv.FormatInt(off.id, 10) + "/environments"); rec.Code != http.StatusForbidden {
		t.Errorf("CI/CD off: %d, want 403", rec.Code)
	}
}
