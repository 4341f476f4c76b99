// Package facts declares what a project's profile holds and where each fact comes
// from: the counts read from GitLab lists, the statistics fields, and the probing
// steps with the endpoint classes they call. The profiler's count steps, the
// projects.csv columns, the agent's endpoint classes and the scan-versus-truth
// comparison are derived from these lists, so a new count is one Count here plus
// its field in inventory.Counts (whose JSON tag is the JSONL field).
package facts

import (
	"net/url"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// Project is the endpoint class of the project itself: a fact read from it comes
// with the project as listed (or its detail), not from a list of its own.
const Project = "projects/:id"

// Count is one per-project count.
type Count struct {
	// Name is the count's JSON field in inventory.Counts, its projects.csv column,
	// its profile step (a scan error's step) and its name in lower_bound_counts.
	Name string
	// Endpoint is the endpoint class the count is read from: the number of items of
	// that list, from X-Total of a one-item page. Project means the project as
	// listed carries the count and no request is made.
	Endpoint string
	// Query narrows the list, e.g. "state=opened"; "" for none.
	Query string
	// Skip reports that the count is 0 without asking: the feature is off or the
	// repository is empty, so GitLab would answer 403 or an empty list. nil: always asked.
	Skip func(*inventory.Project) bool
	// Field is where the count is kept.
	Field func(*inventory.Counts) **int64
	// GraphQL is the field of GitLab's GraphQL Project type that gives the same
	// number: a connection whose `count` it is, e.g. "mergeRequests(state: opened,
	// first: 1)" (first: 1, as a connection's complexity grows with its page size);
	// "" when GraphQL has none and the count is read from REST in GraphQL mode too
	// (docs/EXPORTS.md says why, per count).
	GraphQL string
	// GraphQLNodes says GraphQL's connection has no `count` (GitLab declares it a
	// plain connection, not a countable one): the count is the number of nodes of
	// the page GraphQL names, when that page holds them all, and REST's otherwise.
	GraphQLNodes bool
	// GraphQLList is a list field below the field GraphQL names (e.g. branchNames
	// below repository): the count is the list's length, a lower bound past TotalCap.
	GraphQLList string
	// GraphQLOnePerQuery says one project per request can have the field: GitLab
	// resolves it for one project per request (its FieldCallCount limit 1), or its
	// complexity leaves no room for another project's. A query that asks for it
	// profiles that project alone; without room for it, REST counts.
	GraphQLOnePerQuery bool
	// GraphQLAbility is the field of GitLab's ProjectPermissions (e.g.
	// "readEnvironment") that must be true for GraphQL's number to be the count:
	// where GitLab redacts what the user may not read from the connection instead
	// of nulling it, an empty page would read as 0 where REST answers 403.
	GraphQLAbility string
}

// GraphQLSelection is the selection the profile query asks for the count under
// its name: the connection's count, or its page of nodes when it has no count.
func (c Count) GraphQLSelection() string {
	if c.GraphQLList != "" {
		return c.GraphQL + " { list: " + c.GraphQLList + " }"
	}
	if c.GraphQLNodes {
		return c.GraphQL + " { pageInfo { hasNextPage } nodes { id } }"
	}
	return c.GraphQL + " { count }"
}

// TotalCap is where GitLab's REST lists stop counting (X-Total is omitted above it):
// a count past it is the lower bound TotalCap.
const TotalCap = 10000

// Listed reports whether the project as listed carries the count.
func (c Count) Listed() bool { return c.Endpoint == Project }

// Resource is the list below projects/:id that the count is read from, such as
// "repository/branches"; "" when the count is Listed.
func (c Count) Resource() string {
	return strings.TrimPrefix(strings.TrimPrefix(c.Endpoint, Project), "/")
}

// Values returns the list's query parameters, a new map on every call: the client
// adds its own.
func (c Count) Values() url.Values {
	q, _ := url.ParseQuery(c.Query) // the declarations are tested to parse
	return q
}

func emptyRepo(p *inventory.Project) bool { return p.EmptyRepo }
func mrsOff(p *inventory.Project) bool    { return !p.Features.MREnabled }
func issuesOff(p *inventory.Project) bool { return !p.Features.IssuesEnabled }
func jobsOff(p *inventory.Project) bool   { return !p.Features.JobsEnabled }

// Counts are the per-project counts in the order they are asked for; it is also
// their order in projects.jsonl and, for counts declared after the first eleven,
// in projects.csv (appended: columns are never inserted).
var Counts = []Count{
	// branchNames has a constant complexity of 170, and a list of names, not a
	// count: one project's per query, TotalCap+1 of them at most.
	{Name: "branches", Endpoint: "projects/:id/repository/branches", Skip: emptyRepo,
		GraphQL: "repository", GraphQLList: `branchNames(searchPattern: "*", offset: 0, limit: 10001)`, GraphQLOnePerQuery: true,
		Field: func(c *inventory.Counts) **int64 { return &c.Branches }},
	{Name: "tags", Endpoint: "projects/:id/repository/tags", Skip: emptyRepo,
		Field: func(c *inventory.Counts) **int64 { return &c.Tags }},
	{Name: "merge_requests", Endpoint: "projects/:id/merge_requests", Query: "state=all", Skip: mrsOff, GraphQL: "mergeRequests(first: 1)",
		Field: func(c *inventory.Counts) **int64 { return &c.MergeRequests }},
	{Name: "open_merge_requests", Endpoint: "projects/:id/merge_requests", Query: "state=opened", Skip: mrsOff, GraphQL: "mergeRequests(state: opened, first: 1)",
		Field: func(c *inventory.Counts) **int64 { return &c.OpenMergeRequests }},
	{Name: "issues", Endpoint: "projects/:id/issues", Query: "state=all", Skip: issuesOff, GraphQL: "issues(first: 1)",
		Field: func(c *inventory.Counts) **int64 { return &c.Issues }},
	// open_issues_count on the project is exact; no request needed.
	{Name: "open_issues", Endpoint: Project, Skip: issuesOff,
		Field: func(c *inventory.Counts) **int64 { return &c.OpenIssues }},
	{Name: "pipelines", Endpoint: "projects/:id/pipelines", Skip: jobsOff, GraphQL: "pipelines(first: 1)",
		Field: func(c *inventory.Counts) **int64 { return &c.Pipelines }},
	{Name: "releases", Endpoint: "projects/:id/releases", GraphQL: "releases(first: 1)",
		Field: func(c *inventory.Counts) **int64 { return &c.Releases }},
	{Name: "webhooks", Endpoint: "projects/:id/hooks",
		Field: func(c *inventory.Counts) **int64 { return &c.Webhooks }},
	{Name: "protected_branches", Endpoint: "projects/:id/protected_branches", Skip: emptyRepo,
		Field: func(c *inventory.Counts) **int64 { return &c.ProtectedBranches }},
	// ciVariables is a plain connection (no count), null without Maintainer, as
	// REST's 403: a page of 20 holds the variables of most projects.
	{Name: "ci_variables", Endpoint: "projects/:id/variables", GraphQL: "ciVariables(first: 20)", GraphQLNodes: true,
		Field: func(c *inventory.Counts) **int64 { return &c.CIVariables }},
	// GitLab forbids reading environments when CI/CD is off. GraphQL's environments
	// are one project's per request, a plain connection, redacted without
	// read_environment: one project of each query gets them, the others REST's.
	{Name: "environments", Endpoint: "projects/:id/environments", Skip: jobsOff,
		GraphQL: "environments(first: 100)", GraphQLNodes: true, GraphQLOnePerQuery: true, GraphQLAbility: "readEnvironment",
		Field: func(c *inventory.Counts) **int64 { return &c.Environments }},
}

// Stat is one field of GitLab's project statistics (inventory.Statistics), which
// come with the project listing.
type Stat struct {
	Name   string // JSON field in inventory.Statistics, as GitLab names it
	Column string // projects.csv column
	Field  func(*inventory.Statistics) int64
}

// Stats are the statistics fields in their projects.jsonl order; a field declared
// after the first ten is appended to projects.csv.
var Stats = []Stat{
	{"repository_size", "repository_size_bytes", func(s *inventory.Statistics) int64 { return s.RepositorySize }},
	{"lfs_objects_size", "lfs_objects_size_bytes", func(s *inventory.Statistics) int64 { return s.LFSObjectsSize }},
	{"wiki_size", "wiki_size_bytes", func(s *inventory.Statistics) int64 { return s.WikiSize }},
	{"packages_size", "packages_size_bytes", func(s *inventory.Statistics) int64 { return s.PackagesSize }},
	{"container_registry_size", "container_registry_size_bytes", func(s *inventory.Statistics) int64 { return s.ContainerRegistrySize }},
	{"job_artifacts_size", "job_artifacts_size_bytes", func(s *inventory.Statistics) int64 { return s.JobArtifactsSize }},
	{"snippets_size", "snippets_size_bytes", func(s *inventory.Statistics) int64 { return s.SnippetsSize }},
	{"uploads_size", "uploads_size_bytes", func(s *inventory.Statistics) int64 { return s.UploadsSize }},
	{"storage_size", "storage_size_bytes", func(s *inventory.Statistics) int64 { return s.StorageSize }},
	{"commit_count", "commit_count", func(s *inventory.Statistics) int64 { return s.CommitCount }},
}

// Step is a profiling step that is not a count: it reads an endpoint and fills
// features or statistics. Its name is what a failed step's scan error says.
type Step struct {
	Name     string
	Endpoint string
}

// The probing steps, in the order the profiler runs them.
var (
	Statistics     = Step{"statistics", Project} // the detail, when the listing lacked statistics
	Registry       = Step{"registry", "projects/:id/registry/repositories"}
	Packages       = Step{"packages", "projects/:id/packages"}
	Tree           = Step{"tree", "projects/:id/repository/tree"}
	TreeDocs       = Step{"tree:docs", "projects/:id/repository/tree"}
	TreeGitlab     = Step{"tree:.gitlab", "projects/:id/repository/tree"}
	TreeCIConfig   = Step{"tree:ci_config_path", "projects/:id/repository/tree"}            // the directories of a custom ci_config_path
	CIFile         = Step{"file:.gitlab-ci.yml", "projects/:id/repository/files/:path/raw"} // or the custom ci_config_path
	AttributesFile = Step{"file:.gitattributes", "projects/:id/repository/files/:path/raw"}
	SubmodulesFile = Step{"file:.gitmodules", "projects/:id/repository/files/:path/raw"} // only when the root has it
	// CIIncludeFile reads the local files the CI file includes (include: local, and
	// nested ones), at most MaxCIIncludes, to count their jobs.
	CIIncludeFile = Step{"file:ci_include", "projects/:id/repository/files/:path/raw"}
	// Members lists the members, inherited ones included, for the owners; it runs
	// only with INCLUDE_MEMBERS, last, and asks one page per 100 members.
	Members = Step{"members", "projects/:id/members/all"}
)

// Steps lists the probing steps.
var Steps = []Step{Statistics, Registry, Packages, Tree, TreeDocs, TreeGitlab, TreeCIConfig, CIFile, AttributesFile, SubmodulesFile, CIIncludeFile, Members}

// MaxCIIncludes bounds the local CI files one profile reads (CIIncludeFile): a CI
// configuration including more has its job count marked a lower bound.
const MaxCIIncludes = 5

// MaxCalls is the most requests a step makes where it runs: MaxCIIncludes for
// CIIncludeFile, one (a page) for the others.
func (s Step) MaxCalls() int {
	if s == CIIncludeFile {
		return MaxCIIncludes
	}
	return 1
}

// Optional reports whether a step runs only when its setting asks for it: Members
// (INCLUDE_MEMBERS).
func (s Step) Optional() bool { return s == Members }

// Flag is a yes/no feature a profile step finds out. nil is unknown: its step failed
// or never ran, and it is exported empty (CSV) or null (JSONL), never false.
type Flag struct {
	Name  string // JSON field in inventory.Features and projects.csv column
	Field func(*inventory.Features) **bool
}

// Flags are the feature flags a profile finds out.
var Flags = []Flag{
	{"has_ci", func(f *inventory.Features) **bool { return &f.HasCI }},
	{"uses_lfs", func(f *inventory.Features) **bool { return &f.UsesLFS }},
	{"has_submodules", func(f *inventory.Features) **bool { return &f.HasSubmodules }},
	{"has_codeowners", func(f *inventory.Features) **bool { return &f.HasCodeowners }},
	{"registry_in_use", func(f *inventory.Features) **bool { return &f.RegistryInUse }},
}

// FlagNamed returns the declared flag name; it panics on a name not declared, which
// is a programming error a test catches.
func FlagNamed(name string) Flag {
	for _, f := range Flags {
		if f.Name == name {
			return f
		}
	}
	panic("facts: no declared flag " + name)
}

// Endpoints lists, once each, the endpoint classes a profile reads.
func Endpoints() []string {
	var out []string
	seen := map[string]bool{}
	add := func(e string) {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	for _, s := range Steps {
		add(s.Endpoint)
	}
	for _, c := range Counts {
		add(c.Endpoint)
	}
	return out
}

// StepsOf maps an endpoint class to the profile steps that request it: a 403 there
// fails exactly these steps. Listed counts make no request and are in no list.
func StepsOf() map[string][]string {
	m := map[string][]string{}
	for _, s := range Steps {
		m[s.Endpoint] = append(m[s.Endpoint], s.Name)
	}
	for _, c := range Counts {
		if !c.Listed() {
			m[c.Endpoint] = append(m[c.Endpoint], c.Name)
		}
	}
	return m
}
