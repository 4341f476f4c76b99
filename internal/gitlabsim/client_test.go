package gitlabsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// These tests drive the simulator with the real GitLab client library, as the
// scanner does.

// noLimit disables client-go's own rate limiter, so the tests see the server's 429s.
type noLimit struct{}

func (noLimit) Wait(context.Context) error { return nil }

func startSim(t *testing.T, o Options) (*Server, *httptest.Server) {
	t.Helper()
	s := newTestServer(t, o)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts
}

func newClient(t *testing.T, baseURL, token string) *gitlab.Client {
	t.Helper()
	cl, err := gitlab.NewClient(token, gitlab.WithBaseURL(baseURL+"/api/v4"), gitlab.WithoutRetries(), gitlab.WithCustomLimiter(noLimit{}))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return cl
}

// withQuery adds a query parameter client-go has no option for (statistics on group projects).
func withQuery(key, value string) gitlab.RequestOptionFunc {
	return func(r *retryablehttp.Request) error {
		q := r.URL.Query()
		q.Set(key, value)
		r.URL.RawQuery = q.Encode()
		return nil
	}
}

func truthByID(tr Truth) map[int64]inventory.Project {
	m := make(map[int64]inventory.Project, len(tr.Projects))
	for _, p := range tr.Projects {
		m[p.ID] = p
	}
	return m
}

// identity is the part of a project profile that a listing alone gives.
func identity(p *gitlab.Project) inventory.Project {
	out := inventory.Project{
		ID: p.ID, PathWithNamespace: p.PathWithNamespace, Name: p.Name, Visibility: string(p.Visibility),
		Archived: p.Archived, Fork: p.ForkedFromProject != nil, Mirror: p.Mirror, EmptyRepo: p.EmptyRepo,
		DefaultBranch: p.DefaultBranch, WebURL: p.WebURL, ScanStatus: inventory.StatusComplete, Errors: []inventory.ScanError{},
	}
	if p.Namespace != nil {
		out.GroupID, out.GroupFullPath, out.NamespaceKind = p.Namespace.ID, p.Namespace.FullPath, p.Namespace.Kind
	}
	if p.ForkedFromProject != nil {
		out.ForkedFrom = p.ForkedFromProject.PathWithNamespace
	}
	if p.CreatedAt != nil {
		out.CreatedAt = p.CreatedAt.UTC().Truncate(time.Second)
	}
	if p.LastActivityAt != nil {
		out.LastActivityAt = p.LastActivityAt.UTC().Truncate(time.Second)
	}
	if st := p.Statistics; st != nil {
		out.Statistics = &inventory.Statistics{
			RepositorySize: st.RepositorySize, LFSObjectsSize: st.LFSObjectsSize, WikiSize: st.WikiSize,
			PackagesSize: st.PackagesSize, ContainerRegistrySize: st.ContainerRegistrySize, JobArtifactsSize: st.JobArtifactsSize,
			SnippetsSize: st.SnippetsSize, UploadsSize: st.UploadsSize, StorageSize: st.StorageSize, CommitCount: st.CommitCount,
		}
	}
	out.Features = inventory.Features{
		WikiEnabled: p.WikiEnabled, IssuesEnabled: p.IssuesEnabled, MREnabled: p.MergeRequestsEnabled,
		JobsEnabled: p.JobsEnabled, RegistryEnabled: p.ContainerRegistryEnabled, PackageTypes: []string{},
	}
	return out
}

// onlyIdentity keeps the fields identity fills, so a listing compares with the truth.
func onlyIdentity(p inventory.Project) inventory.Project {
	p.Counts = inventory.Counts{}
	p.Owners = nil // the members list's, not the listing's
	f := p.Features
	p.Features = inventory.Features{WikiEnabled: f.WikiEnabled, IssuesEnabled: f.IssuesEnabled, MREnabled: f.MREnabled, JobsEnabled: f.JobsEnabled, RegistryEnabled: f.RegistryEnabled, PackageTypes: []string{}}
	return p
}

func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s differs:\n got  %s\n want %s", what, g, w)
	}
}

// gitmodulesTargets resolves the url lines of a .gitmodules the simulator writes:
// relative, https on the project's host, git@host:path, or elsewhere (kept).
func gitmodulesTargets(src, webURL, project string) []string {
	home, _ := url.Parse(webURL)
	var out []string
	for _, line := range strings.Split(src, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "url = ")
		if !ok {
			continue
		}
		switch u, _ := url.Parse(v); {
		case strings.HasPrefix(v, "../"):
			v = path.Join(project, v)
		case u != nil && u.Host == home.Host:
			v = strings.TrimPrefix(u.Path, "/")
		case strings.HasPrefix(v, "git@"+home.Hostname()+":"):
			v = strings.TrimPrefix(v, "git@"+home.Hostname()+":")
		default:
			out = append(out, v)
			continue
		}
		out = append(out, strings.TrimSuffix(v, ".git"))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// scanProject profiles one project the way the scanner's rules say, with client-go.
func scanProject(t *testing.T, ctx context.Context, cl *gitlab.Client, id int64) inventory.Project {
	t.Helper()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("project %d: %s: %v", id, what, err)
		}
	}
	gp, _, err := cl.Projects.GetProject(id, &gitlab.GetProjectOptions{Statistics: gitlab.Ptr(true)}, gitlab.WithContext(ctx))
	must("get", err)
	p := identity(gp)
	var lower []string
	one := gitlab.ListOptions{PerPage: 1}
	total := func(name string, list func() (*gitlab.Response, error)) *int64 {
		t.Helper()
		resp, err := list()
		must(name, err)
		v := resp.TotalItems
		if resp.Header.Get("X-Total") == "" {
			v = maxTotal
			lower = append(lower, name)
		}
		return &v
	}
	zero := func() *int64 { v := int64(0); return &v }
	c := &p.Counts
	c.Branches = total("branches", func() (*gitlab.Response, error) {
		_, r, err := cl.Branches.ListBranches(id, &gitlab.ListBranchesOptions{ListOptions: one}, gitlab.WithContext(ctx))
		return r, err
	})
	c.Tags = total("tags", func() (*gitlab.Response, error) {
		_, r, err := cl.Tags.ListTags(id, &gitlab.ListTagsOptions{ListOptions: one}, gitlab.WithContext(ctx))
		return r, err
	})
	c.MergeRequests, c.OpenMergeRequests = zero(), zero()
	if gp.MergeRequestsEnabled {
		for _, st := range []struct {
			name, state string
			dst         **int64
		}{{"merge_requests", "all", &c.MergeRequests}, {"open_merge_requests", "opened", &c.OpenMergeRequests}} {
			*st.dst = total(st.name, func() (*gitlab.Response, error) {
				_, r, err := cl.MergeRequests.ListProjectMergeRequests(id, &gitlab.ListProjectMergeRequestsOptions{ListOptions: one, State: gitlab.Ptr(st.state)}, gitlab.WithContext(ctx))
				return r, err
			})
		}
	}
	c.Issues, c.OpenIssues = zero(), zero()
	if gp.IssuesEnabled {
		for _, st := range []struct {
			name, state string
			dst         **int64
		}{{"issues", "all", &c.Issues}, {"open_issues", "opened", &c.OpenIssues}} {
			*st.dst = total(st.name, func() (*gitlab.Response, error) {
				_, r, err := cl.Issues.ListProjectIssues(id, &gitlab.ListProjectIssuesOptions{ListOptions: one, State: gitlab.Ptr(st.state)}, gitlab.WithContext(ctx))
				return r, err
			})
		}
		if *c.OpenIssues != gp.OpenIssuesCount {
			t.Errorf("project %d: %d open issues listed, open_issues_count %d", id, *c.OpenIssues, gp.OpenIssuesCount)
		}
	}
	c.Pipelines = zero()
	if gp.JobsEnabled {
		c.Pipelines = total("pipelines", func() (*gitlab.Response, error) {
			_, r, err := cl.Pipelines.ListProjectPipelines(id, &gitlab.ListProjectPipelinesOptions{ListOptions: one}, gitlab.WithContext(ctx))
			return r, err
		})
	}
	c.Releases = total("releases", func() (*gitlab.Response, error) {
		_, r, err := cl.Releases.ListReleases(id, &gitlab.ListReleasesOptions{ListOptions: one}, gitlab.WithContext(ctx))
		return r, err
	})
	c.Webhooks = total("webhooks", func() (*gitlab.Response, error) {
		_, r, err := cl.Projects.ListProjectHooks(id, &gitlab.ListProjectHooksOptions{ListOptions: one}, gitlab.WithContext(ctx))
		return r, err
	})
	c.ProtectedBranches = total("protected_branches", func() (*gitlab.Response, error) {
		_, r, err := cl.ProtectedBranches.ListProtectedBranches(id, &gitlab.ListProtectedBranchesOptions{ListOptions: one}, gitlab.WithContext(ctx))
		return r, err
	})
	c.CIVariables = total("ci_variables", func() (*gitlab.Response, error) {
		_, r, err := cl.ProjectVariables.ListVariables(id, &gitlab.ListProjectVariablesOptions{ListOptions: one}, gitlab.WithContext(ctx))
		return r, err
	})
	c.Environments = zero()
	if gp.JobsEnabled {
		c.Environments = total("environments", func() (*gitlab.Response, error) {
			_, r, err := cl.Environments.ListEnvironments(id, &gitlab.ListEnvironmentsOptions{ListOptions: one}, gitlab.WithContext(ctx))
			return r, err
		})
	}
	slices.Sort(lower)
	c.LowerBounds = lower

	f := &p.Features
	root := listTree(t, ctx, cl, id, "")
	f.CIConfigPath = gp.CIConfigPath
	ciFile := ".gitlab-ci.yml"
	if gp.CIConfigPath != "" {
		ciFile = gp.CIConfigPath
	}
	if _, target, ok := strings.Cut(gp.CIConfigPath, "@"); ok {
		f.CIConfigExternal, _, _ = strings.Cut(target, ":")
		f.HasCI = new(true)
	} else {
		dir, name := path.Split(ciFile)
		f.HasCI = new(slices.Contains(listTree(t, ctx, cl, id, strings.TrimSuffix(dir, "/")), name))
		if root == nil {
			f.HasCI = new(false)
		}
	}
	if f.CIConfigExternal == "" && *f.HasCI {
		raw, _, err := cl.RepositoryFiles.GetRawFile(id, ciFile, nil, gitlab.WithContext(ctx))
		must("ci file", err)
		ci := summariseCIWith(t, string(raw), func(name string) string {
			raw, _, err := cl.RepositoryFiles.GetRawFile(id, name, nil, gitlab.WithContext(ctx))
			must("ci include "+name, err)
			return string(raw)
		})
		f.CI = &ci
	}
	lfs := false
	if slices.Contains(root, ".gitattributes") {
		raw, _, err := cl.RepositoryFiles.GetRawFile(id, ".gitattributes", nil, gitlab.WithContext(ctx))
		must("gitattributes", err)
		lfs = strings.Contains(string(raw), "filter=lfs")
	}
	f.UsesLFS = new(lfs || p.Statistics.LFSObjectsSize > 0)
	f.HasSubmodules = new(slices.Contains(root, ".gitmodules"))
	if *f.HasSubmodules {
		raw, _, err := cl.RepositoryFiles.GetRawFile(id, ".gitmodules", nil, gitlab.WithContext(ctx))
		must("gitmodules", err)
		f.Submodules = gitmodulesTargets(string(raw), gp.WebURL, gp.PathWithNamespace)
	}
	f.HasCodeowners = new(slices.Contains(root, "CODEOWNERS") ||
		(slices.Contains(root, "docs") && slices.Contains(listTree(t, ctx, cl, id, "docs"), "CODEOWNERS")) ||
		(slices.Contains(root, ".gitlab") && slices.Contains(listTree(t, ctx, cl, id, ".gitlab"), "CODEOWNERS")))
	f.RegistryInUse = new(false)
	if gp.ContainerRegistryEnabled {
		_, r, err := cl.ContainerRegistry.ListProjectRegistryRepositories(id, &gitlab.ListProjectRegistryRepositoriesOptions{ListOptions: one}, gitlab.WithContext(ctx))
		must("registry", err)
		f.RegistryInUse = new(r.TotalItems > 0)
	}
	if gp.PackagesEnabled {
		opt := &gitlab.ListProjectPackagesOptions{ListOptions: gitlab.ListOptions{PerPage: 100}}
		for {
			pkgs, r, err := cl.Packages.ListProjectPackages(id, opt, gitlab.WithContext(ctx))
			must("packages", err)
			for _, pk := range pkgs {
				if !slices.Contains(f.PackageTypes, pk.PackageType) {
					f.PackageTypes = append(f.PackageTypes, pk.PackageType)
				}
			}
			if r.NextPage == 0 {
				break
			}
			opt.Page = r.NextPage
		}
		slices.Sort(f.PackageTypes)
	}
	p.Owners = scanOwners(t, ctx, cl, id)
	return p
}

// scanOwners reads the owners as GitLab's members API gives them: every page of
// members/all, active Maintainers and Owners.
func scanOwners(t *testing.T, ctx context.Context, cl *gitlab.Client, id int64) []string {
	t.Helper()
	owners := []string{}
	opt := &gitlab.ListProjectMembersOptions{ListOptions: gitlab.ListOptions{PerPage: 100, Page: 1}}
	for {
		ms, r, err := cl.ProjectMembers.ListAllProjectMembers(id, opt, gitlab.WithContext(ctx))
		if err != nil {
			t.Fatalf("project %d: members: %v", id, err)
		}
		for _, m := range ms {
			if m.AccessLevel >= gitlab.MaintainerPermissions && m.State == "active" {
				owners = append(owners, m.Username)
			}
		}
		if r.NextPage == 0 {
			break
		}
		opt.Page = r.NextPage
	}
	slices.Sort(owners)
	return owners
}

// listTree returns the names in a directory, nil for an empty repository.
func listTree(t *testing.T, ctx context.Context, cl *gitlab.Client, id int64, dir string) []string {
	t.Helper()
	var names []string
	opt := &gitlab.ListTreeOptions{ListOptions: gitlab.ListOptions{PerPage: 100}, Path: gitlab.Ptr(dir)}
	for {
		nodes, r, err := cl.Repositories.ListTree(id, opt, gitlab.WithContext(ctx))
		if errors.Is(err, gitlab.ErrNotFound) {
			return nil
		}
		if err != nil {
			t.Fatalf("project %d: tree %q: %v", id, dir, err)
		}
		for _, n := range nodes {
			names = append(names, n.Name)
		}
		if r.NextPage == 0 {
			return names
		}
		opt.Page = r.NextPage
	}
}

// TestGroupListingMatchesTruth lists a group of at least 250 projects page by page
// and profiles a sample of them: everything must match the truth.
func TestGroupListingMatchesTruth(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 1, Groups: 50, Projects: 2000})
	cl := newClient(t, ts.URL, "sim-token")
	ctx := context.Background()
	tr := s.Truth()
	byID := truthByID(tr)

	var g inventory.Group
	for _, cand := range tr.Groups {
		if cand.Projects > g.Projects {
			g = cand
		}
	}
	if g.Projects < 250 {
		t.Fatalf("largest group has %d projects, want at least 250", g.Projects)
	}
	var want []int64
	for _, p := range tr.Projects {
		if p.GroupID == g.ID {
			want = append(want, p.ID)
		}
	}

	var got []int64
	opt := &gitlab.ListGroupProjectsOptions{ListOptions: gitlab.ListOptions{PerPage: 50, Page: 1}}
	pages := 0
	for {
		list, resp, err := cl.Groups.ListGroupProjects(g.ID, opt, gitlab.WithContext(ctx), withQuery("statistics", "true"))
		if err != nil {
			t.Fatalf("page %d: %v", opt.Page, err)
		}
		pages++
		if resp.TotalItems != int64(g.Projects) || resp.TotalPages != int64((g.Projects+49)/50) || resp.CurrentPage != opt.Page {
			t.Fatalf("page %d: total %d, pages %d, current %d", opt.Page, resp.TotalItems, resp.TotalPages, resp.CurrentPage)
		}
		if resp.FirstLink == "" || resp.LastLink == "" || (resp.NextPage != 0) != (resp.NextLink != "") {
			t.Fatalf("page %d: links first=%q last=%q next=%q", opt.Page, resp.FirstLink, resp.LastLink, resp.NextLink)
		}
		for _, p := range list {
			got = append(got, p.ID)
			sameJSON(t, fmt.Sprintf("listed project %d", p.ID), identity(p), onlyIdentity(byID[p.ID]))
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d projects over %d pages, want the truth's %d in id order", len(got), pages, len(want))
	}

	// Full profiles for a sample, every special one of the group included.
	for k, id := range want {
		tp := byID[id]
		special := len(tp.Counts.LowerBounds) > 0 || (tp.Features.CI != nil && tp.Features.CI.Invalid) || tp.EmptyRepo || len(tp.Features.PackageTypes) > 0
		if k%12 != 0 && !special {
			continue
		}
		p := scanProject(t, ctx, cl, id)
		if p.Features.CI != nil {
			p.Features.CI.Complexity = 0
		}
		sameJSON(t, fmt.Sprintf("project %d", id), p, tp)
	}
}

// TestTotalsCutoff: X-Total, X-Total-Pages and rel="last" disappear above 10,000 records
// and the items beyond are still served.
func TestTotalsCutoff(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 1, Groups: 20, Projects: 200})
	cl := newClient(t, ts.URL, "sim-token")
	tr := s.Truth()
	var big, small *inventory.Project
	for i := range tr.Projects {
		p := &tr.Projects[i]
		if slices.Contains(p.Counts.LowerBounds, "pipelines") && big == nil {
			big = p
		}
		if *p.Counts.Pipelines > 100 && *p.Counts.Pipelines <= maxTotal && small == nil {
			small = p
		}
	}
	if big == nil || small == nil {
		t.Fatalf("seed 1 with 200 projects: no project above (%v) or below (%v) the cut-off", big != nil, small != nil)
	}
	_, resp, err := cl.Pipelines.ListProjectPipelines(small.ID, &gitlab.ListProjectPipelinesOptions{ListOptions: gitlab.ListOptions{PerPage: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Total") != fmt.Sprint(*small.Counts.Pipelines) || resp.TotalPages != *small.Counts.Pipelines || resp.LastLink == "" {
		t.Errorf("project %d (%d pipelines): X-Total %q, pages %d, last %q", small.ID, *small.Counts.Pipelines, resp.Header.Get("X-Total"), resp.TotalPages, resp.LastLink)
	}

	_, resp, err = cl.Pipelines.ListProjectPipelines(big.ID, &gitlab.ListProjectPipelinesOptions{ListOptions: gitlab.ListOptions{PerPage: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"X-Total", "X-Total-Pages"} {
		if _, ok := resp.Header[h]; ok {
			t.Errorf("project %d above the cut-off: %s present", big.ID, h)
		}
	}
	if resp.LastLink != "" || resp.NextLink == "" || resp.NextPage != 2 {
		t.Errorf("project %d above the cut-off: last %q, next %q, next page %d", big.ID, resp.LastLink, resp.NextLink, resp.NextPage)
	}
	// Walk to the real end, past record 10,000: the lists are generated, not capped.
	n := s.in.projects[mustIndex(t, s, big.ID)].count(cPipelines)
	last := (n + 99) / 100
	items, resp, err := cl.Pipelines.ListProjectPipelines(big.ID, &gitlab.ListProjectPipelinesOptions{ListOptions: gitlab.ListOptions{PerPage: 100, Page: last}})
	if err != nil {
		t.Fatal(err)
	}
	if want := n - (last-1)*100; int64(len(items)) != want || resp.NextPage != 0 {
		t.Errorf("last page %d of %d pipelines: %d items (want %d), next page %d", last, n, len(items), want, resp.NextPage)
	}
	if len(items) > 0 && items[len(items)-1].IID != 1 {
		t.Errorf("the oldest pipeline is iid %d, want 1", items[len(items)-1].IID)
	}
}

func mustIndex(t *testing.T, s *Server, id int64) int {
	t.Helper()
	i, ok := s.in.projectIndex(id)
	if !ok {
		t.Fatalf("no project %d", id)
	}
	return i
}

// TestStateFilters lists merge requests and issues per state with client-go: the
// states match the filter and the lists add up.
func TestStateFilters(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 2, Groups: 10, Projects: 300})
	cl := newClient(t, ts.URL, "sim-token")
	var p *project
	for i := range s.in.projects {
		q := &s.in.projects[i]
		if q.count(cMRs) >= 150 && q.count(cMRs) <= 600 && q.count(cIssues) >= 50 && q.count(cIssues) <= 600 {
			p = q
			break
		}
	}
	if p == nil {
		t.Fatal("no project with 150-600 merge requests and 50-600 issues")
	}
	seen := map[int64]string{}
	for _, state := range []string{"opened", "merged", "closed"} {
		opt := &gitlab.ListProjectMergeRequestsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}, State: gitlab.Ptr(state)}
		for {
			mrs, resp, err := cl.MergeRequests.ListProjectMergeRequests(p.id, opt)
			if err != nil {
				t.Fatal(err)
			}
			for _, mr := range mrs {
				if mr.State != state || seen[mr.IID] != "" || mr.ProjectID != p.id {
					t.Fatalf("state=%s lists MR !%d in state %s (seen as %q)", state, mr.IID, mr.State, seen[mr.IID])
				}
				seen[mr.IID] = state
			}
			if resp.NextPage == 0 {
				break
			}
			opt.Page = resp.NextPage
		}
	}
	if int64(len(seen)) != p.count(cMRs) {
		t.Errorf("states list %d merge requests, want %d", len(seen), p.count(cMRs))
	}
	all, _, err := cl.MergeRequests.ListProjectMergeRequests(p.id, &gitlab.ListProjectMergeRequestsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}})
	if err != nil {
		t.Fatal(err)
	}
	for k := 1; k < len(all); k++ {
		if all[k].IID >= all[k-1].IID || all[k].CreatedAt.After(*all[k-1].CreatedAt) {
			t.Fatalf("merge requests not newest first at %d: !%d then !%d", k, all[k-1].IID, all[k].IID)
		}
	}
	open := 0
	opt := &gitlab.ListProjectIssuesOptions{ListOptions: gitlab.ListOptions{PerPage: 100}, State: gitlab.Ptr("opened")}
	for {
		issues, resp, err := cl.Issues.ListProjectIssues(p.id, opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range issues {
			if is.State != "opened" {
				t.Fatalf("state=opened lists issue #%d in state %s", is.IID, is.State)
			}
			open++
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	if int64(open) != p.count(cOpenIssues) {
		t.Errorf("%d open issues listed, want %d", open, p.count(cOpenIssues))
	}
}

func TestAuth(t *testing.T) {
	_, ts := startSim(t, Options{Seed: 1, Groups: 3, Projects: 10, Token: "s3cret"})
	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"wrong token", map[string]string{"PRIVATE-TOKEN": "nope"}, http.StatusUnauthorized},
		{"wrong bearer", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
		{"private token", map[string]string{"PRIVATE-TOKEN": "s3cret"}, http.StatusOK},
		{"bearer", map[string]string{"Authorization": "Bearer s3cret"}, http.StatusOK},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v4/projects", nil)
		for k, v := range tt.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	_, resp, err := newClient(t, ts.URL, "wrong").Version.GetVersion()
	var er *gitlab.ErrorResponse
	if !errors.As(err, &er) || resp.StatusCode != http.StatusUnauthorized || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("client-go with a wrong token: %v", err)
	}
	v, _, err := newClient(t, ts.URL, "s3cret").Version.GetVersion()
	if err != nil || v.Version != "17.5.0-ee" {
		t.Errorf("version: %+v, %v", v, err)
	}
	u, _, err := newClient(t, ts.URL, "s3cret").Users.CurrentUser()
	if err != nil || u.Username != "sim-admin" || !u.IsAdmin {
		t.Errorf("user: %+v, %v", u, err)
	}
}

// TestSameSeedSameInstance: the instance is a function of seed and size.
func TestSameSeedSameInstance(t *testing.T) {
	o := Options{Seed: 42, Groups: 30, Projects: 500}
	a, b := newTestServer(t, o), newTestServer(t, o)
	ja, _ := json.Marshal(a.Truth())
	jb, _ := json.Marshal(b.Truth())
	if string(ja) != string(jb) {
		t.Fatal("two instances from the same seed differ")
	}
	o.Seed = 43
	jc, _ := json.Marshal(newTestServer(t, o).Truth())
	if string(ja) == string(jc) {
		t.Fatal("seeds 42 and 43 give the same instance")
	}
	// Served content is deterministic too, not only the truth.
	ta, tb := httptest.NewServer(a), httptest.NewServer(b)
	defer ta.Close()
	defer tb.Close()
	p := a.Truth().Projects[17]
	for _, path := range []string{
		fmt.Sprintf("/api/v4/projects/%d?statistics=true", p.ID),
		fmt.Sprintf("/api/v4/projects/%d/merge_requests?per_page=5", p.ID),
		fmt.Sprintf("/api/v4/projects/%d/repository/tree?recursive=true", p.ID),
	} {
		if x, y := get(t, ta.URL+path, "sim-token"), get(t, tb.URL+path, "sim-token"); x != y {
			t.Errorf("%s differs between two instances of one seed", path)
		}
	}
}

func get(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("PRIVATE-TOKEN", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(resp.StatusCode, " ", string(b))
}

// TestKeysetPagination walks /projects and /groups with keyset pagination, following
// the Link header as client-go does.
func TestKeysetPagination(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 1, Groups: 40, Projects: 750})
	cl := newClient(t, ts.URL, "sim-token")
	tr := s.Truth()
	for _, sort := range []string{"asc", "desc"} {
		var got []int64
		opt := &gitlab.ListProjectsOptions{ListOptions: gitlab.ListOptions{Pagination: "keyset", OrderBy: "id", Sort: sort, PerPage: 100}}
		opts := []gitlab.RequestOptionFunc{}
		for {
			list, resp, err := cl.Projects.ListProjects(opt, opts...)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range list {
				got = append(got, p.ID)
			}
			if resp.NextLink == "" {
				break
			}
			if resp.Header.Get("X-Total") != "" {
				t.Fatal("keyset pages carry X-Total")
			}
			opts = []gitlab.RequestOptionFunc{gitlab.WithKeysetPaginationParameters(resp.NextLink)}
		}
		want := make([]int64, len(tr.Projects))
		for i, p := range tr.Projects {
			want[i] = p.ID
		}
		if sort == "desc" {
			slices.Reverse(want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("keyset %s: %d projects, want %d in order", sort, len(got), len(want))
		}
	}
	var got []int64
	opt := &gitlab.ListGroupsOptions{ListOptions: gitlab.ListOptions{Pagination: "keyset", OrderBy: "id", Sort: "asc", PerPage: 7}}
	opts := []gitlab.RequestOptionFunc{}
	for {
		list, resp, err := cl.Groups.ListGroups(opt, opts...)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range list {
			got = append(got, g.ID)
		}
		if resp.NextLink == "" {
			break
		}
		opts = []gitlab.RequestOptionFunc{gitlab.WithKeysetPaginationParameters(resp.NextLink)}
	}
	if len(got) != len(tr.Groups) || !slices.IsSorted(got) {
		t.Errorf("keyset groups: %d, want %d ascending", len(got), len(tr.Groups))
	}
	// Offset pagination on /projects stops at 50,000 records, as GitLab does.
	_, resp, err := cl.Projects.ListProjects(&gitlab.ListProjectsOptions{ListOptions: gitlab.ListOptions{Page: 501, PerPage: 100}})
	if resp == nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("offset 50,000 on /projects: %v", err)
	}
}

// TestGroupsTree checks group lookups by id and full path, subgroups and descendants.
func TestGroupsTree(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 9, Groups: 60, Projects: 400})
	cl := newClient(t, ts.URL, "sim-token")
	tr := s.Truth()
	children := map[int64][]int64{}
	var roots []int64
	for _, g := range tr.Groups {
		if g.ParentID == 0 {
			roots = append(roots, g.ID)
		} else {
			children[g.ParentID] = append(children[g.ParentID], g.ID)
		}
	}
	top, resp, err := cl.Groups.ListGroups(&gitlab.ListGroupsOptions{TopLevelOnly: gitlab.Ptr(true), ListOptions: gitlab.ListOptions{PerPage: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.TotalItems != int64(len(roots)) || len(top) != len(roots) {
		t.Fatalf("top_level_only: %d groups (X-Total %d), want %d", len(top), resp.TotalItems, len(roots))
	}
	all, resp, err := cl.Groups.ListGroups(&gitlab.ListGroupsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}, OrderBy: gitlab.Ptr("id")})
	if err != nil || resp.TotalItems != int64(len(tr.Groups)) || !slices.IsSortedFunc(all, func(a, b *gitlab.Group) int { return int(a.ID - b.ID) }) {
		t.Fatalf("all groups by id: %d (X-Total %d), err %v", len(all), resp.TotalItems, err)
	}
	maxDepthSeen, empty := 0, 0
	for _, g := range tr.Groups {
		maxDepthSeen = max(maxDepthSeen, strings.Count(g.FullPath, "/"))
		if g.Projects == 0 && g.Subgroups == 0 {
			empty++
		}
		byPath, _, err := cl.Groups.GetGroup(g.FullPath, nil)
		if err != nil || byPath.ID != g.ID || byPath.ParentID != g.ParentID || byPath.FullPath != g.FullPath {
			t.Fatalf("group %s by path: %+v, %v", g.FullPath, byPath, err)
		}
		subs, _, err := cl.Groups.ListSubGroups(g.ID, &gitlab.ListSubGroupsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}})
		if err != nil || len(subs) != g.Subgroups || len(subs) != len(children[g.ID]) {
			t.Fatalf("group %d: %d subgroups listed, truth %d, err %v", g.ID, len(subs), g.Subgroups, err)
		}
		for _, sg := range subs {
			if sg.ParentID != g.ID {
				t.Fatalf("group %d lists subgroup %d of parent %d", g.ID, sg.ID, sg.ParentID)
			}
		}
	}
	if maxDepthSeen > maxDepth || maxDepthSeen < 2 || empty == 0 {
		t.Errorf("deepest subgroup at depth %d, %d empty groups; want 2..%d and some empty", maxDepthSeen, empty, maxDepth)
	}
	for _, root := range roots {
		desc, _, err := cl.Groups.ListDescendantGroups(root, &gitlab.ListDescendantGroupsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		var count func(id int64)
		count = func(id int64) {
			for _, c := range children[id] {
				want++
				count(c)
			}
		}
		count(root)
		if len(desc) != want {
			t.Errorf("root %d: %d descendants listed, want %d", root, len(desc), want)
		}
		// include_subgroups lists the projects of the whole subtree.
		_, resp, err := cl.Groups.ListGroupProjects(root, &gitlab.ListGroupProjectsOptions{IncludeSubGroups: gitlab.Ptr(true), ListOptions: gitlab.ListOptions{PerPage: 1}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range tr.Projects {
			if p.GroupFullPath == s.in.groups[mustGroup(t, s, root)].fullPath || strings.HasPrefix(p.GroupFullPath, s.in.groups[mustGroup(t, s, root)].fullPath+"/") {
				n++
			}
		}
		if resp.TotalItems != int64(n) {
			t.Errorf("root %d include_subgroups: X-Total %d, want %d", root, resp.TotalItems, n)
		}
	}
	p := tr.Projects[len(tr.Projects)/2]
	byPath, _, err := cl.Projects.GetProject(p.PathWithNamespace, nil)
	if err != nil || byPath.ID != p.ID {
		t.Errorf("project %s by path: %v", p.PathWithNamespace, err)
	}
	if _, resp, err := cl.Groups.GetGroup("no/such/group", nil); resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing group: %v", err)
	}
}

func mustGroup(t *testing.T, s *Server, id int64) int {
	t.Helper()
	i, ok := s.in.groupIndex(id)
	if !ok {
		t.Fatalf("no group %d", id)
	}
	return i
}

// TestDisabledFeaturesAndEmptyRepos: a disabled feature's list answers 403; an empty
// repository has no tree and no files.
func TestDisabledFeaturesAndEmptyRepos(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 1, Groups: 20, Projects: 400})
	cl := newClient(t, ts.URL, "sim-token")
	checked := map[string]bool{}
	status := func(resp *gitlab.Response) int {
		if resp == nil {
			return 0
		}
		return resp.StatusCode
	}
	for i := range s.in.projects {
		p := &s.in.projects[i]
		if !p.has(fIssues) && !checked["issues"] {
			_, resp, _ := cl.Issues.ListProjectIssues(p.id, nil)
			if status(resp) != http.StatusForbidden {
				t.Errorf("project %d with issues disabled: issues answer %d", p.id, status(resp))
			}
			checked["issues"] = true
		}
		if !p.has(fJobs) && !checked["pipelines"] {
			_, resp, _ := cl.Pipelines.ListProjectPipelines(p.id, nil)
			if status(resp) != http.StatusForbidden {
				t.Errorf("project %d with jobs disabled: pipelines answer %d", p.id, status(resp))
			}
			checked["pipelines"] = true
		}
		if !p.has(fRegistry) && !checked["registry"] {
			_, resp, _ := cl.ContainerRegistry.ListProjectRegistryRepositories(p.id, nil)
			if status(resp) != http.StatusForbidden {
				t.Errorf("project %d with the registry disabled: registry answers %d", p.id, status(resp))
			}
			checked["registry"] = true
		}
		if p.has(fEmpty) && !checked["empty"] {
			_, resp, _ := cl.Repositories.ListTree(p.id, nil)
			_, fresp, _ := cl.RepositoryFiles.GetRawFile(p.id, "README.md", nil)
			branches, bresp, err := cl.Branches.ListBranches(p.id, nil)
			if status(resp) != http.StatusNotFound || status(fresp) != http.StatusNotFound || err != nil || len(branches) != 0 || bresp.TotalItems != 0 {
				t.Errorf("empty project %d: tree %d, file %d, branches %d (%v)", p.id, status(resp), status(fresp), len(branches), err)
			}
			gp, _, err := cl.Projects.GetProject(p.id, nil)
			if err != nil || !gp.EmptyRepo || gp.DefaultBranch != "" {
				t.Errorf("empty project %d: %+v, %v", p.id, gp, err)
			}
			checked["empty"] = true
		}
	}
	if len(checked) != 4 {
		t.Errorf("checked only %v", checked)
	}
}
