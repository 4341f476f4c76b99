package gitlabsim

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestGraphQLEnvironmentsOnePerRequest: Project.environments answers one project of
// a request with REST's environments, page by page, and the user's readEnvironment
// says whether REST would answer at all (an empty page, not null, where it answers
// 403); a second project's is null with GitLab's FieldCallCount error.
func TestGraphQLEnvironmentsOnePerRequest(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults Faults
	}{
		{"readable", Faults{}},
		{"environments 403", Faults{ForbiddenRate: 0.4, ForbiddenEndpoints: []string{"projects/:id/environments"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := startSim(t, Options{Seed: 7, Groups: 4, Projects: 60, Faults: tt.faults})
			var listed, denied int
			for k := range s.in.projects {
				p, other := &s.in.projects[k], &s.in.projects[(k+1)%len(s.in.projects)]
				id := strconv.FormatInt(p.id, 10)
				status, hdr, _ := restGet(t, ts, "projects/"+id+"/environments?per_page=1")
				a := gqlPost(t, ts, "sim-token", `query($p: ID!, $q: ID!) {
				  p: project(fullPath: $p) { userPermissions { readEnvironment } environments(first: 100) { pageInfo { hasNextPage } nodes { id name state } } }
				  q: project(fullPath: $q) { environments(first: 1) { nodes { id } } }
				}`, map[string]any{"p": s.in.pathWithNamespace(p), "q": s.in.pathWithNamespace(other)})
				var got struct {
					UserPermissions struct{ ReadEnvironment bool }
					Environments    *struct {
						PageInfo struct{ HasNextPage bool }
						Nodes    []struct{ ID, Name, State string }
					}
				}
				a.decode(t, "p", &got)
				if got.Environments == nil {
					t.Fatalf("project %s: environments null: %s", id, a.raw)
				}
				if !strings.Contains(string(a.raw), `"environments\" field can be requested only for 1 Project(s) at a time.`) ||
					!strings.Contains(string(a.raw), `"path":["q","environments"]`) {
					t.Errorf("project %s: the second project's environments did not fail as GitLab's: %s", id, a.raw)
				}
				switch {
				case status == http.StatusForbidden:
					denied++
					if got.UserPermissions.ReadEnvironment || len(got.Environments.Nodes) != 0 {
						t.Errorf("project %s: REST 403, GraphQL readEnvironment %v with %d environments", id, got.UserPermissions.ReadEnvironment, len(got.Environments.Nodes))
					}
				case !got.UserPermissions.ReadEnvironment:
					t.Errorf("project %s: REST %d, readEnvironment false", id, status)
				case got.Environments.PageInfo.HasNextPage:
					if n, _ := strconv.Atoi(hdr.Get("X-Total")); n <= 100 {
						t.Errorf("project %s: a next page with %d environments", id, n)
					}
				default:
					if strconv.Itoa(len(got.Environments.Nodes)) != hdr.Get("X-Total") {
						t.Errorf("project %s: X-Total %s, GraphQL %d", id, hdr.Get("X-Total"), len(got.Environments.Nodes))
					}
					listed += len(got.Environments.Nodes)
				}
			}
			if listed == 0 || denied == 0 {
				t.Errorf("compared %d environments, %d projects denied: the estate does not exercise both", listed, denied)
			}
		})
	}
}
