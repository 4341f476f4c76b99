package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
)

// scanWith scans a simulated estate through one GITLAB_API and checks the exports
// against the truth; it returns the exported projects by ID and the simulator.
func scanWith(t *testing.T, api string, opts gitlabsim.Options, set ...func(*config.Config)) (map[int64]map[string]any, *env) {
	t.Helper()
	e := newEnv(t, opts)
	e.cfg.API = api
	for _, f := range set {
		f(&e.cfg)
	}
	r := e.runner(t)
	defer r.Close()
	run, err := r.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.checkAgainstTruth(t, run)
	_, projects, err := scancheck.ReadExportDir(filepath.Join(e.cfg.ExportDir, "runs", run.ID))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]map[string]any{}
	for _, p := range projects {
		out[p.ID] = fields(t, p)
	}
	return out, e
}

// fields is a project as its JSONL line holds it, without when it was profiled.
func fields(t *testing.T, p inventory.Project) map[string]any {
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "last_profiled_at")
	return m
}

func perProject(e *env, class string) float64 {
	st := e.sim.Stats()
	n := st.Requests
	if class != "" {
		n = st.ByClass[class]
	}
	return float64(n) / float64(len(e.sim.Truth().Projects))
}

// TestGraphQLScanEqualsREST: a GraphQL scan and a REST scan of the same estate export
// the same projects, field by field, both equal to the truth, and GraphQL needs fewer
// calls; with GitLab's complexity limit lowered to 100 the scan completes the same,
// with no room for the branch names in a query.
func TestGraphQLScanEqualsREST(t *testing.T) {
	opts := gitlabsim.Options{Seed: 7, Groups: 12, Projects: 250}
	rest, re := scanWith(t, "rest", opts)
	gql, ge := scanWith(t, "graphql", opts)
	low := opts
	low.GraphQLComplexity = 100
	small, se := scanWith(t, "auto", low)
	if n := re.sim.Stats().ByClass[gitlab.GraphQLClass]; n != 0 {
		t.Errorf("REST scan sent %d GraphQL requests", n)
	}
	for name, got := range map[string]map[int64]map[string]any{"graphql": gql, "graphql at complexity 100": small} {
		if len(got) != len(rest) {
			t.Errorf("%s: %d projects, REST %d", name, len(got), len(rest))
		}
		for id, want := range rest {
			for _, d := range diffFields(want, got[id]) {
				t.Errorf("%s: project %d: %s", name, id, d)
			}
		}
	}
	gqlCalls, smallCalls := perProject(ge, gitlab.GraphQLClass), perProject(se, gitlab.GraphQLClass)
	t.Logf("calls/project: REST %.2f; GraphQL %.2f (%.3f GraphQL); at complexity 100 %.2f (%.3f GraphQL)",
		perProject(re, ""), perProject(ge, ""), gqlCalls, perProject(se, ""), smallCalls)
	if gqlCalls == 0 || smallCalls == 0 {
		t.Errorf("GraphQL requests per project %.3f, at complexity 100 %.3f: want some", gqlCalls, smallCalls)
	}
	// At 250 a project's query has room for branchNames (complexity 170); at 100 it
	// has not, and REST counts the branches.
	if b, sb := perProject(ge, "projects/:id/repository/branches"), perProject(se, "projects/:id/repository/branches"); b*10 >= sb {
		t.Errorf("branches requests per project %.3f, at complexity 100 %.3f: want GraphQL to count them at 250 only", b, sb)
	}
	// CI variables come from GraphQL but for a project with more than a page of them.
	if v, rv := perProject(ge, "projects/:id/variables"), perProject(re, "projects/:id/variables"); v >= rv/5 {
		t.Errorf("variables requests per project: GraphQL scan %.3f, REST scan %.3f: want GraphQL's to save most", v, rv)
	}
	if perProject(ge, "") >= perProject(re, "")/2 {
		t.Errorf("GraphQL scan %.2f calls/project, REST %.2f: want less than half", perProject(ge, ""), perProject(re, ""))
	}
}

// TestGraphQLForbiddenEqualsREST: where the token may not read CI variables (REST
// 403, GraphQL null), webhooks or environments (REST 403, GraphQL an empty page
// and readEnvironment false), a GraphQL scan leaves the same counts unknown as a
// REST scan, and both equal the truth.
func TestGraphQLForbiddenEqualsREST(t *testing.T) {
	opts := gitlabsim.Options{Seed: 11, Groups: 6, Projects: 80, Faults: gitlabsim.Faults{ForbiddenRate: 0.3,
		ForbiddenEndpoints: []string{"projects/:id/variables", "projects/:id/hooks", "projects/:id/environments"}}}
	rest, _ := scanWith(t, "rest", opts)
	gql, ge := scanWith(t, "graphql", opts)
	unknown := map[string]int{}
	for id, want := range rest {
		for _, d := range diffFields(want, gql[id]) {
			t.Errorf("project %d: %s", id, d)
		}
		c, _ := want["counts"].(map[string]any)
		for _, name := range []string{"ci_variables", "environments"} {
			if v, ok := c[name]; ok && v == nil {
				unknown[name]++
			}
		}
	}
	if unknown["ci_variables"] == 0 || unknown["environments"] == 0 {
		t.Errorf("unknown counts %v: the faults did not bite", unknown)
	}
	if ge.sim.Stats().ByClass[gitlab.GraphQLClass] == 0 {
		t.Error("the GraphQL scan sent no GraphQL request")
	}
}

// TestGraphQLOwnersEqualREST: with INCLUDE_MEMBERS the owners come from GraphQL's
// projectMembers but for projects with more members than its page, equal to REST's
// members/all and to the truth; where members/all answers 403 (GraphQL: null with an
// error) they stay unknown in both.
func TestGraphQLOwnersEqualREST(t *testing.T) {
	opts := gitlabsim.Options{Seed: 3, Groups: 20, Projects: 200,
		Faults: gitlabsim.Faults{ForbiddenRate: 0.1, ForbiddenEndpoints: []string{"projects/:id/members/all"}}}
	members := func(c *config.Config) { c.IncludeMembers = true }
	rest, re := scanWith(t, "rest", opts, members)
	gql, ge := scanWith(t, "graphql", opts, members)
	known, unknown := 0, 0
	for id, want := range rest {
		for _, d := range diffFields(want, gql[id]) {
			t.Errorf("project %d: %s", id, d)
		}
		if want["owners"] == nil {
			unknown++
		} else {
			known++
		}
	}
	if known == 0 || unknown == 0 {
		t.Errorf("%d projects with owners known, %d unknown: the estate does not exercise both", known, unknown)
	}
	const class = "projects/:id/members/all"
	g, r := perProject(ge, class), perProject(re, class)
	t.Logf("members/all requests per project: GraphQL scan %.3f, REST scan %.3f", g, r)
	// REST remains for the refused projects (10%) and those of the large groups (100
	// to 160 members, past GraphQL's page of 50): about a quarter of this estate's.
	if g >= 0.6*r {
		t.Errorf("members/all requests per project: GraphQL scan %.3f, REST scan %.3f: want GraphQL's to save most of the others", g, r)
	}
}

func diffFields(want, got map[string]any) []string {
	if got == nil {
		return []string{"missing"}
	}
	var out []string
	for k, w := range want {
		if !reflect.DeepEqual(w, got[k]) {
			out = append(out, fmt.Sprintf("%s = %v, REST %v", k, got[k], w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, k+" only in GraphQL's")
		}
	}
	sort.Strings(out)
	return out
}

// TestGraphQLOffFallsBackToREST: auto on a GitLab without /api/graphql asks it once,
// says so once, and scans through REST to the truth.
func TestGraphQLOffFallsBackToREST(t *testing.T) {
	_, e := scanWith(t, "auto", gitlabsim.Options{Seed: 7, Groups: 4, Projects: 60, NoGraphQL: true})
	if n := e.sim.Stats().ByClass[gitlab.GraphQLClass]; n != 1 {
		t.Errorf("%d GraphQL requests, want the one that found it missing", n)
	}
	if n := strings.Count(e.logs.String(), "does not answer GraphQL"); n != 1 {
		t.Errorf("said %d times that GraphQL is off, want once", n)
	}
}
