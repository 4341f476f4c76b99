package gitlabsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// TestNowShiftsEveryTimestamp: Options.Now moves every generated timestamp by the
// same amount, so the newest activity is at now and ages and order are kept.
func TestNowShiftsEveryTimestamp(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	o := Options{Seed: 3, Groups: 12, Projects: 400, Users: 5, PersonalProjects: 40}
	base := newTestServer(t, o)
	o.Now = now
	moved := newTestServer(t, o)
	shift := now.Unix() - simNow

	if len(base.in.projects) != len(moved.in.projects) {
		t.Fatalf("%d projects moved, %d at the default clock", len(moved.in.projects), len(base.in.projects))
	}
	var newest int64
	for i := range base.in.projects {
		b, m := &base.in.projects[i], &moved.in.projects[i]
		if m.created-b.created != shift || m.activity-b.activity != shift {
			t.Fatalf("project %d: created %d→%d, activity %d→%d, want both moved by %d s",
				b.id, b.created, m.created, b.activity, m.activity, shift)
		}
		newest = max(newest, m.activity)
	}
	if age := now.Unix() - newest; age < 0 || age > 86400 {
		t.Errorf("newest last_activity_at is %d s before now, want within a day", age)
	}
	for i := range base.in.groups {
		if d := moved.in.groups[i].created - base.in.groups[i].created; d != shift {
			t.Errorf("group %d created moved by %d s, want %d", base.in.groups[i].id, d, shift)
		}
	}
	for i := range base.in.users {
		if d := moved.in.users[i].created - base.in.users[i].created; d != shift {
			t.Errorf("user %d created moved by %d s, want %d", base.in.users[i].id, d, shift)
		}
	}

	// What a scanner sees moves too: the project detail and its oldest merge request.
	compared := 0
	for i := range 20 {
		id := base.in.projects[i*len(base.in.projects)/20].id
		b, m := projectTimes(t, base, id), projectTimes(t, moved, id)
		compared += len(b)
		for k := range b {
			if d := m[k].Sub(b[k]); d != time.Duration(shift)*time.Second {
				t.Errorf("project %d %s moved by %v, want %v", id, k, d, time.Duration(shift)*time.Second)
			}
		}
	}
	if compared <= 40 {
		t.Errorf("compared %d API timestamps of 20 projects: no merge request among them", compared)
	}

	// A change lands on the day after the moved now, as it does after the default.
	if got := moved.Change(0.1, 7).Since; !got.Equal(now) {
		t.Errorf("first change since %v, want %v", got, now)
	}
	if got, want := base.Change(0.1, 7).Since, time.Unix(simNow, 0).UTC(); !got.Equal(want) {
		t.Errorf("default first change since %v, want %v", got, want)
	}
}

// TestNowAtDefaultIsDefault: a Now equal to the default clock is the default instance,
// byte for byte (the recorded digests pin the default itself).
func TestNowAtDefaultIsDefault(t *testing.T) {
	o := Options{Seed: 5, Groups: 6, Projects: 60}
	want := instanceDigest(t, o)
	o.Now = time.Unix(simNow, 0)
	if got := instanceDigest(t, o); got != want {
		t.Errorf("digest with Now at the default %s, want the default's %s", got, want)
	}
	o.Now = o.Now.Add(time.Hour)
	if got := instanceDigest(t, o); got == want {
		t.Error("digest with Now an hour later equals the default's: timestamps did not move")
	}
}

// projectTimes reads a project's timestamps through the API.
func projectTimes(t *testing.T, s *Server, id int64) map[string]time.Time {
	t.Helper()
	get := func(path string, v any) bool {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Private-Token", "sim-token")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code == http.StatusForbidden { // feature disabled
			return false
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, rec.Code)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return true
	}
	var p struct {
		CreatedAt      time.Time `json:"created_at"`
		LastActivityAt time.Time `json:"last_activity_at"`
	}
	if !get("/api/v4/projects/"+strconv.FormatInt(id, 10), &p) {
		t.Fatalf("project %d: 403", id)
	}
	out := map[string]time.Time{"created_at": p.CreatedAt, "last_activity_at": p.LastActivityAt}
	var mrs []struct {
		CreatedAt time.Time `json:"created_at"`
	}
	if get("/api/v4/projects/"+strconv.FormatInt(id, 10)+"/merge_requests?sort=asc&order_by=created_at&per_page=1", &mrs) && len(mrs) > 0 {
		out["first merge request created_at"] = mrs[0].CreatedAt
	}
	return out
}
