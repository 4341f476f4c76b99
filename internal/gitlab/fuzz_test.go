package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/budget"
)

func TestSanitizeLinks(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<https://g/api/v4/projects?id_after=5&pagination=keyset>; rel="next"`, `<https://g/api/v4/projects?id_after=5&pagination=keyset>; rel="next"`},
		{`<https://g/1>; rel="first", <https://g/9>; rel="last"`, `<https://g/1>; rel="first", <https://g/9>; rel="last"`},
		{`<https://g/1>;rel=next`, `<https://g/1>; rel="next"`},
		{`<https://g/1>; title="a, b; c"; REL="Next"`, `<https://g/1>; rel="next"`},
		{`<https://g/1>; rel`, ""},
		{`<https://g/1>; rel=`, ""},
		{`<https://g/1>; rel="next last"`, ""},
		{`<https://g/a,b>; rel="next"`, ""},
		{`<https://g/x; rel="next"`, ""},
		{`<https://g/1>; rel="next", <https://g/2>; rel`, `<https://g/1>; rel="next"`},
		{`garbage, <https://g/2>; rel="prev"`, `<https://g/2>; rel="prev"`},
		{"<https://g/\x00>; rel=\"next\"", ""},
		{`;`, ""},
	}
	for _, tt := range tests {
		h := http.Header{"Link": {tt.in}}
		sanitizeLinks(h)
		if got := h.Get("Link"); got != tt.want {
			t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// canonicalLink is the only entry shape sanitizeLinks emits.
var canonicalLink = regexp.MustCompile(`^<[^,;<>"\\\s]+>; rel="[A-Za-z0-9._-]+"$`)

// roundTripFunc is an http.RoundTripper answering without a network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzLinkHeader feeds arbitrary Link headers through the transport's sanitizer into
// client-go's own parser: it must never panic (ErrPanic), and what the sanitizer keeps
// is canonical and stable.
func FuzzLinkHeader(f *testing.F) {
	for _, s := range malformedLinks {
		f.Add(s)
	}
	f.Add(`<https://gitlab.example.com/api/v4/projects?id_after=100&pagination=keyset&per_page=100>; rel="next"`)
	f.Add(`<https://g/1>; rel="first", <https://g/2>; rel="prev", <https://g/4>; rel="next", <https://g/9>; rel="last"`)
	f.Add(`<a>; rel="next\", <b>; rel="prev"`)

	c, err := New("https://gitlab.example.com", secret, Options{
		Limiter: budget.NewMemory(budget.Config{}), MaxRetries: -1,
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{
				StatusCode: http.StatusOK, Request: r,
				Header: http.Header{"Link": {r.URL.Query().Get("link")}},
				Body:   io.NopCloser(strings.NewReader(`[]`)),
			}, nil
		}),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, link string) {
		h := http.Header{"Link": {link}}
		sanitizeLinks(h)
		out := h.Get("Link")
		for _, e := range strings.Split(out, ", ") {
			if out != "" && !canonicalLink.MatchString(e) {
				t.Fatalf("sanitize(%q) kept %q", link, e)
			}
		}
		again := http.Header{"Link": {out}}
		sanitizeLinks(again)
		if again.Get("Link") != out {
			t.Fatalf("sanitize is not stable: %q then %q", out, again.Get("Link"))
		}
		_, err := c.get(context.Background(), "projects", url.Values{"link": {link}}, nil)
		if errors.Is(err, ErrPanic) {
			t.Fatalf("client-go panicked on the sanitized %q (from %q): %v", out, link, err)
		}
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
	})
}

// FuzzDecodeProjects decodes arbitrary list bodies: never a panic; a JSON array yields
// one project per element; a project that passes Validate has a positive ID and no
// number out of bounds; the token never reaches a problem's text.
func FuzzDecodeProjects(f *testing.F) {
	f.Add(`[{"id":1,"name":"a","statistics":{"repository_size":10}}]`)
	f.Add(`[{"id":"x"},{"id":2,"star_count":"abc"},null,"s",3,[]]`)
	f.Add(`[{"id":4,"open_issues_count":-2,"statistics":{"repository_size":-5,"commit_count":1e15}}]`)
	f.Add(`[{"id":5,"created_at":"` + secret + `"}]`)
	f.Add(`[{"id":6,"namespace":{"id":"n"},"forked_from_project":{"id":1}}]`)
	f.Add(`[`)
	f.Add(`{}`)
	f.Add(strings.Repeat("[", 20000))
	r := newRedactor(secret, nil)
	f.Fuzz(func(t *testing.T, body string) {
		var ps projectPage
		err := ps.decodeJSON([]byte(body), r)
		var raw []json.RawMessage
		if rawErr := json.Unmarshal([]byte(body), &raw); (err == nil) != (rawErr == nil) {
			t.Fatalf("decode error %v, but the body as an array: %v", err, rawErr)
		}
		if err != nil {
			return
		}
		if len(ps) != len(raw) {
			t.Fatalf("%d projects from %d elements", len(ps), len(raw))
		}
		for _, p := range ps {
			verr := p.Validate()
			if verr != nil {
				if strings.Contains(verr.Error(), secret) {
					t.Fatalf("problem text carries the token: %v", verr)
				}
				continue
			}
			if p.ID <= 0 || p.OpenIssuesCount < 0 || p.OpenIssuesCount > MaxCount {
				t.Fatalf("valid project with id %d, open issues %d", p.ID, p.OpenIssuesCount)
			}
			if s := p.Statistics; s != nil && (s.RepositorySize < 0 || s.RepositorySize > MaxSize || s.CommitCount < 0) {
				t.Fatalf("valid project with statistics %+v", *s)
			}
		}
	})
}
