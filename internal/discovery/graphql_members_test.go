package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestGQLOwners: the owners from GraphQL's members are what REST's members/all gives
// (active Maintainers and Owners, sorted, once each); anything GraphQL did not give in
// full leaves them unknown, for REST to read.
func TestGQLOwners(t *testing.T) {
	member := func(user string, level int, state string) string {
		return fmt.Sprintf(`{"accessLevel": {"integerValue": %d}, "user": {"username": %q, "state": %q}}`, level, user, state)
	}
	page := func(next bool, nodes ...string) string {
		b, _ := json.Marshal(next)
		s := `{"pageInfo": {"hasNextPage": ` + string(b) + `}, "nodes": [`
		for i, n := range nodes {
			if i > 0 {
				s += ","
			}
			s += n
		}
		return s + "]}"
	}
	for _, tt := range []struct {
		name string
		raw  string
		want []string // nil: unknown
	}{
		{"owners and maintainers", page(false, member("zoe", 50, "active"), member("al", 40, "active"), member("dev", 30, "active")), []string{"al", "zoe"}},
		{"blocked and deactivated left out", page(false, member("b", 50, "blocked"), member("d", 40, "deactivated"), member("ok", 40, "active")), []string{"ok"}},
		{"none", page(false, member("g", 10, "active")), []string{}},
		{"no members", page(false), []string{}},
		{"an invitation has no user", page(false, `{"accessLevel": {"integerValue": 40}, "user": null}`), []string{}},
		{"once each", page(false, member("a", 40, "active"), member("a", 50, "active")), []string{"a"}},
		{"more than the page", page(true, member("a", 50, "active")), nil},
		{"null: refused", `null`, nil},
		{"no pageInfo", `{"nodes": []}`, nil},
		{"not given", ``, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := gqlOwners(json.RawMessage(tt.raw))
			if (got == nil) != (tt.want == nil) || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("gqlOwners(%s) = %#v, want %#v", tt.raw, got, tt.want)
			}
		})
	}
}

// TestGraphQLOwners: with INCLUDE_MEMBERS the owners come with the project's other
// facts, without a members/all request; a GitLab before 16.0, which refuses the
// members selection (no SHARED_INTO_ANCESTORS relation), is asked once with it, then
// without it, said once, and the owners come from REST's members/all.
func TestGraphQLOwners(t *testing.T) {
	for _, tt := range []struct {
		name      string
		preShared bool
		want      []string
		calls     int // GraphQL queries for 4 projects
	}{
		{"members through GraphQL", false, []string{"ann"}, 1},
		{"GitLab before 16.0", true, []string{}, 2}, // the fake's members/all has no usernames
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeGQL{limit: 250, perProject: 30, preShared: tt.preShared}
			var log bytes.Buffer
			w := gqlWorker(t, f, APIAuto, &log)
			w.IncludeMembers = true
			ctx := context.Background()
			ps := gqlProjects(4)
			pre, err := w.prefetch(ctx, ps)
			if err != nil {
				t.Fatal(err)
			}
			if f.gqlCalls != tt.calls || len(pre) != 4 {
				t.Fatalf("%d GraphQL calls, %d projects prefetched; want %d, 4", f.gqlCalls, len(pre), tt.calls)
			}
			p, err := w.profile(ctx, ps[1], pre[ps[1].ID])
			if err != nil {
				t.Fatal(err)
			}
			if p.Owners == nil || !slices.Equal(p.Owners, tt.want) {
				t.Errorf("owners %#v, want %#v", p.Owners, tt.want)
			}
			asked := slices.Contains(f.restOf(2), "members/all")
			if asked != tt.preShared {
				t.Errorf("members/all asked: %v; REST requests %v", asked, f.restOf(2))
			}
			if n := strings.Count(log.String(), "refused the members query"); n != map[bool]int{true: 1}[tt.preShared] {
				t.Errorf("said %d times that GraphQL refused the members", n)
			}
		})
	}
}
