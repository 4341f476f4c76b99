package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	graphql "github.com/graph-gophers/graphql-go"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// fakeGQL is a GitLab answering GraphQL as GitLab does for the profile query (counts,
// container repositories, packages, blobs) and REST for what the profiler falls back
// to. Every project has count 7 of everything in GraphQL and 5 in REST, so the source
// of each number shows.
type fakeGQL struct {
	limit      int // complexity limit
	perProject int // complexity of one project's selection
	off        bool
	files      map[string]*string // every project's repository
	denied     map[string]bool    // full paths GraphQL answers null with an error
	fieldErr   map[string]string  // full path -> count name answered null with an error
	restDenied map[string]bool    // REST resources (e.g. "merge_requests") answering 403
	noAbility  map[string]bool    // full paths whose userPermissions are all false
	overLimit  int                // one-per-query fields asked past GitLab's limit of 1
	carryCost  int                // complexity of branchNames
	tooComplex map[string]bool    // full paths whose query carrying branchNames is refused
	moved      map[string]bool    // full paths that name another project now
	preShared  bool               // a GitLab before 16.0: no SHARED_INTO_ANCESTORS relation
	mu         sync.Mutex
	gqlCalls   int
	batches    []int    // projects per answered query
	rest       []string // REST requests: "id resource"
}

func (f *fakeGQL) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/graphql" {
		f.graphql(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rest := strings.TrimPrefix(r.URL.Path, "/api/v4/projects/")
	id, resource, _ := strings.Cut(rest, "/")
	f.rest = append(f.rest, id+" "+resource)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case f.restDenied[resource]:
		http.Error(w, `{"message":"403 Forbidden"}`, http.StatusForbidden)
	case resource == "repository/tree", resource == "packages":
		fmt.Fprint(w, "[]")
	case strings.HasPrefix(resource, "repository/files/"):
		fmt.Fprint(w, "build:\n  script: make\n")
	default:
		w.Header().Set("X-Total", "5")
		fmt.Fprint(w, "[{}]")
	}
}

var aliasRE = regexp.MustCompile(`\bp(\d+): project\(fullPath: \$p\d+\)`)

func (f *fakeGQL) graphql(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gqlCalls++
	if f.off {
		http.Error(w, `{"message":"404 Not Found"}`, http.StatusNotFound)
		return
	}
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := len(aliasRE.FindAllString(req.Query, -1))
	w.Header().Set("Content-Type", "application/json")
	if f.preShared && strings.Contains(req.Query, "SHARED_INTO_ANCESTORS") {
		fmt.Fprint(w, `{"errors":[{"message":"Argument 'relations' on Field 'owners' has an invalid value ([DIRECT, INHERITED, INVITED_GROUPS, SHARED_INTO_ANCESTORS]). Expected type '[ProjectMemberRelation!]'."}]}`)
		return
	}
	score := n*f.perProject + 1 + strings.Count(req.Query, "branchNames(")*f.carryCost
	if p0, _ := req.Variables["p0"].(string); f.tooComplex[p0] && strings.Contains(req.Query, "branchNames(") {
		score = f.limit + 1
	}
	if score > f.limit {
		fmt.Fprintf(w, `{"errors":[{"message":"Query has complexity of %d, which exceeds max complexity of %d"}]}`, score, f.limit)
		return
	}
	f.batches = append(f.batches, n)
	data := map[string]any{"queryComplexity": map[string]int{"score": score, "limit": f.limit}}
	var errs []map[string]any
	for i := range n {
		alias := "p" + strconv.Itoa(i)
		path, _ := req.Variables[alias].(string)
		if f.denied[path] {
			data[alias] = nil
			errs = append(errs, map[string]any{"message": "The resource that you are attempting to access does not exist or you don't have permission to perform this action", "path": []string{alias}})
			continue
		}
		gid := "gid://gitlab/Project/" + strings.TrimPrefix(path, "g/p")
		if f.moved[path] {
			gid = "gid://gitlab/Project/999"
		}
		p := map[string]any{"id": gid, "containerRepositoriesCount": 0,
			"packages": map[string]any{"pageInfo": map[string]bool{"hasNextPage": false}, "nodes": []map[string]string{{"packageType": "NPM"}, {"packageType": "MAVEN"}, {"packageType": "NPM"}}}}
		asked := aliasSelection(req.Query, i)
		if strings.Contains(asked, "userPermissions {") {
			p["userPermissions"] = map[string]bool{"readEnvironment": !f.noAbility[path]}
		}
		for _, c := range facts.Counts {
			switch {
			case c.GraphQLOnePerQuery && !strings.Contains(asked, c.Name+": "):
				// not asked of this project
			case c.GraphQLOnePerQuery && f.onePerQuerySeen(c.Name, i, req.Query):
				f.overLimit++
				p[c.Name] = nil
				errs = append(errs, map[string]any{"message": `"` + c.Name + `" field can be requested only for 1 Project(s) at a time.`, "path": []string{alias, c.Name}})
			case c.GraphQLList != "":
				p[c.Name] = map[string]any{"list": []string{"a", "b", "c", "d", "e", "f", "g"}}
			case c.GraphQLNodes:
				seven := make([]map[string]string, 7)
				for k := range seven {
					seven[k] = map[string]string{"id": "gid://gitlab/Ci::Variable/" + strconv.Itoa(k)}
				}
				p[c.Name] = map[string]any{"pageInfo": map[string]bool{"hasNextPage": false}, "nodes": seven}
			case c.GraphQL != "":
				p[c.Name] = map[string]int{"count": 7}
			}
		}
		if strings.Contains(req.Query, "owners: projectMembers(") {
			p["owners"] = map[string]any{"pageInfo": map[string]bool{"hasNextPage": false}, "nodes": []map[string]any{
				{"accessLevel": map[string]int{"integerValue": 40}, "user": map[string]string{"username": "ann", "state": "active"}},
				{"accessLevel": map[string]int{"integerValue": 30}, "user": map[string]string{"username": "dev", "state": "active"}},
			}}
		}
		if name := f.fieldErr[path]; name != "" {
			p[name] = nil
			errs = append(errs, map[string]any{"message": "Internal server error", "path": []string{alias, name}})
		}
		var nodes []map[string]any
		files, _ := req.Variables["paths"].([]any)
		for _, a := range files {
			if text, ok := f.files[a.(string)]; ok {
				nodes = append(nodes, map[string]any{"path": a, "rawTextBlob": text})
			}
		}
		p["repository"] = map[string]any{"blobs": map[string]any{"nodes": nodes}}
		data[alias] = p
	}
	json.NewEncoder(w).Encode(map[string]any{"data": data, "errors": errs})
}

// aliasSelection is what the query asks of project alias i beyond the fragment.
func aliasSelection(query string, i int) string {
	_, rest, _ := strings.Cut(query, fmt.Sprintf("p%d: project(fullPath: $p%d) {", i, i))
	sel, _, _ := strings.Cut(rest, fmt.Sprintf("p%d: project(", i+1))
	sel, _, _ = strings.Cut(sel, "fragment profile")
	return sel
}

// onePerQuerySeen reports whether an alias before i asked for field.
func (f *fakeGQL) onePerQuerySeen(field string, i int, query string) bool {
	for k := range i {
		if strings.Contains(aliasSelection(query, k), field+": ") {
			return true
		}
	}
	return false
}

func (f *fakeGQL) restOf(id int64) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.rest {
		if p, res, _ := strings.Cut(r, " "); p == strconv.FormatInt(id, 10) {
			out = append(out, res)
		}
	}
	return out
}

func gqlWorker(t *testing.T, f *fakeGQL, api string, log *bytes.Buffer) *Worker {
	t.Helper()
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{}), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{GitLab: gl, API: api}
	if log != nil {
		w.Log = slog.New(slog.NewTextHandler(log, nil))
	}
	// The batching tests see batches of several projects: a project carrying
	// one-per-query counts goes alone (carryingWorker).
	for _, c := range facts.Counts {
		if c.GraphQLOnePerQuery {
			w.gql.uncarried.Store(c.Name, true)
		}
	}
	return w
}

func gqlProjects(n int) []gitlab.Project {
	ps := make([]gitlab.Project, n)
	for i := range ps {
		ps[i] = gitlab.Project{ID: int64(i + 1), PathWithNamespace: fmt.Sprintf("g/p%d", i+1), DefaultBranch: "main",
			Statistics: &inventory.Statistics{PackagesSize: 1}}
	}
	return ps
}

// restOnly are the counts GraphQL does not give: read from REST in GraphQL mode too.
func restOnly() []string {
	var out []string
	for _, c := range facts.Counts {
		if c.GraphQL == "" && !c.Listed() {
			out = append(out, c.Resource())
		}
	}
	return out
}

// TestGraphQLBatches: the projects' facts come in batches sized to the complexity
// GitLab reports, and a profile then asks REST only for what GraphQL lacks.
func TestGraphQLBatches(t *testing.T) {
	f := &fakeGQL{limit: 250, perProject: 30}
	w := gqlWorker(t, f, APIAuto, nil)
	ctx := context.Background()
	ps := gqlProjects(20)
	pre, err := w.prefetch(ctx, ps)
	if err != nil {
		t.Fatal(err)
	}
	// 6 first (181 of 250), alone; then as many as fit: 8 (250 / 30.2), concurrently.
	if want := []int{6, 6, 8}; len(f.batches) == 0 || f.batches[0] != 6 || !slices.Equal(slices.Sorted(slices.Values(f.batches)), want) || f.gqlCalls != 3 {
		t.Errorf("batches %v in %d calls, want %v in 3", f.batches, f.gqlCalls, want)
	}
	if len(pre) != 20 {
		t.Fatalf("%d projects prefetched, want 20", len(pre))
	}
	p, err := w.profile(ctx, ps[3], pre[ps[3].ID])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range facts.Counts {
		if c.GraphQL != "" && !c.GraphQLOnePerQuery && (c.Field(&p.Counts) == nil || **c.Field(&p.Counts) != 7) {
			t.Errorf("%s = %v, want GraphQL's 7", c.Name, *c.Field(&p.Counts))
		}
	}
	if got, want := f.restOf(4), uncarriedREST(); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("REST requests %v, want only %v", got, want)
	}
	if !slices.Equal(p.Features.PackageTypes, []string{"maven", "npm"}) {
		t.Errorf("package types %v, want [maven npm] as REST names them", p.Features.PackageTypes)
	}
	if p.ScanStatus != inventory.StatusComplete || inventory.Is(p.Features.HasCI) || p.Features.HasCI == nil {
		t.Errorf("status %s, has_ci %s; want complete, false", p.ScanStatus, show(p.Features.HasCI))
	}
}

// TestGraphQLShrinksOnComplexity: a query GitLab refuses as too complex is asked
// again in batches sized from the figures of its refusal, and every project comes.
func TestGraphQLShrinksOnComplexity(t *testing.T) {
	f := &fakeGQL{limit: 100, perProject: 30}
	w := gqlWorker(t, f, APIAuto, nil)
	pre, err := w.prefetch(context.Background(), gqlProjects(20))
	if err != nil {
		t.Fatal(err)
	}
	if len(pre) != 20 {
		t.Fatalf("%d projects prefetched, want 20", len(pre))
	}
	// 6 refused (181 > 100): 3 per query (100 / 30.2), 7 queries.
	if f.gqlCalls != 8 || slices.Max(f.batches) != 3 {
		t.Errorf("%d calls, batches %v; want 1 refused + 7 of at most 3", f.gqlCalls, f.batches)
	}
}

// TestGraphQLLimitBelowOneProject: a limit no single project's query fits turns
// GraphQL off after the query of one project was refused, said once.
func TestGraphQLLimitBelowOneProject(t *testing.T) {
	f := &fakeGQL{limit: 20, perProject: 30}
	var log bytes.Buffer
	w := gqlWorker(t, f, APIGraphQL, &log)
	for range 2 {
		if pre, err := w.prefetch(context.Background(), gqlProjects(10)); err != nil || len(pre) != 0 {
			t.Fatalf("prefetch: %v, %d projects", err, len(pre))
		}
	}
	// 6 refused, then 1 (of 20 at most 0 fit: at least one is asked) refused.
	if f.gqlCalls != 2 || strings.Count(log.String(), "admits not even one project") != 1 {
		t.Errorf("%d GraphQL calls, log:\n%s", f.gqlCalls, log.String())
	}
}

// TestGraphQLRefusalFiguresThatLie: a refusal whose figures say more would fit still
// shrinks the batch, so the queries end.
func TestGraphQLRefusalFiguresThatLie(t *testing.T) {
	var calls int
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		fmt.Fprint(w, `{"errors":[{"message":"Query has complexity of 1, which exceeds max complexity of 1000"}]}`)
	}))
	defer ts.Close()
	gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{}), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{GitLab: gl, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if pre, err := w.prefetch(context.Background(), gqlProjects(4)); err != nil || len(pre) != 0 {
		t.Fatalf("prefetch: %v, %d projects", err, len(pre))
	}
	// The first project's query is refused carrying branches and environments, then
	// environments: they are dropped. Then it is refused alone, which turns GraphQL off.
	if calls != 3 || w.useGraphQL() {
		t.Errorf("%d calls, GraphQL still on: %v", calls, w.useGraphQL())
	}
}

// TestGraphQLPartialAnswer: a project GraphQL refused, or whose path names another
// project now, is profiled through REST alone;
// a count that failed in GraphQL is read from REST for that project only; and a count
// neither gives stays unknown (nil), never 0.
func TestGraphQLPartialAnswer(t *testing.T) {
	f := &fakeGQL{limit: 250, perProject: 10,
		denied: map[string]bool{"g/p2": true}, fieldErr: map[string]string{"g/p3": "merge_requests", "g/p4": "issues"},
		restDenied: map[string]bool{"issues": true}, moved: map[string]bool{"g/p5": true}}
	w := gqlWorker(t, f, APIAuto, nil)
	ctx := context.Background()
	ps := gqlProjects(5)
	pre, err := w.prefetch(ctx, ps)
	if err != nil {
		t.Fatal(err)
	}
	if pre[2] != nil || pre[5] != nil || pre[1] == nil || pre[3] == nil {
		t.Fatalf("prefetched %v; want all but projects 2 and 5", pre)
	}
	profiles := map[int64]inventory.Project{}
	for _, gp := range ps {
		if profiles[gp.ID], err = w.profile(ctx, gp, pre[gp.ID]); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.restOf(1); slices.Contains(got, "merge_requests") {
		t.Errorf("project 1 asked REST %v", got)
	}
	if got := f.restOf(3); slices.Index(got, "merge_requests") < 0 || slices.Contains(got, "pipelines") {
		t.Errorf("project 3 asked REST %v; want merge_requests (its failed count) and no pipelines", got)
	}
	for _, id := range []int64{2, 5} {
		if got := f.restOf(id); !slices.Contains(got, "pipelines") || !slices.Contains(got, "repository/tree") {
			t.Errorf("project %d asked REST %v; want its whole profile", id, got)
		}
	}
	p3 := profiles[3].Counts
	if *p3.MergeRequests != 5 || *p3.OpenMergeRequests != 7 {
		t.Errorf("project 3: merge_requests %d (want REST's 5), open %d (want GraphQL's 7)", *p3.MergeRequests, *p3.OpenMergeRequests)
	}
	p4 := profiles[4]
	if p4.Counts.Issues != nil || p4.ScanStatus != inventory.StatusPartial {
		t.Errorf("project 4: issues %v, status %s; want unknown (nil), partial", p4.Counts.Issues, p4.ScanStatus)
	}
}

// TestGraphQLUnavailable: in auto mode an instance answering 404 on /api/graphql turns
// GraphQL off for the worker, said once; graphql mode keeps asking.
func TestGraphQLUnavailable(t *testing.T) {
	for _, tt := range []struct {
		api   string
		calls int
		said  int
	}{{APIAuto, 1, 1}, {APIGraphQL, 2, 0}, {APIREST, 0, 0}} {
		t.Run(tt.api, func(t *testing.T) {
			f := &fakeGQL{off: true}
			var log bytes.Buffer
			w := gqlWorker(t, f, tt.api, &log)
			for range 2 {
				pre, err := w.prefetch(context.Background(), gqlProjects(3))
				if err != nil || len(pre) != 0 {
					t.Fatalf("prefetch: %v, %d projects", err, len(pre))
				}
			}
			if f.gqlCalls != tt.calls {
				t.Errorf("%d GraphQL calls, want %d", f.gqlCalls, tt.calls)
			}
			if n := strings.Count(log.String(), "does not answer GraphQL"); n != tt.said {
				t.Errorf("said %d times, want %d:\n%s", n, tt.said, log.String())
			}
		})
	}
}

// TestGraphQLFiles: the file facts come from blobs(paths:) without a tree listing;
// a file GitLab gives no text of is read through REST.
func TestGraphQLFiles(t *testing.T) {
	text := func(s string) *string { return &s }
	f := &fakeGQL{limit: 250, perProject: 10, files: map[string]*string{
		".gitmodules":     text("[submodule \"a\"]\n\turl = ../lib.git\n"),
		"docs/CODEOWNERS": text("* @a\n"),
		".gitattributes":  text("*.psd filter=lfs\n"),
		"ci/main.yml":     nil, // binary, as GitLab sees it
	}}
	w := gqlWorker(t, f, APIGraphQL, nil)
	ctx := context.Background()
	gp := gqlProjects(1)[0]
	gp.CIConfigPath = "ci/main.yml"
	pre, err := w.prefetch(ctx, []gitlab.Project{gp})
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.profile(ctx, gp, pre[gp.ID])
	if err != nil {
		t.Fatal(err)
	}
	feat := p.Features
	if !inventory.Is(feat.HasSubmodules) || !inventory.Is(feat.HasCodeowners) || !inventory.Is(feat.UsesLFS) || !inventory.Is(feat.HasCI) {
		t.Errorf("submodules %s, codeowners %s, lfs %s, ci %s; want all true", show(feat.HasSubmodules), show(feat.HasCodeowners), show(feat.UsesLFS), show(feat.HasCI))
	}
	if !slices.Equal(feat.Submodules, []string{"g/lib"}) || feat.CI == nil || feat.CI.Jobs != 1 {
		t.Errorf("submodules %v, CI %+v; want [g/lib], one job", feat.Submodules, feat.CI)
	}
	var files []string
	for _, r := range f.restOf(1) {
		if strings.HasPrefix(r, "repository/tree") || strings.HasPrefix(r, "repository/files") {
			files = append(files, r)
		}
	}
	if want := []string{"repository/files/ci%2Fmain.yml/raw"}; !slices.Equal(files, want) && !slices.Equal(files, []string{"repository/files/ci/main.yml/raw"}) {
		t.Errorf("repository requests %v, want only the CI file without text", files)
	}
}

// TestGraphQLQueryValidates: the profile query is valid against the GitLab schema
// subset the simulator declares from GitLab's own type definitions, for one project
// and for the largest batch, with variables as the worker sends them.
func TestGraphQLQueryValidates(t *testing.T) {
	sdl, err := os.ReadFile(filepath.Join("..", "gitlabsim", "schema.graphql"))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := graphql.ParseSchema(string(sdl), nil, graphql.UseStringDescriptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, gqlMaxBatch} {
		var carried []facts.Count
		for _, c := range facts.Counts {
			if c.GraphQLOnePerQuery {
				carried = append(carried, c)
			}
		}
		q := gqlQuery(n, 2, true, carried)
		vars := map[string]any{"paths": []any{".gitmodules", "ci/x.yml"}}
		for i := range n {
			vars["p"+strconv.Itoa(i)] = "g/p" + strconv.Itoa(i)
		}
		if errs := schema.ValidateWithVariables(q, vars); len(errs) > 0 {
			t.Errorf("%d projects: %v\n%s", n, errs, q)
		}
		if len(q) > 10_000 {
			t.Errorf("%d projects: %d characters, past GitLab's 10,000", n, len(q))
		}
	}
}

// TestWhichAPIDocumented: docs/EXPORTS.md says for every count which API gives it in
// GraphQL mode, with the selection the query really uses.
func TestWhichAPIDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "EXPORTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "## Which API gives each fact\n")
	sec, _, _ = strings.Cut(sec, "\n## ")
	if !ok {
		t.Fatal("docs/EXPORTS.md has no section on which API gives each fact")
	}
	for _, c := range facts.Counts {
		if c.Listed() {
			continue
		}
		var row string
		for _, line := range strings.Split(sec, "\n") {
			if strings.HasPrefix(line, "| ") && strings.Contains(strings.SplitN(line, "|", 3)[1], "`"+c.Name+"`") {
				row = line
			}
		}
		switch {
		case row == "":
			t.Errorf("%s: no row", c.Name)
		case c.GraphQL != "" && !strings.Contains(row, "`"+c.GraphQLSelection()+"`"):
			t.Errorf("%s: row %q does not name `%s`", c.Name, row, c.GraphQLSelection())
		case c.GraphQL == "" && !strings.Contains(row, "REST"):
			t.Errorf("%s: row %q does not say REST", c.Name, row)
		}
	}
}
