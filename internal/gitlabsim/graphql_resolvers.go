package gitlabsim

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	graphql "github.com/graph-gophers/graphql-go"
)

// The resolvers read the same model the REST API serves, through the same
// functions (projectJSON, statisticsJSON, files, counts), so that a GraphQL scan
// and a REST scan of one instance agree. Authorization follows GitLab's GraphQL
// (docs.gitlab.com/development/graphql_guide/authorization): a project or a
// connection the token may not read resolves to null, with no error; a feature
// that is off gives an empty connection. The simulator's project faults map onto
// that: a project answering 403 or 404 on projects/:id is null, and a connection
// whose REST endpoint answers 403 (or 404 for a deleted project) is null.

type gqlQuery struct{ s *Server }

func (q *gqlQuery) Group(args struct{ FullPath graphql.ID }) *gqlGroup {
	ref := string(args.FullPath)
	if isNumeric(ref) {
		return nil // fullPath is a path; the REST lookup would take an id
	}
	gi, ok := q.s.in.lookupGroup(ref)
	if !ok {
		return nil
	}
	return &gqlGroup{s: q.s, g: &q.s.in.groups[gi]}
}

func (q *gqlQuery) Project(ctx context.Context, args struct{ FullPath graphql.ID }) *gqlProject {
	ref := string(args.FullPath)
	if !strings.Contains(ref, "/") {
		return nil
	}
	pi, ok := q.s.in.lookupProject(ref)
	if !ok {
		return nil
	}
	return q.s.readableProject(ctx, pi)
}

// readableProject is the project as GraphQL gives it by path or id: null when its
// REST detail would answer 403 or 404.
func (s *Server) readableProject(ctx context.Context, pi int) *gqlProject {
	p := &s.in.projects[pi]
	st := stateOf(ctx)
	if s.projectDeleted(st.fs, p.id) || s.projectForbidden(st.fs, p.id, clsProject) {
		st.faulted.Store(true)
		return nil
	}
	return &gqlProject{s: s, p: p}
}

type projectsArgs struct {
	IDs                      *[]graphql.ID
	FullPaths                *[]string
	Search                   *string
	Sort                     *string
	WithIssuesEnabled        *bool
	WithMergeRequestsEnabled *bool
	pageArgs
}

func (q *gqlQuery) Projects(ctx context.Context, args projectsArgs) (*conn[gqlProject], error) {
	s := q.s
	var idx []int32
	switch {
	case args.FullPaths != nil:
		if len(*args.FullPaths) > graphQLMaxFullPaths {
			return nil, fmt.Errorf("You cannot provide more than %d full_paths", graphQLMaxFullPaths) //nolint:staticcheck // GitLab's wording
		}
		for _, fp := range *args.FullPaths {
			if pi, ok := s.in.lookupProject(fp); ok && strings.Contains(fp, "/") {
				idx = append(idx, int32(pi))
			}
		}
	case args.IDs != nil:
		for _, id := range *args.IDs {
			n, err := parseGID(string(id), "Project")
			if err != nil {
				return nil, err
			}
			if pi, ok := s.in.projectIndex(n); ok {
				idx = append(idx, int32(pi))
			}
		}
	default:
		idx = s.allProjects
	}
	if args.IDs != nil && args.FullPaths != nil {
		keep := map[int32]bool{}
		for _, id := range *args.IDs {
			if n, err := parseGID(string(id), "Project"); err == nil {
				if pi, ok := s.in.projectIndex(n); ok {
					keep[int32(pi)] = true
				}
			}
		}
		idx = slices.DeleteFunc(slices.Clone(idx), func(i int32) bool { return !keep[i] })
	}
	fs := stateOf(ctx).fs
	idx = s.filterProjects(idx, projectFilter{
		search: args.Search, issues: args.WithIssuesEnabled, mrs: args.WithMergeRequestsEnabled,
		archived: true, readable: fs,
	})
	slices.Sort(idx)
	idx = slices.Compact(idx)
	if args.Sort == nil || *args.Sort != "id_asc" {
		slices.Reverse(idx) // GitLab's default: id_desc
	}
	return s.projectConn(idx, args.pageArgs)
}

// parseGID reads gid://gitlab/<model>/<id> as GitlabSchema.parse_gid does.
func parseGID(g, model string) (int64, error) {
	rest, ok := strings.CutPrefix(g, "gid://gitlab/")
	m, id, ok2 := strings.Cut(rest, "/")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || !ok2 || err != nil {
		return 0, fmt.Errorf("%s is not a valid GitLab ID.", g) //nolint:staticcheck // GitLab's wording
	}
	if m != model {
		return 0, fmt.Errorf("%s is not a valid ID for %s.", g, model) //nolint:staticcheck // GitLab's wording
	}
	return n, nil
}

type projectFilter struct {
	search      *string
	issues, mrs *bool
	archived    bool        // include archived projects
	readable    *faultState // drop the projects whose detail answers 403 or 404; nil keeps them
}

func (s *Server) filterProjects(idx []int32, f projectFilter) []int32 {
	search := ""
	if f.search != nil {
		search = strings.ToLower(*f.search)
	}
	if search == "" && f.issues == nil && f.mrs == nil && f.archived && f.readable == nil {
		return idx
	}
	out := make([]int32, 0, len(idx))
	for _, i := range idx {
		p := &s.in.projects[i]
		switch {
		case search != "" && !strings.Contains(strings.ToLower(p.name), search) && !strings.Contains(p.path, search):
		case f.issues != nil && *f.issues && !p.has(fIssues):
		case f.mrs != nil && *f.mrs && !p.has(fMRs):
		case !f.archived && p.has(fArchived):
		case f.readable != nil && (s.projectDeleted(f.readable, p.id) || s.projectForbidden(f.readable, p.id, clsProject)):
		default:
			out = append(out, i)
		}
	}
	return out
}

func (s *Server) projectConn(idx []int32, a pageArgs) (*conn[gqlProject], error) {
	return newConn(len(idx), a, func(k int) *gqlProject { return &gqlProject{s: s, p: &s.in.projects[idx[k]]} })
}

type gqlUser struct{ s *Server }

func (q *gqlQuery) CurrentUser() *gqlUser  { return &gqlUser{s: q.s} }
func (u *gqlUser) ID() graphql.ID          { return gid("User", 1) }
func (u *gqlUser) Username() string        { return "sim-admin" }
func (u *gqlUser) Name() string            { return "Simulator Admin" }
func (u *gqlUser) WebURL() string          { return u.s.in.externalURL + "/sim-admin" }
func (q *gqlQuery) Metadata() *gqlMetadata { return &gqlMetadata{} }
func (q *gqlQuery) QueryComplexity(ctx context.Context) *gqlComplexity {
	st := stateOf(ctx)
	return &gqlComplexity{score: int32(st.score), limit: int32(st.limit)}
}

type gqlComplexity struct{ score, limit int32 }

func (c *gqlComplexity) Score() *int32 { return &c.score }
func (c *gqlComplexity) Limit() *int32 { return &c.limit }

type gqlMetadata struct{}

func (gqlMetadata) Version() string  { return versionBody["version"].(string) }
func (gqlMetadata) Revision() string { return versionBody["revision"].(string) }
func (gqlMetadata) Enterprise() bool { return versionBody["enterprise"].(bool) }

// --- groups and namespaces ---

type gqlGroup struct {
	s *Server
	g *group
}

func (g *gqlGroup) ID() graphql.ID       { return gid("Group", g.g.id) }
func (g *gqlGroup) FullPath() graphql.ID { return graphql.ID(g.g.fullPath) }
func (g *gqlGroup) FullName() string     { return g.s.fullName(g.g) }
func (g *gqlGroup) Name() string         { return g.g.name }
func (g *gqlGroup) Path() string         { return g.g.path }
func (g *gqlGroup) Visibility() *string  { v := visNames[g.g.vis]; return &v }
func (g *gqlGroup) WebURL() string       { return g.s.in.externalURL + "/groups/" + g.g.fullPath }
func (g *gqlGroup) CreatedAt() *graphql.Time {
	return &graphql.Time{Time: time.Unix(g.g.created, 0).UTC()}
}
func (g *gqlGroup) DescendantGroupsCount() int32 { return int32(len(g.g.children)) }
func (g *gqlGroup) ProjectsCount() int32         { return int32(len(g.g.projects)) }

func (g *gqlGroup) Parent() *gqlGroup {
	if g.g.parent < 0 {
		return nil
	}
	return &gqlGroup{s: g.s, g: &g.s.in.groups[g.g.parent]}
}

type groupProjectsArgs struct {
	IncludeSubgroups         bool
	IncludeArchived          bool
	NotAimedForDeletion      bool // the simulator marks nothing for deletion: every project qualifies
	Search                   *string
	IDs                      *[]graphql.ID
	WithIssuesEnabled        *bool
	WithMergeRequestsEnabled *bool
	pageArgs
}

// Projects lists the group's projects in ascending id, as the REST listing does;
// like it, it lists projects whose detail would answer 403 or 404.
func (g *gqlGroup) Projects(args groupProjectsArgs) (*conn[gqlProject], error) {
	idx := g.g.projects
	if args.IncludeSubgroups {
		idx = g.g.subtree
	}
	return g.s.listNamespaceProjects(idx, args)
}

func (s *Server) listNamespaceProjects(idx []int32, args groupProjectsArgs) (*conn[gqlProject], error) {
	if args.IDs != nil {
		keep := map[int64]bool{}
		for _, id := range *args.IDs {
			n, err := parseGID(string(id), "Project")
			if err != nil {
				return nil, err
			}
			keep[n] = true
		}
		idx = slices.DeleteFunc(slices.Clone(idx), func(i int32) bool { return !keep[s.in.projects[i].id] })
	}
	idx = s.filterProjects(idx, projectFilter{
		search: args.Search, issues: args.WithIssuesEnabled, mrs: args.WithMergeRequestsEnabled, archived: args.IncludeArchived,
	})
	return s.projectConn(idx, args.pageArgs)
}

type descendantArgs struct {
	IncludeParentDescendants bool
	Search                   *string
	pageArgs
}

func (g *gqlGroup) DescendantGroups(args descendantArgs) (*conn[gqlGroup], error) {
	idx := g.g.descendants
	if !args.IncludeParentDescendants {
		idx = g.g.children
	}
	if args.Search != nil && *args.Search != "" {
		q := strings.ToLower(*args.Search)
		idx = slices.DeleteFunc(slices.Clone(idx), func(i int32) bool {
			gr := &g.s.in.groups[i]
			return !strings.Contains(strings.ToLower(gr.name), q) && !strings.Contains(gr.path, q)
		})
	}
	return newConn(len(idx), args.pageArgs, func(k int) *gqlGroup { return &gqlGroup{s: g.s, g: &g.s.in.groups[idx[k]]} })
}

// gqlNamespace is a namespace: a group's, or a user's holding personal projects.
type gqlNamespace struct {
	s                              *Server
	group                          *gqlGroup // nil for a user namespace
	user                           *user
	id                             graphql.ID
	fullPath, fullName, name, path string
	vis                            *string
}

func (q *gqlQuery) Namespace(args struct{ FullPath graphql.ID }) *gqlNamespace {
	ref := string(args.FullPath)
	if isNumeric(ref) {
		return nil
	}
	if g := q.Group(args); g != nil {
		return g.namespace()
	}
	if ui, ok := q.s.in.lookupUser(ref); ok {
		return q.s.userNamespace(&q.s.in.users[ui])
	}
	return nil
}

func (s *Server) userNamespace(u *user) *gqlNamespace {
	return &gqlNamespace{s: s, user: u, id: gid("Namespaces::UserNamespace", u.id), fullPath: u.username, fullName: u.name, name: u.name, path: u.username}
}

func (g *gqlGroup) namespace() *gqlNamespace {
	return &gqlNamespace{s: g.s, group: g, id: g.ID(), fullPath: g.g.fullPath, fullName: g.FullName(), name: g.g.name, path: g.g.path, vis: g.Visibility()}
}

func (s *Server) namespaceOf(p *project) *gqlNamespace {
	if p.owner >= 0 {
		return s.userNamespace(&s.in.users[p.owner])
	}
	return (&gqlGroup{s: s, g: &s.in.groups[p.group]}).namespace()
}

func (n *gqlNamespace) ID() graphql.ID       { return n.id }
func (n *gqlNamespace) FullPath() graphql.ID { return graphql.ID(n.fullPath) }
func (n *gqlNamespace) FullName() string     { return n.fullName }
func (n *gqlNamespace) Name() string         { return n.name }
func (n *gqlNamespace) Path() string         { return n.path }
func (n *gqlNamespace) Visibility() *string  { return n.vis }

// Projects are a group's projects, or a user's personal projects (as GET
// /users/:id/projects lists them), in ascending id.
func (n *gqlNamespace) Projects(args groupProjectsArgs) (*conn[gqlProject], error) {
	if n.group != nil {
		return n.group.Projects(args)
	}
	return n.s.listNamespaceProjects(n.user.projects, args)
}
