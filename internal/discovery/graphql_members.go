package discovery

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/gitlab"
)

// gqlMemberPage is the page of members the profile query reads for the owners (with
// INCLUDE_MEMBERS): a project with more is read from REST's members/all.
const gqlMemberPage = 50

// gqlOwnersField selects the members GET /projects/:id/members/all lists: GitLab runs
// the same MembersFinder for both, with these relations, each user once at its
// highest access level. projectMembers is a plain connection (no count).
const gqlOwnersField = "owners: projectMembers(relations: [DIRECT, INHERITED, INVITED_GROUPS, SHARED_INTO_ANCESTORS], first: 50) " +
	"{ pageInfo { hasNextPage } nodes { accessLevel { integerValue } user { username state } } }"

// gqlOwners reads the owners from the members GraphQL gave, as gitlab.Client.Owners
// reads them from REST: active users with Maintainer or Owner access, sorted, once
// each. nil (unknown: REST is asked) for a null answer or one with more members than
// the page; an invitation not yet accepted has no user and is no one's membership.
func gqlOwners(raw json.RawMessage) []string {
	var v *struct {
		PageInfo *struct {
			HasNextPage bool `json:"hasNextPage"`
		} `json:"pageInfo"`
		Nodes []*struct {
			AccessLevel *struct {
				IntegerValue *int `json:"integerValue"`
			} `json:"accessLevel"`
			User *struct {
				Username string `json:"username"`
				State    string `json:"state"`
			} `json:"user"`
		} `json:"nodes"`
	}
	if json.Unmarshal(raw, &v) != nil || v == nil || v.PageInfo == nil || v.PageInfo.HasNextPage || v.Nodes == nil {
		return nil
	}
	owners := []string{}
	for _, n := range v.Nodes {
		if n == nil || n.User == nil || n.AccessLevel == nil || n.AccessLevel.IntegerValue == nil {
			continue
		}
		if *n.AccessLevel.IntegerValue >= gitlab.AccessMaintainer && n.User.State == "active" && n.User.Username != "" {
			owners = append(owners, n.User.Username)
		}
	}
	slices.Sort(owners)
	return slices.Compact(owners)
}

// ownersRefused reports whether GitLab refused the query for its members selection,
// and if so takes the members out of the worker's queries, said once. A GitLab before
// 16.0 has no SHARED_INTO_ANCESTORS relation ("Argument 'relations' on Field 'owners'
// has an invalid value"): its projects' owners come from REST's members/all, which
// lists what that version's GitLab counts as members.
func (w *Worker) ownersRefused(err error) bool {
	var qe *gitlab.QueryError
	if !w.IncludeMembers || w.gql.noOwners.Load() || !errors.As(err, &qe) {
		return false
	}
	refused := slices.ContainsFunc(qe.Errors, func(e gitlab.GraphQLError) bool {
		return strings.Contains(e.Message, "'owners'") || strings.Contains(e.Message, "ProjectMemberRelation")
	})
	if refused {
		w.gql.noOwnersOnce.Do(func() {
			w.gql.noOwners.Store(true)
			w.log().Warn("GitLab's GraphQL refused the members query; owners are read from REST (members/all)", "err", err)
		})
	}
	return refused
}
