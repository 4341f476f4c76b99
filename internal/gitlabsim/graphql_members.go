package gitlabsim

import (
	"context"
	"errors"
	"slices"
	"strings"

	graphql "github.com/graph-gophers/graphql-go"
)

// errNotAvailable is GitLab's answer to a resolver that authorizes its object and
// is refused (Gitlab::Graphql::Errors::ResourceNotAvailable): the field is null and
// the error names its path.
var errNotAvailable = errors.New("The resource that you are attempting to access does not exist or you don't have permission to perform this action") //nolint:staticcheck // GitLab's wording

type memberArgs struct {
	Search    *string
	Relations []string // GraphQL applies the default, DIRECT and INHERITED
	pageArgs
}

// ProjectMembers is GitLab's MembersFinder as Project.projectMembers runs it: the
// members of the relations asked for (default DIRECT and INHERITED), each user once,
// at the highest access level any of its memberships gives (GitLab reads it from
// project_authorizations), a ProjectMember when the user is a direct member, ordered
// by user. GET /projects/:id/members/all runs the same finder with every relation.
// The resolver authorizes the project (read_project_member): refused, the field is
// null with an error, where REST answers 403.
func (r *gqlProject) ProjectMembers(ctx context.Context, args memberArgs) (*conn[gqlMember], error) {
	if r.denied(ctx, clsProjectMembers) {
		return nil, errNotAvailable
	}
	rel := args.Relations
	in, p := r.s.in, r.p
	direct := in.projectMembers(p)
	var lists [][]membership
	if slices.Contains(rel, "DIRECT") {
		lists = append(lists, direct)
	}
	if slices.Contains(rel, "INHERITED") && p.group >= 0 {
		lists = append(lists, in.groupMembersAll(p.group))
	}
	members := mergeMembers(lists...)
	if args.Search != nil && *args.Search != "" {
		members = slices.DeleteFunc(members, func(m membership) bool {
			pp := &in.people[m.person]
			return !containsFold(pp.username, *args.Search) && !containsFold(pp.name, *args.Search)
		})
	}
	return newConn(len(members), args.pageArgs, func(k int) *gqlMember {
		m := members[k]
		isDirect := slices.ContainsFunc(direct, func(d membership) bool { return d.person == m.person })
		return &gqlMember{in: in, m: m, project: p.id, direct: isDirect}
	})
}

// gqlMember is one MemberInterface node.
type gqlMember struct {
	in      *instance
	m       membership
	project int64
	direct  bool
}

func (m *gqlMember) ToProjectMember() (*gqlMember, bool) { return m, m.direct }
func (m *gqlMember) ToGroupMember() (*gqlMember, bool)   { return m, !m.direct }

// ID is a member record's global ID; the simulator keeps no member records, so it is
// made of the project's and the user's IDs.
func (m *gqlMember) ID() graphql.ID {
	model := "GroupMember"
	if m.direct {
		model = "ProjectMember"
	}
	return gid(model, m.project*100_000+int64(m.m.person))
}

func (m *gqlMember) AccessLevel() *gqlAccessLevel { return &gqlAccessLevel{level: int32(m.m.access)} }

func (m *gqlMember) User() *gqlUserCore { return &gqlUserCore{in: m.in, p: &m.in.people[m.m.person]} }

type gqlAccessLevel struct{ level int32 }

func (a *gqlAccessLevel) IntegerValue() *int32 { return &a.level }

var accessLevelNames = map[int32]string{0: "NO_ACCESS", 5: "MINIMAL_ACCESS", 10: "GUEST", 15: "PLANNER", 20: "REPORTER", 30: "DEVELOPER", 40: "MAINTAINER", 50: "OWNER"}

func (a *gqlAccessLevel) StringValue() *string {
	s, ok := accessLevelNames[a.level]
	if !ok {
		return nil
	}
	return &s
}

// gqlUserCore is a user account as GitLab's UserCore type shows it.
type gqlUserCore struct {
	in *instance
	p  *person
}

func (u *gqlUserCore) ID() graphql.ID   { return gid("User", u.p.id) }
func (u *gqlUserCore) Username() string { return u.p.username }
func (u *gqlUserCore) Name() string     { return u.p.name }
func (u *gqlUserCore) State() string    { return u.p.state }
func (u *gqlUserCore) WebURL() string   { return u.in.externalURL + "/" + u.p.username }

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
