package gitlab

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
)

// TestRedactsTokensTheTransportSends: a transport below the client that sends another
// token (a rotation) names it in Options.Secrets, and an error echoing it, as sent or
// escaped, comes back without it, through REST and GraphQL alike.
func TestRedactsTokensTheTransportSends(t *testing.T) {
	const rotated = "glpat-rotated/+token=9"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent := r.Header.Get("Private-Token")
		echo := sent + " " + url.QueryEscape(sent) + " " + url.PathEscape(sent)
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/graphql") {
			_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"message": "bad token " + echo}}})
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "bad token " + echo})
	}))
	t.Cleanup(ts.Close)
	swap := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Private-Token", rotated)
		return http.DefaultTransport.RoundTrip(r)
	})
	for _, tt := range []struct {
		name    string
		secrets func() []string
		leaks   bool
	}{
		{"told", func() []string { return []string{rotated} }, false},
		{"not told", nil, true}, // the check can fail: without Secrets the token shows
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(ts.URL, secret, Options{Limiter: budget.NewMemory(budget.Config{}), Transport: swap,
				Timeout: time.Second, MaxRetries: -1, Secrets: tt.secrets})
			if err != nil {
				t.Fatal(err)
			}
			_, restErr := c.CurrentUser(context.Background())
			_, gqlErr := c.GraphQL(context.Background(), "query { currentUser { username } }", nil, &struct{}{})
			for name, err := range map[string]error{"REST": restErr, "GraphQL": gqlErr} {
				if err == nil {
					t.Fatalf("%s: no error", name)
				}
				msg := err.Error()
				leaked := strings.Contains(msg, rotated) || strings.Contains(msg, url.QueryEscape(rotated)) ||
					strings.Contains(msg, url.PathEscape(rotated))
				if leaked != tt.leaks {
					t.Errorf("%s error %q: leaked %v, want %v", name, msg, leaked, tt.leaks)
				}
				if !tt.leaks && !strings.Contains(msg, redacted) {
					t.Errorf("%s error %q does not say it was redacted", name, msg)
				}
			}
		})
	}
}
