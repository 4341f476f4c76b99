package gitlabsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// migrationFiles are the files the agent reads through Repository.blobs.
var migrationFiles = []string{".gitlab-ci.yml", ".gitattributes", ".gitmodules", "CODEOWNERS", ".gitlab/CODEOWNERS", "docs/CODEOWNERS", "README.md", "ci/pipeline.yml"}

// TestGraphQLMatchesREST: for a sample of projects, what GraphQL answers equals
// what the REST endpoints answer: identity, settings, statistics, counts and files.
func TestGraphQLMatchesREST(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 9, Groups: 8, Projects: 120, Users: 2, PersonalProjects: 4})
	checked := 0
	for k := 0; k < len(s.in.projects); k += 7 {
		id := strconv.FormatInt(s.in.projects[k].id, 10)
		_, _, body := restGet(t, ts, "projects/"+id+"?statistics=true")
		var rest restProject
		if err := json.Unmarshal(body, &rest); err != nil {
			t.Fatal(err)
		}
		g := graphQLFacts(t, ts, rest.PathWithNamespace)
		pairs := append(scalarPairs(id, g, rest), countPairs(t, ts, id, g, rest)...)
		pairs = append(pairs, blobPairs(t, ts, id, g)...)
		for _, e := range pairs {
			if fmt.Sprint(e.got) != fmt.Sprint(e.want) {
				t.Errorf("project %s: %s: GraphQL %v, REST %v", id, e.name, e.got, e.want)
			}
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("checked %d projects", checked)
	}
}

type pair struct {
	name      string
	got, want any
}

type gqlFacts struct {
	ID, FullPath, Name, Path, Visibility, CreatedAt, LastActivityAt, WebURL, CiConfigPathOrDefault, ImportStatus string
	Archived, IsForked                                                                                           bool
	IssuesEnabled, MergeRequestsEnabled, WikiEnabled, JobsEnabled, ContainerRegistryEnabled, LfsEnabled          bool
	Namespace                                                                                                    struct{ FullPath string }
	OpenIssuesCount                                                                                              *int64
	ContainerRepositoriesCount                                                                                   int64
	Statistics                                                                                                   map[string]float64
	AllMRs, OpenMRs, MergedMRs, Issues, OpenIssues, Pipelines, Releases                                          struct{ Count int64 }
	Packages                                                                                                     struct {
		Count int64
		Nodes []struct{ PackageType string }
	}
	Repository struct {
		RootRef *string
		Empty   bool
		Blobs   struct {
			Nodes []struct{ Path, RawTextBlob, Size string }
		}
	}
}

func graphQLFacts(t *testing.T, ts *httptest.Server, fullPath string) gqlFacts {
	t.Helper()
	paths, _ := json.Marshal(migrationFiles)
	a := gqlPost(t, ts, "sim-token", `query($p: ID!) { p: project(fullPath: $p) {
	  id fullPath name path visibility archived createdAt lastActivityAt webUrl ciConfigPathOrDefault isForked importStatus
	  issuesEnabled mergeRequestsEnabled wikiEnabled jobsEnabled containerRegistryEnabled lfsEnabled
	  namespace { fullPath } openIssuesCount containerRepositoriesCount
	  statistics { repositorySize lfsObjectsSize wikiSize packagesSize containerRegistrySize buildArtifactsSize snippetsSize uploadsSize storageSize commitCount }
	  allMRs: mergeRequests { count } openMRs: mergeRequests(state: opened) { count } mergedMRs: mergeRequests(state: merged) { count }
	  issues { count } openIssues: issues(state: opened) { count } pipelines { count } releases { count } packages { count nodes { packageType } }
	  repository { rootRef empty blobs(paths: `+string(paths)+`) { nodes { path rawTextBlob size } } }
	} }`, map[string]any{"p": fullPath})
	var g gqlFacts
	a.decode(t, "p", &g)
	return g
}

func scalarPairs(id string, g gqlFacts, rest restProject) []pair {
	st, iso := rest.Statistics, "2006-01-02T15:04:05Z07:00"
	return []pair{
		{"id", g.ID, "gid://gitlab/Project/" + id}, {"fullPath", g.FullPath, rest.PathWithNamespace},
		{"name", g.Name, rest.Name}, {"path", g.Path, rest.Path}, {"visibility", g.Visibility, rest.Visibility},
		{"archived", g.Archived, rest.Archived}, {"isForked", g.IsForked, rest.ForkedFromProject != nil},
		{"createdAt", g.CreatedAt, rest.CreatedAt.Format(iso)}, {"lastActivityAt", g.LastActivityAt, rest.LastActivityAt.Format(iso)},
		{"webUrl", g.WebURL, rest.WebURL}, {"importStatus", g.ImportStatus, rest.ImportStatus},
		{"ciConfigPathOrDefault", g.CiConfigPathOrDefault, cmpOrStr(rest.CIConfigPath, ".gitlab-ci.yml")},
		{"issuesEnabled", g.IssuesEnabled, rest.IssuesEnabled}, {"mergeRequestsEnabled", g.MergeRequestsEnabled, rest.MergeRequestsEnabled},
		{"wikiEnabled", g.WikiEnabled, rest.WikiEnabled}, {"jobsEnabled", g.JobsEnabled, rest.JobsEnabled},
		{"containerRegistryEnabled", g.ContainerRegistryEnabled, rest.ContainerRegistryEnabled}, {"lfsEnabled", g.LfsEnabled, rest.LFSEnabled},
		{"namespace", g.Namespace.FullPath, rest.Namespace.FullPath},
		{"openIssuesCount", derefOr(g.OpenIssuesCount), derefOr(rest.OpenIssuesCount)},
		{"repositorySize", int64(g.Statistics["repositorySize"]), st.RepositorySize},
		{"lfsObjectsSize", int64(g.Statistics["lfsObjectsSize"]), st.LFSObjectsSize},
		{"wikiSize", int64(g.Statistics["wikiSize"]), st.WikiSize},
		{"packagesSize", int64(g.Statistics["packagesSize"]), st.PackagesSize},
		{"containerRegistrySize", int64(g.Statistics["containerRegistrySize"]), st.ContainerRegistrySize},
		{"buildArtifactsSize", int64(g.Statistics["buildArtifactsSize"]), st.JobArtifactsSize},
		{"snippetsSize", int64(g.Statistics["snippetsSize"]), st.SnippetsSize},
		{"uploadsSize", int64(g.Statistics["uploadsSize"]), st.UploadsSize},
		{"storageSize", int64(g.Statistics["storageSize"]), st.StorageSize},
		{"commitCount", int64(g.Statistics["commitCount"]), st.CommitCount},
		{"rootRef", derefOr(g.Repository.RootRef), derefOr(rest.DefaultBranch)},
		{"empty", g.Repository.Empty, rest.EmptyRepo},
	}
}

// countPairs compares each count with REST's X-Total. Where a feature is off REST
// answers 403 and GraphQL, as GitLab's, an empty connection: count 0.
func countPairs(t *testing.T, ts *httptest.Server, id string, g gqlFacts, rest restProject) []pair {
	t.Helper()
	var out []pair
	for _, c := range []struct {
		name string
		got  int64
		path string
		on   bool
	}{
		{"merge requests", g.AllMRs.Count, "merge_requests", rest.MergeRequestsEnabled},
		{"open merge requests", g.OpenMRs.Count, "merge_requests?state=opened", rest.MergeRequestsEnabled},
		{"merged merge requests", g.MergedMRs.Count, "merge_requests?state=merged", rest.MergeRequestsEnabled},
		{"issues", g.Issues.Count, "issues", rest.IssuesEnabled},
		{"open issues", g.OpenIssues.Count, "issues?state=opened", rest.IssuesEnabled},
		{"pipelines", g.Pipelines.Count, "pipelines", rest.JobsEnabled},
		{"releases", g.Releases.Count, "releases", true},
		{"packages", g.Packages.Count, "packages", rest.PackagesEnabled},
		{"container repositories", g.ContainerRepositoriesCount, "registry/repositories", rest.ContainerRegistryEnabled},
	} {
		sep := "?"
		if strings.Contains(c.path, "?") {
			sep = "&"
		}
		status, hdr, _ := restGet(t, ts, "projects/"+id+"/"+c.path+sep+"per_page=1")
		want := hdr.Get("X-Total")
		if status == http.StatusForbidden && !c.on {
			want = "0"
		}
		if total, _ := strconv.ParseInt(want, 10, 64); want != "" && total <= maxTotal {
			out = append(out, pair{c.name, strconv.FormatInt(c.got, 10), want})
		}
	}
	return out
}

// blobPairs compares the blobs found with the REST raw files, content and size.
func blobPairs(t *testing.T, ts *httptest.Server, id string, g gqlFacts) []pair {
	t.Helper()
	var out []pair
	var got, want []string
	for _, b := range g.Repository.Blobs.Nodes {
		got = append(got, b.Path)
		status, _, raw := restGet(t, ts, "projects/"+id+"/repository/files/"+urlPathEscape(b.Path)+"/raw")
		out = append(out, pair{"blob " + b.Path, fmt.Sprint(status, " ", b.RawTextBlob, " ", b.Size), fmt.Sprint(http.StatusOK, " ", string(raw), " ", len(raw))})
	}
	for _, f := range migrationFiles {
		if status, _, _ := restGet(t, ts, "projects/"+id+"/repository/files/"+urlPathEscape(f)+"/raw"); status == http.StatusOK {
			want = append(want, f)
		}
	}
	return append(out, pair{"blobs found", got, want})
}

func cmpOrStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func derefOr[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func urlPathEscape(p string) string {
	return strings.ReplaceAll(strings.ReplaceAll(p, "/", "%2F"), ".", "%2E")
}

// restProject is the part of GET /projects/:id?statistics=true the comparison reads.
type restProject struct {
	Name                     string         `json:"name"`
	Path                     string         `json:"path"`
	Visibility               string         `json:"visibility"`
	WebURL                   string         `json:"web_url"`
	PathWithNamespace        string         `json:"path_with_namespace"`
	CreatedAt                time.Time      `json:"created_at"`
	LastActivityAt           time.Time      `json:"last_activity_at"`
	DefaultBranch            *string        `json:"default_branch"`
	Namespace                apiNamespace   `json:"namespace"`
	EmptyRepo                bool           `json:"empty_repo"`
	Archived                 bool           `json:"archived"`
	ForkedFromProject        *apiForkParent `json:"forked_from_project"`
	CIConfigPath             string         `json:"ci_config_path"`
	ImportStatus             string         `json:"import_status"`
	IssuesEnabled            bool           `json:"issues_enabled"`
	MergeRequestsEnabled     bool           `json:"merge_requests_enabled"`
	WikiEnabled              bool           `json:"wiki_enabled"`
	JobsEnabled              bool           `json:"jobs_enabled"`
	ContainerRegistryEnabled bool           `json:"container_registry_enabled"`
	PackagesEnabled          bool           `json:"packages_enabled"`
	LFSEnabled               bool           `json:"lfs_enabled"`
	OpenIssuesCount          *int64         `json:"open_issues_count"`
	Statistics               apiStatistics  `json:"statistics"`
}
