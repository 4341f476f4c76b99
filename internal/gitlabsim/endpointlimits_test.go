package gitlabsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fetch GETs path with the token and returns the answer and its body.
func fetch(t *testing.T, ts *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("PRIVATE-TOKEN", "sim-token")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// rateLimitHeaderNames lists the RateLimit-* headers an answer carries.
func rateLimitHeaderNames(h http.Header) []string {
	var out []string
	for k := range h {
		if strings.HasPrefix(k, "Ratelimit-") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

const endpointLimitJSON = `{"message":{"error":"This endpoint has been requested too many times. Try again later."}}`

// TestEndpointLimits: a class's own limit answers 429 on that class only, with the
// headers and body of its mode; hidden headers still throttle.
func TestEndpointLimits(t *testing.T) {
	own := []EndpointLimit{{Class: "projects/:id", Limit: 3}}
	tests := []struct {
		name   string
		o      Options
		path   string // requested until a 429; "%d" is a project id
		other  string // never 429; "" when every class shares the one limit
		name2  string // RateLimit-Name on path's 200s; "" = no rate-limit header
		limit2 string // RateLimit-Limit on path's 200s
		// on the 429: RateLimit-Name ("" = no rate-limit header), Retry-After
		// ("none", "any" = 1 to 60 s, "" = not checked) and body
		name429, retry429, body429 string
		nameOther                  string // RateLimit-Name on other's answers
	}{
		{
			name: "announced", o: Options{RateLimitRPM: 1000, EndpointLimits: own},
			path: "/api/v4/projects/%d", other: "/api/v4/projects/%d/merge_requests",
			name2: "project_api", limit2: "3", name429: "project_api", retry429: "any", body429: endpointLimitJSON,
			nameOther: "throttle_authenticated_api",
		},
		{
			name: "quiet as on GitLab.com", o: Options{RateLimitRPM: 1000, EndpointLimits: own, QuietEndpointLimits: true},
			path: "/api/v4/projects/%d", other: "/api/v4/groups",
			name2: "throttle_authenticated_api", limit2: "1000", name429: "", retry429: "60", body429: endpointLimitJSON,
			nameOther: "throttle_authenticated_api",
		},
		{
			name: "own limit without a global one", o: Options{EndpointLimits: []EndpointLimit{{Class: "groups/:id/projects", Limit: 2, Name: "custom"}}},
			path: "/api/v4/groups/%g/projects", other: "/api/v4/projects/%d",
			name2: "custom", limit2: "2", name429: "custom", retry429: "any", body429: endpointLimitJSON,
		},
		{
			name: "a longer window is announced per minute", o: Options{EndpointLimits: []EndpointLimit{{Class: "projects", Limit: 3, Window: 2 * time.Minute}}},
			path: "/api/v4/projects", other: "/api/v4/projects/%d",
			name2: "projects_api", limit2: "2", name429: "projects_api", retry429: "", body429: endpointLimitJSON,
		},
		{
			name: "hidden headers, class limit", o: Options{RateLimitRPM: 1000, EndpointLimits: own, HideRateLimitHeaders: true},
			path: "/api/v4/projects/%d", other: "/api/v4/projects/%d/issues",
			retry429: "any", body429: endpointLimitJSON,
		},
		{
			name: "hidden headers, global limit", o: Options{RateLimitRPM: 3, HideRateLimitHeaders: true},
			path: "/api/v4/projects/%d/merge_requests", retry429: "any", body429: "Retry later\n",
		},
		{
			name: "hidden headers, no Retry-After either", o: Options{RateLimitRPM: 3, HideRateLimitHeaders: true, Faults: Faults{NoHeaders429: true}},
			path: "/api/v4/groups", retry429: "none", body429: "Retry later\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Seed, tt.o.Groups, tt.o.Projects = 1, 2, 5
			s, ts := startSim(t, tt.o)
			pid, gid := strconv.FormatInt(s.in.projects[0].id, 10), strconv.FormatInt(s.in.groups[s.in.projects[0].group].id, 10)
			expand := strings.NewReplacer("%d", pid, "%g", gid).Replace
			// A burst may straddle one window boundary: 2*limit+1 requests must see a 429.
			var resp *http.Response
			var body string
			for range 7 {
				if tt.other != "" {
					o, _ := fetch(t, ts, expand(tt.other))
					if o.StatusCode != http.StatusOK || o.Header.Get("RateLimit-Name") != tt.nameOther {
						t.Fatalf("%s: status %d, RateLimit-Name %q, want 200 and %q", tt.other, o.StatusCode, o.Header.Get("RateLimit-Name"), tt.nameOther)
					}
				}
				if resp, body = fetch(t, ts, expand(tt.path)); resp.StatusCode != http.StatusOK {
					break
				}
				h := resp.Header
				if tt.name2 == "" && len(rateLimitHeaderNames(h)) > 0 {
					t.Fatalf("200 carries %v, want no rate-limit header", rateLimitHeaderNames(h))
				}
				if tt.name2 != "" && (h.Get("RateLimit-Name") != tt.name2 || h.Get("RateLimit-Limit") != tt.limit2 || h.Get("RateLimit-Remaining") == "") {
					t.Fatalf("200: RateLimit-Name %q, Limit %q, Remaining %q; want %q, %q", h.Get("RateLimit-Name"), h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), tt.name2, tt.limit2)
				}
			}
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("status %d after 7 requests, want 429", resp.StatusCode)
			}
			if tt.other != "" {
				if o, _ := fetch(t, ts, expand(tt.other)); o.StatusCode != http.StatusOK {
					t.Errorf("%s after the class's 429: status %d, want 200", tt.other, o.StatusCode)
				}
			}
			h := resp.Header
			if h.Get("RateLimit-Name") != tt.name429 || (tt.name429 == "" && len(rateLimitHeaderNames(h)) > 0) {
				t.Errorf("429: RateLimit-Name %q, headers %v; want name %q", h.Get("RateLimit-Name"), rateLimitHeaderNames(h), tt.name429)
			}
			if tt.name429 != "" && (h.Get("RateLimit-Remaining") != "0" || h.Get("RateLimit-ResetTime") == "") {
				t.Errorf("429: Remaining %q, ResetTime %q", h.Get("RateLimit-Remaining"), h.Get("RateLimit-ResetTime"))
			}
			switch retry, err := strconv.Atoi(h.Get("Retry-After")); tt.retry429 {
			case "":
			case "none":
				if h.Get("Retry-After") != "" {
					t.Errorf("429: Retry-After %q, want none", h.Get("Retry-After"))
				}
			case "any":
				if err != nil || retry < 1 || retry > 60 {
					t.Errorf("429: Retry-After %q, want 1 to 60 s", h.Get("Retry-After"))
				}
			default:
				if h.Get("Retry-After") != tt.retry429 {
					t.Errorf("429: Retry-After %q, want %s", h.Get("Retry-After"), tt.retry429)
				}
			}
			if body != tt.body429 {
				t.Errorf("429 body %q, want %q", body, tt.body429)
			}
			if st := s.Stats(); st.Throttled != 1 {
				t.Errorf("stats: %d throttled, want 1", st.Throttled)
			}
		})
	}
}

func TestParseEndpointLimits(t *testing.T) {
	tests := []struct {
		in      string
		want    []EndpointLimit
		wantErr string
	}{
		{"", nil, ""},
		{"projects/:id=400, groups/:id/projects=600", []EndpointLimit{{Class: "projects/:id", Limit: 400}, {Class: "groups/:id/projects", Limit: 600}}, ""},
		{"projects=2000/10m", []EndpointLimit{{Class: "projects", Limit: 2000, Window: 10 * time.Minute}}, ""},
		{"projects/:id", nil, "want class=limit"},
		{"projects/:id=lots", nil, "limit"},
		{"projects/:id=0", nil, "not positive"},
		{"projects/:id=5/soon", nil, "window"},
		{"projects/:id/wikis=5", nil, "unknown endpoint class"},
		{"other=5", nil, "unknown endpoint class"},
		{"groups=5,groups=6", nil, "given twice"},
	}
	for _, tt := range tests {
		got, err := ParseEndpointLimits(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseEndpointLimits(%q) error %v, want one mentioning %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseEndpointLimits(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := New(Options{Groups: 1, EndpointLimits: []EndpointLimit{{Class: "nope", Limit: 1}}}); err == nil {
		t.Error("New accepts a limit on an unknown class")
	}
}

// TestGitLabComEndpointLimits: the preset is valid, names each class as GitLab's
// application rate limiter does, and announces the documented rates per minute.
func TestGitLabComEndpointLimits(t *testing.T) {
	want := map[string]struct {
		name      string
		perMinute int
	}{
		"projects":                 {"projects_api", 200}, // 2,000 every 10 minutes
		"projects/:id":             {"project_api", 400},
		"groups":                   {"groups_api", 50},
		"groups/:id":               {"group_api", 400},
		"groups/:id/projects":      {"group_projects_api", 600},
		"users/:id/projects":       {"user_projects_api", 300},
		"projects/:id/members/all": {"project_members_api", 200},
	}
	ls := GitLabComEndpointLimits()
	if err := validateEndpointLimits(ls); err != nil || len(ls) != len(want) {
		t.Fatalf("%d limits, error %v; want %d valid ones", len(ls), err, len(want))
	}
	for _, l := range ls {
		lim := newEndpointLimiter(l)
		if w := want[l.Class]; lim.name != w.name || lim.perMinute != w.perMinute {
			t.Errorf("%s: %s at %d a minute, want %s at %d", l.Class, lim.name, lim.perMinute, w.name, w.perMinute)
		}
	}
	merged := MergeEndpointLimits(ls, []EndpointLimit{{Class: "groups", Limit: 200}, {Class: "projects/:id/merge_requests", Limit: 10}})
	if len(merged) != len(ls)+1 || merged[2] != (EndpointLimit{Class: "groups", Limit: 200}) || merged[len(merged)-1].Class != "projects/:id/merge_requests" {
		t.Errorf("merged: %v", merged)
	}
}
