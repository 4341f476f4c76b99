package discovery

import (
	"encoding/json"
	"fmt"
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
