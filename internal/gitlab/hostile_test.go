package gitlab

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
)

// The hostile-GitLab suite: each scenario is a server doing what a broken or malicious
// GitLab (or a proxy in front of it) can do. Every scenario must end within its context
// with the expected outcome, and no error may carry the token.

// hostileTimeout bounds every scenario; none should come near it.
const hostileTimeout = 30 * time.Second

// endless is an io.Reader of never-ending bytes, counting what it produced.
type endless struct{ n *atomic.Int64 }

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	e.n.Add(int64(len(p)))
	return len(p), nil
}

// hostileClient is a client of the server h with quick retries.
func hostileClient(t *testing.T, h http.HandlerFunc) (*Client, *recLimiter, *httptest.Server) {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	lim := &recLimiter{Memory: budget.NewMemory(budget.Config{})}
	c, err := New(ts.URL, secret, Options{Limiter: lim, Timeout: 10 * time.Second,
		BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c, lim, ts
}

// noToken fails the test when err's text carries the token in any form.
func noToken(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, form := range []string{secret, url.QueryEscape(secret), "very-secret"} {
		if strings.Contains(err.Error(), form) {
			t.Errorf("error carries the token: %v", err)
		}
	}
	if len(err.Error()) > MaxErrorLen+200 {
		t.Errorf("error text is %d bytes, want about MaxErrorLen (%d)", len(err.Error()), MaxErrorLen)
	}
}

func TestHostileRedirects(t *testing.T) {
	var leaked atomic.Int64 // requests the other origin received with the token
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("PRIVATE-TOKEN") != "" {
			leaked.Add(1)
		}
		fmt.Fprint(w, `{"username":"attacker"}`)
	}))
	defer other.Close()
	tlsGitLab := httptest.NewTLSServer(nil) // its handler is set per scenario below

	tests := []struct {
		name    string
		tls     bool
		handler func(self string) http.HandlerFunc
		wantErr error // nil: the request succeeds as "u"
	}{
		{"302 to another port", false, func(string) http.HandlerFunc {
			return redirectTo(other.URL+"/api/v4/user", http.StatusFound)
		}, ErrRedirect},
		{"307 to another port", false, func(string) http.HandlerFunc {
			return redirectTo(other.URL+"/api/v4/user", http.StatusTemporaryRedirect)
		}, ErrRedirect},
		{"301 to another host", false, func(string) http.HandlerFunc {
			return redirectTo(strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/api/v4/user", http.StatusMovedPermanently)
		}, ErrRedirect},
		{"https to http on the same host and port", true, func(self string) http.HandlerFunc {
			return redirectTo(strings.Replace(self, "https://", "http://", 1)+"/api/v4/user", http.StatusFound)
		}, ErrRedirect},
		{"same origin is followed with the token", false, func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/api/v4/user" {
					http.Redirect(w, r, "/api/v4/moved/user", http.StatusTemporaryRedirect)
					return
				}
				if r.Header.Get("PRIVATE-TOKEN") != secret {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				fmt.Fprint(w, `{"username":"u"}`)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
			defer cancel()
			leaked.Store(0)
			var c *Client
			if tt.tls {
				tlsGitLab.Config.Handler = tt.handler(tlsGitLab.URL)
				tr := tlsGitLab.Client().Transport.(*http.Transport).Clone()
				var err error
				if c, err = New(tlsGitLab.URL, secret, Options{Limiter: budget.NewMemory(budget.Config{}), Transport: tr, MaxRetries: 1}); err != nil {
					t.Fatal(err)
				}
			} else {
				c, _, _ = hostileClient(t, tt.handler(""))
			}
			u, err := c.CurrentUser(ctx)
			noToken(t, err)
			if leaked.Load() != 0 {
				t.Fatalf("the other origin received the token %d times", leaked.Load())
			}
			if tt.wantErr == nil {
				if err != nil || u != "u" {
					t.Fatalf("got %q, %v; want u", u, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if u != "" {
				t.Errorf("trusted the other origin's answer %q", u)
			}
		})
	}
	tlsGitLab.Close()
}

func redirectTo(target string, code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target, code) }
}

func TestHostileBodies(t *testing.T) {
	tests := []struct {
		name    string
		handler func(produced *atomic.Int64) http.HandlerFunc
		call    func(ctx context.Context, c *Client) error
		check   func(t *testing.T, err error, produced int64)
	}{
		{"401 echoing the token", func(*atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprintf(w, `{"message":"401 Unauthorized: token %s rejected"}`, r.Header.Get("PRIVATE-TOKEN"))
			}
		}, currentUser, wantIs(ErrUnauthorized)},
		{"502 page echoing the request headers", func(*atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadGateway)
				fmt.Fprintf(w, "<html>Bad gateway. Request: GET %s?private_token=%s\n", r.URL.Path, url.QueryEscape(r.Header.Get("PRIVATE-TOKEN")))
				r.Header.Write(w)
			}
		}, currentUser, wantStatus(http.StatusBadGateway)},
		{"20 MB error body", func(n *atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, "error %s ", r.Header.Get("PRIVATE-TOKEN"))
				io.Copy(w, io.LimitReader(endless{n}, 20<<20))
			}
		}, currentUser, func(t *testing.T, err error, produced int64) {
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
				t.Fatalf("err = %v, want a 400 APIError", err)
			}
			if len(ae.Message) > MaxErrorLen {
				t.Errorf("message of %d bytes stored, want at most %d", len(ae.Message), MaxErrorLen)
			}
		}},
		{"endless JSON body", func(n *atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, "[")
				io.Copy(w, io.LimitReader(endless{n}, 400<<20))
			}
		}, groupProjects, wantIs(ErrTooLarge)},
		{"Content-Length beyond the cap", func(*atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(1<<40))
				w.WriteHeader(http.StatusOK)
				fmt.Fprint(w, "[]")
			}
		}, groupProjects, wantIs(ErrTooLarge)},
		{"gzip bomb", func(n *atomic.Int64) http.HandlerFunc {
			// Concatenated gzip members read as one stream: 1 KiB on the wire inflates to
			// 1 MiB, endlessly, at no cost to the server.
			var member bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
			io.Copy(zw, io.LimitReader(endless{new(atomic.Int64)}, 1<<20))
			zw.Close()
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				for range 400 { // 400 MiB inflated; ends early when the client hangs up
					if _, err := w.Write(member.Bytes()); err != nil {
						return
					}
					n.Add(1 << 20)
				}
			}
		}, groupProjects, wantIs(ErrTooLarge)},
		{"400 MB .gitlab-ci.yml", func(n *atomic.Int64) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				io.Copy(w, io.LimitReader(endless{n}, 400<<20))
			}
		}, func(ctx context.Context, c *Client) error {
			b, err := c.RawFile(ctx, 7, ".gitlab-ci.yml", "")
			if err == nil && len(b) != MaxFileSize {
				return fmt.Errorf("RawFile returned %d bytes, want MaxFileSize", len(b))
			}
			return err
		}, func(t *testing.T, err error, produced int64) {
			if err != nil {
				t.Fatal(err)
			}
			// The server wrote what the socket buffers took, not the whole file.
			if produced > 100<<20 {
				t.Errorf("the server produced %d MiB before the client hung up", produced>>20)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
			defer cancel()
			var produced atomic.Int64
			c, _, _ := hostileClient(t, tt.handler(&produced))
			err := tt.call(ctx, c)
			noToken(t, err)
			tt.check(t, err, produced.Load())
		})
	}
}

func currentUser(ctx context.Context, c *Client) error {
	_, err := c.CurrentUser(ctx)
	return err
}

func groupProjects(ctx context.Context, c *Client) error {
	_, _, err := c.GroupProjects(ctx, 1, 1)
	return err
}

func wantIs(target error) func(*testing.T, error, int64) {
	return func(t *testing.T, err error, _ int64) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("err = %v, want %v", err, target)
		}
	}
}

func wantStatus(status int) func(*testing.T, error, int64) {
	return func(t *testing.T, err error, _ int64) {
		t.Helper()
		if Status(err) != status {
			t.Fatalf("err = %v, want status %d", err, status)
		}
	}
}

func TestHostilePagination(t *testing.T) {
	page := func(ids ...int64) string {
		var b strings.Builder
		b.WriteString("[")
		for i, id := range ids {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id":%d,"name":"p%d"}`, id, id)
		}
		return b.String() + "]"
	}
	full := func(from int64) []int64 { // a full keyset page of ids from..from+99
		ids := make([]int64, PerPage)
		for i := range ids {
			ids[i] = from + int64(i)
		}
		return ids
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		call    func(ctx context.Context, c *Client) error
	}{
		{"X-Next-Page pointing back", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Next-Page", "1")
			fmt.Fprint(w, `[{"id":2,"full_path":"g/s"}]`)
		}, func(ctx context.Context, c *Client) error { _, err := c.Subgroups(ctx, 1); return err }},
		{"X-Next-Page on group projects pointing back", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Next-Page", "2")
			fmt.Fprint(w, page(5))
		}, func(ctx context.Context, c *Client) error { _, _, err := c.GroupProjects(ctx, 1, 3); return err }},
		{"X-Next-Page negative", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Next-Page", "-4")
			fmt.Fprint(w, `[]`)
		}, func(ctx context.Context, c *Client) error { _, err := c.TopLevelGroups(ctx); return err }},
		{"X-Next-Page past the ceiling", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Next-Page", fmt.Sprint(MaxPages+1))
			fmt.Fprint(w, `[]`)
		}, func(ctx context.Context, c *Client) error { _, err := c.Tree(ctx, 1, "", ""); return err }},
		{"keyset cursor not advancing", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", `<`+r.URL.String()+`>; rel="next"`)
			fmt.Fprint(w, page(full(1)...)) // the same first page, whatever id_after says
		}, func(ctx context.Context, c *Client) error { _, _, err := c.Projects(ctx, 500); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
			defer cancel()
			c, _, _ := hostileClient(t, tt.handler)
			err := tt.call(ctx, c)
			noToken(t, err)
			if !errors.Is(err, ErrPageLoop) {
				t.Fatalf("err = %v, want ErrPageLoop", err)
			}
			if c.Calls() > 2 {
				t.Errorf("%d requests, want the loop seen on the first answer", c.Calls())
			}
		})
	}
}

func TestHostilePauses(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"RateLimit-Reset in 2126", map[string]string{
			"RateLimit-Remaining": "0", "RateLimit-Reset": fmt.Sprint(time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC).Unix()),
		}, http.StatusTooManyRequests},
		{"Retry-After 999999999", map[string]string{"Retry-After": "999999999"}, http.StatusTooManyRequests},
		{"Retry-After beyond a Duration", map[string]string{"Retry-After": "99999999999999"}, http.StatusTooManyRequests},
		{"Retry-After as a far date", map[string]string{"Retry-After": "Fri, 01 Jan 2999 00:00:00 GMT"}, http.StatusTooManyRequests},
		{"RateLimit-Reset at the end of time", map[string]string{
			"RateLimit-Remaining": "0", "RateLimit-Reset": "9223372036854775807",
		}, http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, lim, _ := hostileClient(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
			})
			// The pause is real: the request cannot end before its context; what
			// matters is what the limiter was told.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.CurrentUser(ctx)
			noToken(t, err)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want the context's deadline (paused)", err)
			}
			lim.mu.Lock()
			defer lim.mu.Unlock()
			if len(lim.pauses) == 0 {
				t.Fatal("the 429 paused nothing")
			}
			for _, p := range lim.pauses {
				if p.Sub(start) > MaxPause+time.Second {
					t.Errorf("pause of %v, want at most MaxPause (%v)", p.Sub(start), MaxPause)
				}
			}
		})
	}
	t.Run("past reset is no pause", func(t *testing.T) {
		c, lim, _ := hostileClient(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("RateLimit-Remaining", "0")
			w.Header().Set("RateLimit-Reset", "-100")
			fmt.Fprint(w, `{"username":"u"}`)
		})
		ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
		defer cancel()
		for range 2 {
			if _, err := c.CurrentUser(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := lim.Available(); got == 0 {
			t.Errorf("limiter paused after a past reset")
		}
	})
}

// malformedLinks are Link headers that crash or confuse client-go's parser.
var malformedLinks = []string{
	`<https://gitlab/api/v4/projects?id_after=1>; rel`,
	`<https://gitlab/api/v4/projects>; rel=`,
	`<https://gitlab/x>;`,
	`;`,
	`,,,;;;`,
	`<x>; foo; rel="next"`,
	`rel="next"; <https://gitlab/x>`,
	`<https://gitlab/a,b>; rel="next"`,
	`<https://gitlab/x>; rel="next", <https://gitlab/y>; rel`,
	`<https://gitlab/x; rel="next"`,
	`garbage`,
	strings.Repeat(`<a>; rel="next", `, 10000),
}

func TestHostileLinkHeaders(t *testing.T) {
	for i, link := range malformedLinks {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
			defer cancel()
			c, _, _ := hostileClient(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Link"] = []string{link} // as sent, not canonicalised
				fmt.Fprint(w, `[{"id":1001,"name":"p"}]`)
			})
			ps, _, err := c.Projects(ctx, 1000)
			noToken(t, err)
			if err != nil {
				t.Fatalf("err = %v, want the page despite the Link header", err)
			}
			if len(ps) != 1 || ps[0].ID != 1001 {
				t.Errorf("page = %+v", ps)
			}
		})
	}
}

// panicky is a response type whose decoding panics, as a library bug would.
type panicky struct{}

func (panicky) decodeJSON([]byte, redactor) error {
	panic("index out of range [1] with length 1 " + secret)
}

func TestPanicBecomesTheRequestsError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	defer cancel()
	c, _, _ := hostileClient(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{}`) })
	_, err := c.get(ctx, "user", nil, panicky{})
	noToken(t, err)
	if !errors.Is(err, ErrPanic) {
		t.Fatalf("err = %v, want ErrPanic", err)
	}
	if _, err := c.CurrentUser(ctx); err != nil {
		t.Fatalf("the client after a panic: %v", err)
	}
}

func TestHostileRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	defer cancel()
	c, _, _ := hostileClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v4/projects/9":
			fmt.Fprint(w, `{"id":9,"statistics":{"repository_size":-1}}`)
		case "/api/v4/projects/9/issues":
			w.Header().Set("X-Total", "-3")
			fmt.Fprint(w, `[]`)
		default:
			fmt.Fprint(w, `[
				{"id":"x","name":"bad id"},
				{"id":2,"name":"bad size","statistics":{"repository_size":"big","wiki_size":1}},
				{"id":3,"name":"unknown field","star_count":"abc"},
				{"id":4,"name":"negative","open_issues_count":-2,"statistics":{"repository_size":-5,"commit_count":1e15,"storage_size":2251799813685248}},
				"not an object",
				null,
				{"id":7,"name":"bad time","created_at":"yesterday"},
				{"id":8,"name":"fine","statistics":{"repository_size":10}}
			]`)
		}
	})
	ps, next, err := c.GroupProjects(ctx, 1, 1)
	if err != nil || next != 0 {
		t.Fatalf("GroupProjects = %d projects, next %d, %v; want the page", len(ps), next, err)
	}
	want := []struct {
		id       int64
		problems []string // substrings of the Validate error; nil = valid
	}{
		{0, []string{"id: JSON string where int64 belongs", "id: 0 is not a project ID"}},
		{2, []string{"statistics.repository_size: JSON string where int64 belongs"}},
		{3, nil},
		{4, []string{"open_issues_count: -2 is negative", "statistics.repository_size: -5 is negative",
			"statistics.storage_size: 2251799813685248 is beyond", "statistics.commit_count: JSON number 1e15"}},
		{0, []string{"cannot unmarshal string"}},
		{0, []string{"id: 0 is not a project ID"}},
		{7, []string{"parsing time"}},
		{8, nil},
	}
	if len(ps) != len(want) {
		t.Fatalf("%d projects, want %d", len(ps), len(want))
	}
	for i, w := range want {
		p := ps[i]
		err := p.Validate()
		noToken(t, err)
		if p.ID != w.id {
			t.Errorf("record %d: id %d, want %d", i, p.ID, w.id)
		}
		if w.problems == nil {
			if err != nil {
				t.Errorf("record %d: %v, want valid", i, err)
			}
			continue
		}
		var re *RecordError
		if !errors.As(err, &re) || !errors.Is(err, ErrMalformed) || re.ID != w.id {
			t.Errorf("record %d: %v, want a RecordError for id %d matching ErrMalformed", i, err, w.id)
			continue
		}
		for _, s := range w.problems {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("record %d: %q does not name %q", i, err, s)
			}
		}
	}

	if _, err := c.Project(ctx, 9); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "repository_size: -1 is negative") {
		t.Errorf("Project with a negative size: %v, want ErrMalformed naming the field", err)
	}
	if _, _, err := c.Count(ctx, 9, "issues", nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("negative X-Total: %v, want ErrMalformed", err)
	}
}

func TestCredentialsInURLAreRejected(t *testing.T) {
	for _, u := range []string{"https://user:" + secret + "@gitlab.example.com", "http://" + secret + "@gitlab", "user:" + secret + "@gitlab"} {
		_, err := New(u, secret, Options{Limiter: budget.NewMemory(budget.Config{})})
		if err == nil || !strings.Contains(err.Error(), "credentials") {
			t.Errorf("New(%q) = %v, want a credentials error", "…", err)
		}
		noToken(t, err)
	}
}

// TestUnaskedGzipIsCapped: with compression off in the transport, Go passes a gzip body
// through as it came; the cap then counts its raw bytes, and it still ends.
func TestUnaskedGzipIsCapped(t *testing.T) {
	var member bytes.Buffer
	zw := gzip.NewWriter(&member)
	io.Copy(zw, io.LimitReader(endless{new(atomic.Int64)}, 1<<20))
	zw.Close()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		for range 1 << 20 { // ends when the client hangs up
			if _, err := w.Write(member.Bytes()); err != nil {
				return
			}
		}
	}))
	defer ts.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	c, err := New(ts.URL, secret, Options{Limiter: budget.NewMemory(budget.Config{}), Transport: tr, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	defer cancel()
	err = groupProjects(ctx, c)
	noToken(t, err)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}
