package gitlab

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
)

// Access levels of GitLab's members API (Gitlab::Access).
const (
	AccessMaintainer = 40
	AccessOwner      = 50
)

// maxMemberPages bounds one project's member listing (PerPage members a page): past
// it the owners are not known, rather than known wrong.
const maxMemberPages = 20

// ErrTooManyMembers is a member listing longer than maxMemberPages pages.
var ErrTooManyMembers = fmt.Errorf("more than %d members", maxMemberPages*PerPage)

// Member is one entry of GET /projects/:id/members/all: a user with the highest
// access level any of its memberships (the project's, an ancestor group's, an
// invited group's) gives it.
type Member struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	State       string `json:"state"` // the user's: active, blocked, deactivated, …
	AccessLevel int    `json:"access_level"`
	// MembershipState is "awaiting" for a membership pending approval (a seat on a
	// paid plan), which gives no access yet; "active" or absent otherwise.
	MembershipState string `json:"membership_state"`
}

// Owners returns the sorted, unique usernames of a project's active members with
// Maintainer or Owner access, inherited members included. Blocked and deactivated
// users, and memberships awaiting approval, are left out: they cannot act on the
// project.
func (c *Client) Owners(ctx context.Context, projectID int64) ([]string, error) {
	const endpoint = "projects/:id/members/all"
	q := url.Values{"per_page": {strconv.Itoa(PerPage)}}
	owners := []string{}
	for page := 1; page != 0; {
		if page > maxMemberPages {
			return nil, fmt.Errorf("GET %s: %w", endpoint, ErrTooManyMembers)
		}
		q.Set("page", strconv.Itoa(page))
		var items []Member
		resp, err := c.get(ctx, "projects/"+strconv.FormatInt(projectID, 10)+"/members/all", q, &items)
		if err != nil {
			return nil, err
		}
		for _, m := range items {
			if m.AccessLevel >= AccessMaintainer && m.State == "active" && m.MembershipState != "awaiting" && m.Username != "" {
				owners = append(owners, m.Username)
			}
		}
		if page, err = nextPage(endpoint, page, resp.NextPage); err != nil {
			return nil, err
		}
	}
	slices.Sort(owners)
	return slices.Compact(owners), nil
}
