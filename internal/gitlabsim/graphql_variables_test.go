package gitlabsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestGraphQLCiVariablesMatchREST: Project.ciVariables lists what GET
// /projects/:id/variables lists, key by key, and is null, without an error, where
// REST answers 403 (GitLab authorizes the field as the endpoint: Maintainer).
func TestGraphQLCiVariablesMatchREST(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults Faults
	}{
		{"readable", Faults{}},
		{"variables 403", Faults{ForbiddenRate: 0.4, ForbiddenEndpoints: []string{"projects/:id/variables"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := startSim(t, Options{Seed: 5, Groups: 4, Projects: 40, Faults: tt.faults})
			nulls, listed := 0, 0
			for k := range s.in.projects {
				p := &s.in.projects[k]
				if ciVariablesAgree(t, s, ts, p) {
					nulls++
				} else if p.count(cVariables) > 0 {
					listed++
				}
			}
			if listed == 0 {
				t.Error("no project had variables to compare")
			}
			if (tt.faults.ForbiddenRate > 0) != (nulls > 0) {
				t.Errorf("%d null answers with faults %+v", nulls, tt.faults)
			}
		})
	}
}

// ciVariablesAgree compares one project's ciVariables with REST's variables; true
// when both refuse them.
func ciVariablesAgree(t *testing.T, s *Server, ts *httptest.Server, p *project) bool {
	t.Helper()
	id := strconv.FormatInt(p.id, 10)
	status, hdr, body := restGet(t, ts, "projects/"+id+"/variables?per_page=100")
	a := gqlPost(t, ts, "sim-token", `query($p: ID!) { p: project(fullPath: $p) {
	  ciVariables(first: 100) { limit pageInfo { hasNextPage } nodes { id key environmentScope variableType } }
	} }`, map[string]any{"p": s.in.pathWithNamespace(p)})
	if len(a.Errors) > 0 {
		t.Fatalf("project %s: errors %s", id, a.raw)
	}
	var got struct {
		CiVariables *struct {
			Limit    int
			PageInfo struct{ HasNextPage bool }
			Nodes    []struct{ ID, Key, EnvironmentScope, VariableType string }
		}
	}
	a.decode(t, "p", &got)
	if status == http.StatusForbidden {
		if got.CiVariables != nil {
			t.Errorf("project %s: variables 403 on REST but %+v on GraphQL", id, got.CiVariables)
		}
		return true
	}
	var rest []apiVariable
	if err := json.Unmarshal(body, &rest); err != nil {
		t.Fatal(err)
	}
	if got.CiVariables == nil {
		t.Fatalf("project %s: variables %d on REST, null on GraphQL", id, status)
	}
	cv := got.CiVariables
	if strconv.Itoa(len(cv.Nodes)) != hdr.Get("X-Total") || cv.PageInfo.HasNextPage || cv.Limit != ciVariablesLimit {
		t.Errorf("project %s: X-Total %s, GraphQL %d nodes, next page %v, limit %d", id, hdr.Get("X-Total"), len(cv.Nodes), cv.PageInfo.HasNextPage, cv.Limit)
	}
	var ids []string
	for k, n := range cv.Nodes {
		if k >= len(rest) || n.Key != rest[k].Key || n.EnvironmentScope != rest[k].EnvironmentScope || n.VariableType != strings.ToUpper(rest[k].VariableType) {
			t.Errorf("project %s: variable %d GraphQL %+v, REST %+v", id, k, n, rest[min(k, len(rest)-1)])
		}
		if slices.Contains(ids, n.ID) {
			t.Errorf("project %s: id %s twice", id, n.ID)
		}
		ids = append(ids, n.ID)
	}
	return false
}
