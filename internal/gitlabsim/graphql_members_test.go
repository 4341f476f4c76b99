package gitlabsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestGraphQLMembersMatchREST: Project.projectMembers with every relation lists what
// GET /projects/:id/members/all lists (the same finder in GitLab): each user once,
// with its access level and state, in the same order; DIRECT alone is the project's
// own members. Where REST answers 403 the field is null with GitLab's error.
func TestGraphQLMembersMatchREST(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 6, Groups: 6, Projects: 50, Users: 2, PersonalProjects: 3,
		Faults: Faults{ForbiddenRate: 0.3, ForbiddenEndpoints: []string{"projects/:id/members/all"}}})
	denied, compared, inherited := 0, 0, 0
	for k := range s.in.projects {
		p := &s.in.projects[k]
		id := strconv.FormatInt(p.id, 10)
		status, _, body := restGet(t, ts, "projects/"+id+"/members/all?per_page=100")
		a := gqlPost(t, ts, "sim-token", `query($p: ID!) { p: project(fullPath: $p) {
		  all: projectMembers(relations: [DIRECT, INHERITED, INVITED_GROUPS, SHARED_INTO_ANCESTORS], first: 100) {
		    pageInfo { hasNextPage } nodes { __typename accessLevel { integerValue stringValue } user { username state } } }
		} }`, map[string]any{"p": s.in.pathWithNamespace(p)})
		var got struct {
			All *struct {
				PageInfo struct{ HasNextPage bool }
				Nodes    []struct {
					Typename    string `json:"__typename"`
					AccessLevel struct {
						IntegerValue int
						StringValue  string
					}
					User struct{ Username, State string }
				}
			}
		}
		a.decode(t, "p", &got)
		if status == http.StatusForbidden {
			denied++
			if got.All != nil || len(a.Errors) != 1 || !strings.Contains(string(a.raw), `"path":["p","all"]`) {
				t.Errorf("project %s: members 403 on REST; GraphQL %s", id, a.raw)
			}
			continue
		}
		var rest []apiMember
		if err := json.Unmarshal(body, &rest); err != nil {
			t.Fatal(err)
		}
		if got.All == nil || len(a.Errors) > 0 {
			t.Fatalf("project %s: REST %d, GraphQL %s", id, status, a.raw)
		}
		var g, r []string
		for _, n := range got.All.Nodes {
			g = append(g, fmt.Sprint(n.User.Username, " ", n.AccessLevel.IntegerValue, " ", n.User.State))
			if n.Typename == "GroupMember" {
				inherited++
			}
			if accessLevelNames[int32(n.AccessLevel.IntegerValue)] != n.AccessLevel.StringValue {
				t.Errorf("project %s: access level %+v", id, n.AccessLevel)
			}
		}
		for _, m := range rest {
			r = append(r, fmt.Sprint(m.Username, " ", m.AccessLevel, " ", m.State))
		}
		if len(rest) <= 100 && fmt.Sprint(g) != fmt.Sprint(r) {
			t.Errorf("project %s:\nGraphQL %v\nREST    %v", id, g, r)
		}
		compared++
	}
	if denied == 0 || compared == 0 || inherited == 0 {
		t.Errorf("%d denied, %d compared, %d inherited members: the estate does not exercise the comparison", denied, compared, inherited)
	}
}

// TestGraphQLMembersRelations: DIRECT alone lists the project's own members, as
// ProjectMember; the default relations are DIRECT and INHERITED.
func TestGraphQLMembersRelations(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 6, Groups: 4, Projects: 20})
	for k := range s.in.projects {
		p := &s.in.projects[k]
		a := gqlPost(t, ts, "sim-token", `query($p: ID!) { p: project(fullPath: $p) {
		  direct: projectMembers(relations: [DIRECT]) { nodes { __typename user { username } } }
		  byDefault: projectMembers { nodes { user { username } } }
		} }`, map[string]any{"p": s.in.pathWithNamespace(p)})
		var got struct {
			Direct, ByDefault struct {
				Nodes []struct {
					Typename string `json:"__typename"`
					User     struct{ Username string }
				}
			}
		}
		a.decode(t, "p", &got)
		want := mergeMembers(s.in.projectMembers(p))
		if len(got.Direct.Nodes) != len(want) {
			t.Errorf("project %d: %d direct members, want %d", p.id, len(got.Direct.Nodes), len(want))
		}
		for _, n := range got.Direct.Nodes {
			if n.Typename != "ProjectMember" {
				t.Errorf("project %d: direct member %s is a %s", p.id, n.User.Username, n.Typename)
			}
		}
		if all := mergeMembers(s.in.projectMembersAll(p)); len(got.ByDefault.Nodes) != min(len(all), 100) {
			t.Errorf("project %d: %d members by default, want %d", p.id, len(got.ByDefault.Nodes), len(all))
		}
	}
}
