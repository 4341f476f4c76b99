package gitlabsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

type gqlAnswer struct {
	status int
	header http.Header
	raw    []byte
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message string `json:"message"`
		Path    []any  `json:"path"`
	} `json:"errors"`
}

func gqlPost(t *testing.T, ts *httptest.Server, token, query string, vars map[string]any) gqlAnswer {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Private-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := gqlAnswer{status: resp.StatusCode, header: resp.Header}
	a.raw, _ = io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(a.raw, &a) // a garbled body leaves a empty; tests check raw
	}
	return a
}

func (a gqlAnswer) decode(t *testing.T, key string, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Data[key], v); err != nil {
		t.Fatalf("data.%s: %v in %s", key, err, a.raw)
	}
}

func restGet(t *testing.T, ts *httptest.Server, path string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v4/"+path, nil)
	req.Header.Set("Private-Token", "sim-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestGraphQLGlobalIDs(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 3, Groups: 6, Projects: 30, Users: 2, PersonalProjects: 3})
	in := s.in
	group, proj, personal := &in.groups[0], &in.projects[0], &in.projects[len(in.projects)-1]
	a := gqlPost(t, ts, "sim-token", `query($g: ID!, $p: ID!, $u: ID!) {
	  g: group(fullPath: $g) { id fullPath }
	  p: project(fullPath: $p) { id namespace { id } group { id } }
	  u: project(fullPath: $u) { id namespace { id fullPath } group { id } }
	  currentUser { id username }
	}`, map[string]any{"g": group.fullPath, "p": in.pathWithNamespace(proj), "u": in.pathWithNamespace(personal)})
	if len(a.Errors) > 0 {
		t.Fatalf("errors: %s", a.raw)
	}
	var g struct{ ID, FullPath string }
	var p, u struct {
		ID        string
		Namespace struct{ ID, FullPath string }
		Group     *struct{ ID string }
	}
	var cu struct{ ID, Username string }
	a.decode(t, "g", &g)
	a.decode(t, "p", &p)
	a.decode(t, "u", &u)
	a.decode(t, "currentUser", &cu)
	for _, tt := range []struct{ name, got, want string }{
		{"group", g.ID, fmt.Sprintf("gid://gitlab/Group/%d", group.id)},
		{"project", p.ID, fmt.Sprintf("gid://gitlab/Project/%d", proj.id)},
		{"project namespace", p.Namespace.ID, fmt.Sprintf("gid://gitlab/Group/%d", in.groups[proj.group].id)},
		{"personal project", u.ID, fmt.Sprintf("gid://gitlab/Project/%d", personal.id)},
		{"user namespace", u.Namespace.ID, fmt.Sprintf("gid://gitlab/Namespaces::UserNamespace/%d", in.users[personal.owner].id)},
		{"current user", cu.ID, "gid://gitlab/User/1"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s id = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if u.Group != nil {
		t.Errorf("a personal project's group = %+v, want null", u.Group)
	}
}

type projectPage struct {
	Projects struct {
		Count    int
		Nodes    []struct{ ID, FullPath string }
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
	}
}

// TestGraphQLPagination walks a group's projects page by page and checks every
// page size against GitLab's cap of 100 nodes.
func TestGraphQLPagination(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 5, Groups: 3, Projects: 260})
	root := &s.in.groups[s.in.roots[0]]
	for _, tt := range []struct {
		name   string
		first  string // the argument, "" for none
		perPag int
	}{
		{"first 7", "first: 7,", 7},
		{"first 100", "first: 100,", 100},
		{"first 500 is cut to 100", "first: 500,", 100},
		{"no first: 100", "", 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			var after any
			pages := 0
			for {
				a := gqlPost(t, ts, "sim-token", `query($g: ID!, $after: String) { group(fullPath: $g) {
				  projects(includeSubgroups: true, `+tt.first+` after: $after) { count nodes { id fullPath } pageInfo { hasNextPage endCursor } } } }`,
					map[string]any{"g": root.fullPath, "after": after})
				var g struct{ Group projectPage }
				if err := json.Unmarshal(a.raw, &struct{ Data any }{&g}); err != nil || len(a.Errors) > 0 {
					t.Fatalf("page %d: %v %s", pages, err, a.raw)
				}
				pp := g.Group.Projects
				if pp.Count != len(root.subtree) {
					t.Fatalf("count = %d, want %d", pp.Count, len(root.subtree))
				}
				if len(pp.Nodes) > tt.perPag || pp.PageInfo.HasNextPage && len(pp.Nodes) != tt.perPag {
					t.Fatalf("page %d has %d nodes, want %d", pages, len(pp.Nodes), tt.perPag)
				}
				for _, n := range pp.Nodes {
					got = append(got, n.ID)
				}
				pages++
				if !pp.PageInfo.HasNextPage {
					break
				}
				after = *pp.PageInfo.EndCursor
			}
			if len(got) != len(root.subtree) {
				t.Fatalf("walked %d projects, want %d", len(got), len(root.subtree))
			}
			for k, pi := range root.subtree {
				if want := fmt.Sprintf("gid://gitlab/Project/%d", s.in.projects[pi].id); got[k] != want {
					t.Fatalf("project %d = %s, want %s (ascending id, as the REST listing)", k, got[k], want)
				}
			}
		})
	}
}

// complexityQuery's score, worked out by GitLab's rules (see graphql_complexity.go):
// queryComplexity 1+2 = 3; group: id 1 + resolver 1 = 2; projects(first: 2):
// nodes per project = id 1 + fullPath 1 + statistics (1+2) + repository (1 +
// rootRef 2 + blobs: (nodes 1+3) + 1 + 3 paths + 1 Gitaly = 9, ×2 for 100 items
// = 18) = 21 + mergeRequests (1+1)×2 = 4 + pipelines 4 → 34, nodes 35; count 1,
// pageInfo 3 → 39 + 1 = 40, ×1.02 = 40.8 → 40. Total 45.
const complexityQuery = `query Smoke { queryComplexity { score limit } group(fullPath: "nope") { id }
  projects(first: 2) { count nodes { id fullPath statistics { repositorySize commitCount }
    repository { rootRef blobs(paths: ["README.md", ".gitlab-ci.yml", "nope"]) { nodes { path size rawTextBlob } } }
    mergeRequests(state: opened) { count } pipelines { count } } pageInfo { hasNextPage endCursor } } }`

func TestGraphQLComplexity(t *testing.T) {
	for _, tt := range []struct {
		name    string
		limit   int // Options.GraphQLComplexity
		wantErr string
	}{
		{"default limit 250", 0, ""},
		{"limit at the score", 45, ""},
		{"lowered limit", 44, "Query has complexity of 45, which exceeds max complexity of 44"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := startSim(t, Options{Seed: 1, Groups: 5, Projects: 40, GraphQLComplexity: tt.limit})
			a := gqlPost(t, ts, "sim-token", complexityQuery, nil)
			if a.status != http.StatusOK {
				t.Fatalf("status %d", a.status)
			}
			if tt.wantErr != "" {
				if len(a.Errors) != 1 || a.Errors[0].Message != tt.wantErr || a.Data != nil {
					t.Fatalf("answer %s, want only the error %q", a.raw, tt.wantErr)
				}
				return
			}
			var qc struct{ Score, Limit int }
			a.decode(t, "queryComplexity", &qc)
			if want := cmpOr(tt.limit, DefaultGraphQLComplexity); qc.Score != 45 || qc.Limit != want {
				t.Fatalf("queryComplexity = %+v, want score 45, limit %d", qc, want)
			}
		})
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// TestGraphQLComplexityRules checks the rules one by one on small queries.
func TestGraphQLComplexityRules(t *testing.T) {
	_, ts := startSim(t, Options{Seed: 1, Groups: 3, Projects: 10})
	for _, tt := range []struct {
		name, query string
		want        int
	}{
		{"plain fields", `{ queryComplexity { score limit } }`, 3},
		{"resolver", `{ project(fullPath: "a/b") { id name } }`, 3},
		{"connection of 1", `{ project(fullPath: "a/b") { issues(first: 1) { count } } }`, 1 + 2},            // (1+1)×1.01 → 2
		{"connection of 100", `{ project(fullPath: "a/b") { issues(first: 100) { count } } }`, 1 + 4},        // (1+1)×2
		{"iids cost no multiplier", `{ project(fullPath: "a/b") { issues(iids: ["1"]) { count } } }`, 1 + 2}, // 1+1
		{"group projects add 10", `{ group(fullPath: "a") { projects(first: 50) { count } } }`, 1 + 18},      // (1+1+10)×1.5
		{"search adds 5", `{ group(fullPath: "a") { projects(first: 1, search: "x") { count } } }`, 1 + 17},  // 17×1.01 → 17
		{"constant branchNames", `{ project(fullPath: "a/b") { repository { branchNames(searchPattern: "*", offset: 0, limit: 10) } } }`, 1 + 1 + 170},
		{"Gitaly fields", `{ project(fullPath: "a/b") { repository { rootRef empty } } }`, 1 + 1 + 2 + 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := strings.Replace(tt.query, "{", "{ queryComplexity { score } ", 1)
			a := gqlPost(t, ts, "sim-token", q, nil)
			var qc struct{ Score int }
			a.decode(t, "queryComplexity", &qc)
			if want := tt.want + 2; qc.Score != want { // + queryComplexity { score }
				t.Errorf("score = %d, want %d", qc.Score, want)
			}
		})
	}
}

func TestGraphQLLimits(t *testing.T) {
	_, ts := startSim(t, Options{Seed: 1, Groups: 3, Projects: 10})
	deep := "{ group(fullPath: \"a\") { " + strings.Repeat("parent { ", 20) + "id" + strings.Repeat(" }", 20) + " } }"
	for _, tt := range []struct {
		name, query string
		status      int
		wantErr     string
	}{
		{"depth over 20", deep, http.StatusOK, "Query has depth of 22, which exceeds max depth of 20"},
		{"query too large", "{ currentUser { username } }" + strings.Repeat(" ", graphQLMaxQuerySize), http.StatusUnprocessableEntity, "Query too large"},
		{"more than 50 fullPaths", `{ projects(fullPaths: [` + strings.Repeat(`"a/b",`, 51) + `]) { count } }`, http.StatusOK, "You cannot provide more than 50 full_paths"},
		{"no query", "", http.StatusOK, "No query string was present"},
		{"unknown field", "{ project(fullPath: \"a/b\") { forkedFrom { id } } }", http.StatusOK, "Cannot query field \"forkedFrom\" on type \"Project\"."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := gqlPost(t, ts, "sim-token", tt.query, nil)
			if a.status != tt.status || len(a.Errors) == 0 || a.Errors[0].Message != tt.wantErr {
				t.Fatalf("answer %d %s, want %d with %q", a.status, a.raw, tt.status, tt.wantErr)
			}
		})
	}
	if a := gqlPost(t, ts, "wrong", "{ currentUser { username } }", nil); a.status != http.StatusUnauthorized || len(a.Errors) != 1 || a.Errors[0].Message != "Invalid token" {
		t.Errorf("wrong token: %d %s", a.status, a.raw)
	}
}

func TestGraphQLOperationStats(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 1, Groups: 3, Projects: 10, RateLimitRPM: 5})
	queries := []string{
		"query ListGroup { currentUser { username } }",
		"query ListGroup { currentUser { username } }",
		"query Batch { currentUser { username } }",
		"{ currentUser { username } }",
	}
	for _, q := range queries {
		a := gqlPost(t, ts, "sim-token", q, nil)
		if a.status != http.StatusOK || a.header.Get("RateLimit-Limit") != "5" {
			t.Fatalf("%s: %d, RateLimit-Limit %q", q, a.status, a.header.Get("RateLimit-Limit"))
		}
	}
	st := s.Stats()
	want := map[string]int64{"ListGroup": 2, "Batch": 1, "anonymous": 1}
	if fmt.Sprint(st.GraphQLOperations) != fmt.Sprint(want) || st.ByClass["graphql"] != 4 {
		t.Fatalf("operations %v, graphql requests %d; want %v and 4", st.GraphQLOperations, st.ByClass["graphql"], want)
	}
	// Each request is one call against the rate limit: the fifth passes, the sixth is refused.
	for k, wantStatus := range []int{http.StatusOK, http.StatusTooManyRequests} {
		if a := gqlPost(t, ts, "sim-token", queries[0], nil); a.status != wantStatus {
			t.Fatalf("request %d: %d, want %d", 5+k, a.status, wantStatus)
		}
	}
	if s.Stats().GraphQLOperations["ListGroup"] != 4 {
		t.Errorf("a throttled request is not counted to its operation: %v", s.Stats().GraphQLOperations)
	}
}

func TestGraphQLOff(t *testing.T) {
	_, ts := startSim(t, Options{Seed: 1, Groups: 2, Projects: 3, NoGraphQL: true})
	if a := gqlPost(t, ts, "sim-token", "{ currentUser { username } }", nil); a.status != http.StatusNotFound {
		t.Fatalf("--no-graphql: %d %s, want 404", a.status, a.raw)
	}
}

func TestGraphQLFaults(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults Faults
		check  func(a gqlAnswer) bool
	}{
		{"5xx", Faults{ErrorRate: 1}, func(a gqlAnswer) bool { return a.status >= 500 }},
		{"malformed body", Faults{MalformedRate: 1}, func(a gqlAnswer) bool {
			return a.status == http.StatusOK && !json.Valid(a.raw)
		}},
		{"burst 429", Faults{Burst429Rate: 1}, func(a gqlAnswer) bool { return a.status == http.StatusTooManyRequests }},
		{"timeout", Faults{TimeoutRate: 1, Hang: time.Millisecond}, func(a gqlAnswer) bool { return a.status == http.StatusGatewayTimeout }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := startSim(t, Options{Seed: 1, Groups: 2, Projects: 3, Faults: tt.faults})
			if a := gqlPost(t, ts, "sim-token", "{ currentUser { username } }", nil); !tt.check(a) {
				t.Fatalf("answer %d %q", a.status, a.raw)
			}
			if s.Stats().Faults != 1 {
				t.Errorf("faults = %d, want 1", s.Stats().Faults)
			}
		})
	}
}

// TestGraphQLForbiddenProjects: a project whose REST detail answers 403 (or 404,
// deleted) is null at its alias, without an error, as GitLab's GraphQL answers a
// project the token may not read; the other aliases are intact. A connection whose
// REST endpoint answers 403 is null in a readable project.
func TestGraphQLForbiddenProjects(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults Faults
	}{
		{"projects/:id 403 and deleted", Faults{ForbiddenRate: 0.3, ForbiddenEndpoints: []string{"projects/:id"}, DeletedRate: 0.1}},
		{"merge requests 403", Faults{ForbiddenRate: 0.3, ForbiddenEndpoints: []string{"projects/:id/merge_requests"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := startSim(t, Options{Seed: 2, Groups: 4, Projects: 40, Faults: tt.faults})
			var q strings.Builder
			q.WriteString("query Batch {")
			for k := range s.in.projects {
				fmt.Fprintf(&q, " p%d: project(fullPath: %q) { id mergeRequests { count } }", k, s.in.pathWithNamespace(&s.in.projects[k]))
			}
			q.WriteString(" }")
			a := gqlPost(t, ts, "sim-token", q.String(), nil)
			if len(a.Errors) > 0 || len(a.Data) != len(s.in.projects) {
				t.Fatalf("answer %s", a.raw)
			}
			if f := s.Stats().Faults; f != 1 {
				t.Errorf("faults = %d, want 1: the request some fault nulled a part of", f)
			}
			nulls := 0
			for k := range s.in.projects {
				if checkAgainstREST(t, ts, &s.in.projects[k], a, "p"+strconv.Itoa(k)) {
					nulls++
				}
			}
			if nulls == 0 || nulls == len(s.in.projects) {
				t.Fatalf("%d of %d answers null: the faults did not bite", nulls, len(s.in.projects))
			}
		})
	}
}

// checkAgainstREST compares one alias's answer with the REST answers; true when
// the project or its merge requests are null.
func checkAgainstREST(t *testing.T, ts *httptest.Server, p *project, a gqlAnswer, alias string) bool {
	t.Helper()
	id := strconv.FormatInt(p.id, 10)
	status, _, _ := restGet(t, ts, "projects/"+id)
	mrStatus, hdr, _ := restGet(t, ts, "projects/"+id+"/merge_requests?per_page=1")
	var got *struct {
		ID            string
		MergeRequests *struct{ Count int }
	}
	a.decode(t, alias, &got)
	switch {
	case status != http.StatusOK:
		if got != nil {
			t.Errorf("project %d answers %d on REST but %+v on GraphQL", p.id, status, got)
		}
		return true
	case got == nil:
		t.Errorf("project %d answers 200 on REST but null on GraphQL", p.id)
	case mrStatus == http.StatusForbidden && p.has(fMRs):
		if got.MergeRequests != nil {
			t.Errorf("project %d: merge requests 403 on REST but %+v on GraphQL", p.id, got.MergeRequests)
		}
		return true
	case mrStatus == http.StatusOK && (got.MergeRequests == nil || strconv.Itoa(got.MergeRequests.Count) != hdr.Get("X-Total")):
		t.Errorf("project %d: merge requests X-Total %s, GraphQL %+v", p.id, hdr.Get("X-Total"), got.MergeRequests)
	}
	return false
}

// TestGraphQLNamespaceProjects: namespace(fullPath) lists a user's personal
// projects as GET /users/:id/projects does, and a group's as group(fullPath).
func TestGraphQLNamespaceProjects(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 4, Groups: 3, Projects: 10, Users: 3, PersonalProjects: 12})
	for _, u := range s.in.users {
		_, _, body := restGet(t, ts, "users/"+u.username+"/projects?per_page=100&sort=asc")
		var rest []struct {
			PathWithNamespace string `json:"path_with_namespace"`
		}
		if err := json.Unmarshal(body, &rest); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, p := range rest {
			want = append(want, p.PathWithNamespace)
		}
		a := gqlPost(t, ts, "sim-token", `query($u: ID!) { n: namespace(fullPath: $u) { id fullPath projects(first: 100) { count nodes { fullPath } } } }`, map[string]any{"u": u.username})
		var n struct {
			ID, FullPath string
			Projects     struct {
				Count int
				Nodes []struct{ FullPath string }
			}
		}
		a.decode(t, "n", &n)
		var got []string
		for _, p := range n.Projects.Nodes {
			got = append(got, p.FullPath)
		}
		if n.ID != fmt.Sprintf("gid://gitlab/Namespaces::UserNamespace/%d", u.id) || n.Projects.Count != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("namespace %s: %s %d %v; REST %v", u.username, n.ID, n.Projects.Count, got, want)
		}
	}
	g := &s.in.groups[0]
	a := gqlPost(t, ts, "sim-token", `query($g: ID!) { n: namespace(fullPath: $g) { id projects(includeSubgroups: true) { count } } }`, map[string]any{"g": g.fullPath})
	var n struct {
		ID       string
		Projects struct{ Count int }
	}
	a.decode(t, "n", &n)
	if n.ID != fmt.Sprintf("gid://gitlab/Group/%d", g.id) || n.Projects.Count != len(g.subtree) {
		t.Errorf("group namespace: %+v, want %d projects", n, len(g.subtree))
	}
}
