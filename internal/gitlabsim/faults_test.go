package gitlabsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

func do(t *testing.T, client *http.Client, method, url, token string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("PRIVATE-TOKEN", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name      string
		faults    Faults
		wantRetry bool
	}{
		{"with headers", Faults{}, true},
		{"without headers", Faults{NoHeaders429: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// 5 a minute; a burst may straddle one window boundary, so 11 requests must see a 429.
			s, ts := startSim(t, Options{Seed: 1, Groups: 2, Projects: 5, RateLimitRPM: 5, Faults: tt.faults})
			var throttled *http.Response
			for range 11 {
				resp := do(t, ts.Client(), http.MethodGet, ts.URL+"/api/v4/projects", "sim-token", nil)
				if resp.StatusCode == http.StatusTooManyRequests {
					throttled = resp
					break
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				h := resp.Header
				obs, _ := strconv.Atoi(h.Get("RateLimit-Observed"))
				rem, _ := strconv.Atoi(h.Get("RateLimit-Remaining"))
				reset, _ := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64)
				if h.Get("RateLimit-Limit") != "5" || obs < 1 || obs+rem != 5 || reset < time.Now().Unix() {
					t.Fatalf("headers: limit %q observed %d remaining %d reset %d", h.Get("RateLimit-Limit"), obs, rem, reset)
				}
			}
			if throttled == nil {
				t.Fatal("no 429 in 11 requests at 5 per minute")
			}
			h := throttled.Header
			retry, err := strconv.Atoi(h.Get("Retry-After"))
			_, terr := http.ParseTime(h.Get("RateLimit-ResetTime"))
			if tt.wantRetry && (err != nil || retry < 1 || retry > 60 || terr != nil || h.Get("RateLimit-Remaining") != "0") {
				t.Errorf("429 headers: Retry-After %q, ResetTime %q, Remaining %q", h.Get("Retry-After"), h.Get("RateLimit-ResetTime"), h.Get("RateLimit-Remaining"))
			}
			if !tt.wantRetry {
				for k := range h {
					if strings.HasPrefix(k, "Ratelimit-") || k == "Retry-After" {
						t.Errorf("429 without headers carries %s", k)
					}
				}
			}
			if st := s.Stats(); st.Throttled != 1 || st.ByStatus[http.StatusTooManyRequests] != 1 || st.Faults != 0 {
				t.Errorf("stats after one 429: %+v", st)
			}
		})
	}
}

// TestRateWindowShrinks: tests shrink the window; the limit per window scales with it.
func TestRateWindowShrinks(t *testing.T) {
	_, ts := startSim(t, Options{Seed: 1, Groups: 2, Projects: 5, RateLimitRPM: 600, RateWindow: time.Second})
	cl, err := gitlab.NewClient("sim-token", gitlab.WithBaseURL(ts.URL+"/api/v4"), gitlab.WithCustomLimiter(noLimit{}), gitlab.WithCustomRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	var got429 *gitlab.Response
	for range 21 { // 10 per one-second window
		_, resp, err := cl.Projects.ListProjects(nil)
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			got429 = resp
			if err == nil {
				t.Error("a 429 is not an error for client-go")
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got429 == nil {
		t.Fatal("no 429 in 21 requests at 10 per window")
	}
	if got429.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q in a one-second window, want 1", got429.Header.Get("Retry-After"))
	}
}

// statusesOf requests every project's detail once and returns the statuses.
func statusesOf(t *testing.T, s *Server, ts *httptest.Server, client *http.Client) []int {
	t.Helper()
	out := make([]int, 0, len(s.in.projects))
	for i := range s.in.projects {
		resp := do(t, client, http.MethodGet, fmt.Sprintf("%s/api/v4/projects/%d", ts.URL, s.in.projects[i].id), "sim-token", nil)
		out = append(out, resp.StatusCode)
	}
	return out
}

func TestFaultRates(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		match  func(status int) bool
	}{
		{"errors", Faults{ErrorRate: 0.2}, func(st int) bool { return st == 500 || st == 502 || st == 503 }},
		{"burst 429", Faults{Burst429Rate: 0.1}, func(st int) bool { return st == 429 }},
		{"timeouts", Faults{TimeoutRate: 0.05, Hang: time.Millisecond}, func(st int) bool { return st == 504 }},
	}
	const n = 1000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := startSim(t, Options{Seed: 7, Groups: 5, Projects: n, Faults: tt.faults})
			statuses := statusesOf(t, s, ts, ts.Client())
			rate := max(tt.faults.ErrorRate, tt.faults.Burst429Rate, tt.faults.TimeoutRate)
			hits := 0
			kinds := map[int]bool{}
			for _, st := range statuses {
				if tt.match(st) {
					hits++
					kinds[st] = true
				} else if st != http.StatusOK {
					t.Fatalf("unexpected status %d", st)
				}
			}
			// Four standard deviations of a binomial: deterministic per seed, never flaky.
			if got := float64(hits) / n; got < rate*0.6 || got > rate*1.4 {
				t.Errorf("fault rate %.3f, configured %.3f", got, rate)
			}
			if tt.faults.ErrorRate > 0 && len(kinds) != 3 {
				t.Errorf("error statuses %v, want 500, 502 and 503", kinds)
			}
			if st := s.Stats(); st.Faults != int64(hits) {
				t.Errorf("stats count %d faults, %d served", st.Faults, hits)
			}
			// Same seed, same requests: the same answers (a failing run replays).
			s2, ts2 := startSim(t, Options{Seed: 7, Groups: 5, Projects: n, Faults: tt.faults})
			if again := statusesOf(t, s2, ts2, ts2.Client()); !slices.Equal(again, statuses) {
				t.Error("the same seed and requests gave different faults")
			}
			// A retry of a failed request eventually succeeds.
			for i, st := range statuses {
				if st == http.StatusOK {
					continue
				}
				url := fmt.Sprintf("%s/api/v4/projects/%d", ts.URL, s.in.projects[i].id)
				ok := false
				for range 10 {
					if do(t, ts.Client(), http.MethodGet, url, "sim-token", nil).StatusCode == http.StatusOK {
						ok = true
						break
					}
				}
				if !ok {
					t.Fatalf("%s failed 11 times in a row at rate %.2f", url, rate)
				}
			}
		})
	}
}

func TestMalformedBodies(t *testing.T) {
	const n = 600
	s, ts := startSim(t, Options{Seed: 3, Groups: 5, Projects: n, Faults: Faults{MalformedRate: 0.1}})
	cl := newClient(t, ts.URL, "sim-token")
	bad := 0
	for i := range s.in.projects {
		_, resp, err := cl.Projects.GetProject(s.in.projects[i].id, nil)
		if err != nil {
			if resp == nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("malformed body: want a decode error on a 200, got %v", err)
			}
			bad++
		}
	}
	if got := float64(bad) / n; got < 0.06 || got > 0.14 {
		t.Errorf("malformed rate %.3f, configured 0.1", got)
	}
	// Error answers and raw files stay intact.
	if resp := do(t, ts.Client(), http.MethodGet, ts.URL+"/api/v4/projects/999999999", "sim-token", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing project: %d", resp.StatusCode)
	}
}

func TestForbiddenAndDeletedProjects(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 4, Groups: 10, Projects: 600, Faults: Faults{
		ForbiddenRate: 0.1, ForbiddenEndpoints: []string{"projects/:id/hooks", "projects/:id/variables"}, DeletedRate: 0.05,
	}})
	cl := newClient(t, ts.URL, "sim-token")
	tf := s.Truth().Faults
	if len(tf.Forbidden) < 30 || len(tf.Forbidden) > 90 || len(tf.Deleted) < 12 || len(tf.Deleted) > 50 {
		t.Fatalf("%d forbidden and %d deleted of 600, configured 10%% and 5%%", len(tf.Forbidden), len(tf.Deleted))
	}
	status := func(resp *gitlab.Response) int {
		if resp == nil {
			return 0
		}
		return resp.StatusCode
	}
	for i := range s.in.projects {
		id := s.in.projects[i].id
		deleted := slices.Contains(tf.Deleted, id)
		classes := tf.Forbidden[id]
		_, dresp, _ := cl.Projects.GetProject(id, nil)
		_, hresp, _ := cl.Projects.ListProjectHooks(id, nil)
		_, bresp, _ := cl.Branches.ListBranches(id, nil)
		switch {
		case deleted:
			if status(dresp) != 404 || status(hresp) != 404 || status(bresp) != 404 {
				t.Fatalf("deleted project %d: detail %d, hooks %d, branches %d", id, status(dresp), status(hresp), status(bresp))
			}
		case classes != nil:
			if !slices.Equal(classes, []string{"projects/:id/hooks", "projects/:id/variables"}) || status(dresp) != 200 || status(hresp) != 403 || status(bresp) != 200 {
				t.Fatalf("forbidden project %d (%v): detail %d, hooks %d, branches %d", id, classes, status(dresp), status(hresp), status(bresp))
			}
		default:
			if status(dresp) != 200 || status(hresp) != 200 {
				t.Fatalf("project %d: detail %d, hooks %d", id, status(dresp), status(hresp))
			}
		}
	}
	// Deleted projects are still listed.
	var listed []int64
	opt := &gitlab.ListProjectsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}}
	for {
		list, resp, err := cl.Projects.ListProjects(opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list {
			listed = append(listed, p.ID)
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	for _, id := range tf.Deleted {
		if !slices.Contains(listed, id) {
			t.Fatalf("deleted project %d is not listed", id)
		}
	}
	// "*" forbids the detail too.
	s.SetFaults(Faults{ForbiddenRate: 0.1, ForbiddenEndpoints: []string{"*"}})
	tf = s.Truth().Faults
	scoped := 0
	for _, name := range EndpointClasses() {
		if c, _ := classByName(name); c.projectScoped() {
			scoped++
		}
	}
	for id, classes := range tf.Forbidden {
		if len(classes) != scoped {
			t.Fatalf("\"*\" forbids %d classes, want every projects/:id class", len(classes))
		}
		if _, resp, _ := cl.Projects.GetProject(id, nil); status(resp) != http.StatusForbidden {
			t.Fatalf("project %d under \"*\": detail %d", id, status(resp))
		}
		break
	}
}

// TestTimeoutHonoursCancel: a hanging request ends when the client gives up.
func TestTimeoutHonoursCancel(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 1, Groups: 2, Projects: 5, Faults: Faults{TimeoutRate: 1, Hang: time.Minute}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/v4/version", nil)
	req.Header.Set("PRIVATE-TOKEN", "sim-token")
	if _, err := ts.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the client's deadline, got %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().ByStatus[499] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the hanging handler did not return after the client left: %+v", s.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStatsAndControl(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 1, Groups: 5, Projects: 50})
	c := ts.Client()
	for _, path := range []string{"/api/v4/version", "/api/v4/projects", "/api/v4/projects/1/hooks", "/api/v4/nope"} {
		do(t, c, http.MethodGet, ts.URL+path, "sim-token", nil)
	}
	do(t, c, http.MethodGet, ts.URL+"/api/v4/projects", "", nil)

	var st Stats
	resp, err := c.Get(ts.URL + "/-/sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := Stats{Requests: 5, ByClass: map[string]int64{"version": 1, "projects": 2, "projects/:id/hooks": 1, "other": 1},
		ByStatus: map[int]int64{200: 3, 401: 1, 404: 1}, PeakPerMinute: 5,
		PeakPerMinuteByClass: map[string]int64{"version": 1, "projects": 2, "projects/:id/hooks": 1, "other": 1}}
	if hooks := s.in.projects[0]; hooks.id != 1 {
		t.Fatalf("first project id %d", hooks.id)
	}
	sameJSON(t, "stats", st, want)

	if resp := do(t, c, http.MethodPost, ts.URL+"/-/sim/stats/reset", "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("reset: %d", resp.StatusCode)
	}
	if st := s.Stats(); st.Requests != 0 || len(st.ByClass) != 0 || st.PeakPerMinute != 0 {
		t.Fatalf("after reset: %+v", st)
	}

	body := `{"error_rate":0.5,"latency":"1ms","forbidden_rate":0.2,"forbidden_endpoints":["projects/:id/hooks"]}`
	if resp := do(t, c, http.MethodPut, ts.URL+"/-/sim/faults", "", strings.NewReader(body)); resp.StatusCode != http.StatusOK {
		t.Fatalf("put faults: %d", resp.StatusCode)
	}
	if f := s.CurrentFaults(); f.ErrorRate != 0.5 || f.Latency != time.Millisecond || f.ForbiddenRate != 0.2 || !slices.Equal(f.ForbiddenEndpoints, []string{"projects/:id/hooks"}) {
		t.Fatalf("faults after PUT: %+v", f)
	}
	for _, bad := range []string{`{"error_rate":2}`, `{"eror_rate":0.1}`, `{"forbidden_endpoints":["projects/:id/nope"]}`, `{"latency":"soon"}`} {
		if resp := do(t, c, http.MethodPut, ts.URL+"/-/sim/faults", "", strings.NewReader(bad)); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("PUT %s: %d, want 400", bad, resp.StatusCode)
		}
	}
	if f := s.CurrentFaults(); f.ErrorRate != 0.5 {
		t.Errorf("a rejected PUT changed the faults: %+v", f)
	}

	// The streamed truth is the same as Truth().
	resp, err = c.Get(ts.URL + "/-/sim/truth")
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	whole, _ := json.Marshal(s.Truth())
	if err := json.Unmarshal(streamed, &a); err != nil {
		t.Fatalf("streamed truth: %v", err)
	}
	_ = json.Unmarshal(whole, &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Error("streamed truth differs from Truth()")
	}
	if st := s.Stats(); st.Requests != 0 {
		t.Errorf("control requests were counted: %+v", st)
	}
}

func TestPeakPerMinute(t *testing.T) {
	var c counters
	c.reset()
	base := time.Unix(1_700_000_000, 0)
	var sent int64
	for sec := range 200 {
		for range 1 + sec%3 { // 1, 2, 3, 1, 2, 3, ...: 120 in any 60 s
			c.record(clsVersion, 200, false, false, base.Add(time.Duration(sec)*time.Second))
			sent++
		}
	}
	if st := c.snapshot(); st.PeakPerMinute != 120 {
		t.Errorf("peak %d for a steady 2 per second, want 120", st.PeakPerMinute)
	}
	// A burst of 150 in one second after a quiet two minutes.
	for range 150 {
		c.record(clsVersion, 200, false, false, base.Add(400*time.Second))
	}
	if st := c.snapshot(); st.PeakPerMinute != 150 || st.Requests != sent+150 {
		t.Errorf("peak %d over %d requests, want 150 over %d", st.PeakPerMinute, st.Requests, sent+150)
	}
}

func TestTinyInstances(t *testing.T) {
	for _, o := range []Options{{Groups: 1}, {Groups: 1, Projects: 1}, {Groups: 3, Projects: 2}, {Groups: 200, Projects: 10}} {
		s := newTestServer(t, o)
		tr := s.Truth()
		if len(tr.Groups) != o.Groups || len(tr.Projects) != o.Projects {
			t.Errorf("%+v: truth has %d groups and %d projects", o, len(tr.Groups), len(tr.Projects))
		}
		ts := httptest.NewServer(s)
		if resp := do(t, ts.Client(), http.MethodGet, ts.URL+"/api/v4/projects", "sim-token", nil); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Total") != strconv.Itoa(o.Projects) {
			t.Errorf("%+v: /projects %d, X-Total %q", o, resp.StatusCode, resp.Header.Get("X-Total"))
		}
		ts.Close()
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []Options{
		{Groups: 0, Projects: 10},
		{Groups: 1, Projects: -1},
		{Groups: 1, RateLimitRPM: -5},
		{Groups: 1, Faults: Faults{ErrorRate: 1.5}},
		{Groups: 1, Faults: Faults{ForbiddenEndpoints: []string{"groups/:id"}}},
		{Groups: 1, ExternalURL: "not a url"},
		{Groups: 1, Users: -1},
		{Groups: 1, Users: 2, PersonalProjects: -3},
		{Groups: 1, PersonalProjects: 3}, // personal projects need users
	}
	for _, o := range tests {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}
