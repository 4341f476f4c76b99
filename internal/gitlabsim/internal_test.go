package gitlabsim

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

func newTestServer(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestEndpointClass(t *testing.T) {
	tests := []struct {
		path, want string
	}{
		{"/api/v4/version", "version"},
		{"/api/v4/user", "user"},
		{"/api/v4/groups", "groups"},
		{"/api/v4/groups/", "groups"},
		{"/api/v4/groups/42", "groups/:id"},
		{"/api/v4/groups/platform%2Fcore", "groups/:id"},
		{"/api/v4/groups/platform/core", "groups/:id"},
		{"/api/v4/groups/42/subgroups", "groups/:id/subgroups"},
		{"/api/v4/groups/42/descendant_groups", "groups/:id/descendant_groups"},
		{"/api/v4/groups/platform%2Fcore/projects", "groups/:id/projects"},
		{"/api/v4/groups/platform/core/projects", "groups/:id/projects"},
		{"/api/v4/projects", "projects"},
		{"/api/v4/projects/7", "projects/:id"},
		{"/api/v4/projects/a%2Fb%2Fc", "projects/:id"},
		{"/api/v4/projects/7/repository/branches", "projects/:id/repository/branches"},
		{"/api/v4/projects/7/repository/tags", "projects/:id/repository/tags"},
		{"/api/v4/projects/7/repository/tree", "projects/:id/repository/tree"},
		{"/api/v4/projects/7/repository/files/%2Egitlab-ci%2Eyml/raw", "projects/:id/repository/files/:path/raw"},
		{"/api/v4/projects/7/repository/files/%2Egitlab%2FCODEOWNERS/raw", "projects/:id/repository/files/:path/raw"},
		{"/api/v4/projects/g/p/repository/files/docs/CODEOWNERS/raw", "projects/:id/repository/files/:path/raw"},
		{"/api/v4/projects/7/merge_requests", "projects/:id/merge_requests"},
		{"/api/v4/projects/7/issues", "projects/:id/issues"},
		{"/api/v4/projects/7/pipelines", "projects/:id/pipelines"},
		{"/api/v4/projects/7/releases", "projects/:id/releases"},
		{"/api/v4/projects/7/hooks", "projects/:id/hooks"},
		{"/api/v4/projects/7/protected_branches", "projects/:id/protected_branches"},
		{"/api/v4/projects/7/variables", "projects/:id/variables"},
		{"/api/v4/projects/7/packages", "projects/:id/packages"},
		{"/api/v4/projects/7/registry/repositories", "projects/:id/registry/repositories"},
		{"/api/v4/projects/7/merge_requests?state=opened", "projects/:id/merge_requests"},
		{"/api/v4/projects/7/repository/commits", "other"},
		{"/api/v4/projects/7/repository/files/x", "other"},
		{"/api/v4/users", "other"},
		{"/api/v4/users/1000003/projects", "users/:id/projects"},
		{"/api/v4/users/alice.smith/projects", "users/:id/projects"},
		{"/api/v4/users/1000003", "other"},
		{"/api/v4/users//projects", "other"},
		{"/api/v4", "other"},
		{"/api/v3/projects", "other"},
		{"/health", "other"},
	}
	for _, tt := range tests {
		if got := EndpointClass(tt.path); got != tt.want {
			t.Errorf("EndpointClass(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	if got := len(EndpointClasses()); got != int(nClasses) {
		t.Errorf("EndpointClasses() has %d classes, want %d", got, nClasses)
	}
}

func TestPaginateTotalCutoff(t *testing.T) {
	tests := []struct {
		total     int64
		query     string
		wantTotal string // "" = header absent
		wantPages string
		wantLast  bool
		wantNext  string
		wantStart int64
		wantEnd   int64
	}{
		{0, "", "0", "1", true, "", 0, 0},
		{45, "per_page=20&page=3", "45", "3", true, "", 40, 45},
		{45, "per_page=500", "45", "1", true, "", 0, 45},
		{10000, "per_page=1", "10000", "10000", true, "2", 0, 1},
		{10001, "per_page=1", "", "", false, "2", 0, 1},
		{10001, "per_page=100&page=101", "", "", false, "", 10000, 10001},
		{25000, "per_page=100&page=7", "", "", false, "8", 600, 700},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "http://sim.test/api/v4/projects/1/pipelines?"+tt.query, nil)
		w := httptest.NewRecorder()
		c := &call{w: w, r: r}
		start, end := c.paginate(tt.total)
		h := w.Header()
		if start != tt.wantStart || end != tt.wantEnd {
			t.Errorf("total %d %q: range [%d,%d), want [%d,%d)", tt.total, tt.query, start, end, tt.wantStart, tt.wantEnd)
		}
		if got, ok := h["X-Total"]; (tt.wantTotal == "") != !ok || (ok && got[0] != tt.wantTotal) {
			t.Errorf("total %d %q: X-Total %v, want %q", tt.total, tt.query, got, tt.wantTotal)
		}
		if got, ok := h["X-Total-Pages"]; (tt.wantPages == "") != !ok || (ok && got[0] != tt.wantPages) {
			t.Errorf("total %d %q: X-Total-Pages %v, want %q", tt.total, tt.query, got, tt.wantPages)
		}
		if got := strings.Contains(h.Get("Link"), `rel="last"`); got != tt.wantLast {
			t.Errorf("total %d %q: rel=last %v, want %v (Link %s)", tt.total, tt.query, got, tt.wantLast, h.Get("Link"))
		}
		if got := h.Get("X-Next-Page"); got != tt.wantNext {
			t.Errorf("total %d %q: X-Next-Page %q, want %q", tt.total, tt.query, got, tt.wantNext)
		}
		if !strings.Contains(h.Get("Link"), `rel="first"`) {
			t.Errorf("total %d %q: no rel=first in %q", tt.total, tt.query, h.Get("Link"))
		}
	}
}

func TestKthMatchesSpread(t *testing.T) {
	for n := int64(1); n <= 60; n++ {
		for m := int64(0); m <= n; m++ {
			var in, out []int64
			for j := int64(1); j <= n; j++ {
				if spread(j, m, n) {
					in = append(in, j)
				} else {
					out = append(out, j)
				}
			}
			if int64(len(in)) != m {
				t.Fatalf("spread(n=%d, m=%d) selects %d positions", n, m, len(in))
			}
			for k, j := range in {
				if got := kth(int64(k+1), m, n, false); got != j {
					t.Fatalf("kth(%d, m=%d, n=%d) = %d, want %d", k+1, m, n, got, j)
				}
			}
			for k, j := range out {
				if got := kth(int64(k+1), m, n, true); got != j {
					t.Fatalf("kth inverse(%d, m=%d, n=%d) = %d, want %d", k+1, m, n, got, j)
				}
			}
		}
	}
}

// TestListsConsistent checks every generated list against the counts: the state
// filters partition the merge requests and issues, branch names are sorted and unique
// with the default branch once.
func TestListsConsistent(t *testing.T) {
	s := newTestServer(t, Options{Seed: 3, Groups: 10, Projects: 300})
	for i := range s.in.projects {
		p := &s.in.projects[i]
		if p.count(cMRs) > 3000 || p.count(cIssues) > 3000 || p.count(cBranches) > 3000 {
			continue // the big ones are covered through the API with the cut-off
		}
		states := map[string]int64{}
		for _, state := range []string{"opened", "merged", "closed"} {
			seen := map[int64]bool{}
			for pos := range mrTotal(p, state) {
				iid := mrIID(p, state, pos, false)
				if got := mrState(p, iid); got != state || seen[iid] {
					t.Fatalf("project %d: MR %d at %s position %d has state %s (dup %v)", p.id, iid, state, pos, got, seen[iid])
				}
				seen[iid] = true
			}
			states[state] = int64(len(seen))
		}
		if states["opened"] != p.count(cOpenMRs) || states["opened"]+states["merged"]+states["closed"] != p.count(cMRs) {
			t.Fatalf("project %d: MR states %v do not add up to %d (open %d)", p.id, states, p.count(cMRs), p.count(cOpenMRs))
		}
		var open int64
		for pos := range issueTotal(p, "opened") {
			if is := s.in.issue(p, issueIID(p, "opened", pos, false)); is.State != "opened" {
				t.Fatalf("project %d: issue %d in opened list is %s", p.id, is.IID, is.State)
			}
			open++
		}
		for pos := range issueTotal(p, "closed") {
			if is := s.in.issue(p, issueIID(p, "closed", pos, true)); is.State != "closed" {
				t.Fatalf("project %d: issue %d in closed list is %s", p.id, is.IID, is.State)
			}
		}
		if open != p.count(cOpenIssues) {
			t.Fatalf("project %d: %d open issues listed, want %d", p.id, open, p.count(cOpenIssues))
		}
		var names []string
		for pos := range p.count(cBranches) {
			names = append(names, s.in.branchName(p, pos))
		}
		if !sort.StringsAreSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Fatalf("project %d: branch names not sorted and unique: %v", p.id, names)
		}
		if !p.has(fEmpty) && !slices.Contains(names, p.defaultBranch()) {
			t.Fatalf("project %d: default branch %q not among %v", p.id, p.defaultBranch(), names)
		}
		if p.count(cReleases) > p.count(cTags) || p.count(cProtected) > max(p.count(cBranches), 6) {
			t.Fatalf("project %d: releases %d > tags %d or protected %d > branches %d", p.id, p.count(cReleases), p.count(cTags), p.count(cProtected), p.count(cBranches))
		}
	}
}

// TestCIConfigsParse parses every generated .gitlab-ci.yml with a YAML parser and
// derives the scanner's CI facts from the document, independently of the generator.
func TestCIConfigsParse(t *testing.T) {
	s := newTestServer(t, Options{Seed: 1, Groups: 50, Projects: 2000})
	var valid, invalid, locals int
	constructs := map[string]int{}
	for i := range s.in.projects {
		p := &s.in.projects[i]
		if file, _ := s.in.ciFile(p); file == "" {
			continue // no CI, or kept in another project (whose repository its includes read)
		}
		src, want := s.in.ciConfig(p)
		got := summariseCIWith(t, src, func(name string) string {
			body, ok := s.in.file(p, name)
			if !ok {
				t.Fatalf("project %d includes %s, which it does not have", p.id, name)
			}
			return body
		})
		locals += want.LocalIncludes
		if !equalCI(got, want) {
			t.Fatalf("project %d: parsed %+v, generator says %+v\n%s", p.id, got, want, src)
		}
		if want.Invalid {
			invalid++
			continue
		}
		valid++
		for _, c := range want.Constructs {
			constructs[c]++
		}
	}
	if locals == 0 {
		t.Error("no CI file includes a local file")
	}
	if invalid == 0 || valid < 500 {
		t.Errorf("%d valid and %d invalid CI files; want both kinds", valid, invalid)
	}
	for _, c := range ciConstructs {
		if constructs[c] == 0 {
			t.Errorf("construct %q never generated", c)
		}
	}
	for k, src := range invalidCI {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(src), &doc); err == nil {
			t.Errorf("invalid CI variant %d parses", k)
		}
	}
}

func equalCI(a, b inventory.CI) bool {
	return a.Jobs == b.Jobs && a.Stages == b.Stages && a.Includes == b.Includes && a.Invalid == b.Invalid &&
		a.LocalIncludes == b.LocalIncludes &&
		slices.Equal(a.Constructs, b.Constructs)
}

var reservedCIKeys = map[string]bool{"default": true, "include": true, "stages": true, "variables": true, "workflow": true, "image": true, "services": true, "cache": true, "before_script": true, "after_script": true, "types": true}

// summariseCIWith is summariseCI with the jobs of the local files src includes (read
// by read, nested ones too, each once) merged in: a job name counts once, as GitLab
// merges the files.
func summariseCIWith(t *testing.T, src string, read func(string) string) inventory.CI {
	t.Helper()
	ci := summariseCI(t, src)
	if ci.Invalid {
		return ci
	}
	names := map[string]bool{}
	jobs := func(src string) []string {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatalf("included file: %v", err)
		}
		var out []string
		for k, v := range doc {
			switch {
			case k == "include":
				for _, e := range asAnyList(v) {
					switch e := e.(type) {
					case string:
						if !strings.Contains(e, "://") {
							out = append(out, "include="+strings.TrimPrefix(e, "/"))
						}
					case map[string]any:
						if l, ok := e["local"].(string); ok {
							out = append(out, "include="+strings.TrimPrefix(l, "/"))
						}
					}
				}
			case !reservedCIKeys[k] && !strings.HasPrefix(k, "."):
				names[k] = true
			}
		}
		return out
	}
	queue := jobs(src)
	seen := map[string]bool{}
	for len(queue) > 0 {
		f := strings.TrimPrefix(queue[0], "include=")
		queue = queue[1:]
		if !seen[f] {
			seen[f] = true
			ci.LocalIncludes++
			queue = append(queue, jobs(read(f))...)
		}
	}
	ci.Jobs = len(names)
	return ci
}

func asAnyList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// summariseCI applies the scanner's rules to a CI document.
func summariseCI(t *testing.T, src string) inventory.CI {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		return inventory.CI{Invalid: true}
	}
	ci := inventory.CI{Constructs: []string{}}
	for k := range doc {
		if !reservedCIKeys[k] && !strings.HasPrefix(k, ".") {
			ci.Jobs++
		}
	}
	if st, ok := doc["stages"].([]any); ok {
		ci.Stages = len(st)
	}
	switch inc := doc["include"].(type) {
	case string, map[string]any:
		ci.Includes = 1
	case []any:
		ci.Includes = len(inc)
	}
	found := map[string]bool{}
	var includes, triggers []string
	projectOf := func(v any) (string, bool) {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		p, ok := m["project"].(string)
		return p, ok
	}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				switch k {
				case "include":
					entries, ok := c.([]any)
					if !ok {
						entries = []any{c}
					}
					for _, e := range entries {
						if p, ok := projectOf(e); ok {
							includes = append(includes, p)
						}
					}
				case "trigger":
					if p, ok := c.(string); ok {
						triggers = append(triggers, p)
					} else if p, ok := projectOf(c); ok {
						triggers = append(triggers, p)
					}
				}
				switch k {
				case "extends", "include", "needs", "rules", "services", "tags", "trigger":
					found[k] = true
				}
				walk(k, c)
			}
		case []any:
			for _, c := range x {
				walk(key, c)
			}
		case string:
			if (key == "image" || key == "services" || key == "name") && strings.Contains(x, "dind") {
				found["dind"] = true
			}
		}
	}
	walk("", doc)
	if includes != nil {
		slices.Sort(includes)
		ci.IncludeProjects = slices.Compact(includes)
	}
	if triggers != nil {
		slices.Sort(triggers)
		ci.TriggerProjects = slices.Compact(triggers)
	}
	for k := range found {
		ci.Constructs = append(ci.Constructs, k)
	}
	slices.Sort(ci.Constructs)
	return ci
}

func TestTreeListsFiles(t *testing.T) {
	s := newTestServer(t, Options{Seed: 5, Groups: 5, Projects: 200})
	for i := range s.in.projects {
		p := &s.in.projects[i]
		files, subs := s.in.blobs(p)
		all, ok := s.in.tree(p, "", true)
		if p.has(fEmpty) {
			if ok {
				t.Fatalf("project %d: empty repository has a tree", p.id)
			}
			continue
		}
		var blobs, commits int
		for _, n := range all {
			switch n.Type {
			case "blob":
				blobs++
				if _, ok := s.in.file(p, n.Path); !ok {
					t.Fatalf("project %d: tree lists %s but the file is missing", p.id, n.Path)
				}
			case "commit":
				commits++
			case "tree":
				if _, ok := s.in.tree(p, n.Path, false); !ok {
					t.Fatalf("project %d: directory %s cannot be listed", p.id, n.Path)
				}
			}
		}
		if blobs != len(files) || commits != len(subs) {
			t.Fatalf("project %d: recursive tree has %d blobs and %d submodules, want %d and %d", p.id, blobs, commits, len(files), len(subs))
		}
		root, _ := s.in.tree(p, "", false)
		has := func(name string) bool {
			return slices.ContainsFunc(root, func(n treeNode) bool { return n.Name == name && n.Type == "blob" })
		}
		ciFile, _ := s.in.ciFile(p)
		if has(".gitlab-ci.yml") != (ciFile == ".gitlab-ci.yml") || has(".gitmodules") != p.has(fGitmodules) || has("CODEOWNERS") != p.has(fCodeownersRoot) {
			t.Fatalf("project %d: root tree %v disagrees with the project's files", p.id, root)
		}
		if _, ok := s.in.tree(p, "no/such/dir", false); ok {
			t.Fatalf("project %d: a missing directory has a tree", p.id)
		}
	}
}

// TestSeed1CoversReadinessRules: the demo instance (seed 1, 50 groups, 2,000 projects)
// has projects over every threshold migration teams flag, and the common cases too.
func TestSeed1CoversReadinessRules(t *testing.T) {
	s := newTestServer(t, Options{Seed: 1, Groups: 50, Projects: 2000})
	tr := s.Truth()
	const gb = 1_000_000_000
	rules := []struct {
		name     string
		min, max int
		match    func(p inventory.Project) bool
	}{
		{"export over 40 GiB", 1, 5, func(p inventory.Project) bool { return p.Statistics.ExportSize() > 40<<30 }},
		{"repository over 5 GB", 2, 40, func(p inventory.Project) bool { return p.Statistics.RepositorySize > 5*gb }},
		{"storage over 20 GB", 1, 40, func(p inventory.Project) bool { return p.Statistics.StorageSize > 20*gb }},
		{"registry over 20 GB", 1, 10, func(p inventory.Project) bool { return p.Statistics.ContainerRegistrySize > 20*gb }},
		{"over 5,000 merge requests", 2, 10, func(p inventory.Project) bool { return *p.Counts.MergeRequests > 5000 }},
		{"over 5,000 pipelines", 2, 10, func(p inventory.Project) bool { return *p.Counts.Pipelines > 5000 }},
		{"over 5,000 issues", 2, 10, func(p inventory.Project) bool { return *p.Counts.Issues > 5000 }},
		{"over 1,000 branches", 1, 10, func(p inventory.Project) bool { return *p.Counts.Branches > 1000 }},
		{"over 5,000 tags", 1, 10, func(p inventory.Project) bool { return *p.Counts.Tags > 5000 }},
		{"over 50,000 commits", 1, 10, func(p inventory.Project) bool { return p.Statistics.CommitCount > 50000 }},
		{"a count past 10,000", 3, 10, func(p inventory.Project) bool { return len(p.Counts.LowerBounds) > 0 }},
		{"packages", 40, 400, func(p inventory.Project) bool { return len(p.Features.PackageTypes) > 0 }},
		{"registry in use", 40, 600, func(p inventory.Project) bool { return inventory.Is(p.Features.RegistryInUse) }},
		{"internal visibility", 100, 1500, func(p inventory.Project) bool { return p.Visibility == "internal" }},
		{"public visibility", 1, 500, func(p inventory.Project) bool { return p.Visibility == "public" }},
		{"LFS", 50, 600, func(p inventory.Project) bool { return inventory.Is(p.Features.UsesLFS) }},
		{"submodules", 20, 300, func(p inventory.Project) bool { return inventory.Is(p.Features.HasSubmodules) }},
		{"CODEOWNERS", 100, 600, func(p inventory.Project) bool { return inventory.Is(p.Features.HasCodeowners) }},
		{"CI", 800, 1800, func(p inventory.Project) bool { return inventory.Is(p.Features.HasCI) }},
		{"invalid CI", 1, 10, func(p inventory.Project) bool { return p.Features.CI != nil && p.Features.CI.Invalid }},
		{"webhooks", 100, 1200, func(p inventory.Project) bool { return *p.Counts.Webhooks > 0 }},
		{"CI variables", 300, 1500, func(p inventory.Project) bool { return *p.Counts.CIVariables > 0 }},
		{"archived", 20, 300, func(p inventory.Project) bool { return p.Archived }},
		{"forks", 20, 300, func(p inventory.Project) bool { return p.Fork }},
		{"mirrors", 10, 200, func(p inventory.Project) bool { return p.Mirror }},
		{"empty repositories", 10, 200, func(p inventory.Project) bool { return p.EmptyRepo }},
		{"wiki disabled", 300, 1500, func(p inventory.Project) bool { return !p.Features.WikiEnabled }},
		{"small repositories (< 50 MiB)", 1000, 2000, func(p inventory.Project) bool { return p.Statistics.RepositorySize < 50<<20 }},
	}
	for _, r := range rules {
		n := 0
		for _, p := range tr.Projects {
			if r.match(p) {
				n++
			}
		}
		if n < r.min || n > r.max {
			t.Errorf("%s: %d projects, want %d..%d", r.name, n, r.min, r.max)
		}
	}
	for _, p := range tr.Projects {
		st := p.Statistics
		if (st.LFSObjectsSize > 0 && !inventory.Is(p.Features.UsesLFS)) || (st.ContainerRegistrySize > 0) != inventory.Is(p.Features.RegistryInUse) ||
			(st.PackagesSize > 0) != (len(p.Features.PackageTypes) > 0) || (p.EmptyRepo && (st.RepositorySize != 0 || p.DefaultBranch != "")) {
			t.Fatalf("project %d: inconsistent statistics and features: %+v %+v", p.ID, st, p.Features)
		}
	}
}
