package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
)

// The hostile-GitLab suite, continued (see hostile_test.go): what GitLab's headers and
// records can say.

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
