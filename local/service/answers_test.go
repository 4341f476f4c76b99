package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/filestore"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

const gitlabToken = "glpat-Zx9_secret-Token"

// echo is an error page of a proxy that echoes the request, token included, with 20 KB
// of markup after it.
var echo = "502 Bad Gateway: request was GET /api/v4/user PRIVATE-TOKEN: " + gitlabToken +
	" (escaped: " + url.QueryEscape(gitlabToken+"/x") + ") " + strings.Repeat("<div>upstream</div>", 1000)

// No answer and no log line carries the GitLab token, even when every error echoes it,
// and every error text is cut to a few hundred bytes.
func TestAnswersRedactTheToken(t *testing.T) {
	f := &fakeBackend{
		startErr:    fmt.Errorf("start run: check token: %s", echo),
		storeErr:    errors.New("store: " + echo),
		gitlabErr:   errors.New(echo),
		purgeErr:    errors.New("purge: " + echo),
		deadLetters: []filestore.DeadLetter{{RunID: "r1", Key: "group/1", Reason: echo}},
	}
	s, logs := newTestService(t, f, testAdminToken, gitlabToken)
	h := s.healthMux()
	auth := loopback.with("Authorization", bearer(testAdminToken))
	for _, c := range []struct {
		method, path string
		want         int
		texts        func(map[string]any) []string
	}{
		{"GET", "/health/ready", 503, func(b map[string]any) []string {
			checks, _ := b["checks"].(map[string]any)
			return []string{fmt.Sprint(checks["gitlab"]), fmt.Sprint(checks["store"])}
		}},
		{"POST", "/runs", 502, func(b map[string]any) []string { return []string{fmt.Sprint(b["error"])} }},
		{"GET", "/dead-letters", 200, func(b map[string]any) []string {
			dls, _ := b["dead_letters"].([]any)
			if len(dls) != 1 {
				return []string{"no dead letter in the answer"}
			}
			return []string{fmt.Sprint(dls[0].(map[string]any)["reason"])}
		}},
		{"DELETE", "/dead-letters", 500, func(b map[string]any) []string { return []string{fmt.Sprint(b["error"])} }},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			resp, body := do(t, h, c.method, c.path, auth)
			if resp.StatusCode != c.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, c.want)
			}
			var b map[string]any
			if err := json.Unmarshal([]byte(body), &b); err != nil {
				t.Fatal(err)
			}
			for _, text := range c.texts(b) {
				if !strings.Contains(text, redacted) {
					t.Errorf("text %q: the token is not marked redacted", text)
				}
				if len(text) > maxAnswerText {
					t.Errorf("text of %d bytes, want at most %d", len(text), maxAnswerText)
				}
			}
			for _, secret := range []string{gitlabToken, url.QueryEscape(gitlabToken), "Zx9_secret", testAdminToken} {
				if strings.Contains(body, secret) {
					t.Errorf("the answer carries %q:\n%s", secret, body)
				}
			}
		})
	}
	if strings.Contains(logs.String(), "Zx9_secret") {
		t.Errorf("a log line carries the token:\n%s", logs)
	}
}

func TestRedactorText(t *testing.T) {
	r := newRedactor("", "abc", gitlabToken) // too short to be secrets: never blank out words
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"abc and " + gitlabToken, "abc and " + redacted},
		{"url " + url.QueryEscape(gitlabToken+"/"), "url " + redacted + "%2F"},
		{strings.Repeat("é", 400), strings.Repeat("é", 145) + "… (cut)"}, // 290 bytes: a rune is not split
	}
	for _, tt := range tests {
		if got := r.text(tt.in); got != tt.want {
			t.Errorf("text(%.40q) = %.60q, want %.60q", tt.in, got, tt.want)
		}
	}
	// A token straddling the cut is redacted before the cut, never left as a prefix.
	long := strings.Repeat("x", maxAnswerText-10) + gitlabToken
	if got := r.text(long); strings.Contains(got, "glpat") || len(got) > maxAnswerText {
		t.Errorf("cut text %q", got)
	}
}

// POST /runs answers within StartWait while GitLab does not answer the start's calls;
// the start goes on, a second POST does not start another, and the run starts once
// GitLab answers.
func TestPostRunsAnswersWhileGitLabPauses(t *testing.T) {
	gate := make(chan struct{})
	f := &fakeBackend{startGate: gate, startRun: inventory.Run{ID: "r1", Status: inventory.RunRunning}}
	s, _ := newTestService(t, f, "")
	s.StartWait = 50 * time.Millisecond
	h := s.healthMux()

	resp, body := do(t, h, "POST", "/runs", loopback)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(body, `"status":"starting"`) || !strings.Contains(body, "GitLab has not answered") {
		t.Fatalf("POST /runs while GitLab pauses = %d %s, want 202 starting", resp.StatusCode, body)
	}
	resp, body = do(t, h, "POST", "/runs", loopback)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "being started") {
		t.Fatalf("second POST /runs = %d %s, want 409 being started", resp.StatusCode, body)
	}
	if n := f.count(&f.starts); n != 1 {
		t.Fatalf("%d starts, want 1", n)
	}

	close(gate) // GitLab answers
	p, joined := s.beginStart()
	if joined { // the first start may not have cleared yet: wait for it, then start anew
		<-p.done
		p, _ = s.beginStart()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the start did not end once GitLab answered")
	}
	if !p.started || p.run.ID != "r1" {
		t.Errorf("start = %+v", p)
	}
}

// POST /runs starts an incremental run, or a full one with {"full":true}; any other
// body is refused before anything starts.
func TestPostRunsFull(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		status   int
		wantFull []bool // the starts the backend saw
	}{
		{"no body: incremental", "", http.StatusAccepted, []bool{false}},
		{"full", `{"full":true}`, http.StatusAccepted, []bool{true}},
		{"full false", `{"full":false}`, http.StatusAccepted, []bool{false}},
		{"not JSON", `full please`, http.StatusBadRequest, nil},
		{"wrong type", `{"full":"yes"}`, http.StatusBadRequest, nil},
		{"too long", `{"full":true,"x":"` + strings.Repeat("x", 2000) + `"}`, http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeBackend{startRun: inventory.Run{ID: "r1", Status: inventory.RunRunning}}
			s, _ := newTestService(t, f, "")
			req := loopback
			if tt.body != "" {
				req = loopback.withBody("application/json", tt.body)
			}
			resp, body := do(t, s.healthMux(), "POST", "/runs", req)
			if resp.StatusCode != tt.status {
				t.Fatalf("POST /runs %s = %d %s, want %d", tt.body, resp.StatusCode, body, tt.status)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if fmt.Sprint(f.full) != fmt.Sprint(tt.wantFull) {
				t.Errorf("starts asked full %v, want %v", f.full, tt.wantFull)
			}
		})
	}
}

// Schedule, signal and POST /runs share one start: two at once join.
func TestStartsJoin(t *testing.T) {
	gate := make(chan struct{})
	f := &fakeBackend{startGate: gate, startRun: inventory.Run{ID: "r1"}}
	s, _ := newTestService(t, f, "")
	p1, joined1 := s.beginStart()
	p2, joined2 := s.beginStart()
	if joined1 || !joined2 || p1 != p2 {
		t.Fatalf("joined %v %v, same start %v", joined1, joined2, p1 == p2)
	}
	close(gate)
	<-p1.done
	if n := f.count(&f.starts); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
}

// Both servers bound every phase of a connection; the write timeout leaves room for
// the slowest answers (a start waiting StartWait, a readiness check).
func TestServerTimeouts(t *testing.T) {
	s, _ := newTestService(t, &fakeBackend{}, "")
	health, metrics := s.servers()
	for name, srv := range map[string]*http.Server{"health": health, "metrics": metrics} {
		if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
			t.Errorf("%s server: ReadHeaderTimeout %v ReadTimeout %v WriteTimeout %v IdleTimeout %v MaxHeaderBytes %d",
				name, srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
		}
		if srv.ReadHeaderTimeout > srv.ReadTimeout {
			t.Errorf("%s server: header timeout %v above the read timeout %v", name, srv.ReadHeaderTimeout, srv.ReadTimeout)
		}
		if srv.WriteTimeout <= s.StartWait || srv.WriteTimeout <= readyCheckTimeout {
			t.Errorf("%s server: WriteTimeout %v cuts answers that wait %v (start) or %v (readiness)", name, srv.WriteTimeout, s.StartWait, readyCheckTimeout)
		}
	}
}
