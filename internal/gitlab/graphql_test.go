package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
)

func graphQLClient(t *testing.T, h http.HandlerFunc) (*Client, *int) {
	t.Helper()
	calls := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if r.Method != http.MethodPost || r.URL.Path != "/api/graphql" || r.Header.Get("PRIVATE-TOKEN") != secret {
			t.Errorf("%s %s with token %q", r.Method, r.URL.Path, r.Header.Get("PRIVATE-TOKEN"))
		}
		h(w, r)
	}))
	t.Cleanup(ts.Close)
	c, err := New(ts.URL, secret, Options{Limiter: budget.NewMemory(budget.Config{}), MaxRetries: 2, BaseBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls
}

// TestGraphQLAnswers: data with errors is a partial answer; errors alone a
// *QueryError (complexity read from it); 404 is ErrGraphQLUnavailable; a body that is
// not JSON and a 5xx are retried with the query sent again in full; errors carry no token.
func TestGraphQLAnswers(t *testing.T) {
	ctx := context.Background()
	var data struct {
		P0 *struct {
			ID string `json:"id"`
		} `json:"p0"`
	}

	c, _ := graphQLClient(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"data":{"p0":{"id":"gid://gitlab/Project/7"},"p1":null},"errors":[{"message":"no `+secret+`","path":["p1"]}]}`)
	})
	errs, err := c.GraphQL(ctx, "query { p0: project(fullPath: \"a\") { id } }", nil, &data)
	if err != nil || len(errs) != 1 || errs[0].Alias() != "p1" || data.P0 == nil || strings.Contains(errs[0].Message, secret) {
		t.Errorf("partial: %v, %+v, %+v", err, errs, data.P0)
	}

	c, calls := graphQLClient(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"errors":[{"message":"Query has complexity of 301, which exceeds max complexity of 250"}]}`)
	})
	_, err = c.GraphQL(ctx, "query { x }", nil, &data)
	if s, l, ok := ComplexityOf(err); !errors.Is(err, ErrComplexity) || s != 301 || l != 250 || !ok || *calls != 1 {
		t.Errorf("complexity: %v → %d/%d %v after %d calls", err, s, l, ok, *calls)
	}

	c, _ = graphQLClient(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	if _, err = c.GraphQL(ctx, "query { x }", nil, &data); !errors.Is(err, ErrGraphQLUnavailable) || !errors.Is(err, ErrNotFound) {
		t.Errorf("404: %v", err)
	}

	n := 0
	c, calls = graphQLClient(t, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Query string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Query != "query { p0 }" {
			t.Errorf("attempt %d got query %q (%v)", n, req.Query, err)
		}
		n++
		switch n {
		case 1:
			http.Error(w, "boom", http.StatusBadGateway)
		case 2:
			io.WriteString(w, `{"data":{"p0":`)
		default:
			io.WriteString(w, `{"data":{"p0":{"id":"gid://gitlab/Project/9"}}}`)
		}
	})
	if _, err = c.GraphQL(ctx, "query { p0 }", nil, &data); err != nil || *calls != 3 || data.P0.ID != "gid://gitlab/Project/9" {
		t.Errorf("retries: %v after %d calls, %+v", err, *calls, data.P0)
	}
}

func TestParseGID(t *testing.T) {
	for in, want := range map[string]int64{"gid://gitlab/Project/123": 123, "gid://gitlab/Project/0": 0, "gid://other/Project/1": 0,
		"123": 0, "gid://gitlab/Project/x": 0, "gid://gitlab/Project/-4": 0} {
		got, err := ParseGID(in)
		if got != want || (want == 0) != (err != nil) {
			t.Errorf("ParseGID(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if EndpointClass("/api/graphql") != GraphQLClass {
		t.Error("/api/graphql is not the graphql class")
	}
}
