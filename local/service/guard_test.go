package service

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const testAdminToken = "admin-0123456789abcdef"

// request describes one client: where it connects from, the host it names, its
// headers and body.
type request struct {
	remote, host string
	header       map[string]string
	body         string
}

var (
	remote   = request{remote: "192.0.2.7:40000", host: "agent.example.com:8080"}
	loopback = request{remote: "127.0.0.1:40000", host: "localhost:8080"}
)

func (r request) with(k, v string) request {
	h := map[string]string{k: v}
	for k, v := range r.header {
		h[k] = v
	}
	r.header = h
	return r
}

func (r request) withBody(contentType, body string) request {
	r.body = body
	if contentType != "" {
		r = r.with("Content-Type", contentType)
	}
	return r
}

func bearer(token string) string { return "Bearer " + token }

// endpoint is a state-changing endpoint and the backend call it makes when admitted.
type endpoint struct {
	method, path string
	ok           int
	calls        func(*fakeBackend) int
}

var stateChanging = []endpoint{
	{"POST", "/runs", http.StatusAccepted, func(f *fakeBackend) int { return f.count(&f.starts) }},
	{"POST", "/dead-letters/redrive", http.StatusOK, func(f *fakeBackend) int { return f.count(&f.redrives) }},
	{"DELETE", "/dead-letters", http.StatusOK, func(f *fakeBackend) int { return f.count(&f.purges) }},
}

func do(t *testing.T, h http.Handler, method, path string, r request) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(r.body))
	if r.body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.RemoteAddr, req.Host = r.remote, r.host
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(body)
}

// guardCases are clients of a state-changing endpoint and how the guard answers them.
var guardCases = []struct {
	name       string
	adminToken string
	req        request
	want       int    // 0: the endpoint's success
	reason     string // in the refusal's error
}{
	// ADMIN_TOKEN set: the bearer token, from anywhere.
	{"token set, no header", testAdminToken, remote, 401, "bearer token"},
	{"token set, wrong token", testAdminToken, remote.with("Authorization", bearer("admin-0123456789abcdeX")), 401, "bearer token"},
	{"token set, token prefix", testAdminToken, remote.with("Authorization", bearer(testAdminToken[:10])), 401, "bearer token"},
	{"token set, empty bearer", testAdminToken, remote.with("Authorization", "Bearer "), 401, "bearer token"},
	{"token set, basic scheme", testAdminToken, remote.with("Authorization", "Basic "+testAdminToken), 401, "bearer token"},
	{"token set, right token", testAdminToken, remote.with("Authorization", bearer(testAdminToken)), 0, ""},
	{"token set, lower-case scheme", testAdminToken, remote.with("Authorization", "bearer "+testAdminToken), 0, ""},
	{"token set, loopback needs it too", testAdminToken, loopback, 401, "bearer token"},
	{"token set, loopback with it", testAdminToken, loopback.with("Authorization", bearer(testAdminToken)), 0, ""},

	// ADMIN_TOKEN unset: direct loopback clients only.
	{"unset, remote", "", remote, 403, "ADMIN_TOKEN is not set"},
	{"unset, remote with a bearer", "", remote.with("Authorization", bearer("anything-at-all-123")), 403, "ADMIN_TOKEN is not set"},
	{"unset, loopback", "", loopback, 0, ""},
	{"unset, loopback by address", "", request{remote: "127.0.0.1:1", host: "127.0.0.1:8080"}, 0, ""},
	{"unset, IPv6 loopback", "", request{remote: "[::1]:1", host: "[::1]:8080"}, 0, ""},
	{"unset, loopback with a bearer", "", loopback.with("Authorization", bearer("whatever-the-shell-has")), 0, ""},
	{"unset, loopback naming another host (DNS rebinding)", "", request{remote: "127.0.0.1:1", host: "rebind.example:8080"}, 403, "ADMIN_TOKEN is not set"},
	{"unset, loopback through a proxy", "", loopback.with("X-Forwarded-For", "198.51.100.4"), 403, "ADMIN_TOKEN is not set"},
	{"unset, loopback through a Forwarded proxy", "", loopback.with("Forwarded", "for=198.51.100.4"), 403, "ADMIN_TOKEN is not set"},
	{"unset, docker gateway", "", request{remote: "172.17.0.1:1", host: "localhost:8080"}, 403, "ADMIN_TOKEN is not set"},

	// Browsers' cross-origin requests, whatever they carry.
	{"cross-site fetch", "", loopback.with("Sec-Fetch-Site", "cross-site"), 403, "cross-origin"},
	{"cross-site with the token", testAdminToken, remote.with("Authorization", bearer(testAdminToken)).with("Sec-Fetch-Site", "cross-site"), 403, "cross-origin"},
	{"foreign Origin", "", loopback.with("Origin", "https://evil.example"), 403, "cross-origin"},
	{"same-origin browser", "", loopback.with("Sec-Fetch-Site", "same-origin"), 0, ""},

	// Bodies: JSON or none.
	{"JSON body", "", loopback.withBody("application/json", `{}`), 0, ""},
	{"JSON with charset", "", loopback.withBody("application/json; charset=utf-8", `{}`), 0, ""},
	{"JSON type, no body", "", loopback.withBody("application/json", ""), 0, ""},
	{"text/plain", "", loopback.withBody("text/plain", `{}`), 415, "application/json"},
	{"text/plain without a body", "", loopback.withBody("text/plain", ""), 415, "application/json"},
	{"form", "", loopback.withBody("application/x-www-form-urlencoded", "a=b"), 415, "application/json"},
	{"multipart", "", loopback.withBody("multipart/form-data; boundary=x", "--x--"), 415, "application/json"},
	{"body without a type", "", loopback.withBody("", `{}`), 415, "application/json"},
	{"malformed type", "", loopback.withBody("application/json;;=", `{}`), 415, "application/json"},
	{"text/plain with the token", testAdminToken, remote.with("Authorization", bearer(testAdminToken)).withBody("text/plain", "x"), 415, "application/json"},
	{"text/plain without the token", testAdminToken, remote.withBody("text/plain", "x"), 401, "bearer token"},
}

func TestGuard(t *testing.T) {
	for _, ep := range stateChanging {
		for _, tt := range guardCases {
			t.Run(ep.method+" "+ep.path+"/"+tt.name, func(t *testing.T) {
				f := &fakeBackend{}
				s, logs := newTestService(t, f, tt.adminToken)
				resp, body := do(t, s.healthMux(), ep.method, ep.path, tt.req)
				want := tt.want
				if want == 0 {
					want = ep.ok
				}
				if resp.StatusCode != want {
					t.Fatalf("%d %s, want %d", resp.StatusCode, body, want)
				}
				calls := ep.calls(f)
				if tt.want == 0 {
					if calls != 1 {
						t.Errorf("admitted, but the backend was called %d times", calls)
					}
					return
				}
				if calls != 0 {
					t.Errorf("refused, but the backend was called %d times", calls)
				}
				var answer map[string]string
				if err := json.Unmarshal([]byte(body), &answer); err != nil || strings.Count(body, "\n") != 1 {
					t.Fatalf("refusal %q is not one line of JSON: %v", body, err)
				}
				if !strings.Contains(answer["error"], tt.reason) {
					t.Errorf("reason %q does not say %q", answer["error"], tt.reason)
				}
				if got := resp.Header.Get("WWW-Authenticate"); (want == 401) != (got != "") {
					t.Errorf("status %d with WWW-Authenticate %q", want, got)
				}
				if strings.Contains(body+logs.String(), testAdminToken) {
					t.Errorf("the admin token appears in the answer or the log")
				}
			})
		}
	}
}

// Reading stays open: health, readiness and the dead letters answer anyone.
func TestGuardLeavesReadsOpen(t *testing.T) {
	for _, path := range []string{"/health", "/health/live", "/health/ready", "/dead-letters"} {
		s, _ := newTestService(t, &fakeBackend{}, testAdminToken)
		if resp, body := do(t, s.healthMux(), "GET", path, remote); resp.StatusCode != 200 {
			t.Errorf("GET %s from a remote client without a token = %d %s", path, resp.StatusCode, body)
		}
	}
}

func TestAdminTokenTooShort(t *testing.T) {
	s := &Service{Backend: &fakeBackend{}, AdminToken: "short-secret"}
	err := s.setup(t.Context())
	if err == nil || !strings.Contains(err.Error(), "ADMIN_TOKEN") {
		t.Fatalf("setup = %v, want an error naming ADMIN_TOKEN", err)
	}
	if strings.Contains(err.Error(), "short-secret") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q shows the token or is not one line", err)
	}
	s.AdminToken = ""
	if err := s.setup(t.Context()); err != nil {
		t.Errorf("unset ADMIN_TOKEN: %v", err)
	}
}
