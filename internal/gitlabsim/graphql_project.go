package gitlabsim

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	graphql "github.com/graph-gophers/graphql-go"
)

// gqlProject answers from the project's REST entity, so both APIs say the same.
type gqlProject struct {
	s   *Server
	p   *project
	api *apiProject
}

func (r *gqlProject) rest() *apiProject {
	if r.api == nil {
		a := r.s.projectJSON(r.p, false, false)
		r.api = &a
	}
	return r.api
}

// denied reports whether the project's REST endpoint of class c answers 403, or
// 404 for a deleted project: GraphQL then gives null for what it serves.
func (r *gqlProject) denied(ctx context.Context, c class) bool {
	st := stateOf(ctx)
	if r.s.projectDeleted(st.fs, r.p.id) || r.s.projectForbidden(st.fs, r.p.id, c) {
		st.faulted.Store(true)
		return true
	}
	return false
}

func gqlTime(t time.Time) *graphql.Time { return &graphql.Time{Time: t} }

func (r *gqlProject) ID() graphql.ID            { return gid("Project", r.p.id) }
func (r *gqlProject) FullPath() graphql.ID      { return graphql.ID(r.rest().PathWithNamespace) }
func (r *gqlProject) Name() string              { return r.p.name }
func (r *gqlProject) NameWithNamespace() string { return r.rest().NameWithNamespace }
func (r *gqlProject) Path() string              { return r.p.path }
func (r *gqlProject) Description() *string      { d := r.rest().Description; return &d }
func (r *gqlProject) Topics() *[]string         { t := slices.Clone(r.rest().Topics); return &t }
func (r *gqlProject) Visibility() *string       { v := r.rest().Visibility; return &v }
func (r *gqlProject) Archived() *bool           { v := r.rest().Archived; return &v }
func (r *gqlProject) CreatedAt() *graphql.Time  { return gqlTime(r.rest().CreatedAt) }
func (r *gqlProject) UpdatedAt() *graphql.Time  { return gqlTime(r.rest().UpdatedAt) }
func (r *gqlProject) LastActivityAt() *graphql.Time {
	return gqlTime(r.rest().LastActivityAt)
}
func (r *gqlProject) WebURL() *string          { v := r.rest().WebURL; return &v }
func (r *gqlProject) HTTPURLToRepo() *string   { v := r.rest().HTTPURLToRepo; return &v }
func (r *gqlProject) SSHURLToRepo() *string    { v := r.rest().SSHURLToRepo; return &v }
func (r *gqlProject) Namespace() *gqlNamespace { return r.s.namespaceOf(r.p) }
func (r *gqlProject) ImportStatus() *string    { v := r.rest().ImportStatus; return &v }
func (r *gqlProject) IsForked() bool           { return r.p.forkOf >= 0 }
func (r *gqlProject) ForksCount() int32        { return int32(r.rest().ForksCount) }
func (r *gqlProject) StarCount() int32         { return int32(r.rest().StarCount) }

func (r *gqlProject) Group() *gqlGroup {
	if r.p.group < 0 {
		return nil
	}
	return &gqlGroup{s: r.s, g: &r.s.in.groups[r.p.group]}
}

// CiConfigPathOrDefault is ci_config_path, or .gitlab-ci.yml when it is empty.
func (r *gqlProject) CiConfigPathOrDefault() string {
	if cp := r.rest().CIConfigPath; cp != "" {
		return cp
	}
	return ".gitlab-ci.yml"
}

func boolPtr(b bool) *bool { return &b }

func (r *gqlProject) IssuesEnabled() *bool        { return boolPtr(r.rest().IssuesEnabled) }
func (r *gqlProject) MergeRequestsEnabled() *bool { return boolPtr(r.rest().MergeRequestsEnabled) }
func (r *gqlProject) WikiEnabled() *bool          { return boolPtr(r.rest().WikiEnabled) }
func (r *gqlProject) SnippetsEnabled() *bool      { return boolPtr(r.rest().SnippetsEnabled) }
func (r *gqlProject) ContainerRegistryEnabled() *bool {
	return boolPtr(r.rest().ContainerRegistryEnabled)
}
func (r *gqlProject) JobsEnabled() *bool          { return boolPtr(r.rest().JobsEnabled) }
func (r *gqlProject) LfsEnabled() *bool           { return boolPtr(r.rest().LFSEnabled) }
func (r *gqlProject) SharedRunnersEnabled() *bool { return boolPtr(r.rest().SharedRunnersEnabled) }

// OpenIssuesCount is null when issues are off, as GitLab's resolver checks the feature.
func (r *gqlProject) OpenIssuesCount() *int32 {
	if !r.p.has(fIssues) {
		return nil
	}
	n := int32(r.p.count(cOpenIssues))
	return &n
}

func (r *gqlProject) OpenMergeRequestsCount() *int32 {
	if !r.p.has(fMRs) {
		return nil
	}
	n := int32(r.p.count(cOpenMRs))
	return &n
}

// ContainerRepositoriesCount is not authorised in GitLab (a count of the project's
// repositories), so no fault nulls it.
func (r *gqlProject) ContainerRepositoriesCount() int32 { return int32(r.p.count(cRegistryRepos)) }

type gqlStatistics struct{ st *apiStatistics }

// Statistics are what GET /projects/:id?statistics=true reports; sizes are Float in
// GitLab's schema.
func (r *gqlProject) Statistics() *gqlStatistics { return &gqlStatistics{st: statisticsJSON(r.p)} }

func f64(v int64) float64                                { return float64(v) }
func f64p(v int64) *float64                              { x := float64(v); return &x }
func (s *gqlStatistics) BuildArtifactsSize() float64     { return f64(s.st.JobArtifactsSize) }
func (s *gqlStatistics) CommitCount() float64            { return f64(s.st.CommitCount) }
func (s *gqlStatistics) ContainerRegistrySize() *float64 { return f64p(s.st.ContainerRegistrySize) }
func (s *gqlStatistics) LfsObjectsSize() float64         { return f64(s.st.LFSObjectsSize) }
func (s *gqlStatistics) PackagesSize() float64           { return f64(s.st.PackagesSize) }
func (s *gqlStatistics) PipelineArtifactsSize() *float64 { return f64p(s.st.PipelineArtifactsSize) }
func (s *gqlStatistics) RepositorySize() float64         { return f64(s.st.RepositorySize) }
func (s *gqlStatistics) SnippetsSize() *float64          { return f64p(s.st.SnippetsSize) }
func (s *gqlStatistics) StorageSize() float64            { return f64(s.st.StorageSize) }
func (s *gqlStatistics) UploadsSize() *float64           { return f64p(s.st.UploadsSize) }
func (s *gqlStatistics) WikiSize() *float64              { return f64p(s.st.WikiSize) }

// --- merge requests, issues, pipelines, releases, packages ---

type mrArgs struct {
	State *string
	IIDs  *[]string
	pageArgs
}

// iidFilter keeps the iids of 1..n asked for, in the list's order.
func iidFilter(list []int64, iids *[]string) []int64 {
	if iids == nil {
		return list
	}
	want := map[int64]bool{}
	for _, s := range *iids {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			want[n] = true
		}
	}
	return slices.DeleteFunc(list, func(i int64) bool { return !want[i] })
}

func (r *gqlProject) MergeRequests(ctx context.Context, args mrArgs) (*conn[gqlMR], error) {
	if r.denied(ctx, clsMergeRequests) {
		return nil, nil
	}
	state := "all"
	if args.State != nil {
		state = *args.State
	}
	p, in := r.p, r.s.in
	total := mrTotal(p, state)
	if args.IIDs != nil {
		var list []int64
		for pos := range total {
			list = append(list, mrIID(p, state, pos, false))
		}
		list = iidFilter(list, args.IIDs)
		return newConn(len(list), args.pageArgs, func(k int) *gqlMR { return &gqlMR{in.mergeRequest(p, list[k])} })
	}
	return newConn(int(total), args.pageArgs, func(k int) *gqlMR { return &gqlMR{in.mergeRequest(p, mrIID(p, state, int64(k), false))} })
}

type gqlMR struct{ m apiMergeRequest }

func (m *gqlMR) ID() graphql.ID          { return gid("MergeRequest", m.m.ID) }
func (m *gqlMR) IID() string             { return strconv.FormatInt(m.m.IID, 10) }
func (m *gqlMR) Title() string           { return m.m.Title }
func (m *gqlMR) State() string           { return m.m.State }
func (m *gqlMR) CreatedAt() graphql.Time { return graphql.Time{Time: m.m.CreatedAt} }
func (m *gqlMR) UpdatedAt() graphql.Time { return graphql.Time{Time: m.m.UpdatedAt} }

type issueArgs struct {
	State *string
	IIDs  *[]string
	pageArgs
}

func (r *gqlProject) Issues(ctx context.Context, args issueArgs) (*conn[gqlIssue], error) {
	if r.denied(ctx, clsIssues) {
		return nil, nil
	}
	state := "all"
	if args.State != nil {
		state = *args.State
	}
	p, in := r.p, r.s.in
	total := issueTotal(p, state) // "locked" issues: none in the simulator
	if args.IIDs != nil {
		var list []int64
		for pos := range total {
			list = append(list, issueIID(p, state, pos, false))
		}
		list = iidFilter(list, args.IIDs)
		return newConn(len(list), args.pageArgs, func(k int) *gqlIssue { return &gqlIssue{in.issue(p, list[k])} })
	}
	return newConn(int(total), args.pageArgs, func(k int) *gqlIssue { return &gqlIssue{in.issue(p, issueIID(p, state, int64(k), false))} })
}

type gqlIssue struct{ i apiIssue }

func (i *gqlIssue) ID() graphql.ID          { return gid("Issue", i.i.ID) }
func (i *gqlIssue) IID() string             { return strconv.FormatInt(i.i.IID, 10) }
func (i *gqlIssue) Title() string           { return i.i.Title }
func (i *gqlIssue) State() string           { return i.i.State }
func (i *gqlIssue) CreatedAt() graphql.Time { return graphql.Time{Time: i.i.CreatedAt} }
func (i *gqlIssue) UpdatedAt() graphql.Time { return graphql.Time{Time: i.i.UpdatedAt} }

func (r *gqlProject) Pipelines(ctx context.Context, args pageArgs) (*conn[gqlPipeline], error) {
	if r.denied(ctx, clsPipelines) {
		return nil, nil
	}
	p, in, n := r.p, r.s.in, r.p.count(cPipelines)
	return newConn(int(n), args, func(k int) *gqlPipeline { return &gqlPipeline{in.pipeline(p, n-int64(k))} })
}

type gqlPipeline struct{ p apiPipeline }

func (p *gqlPipeline) ID() graphql.ID          { return gid("Ci::Pipeline", p.p.ID) }
func (p *gqlPipeline) IID() string             { return strconv.FormatInt(p.p.IID, 10) }
func (p *gqlPipeline) Status() string          { return strings.ToUpper(p.p.Status) }
func (p *gqlPipeline) Ref() *string            { return &p.p.Ref }
func (p *gqlPipeline) Sha() *string            { return &p.p.SHA }
func (p *gqlPipeline) CreatedAt() graphql.Time { return graphql.Time{Time: p.p.CreatedAt} }

func (r *gqlProject) Releases(ctx context.Context, args pageArgs) (*conn[gqlRelease], error) {
	if r.denied(ctx, clsReleases) {
		return nil, nil
	}
	p, in := r.p, r.s.in
	return newConn(int(p.count(cReleases)), args, func(k int) *gqlRelease { return &gqlRelease{in.release(p, int64(k))} })
}

type gqlRelease struct{ r apiRelease }

func (r *gqlRelease) TagName() *string          { return &r.r.TagName }
func (r *gqlRelease) Name() *string             { return &r.r.Name }
func (r *gqlRelease) CreatedAt() *graphql.Time  { return gqlTime(r.r.CreatedAt) }
func (r *gqlRelease) ReleasedAt() *graphql.Time { return gqlTime(r.r.ReleasedAt) }

type packageArgs struct {
	PackageType *string
	pageArgs
}

func (r *gqlProject) Packages(ctx context.Context, args packageArgs) (*conn[gqlPackage], error) {
	if r.denied(ctx, clsPackages) {
		return nil, nil
	}
	p, in, n := r.p, r.s.in, r.p.count(cPackages)
	if args.PackageType == nil || n == 0 {
		return newConn(int(n), args.pageArgs, func(k int) *gqlPackage { return &gqlPackage{in.pkg(p, int64(k))} })
	}
	// Package k has type k mod len(types), as in the REST listing.
	types := p.packageTypeList()
	ti, L := int64(slices.Index(types, strings.ToLower(*args.PackageType))), int64(len(types))
	total := int64(0)
	if ti >= 0 && ti < n {
		total = (n - ti + L - 1) / L
	}
	return newConn(int(total), args.pageArgs, func(k int) *gqlPackage { return &gqlPackage{in.pkg(p, ti+int64(k)*L)} })
}

type gqlPackage struct{ p apiPackage }

func (p *gqlPackage) ID() graphql.ID          { return gid("Packages::Package", p.p.ID) }
func (p *gqlPackage) Name() string            { return p.p.Name }
func (p *gqlPackage) Version() *string        { return &p.p.Version }
func (p *gqlPackage) PackageType() string     { return strings.ToUpper(p.p.PackageType) }
func (p *gqlPackage) CreatedAt() graphql.Time { return graphql.Time{Time: p.p.CreatedAt} }

// --- CI/CD variables ---

// ciVariablesLimit is GitLab's default plan limit of a project's CI/CD variables
// (plan_limits.project_ci_variables).
const ciVariablesLimit = 8000

// ciVariableConn is GitLab's CiProjectVariableConnection: a plain connection, its
// limit but no count.
type ciVariableConn struct {
	*conn[gqlVariable]
}

func (c ciVariableConn) Limit() int32 { return ciVariablesLimit }

// CiVariables is null without permission: GitLab authorizes the field
// (admin_cicd_variables, Maintainer), as REST's variables endpoint, which answers 403.
func (r *gqlProject) CiVariables(ctx context.Context, args pageArgs) (*ciVariableConn, error) {
	if r.denied(ctx, clsVariables) {
		return nil, nil
	}
	p, in := r.p, r.s.in
	c, err := newConn(int(p.count(cVariables)), args, func(k int) *gqlVariable {
		return &gqlVariable{id: p.id*100_000 + int64(k) + 1, v: in.variable(p, int64(k))}
	})
	if err != nil {
		return nil, err
	}
	return &ciVariableConn{c}, nil
}

type gqlVariable struct {
	id int64
	v  apiVariable
}

func (v *gqlVariable) ID() graphql.ID            { return gid("Ci::Variable", v.id) }
func (v *gqlVariable) Key() *string              { return &v.v.Key }
func (v *gqlVariable) VariableType() *string     { t := strings.ToUpper(v.v.VariableType); return &t }
func (v *gqlVariable) EnvironmentScope() *string { return &v.v.EnvironmentScope }
func (v *gqlVariable) Protected() *bool          { return boolPtr(v.v.Protected) }
func (v *gqlVariable) Masked() *bool             { return boolPtr(v.v.Masked) }
func (v *gqlVariable) Raw() *bool                { return boolPtr(v.v.Raw) }

// Value is null for a hidden variable, as REST gives it.
func (v *gqlVariable) Value() *string {
	if v.v.Hidden {
		return nil
	}
	return &v.v.Value
}
