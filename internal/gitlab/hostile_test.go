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
