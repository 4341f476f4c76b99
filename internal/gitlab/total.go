package gitlab

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	gogitlab "gitlab.com/gitlab-org/api/client-go"
)

// Total is a count of projects, for estimating a run before it starts, with the rate
// limit GitLab announced while counting.
type Total struct {
	Projects int64
	// Walked: GitLab stopped counting (no X-Total above TotalCap), so the projects'
	// IDs were walked a page of PerPage at a time: Pages requests.
	Walked bool
	Pages  int
	// RateLimit is the RateLimit-Limit of the answers (requests per minute); 0 when
	// GitLab announced none.
	RateLimit int
}

// GroupProjectTotal counts the projects of a group (numeric ID or full path) and of its
// subgroups, shared projects left out as the scan leaves them: X-Total of a one-item
// page, one request. Above TotalCap GitLab omits X-Total; the IDs are then walked
// (simple records, PerPage a page), which costs one request per PerPage projects.
func (c *Client) GroupProjectTotal(ctx context.Context, group string) (Total, error) {
	q := url.Values{"include_subgroups": {"true"}, "with_shared": {"false"}, "simple": {"true"},
		"order_by": {"id"}, "sort": {"asc"}}
	path := "groups/" + gogitlab.PathEscape(group) + "/projects"
	t, done, err := c.total(ctx, path, q)
	if err != nil || done {
		return t, err
	}
	q.Set("per_page", strconv.Itoa(PerPage))
	for page := 1; page != 0; {
		q.Set("page", strconv.Itoa(page))
		var ids []struct{}
		resp, err := c.get(ctx, path, q, &ids)
		if err != nil {
			return t, err
		}
		t.Projects += int64(len(ids))
		t.Pages++
		if page, err = nextPage("groups/:id/projects", page, resp.NextPage); err != nil {
			return t, err
		}
	}
	return t, nil
}

// ProjectTotal counts every project the token sees (GET /projects) as
// GroupProjectTotal counts a group's, walking keyset pages above TotalCap.
func (c *Client) ProjectTotal(ctx context.Context) (Total, error) {
	q := url.Values{"simple": {"true"}}
	t, done, err := c.total(ctx, "projects", q)
	if err != nil || done {
		return t, err
	}
	q = url.Values{"simple": {"true"}, "pagination": {"keyset"}, "order_by": {"id"}, "sort": {"asc"},
		"per_page": {strconv.Itoa(PerPage)}}
	for after := int64(0); ; {
		var ids []struct {
			ID int64 `json:"id"`
		}
		resp, err := c.get(ctx, "projects", q, &ids)
		if err != nil {
			return t, err
		}
		t.Projects += int64(len(ids))
		t.Pages++
		if len(ids) == 0 || (resp.NextLink == "" && len(ids) < PerPage) {
			return t, nil
		}
		highest := int64(0)
		for _, p := range ids {
			highest = max(highest, p.ID)
		}
		if after, err = nextCursor("projects", after, highest); err != nil {
			return t, err
		}
		q.Set("id_after", strconv.FormatInt(after, 10))
	}
}

// total asks for a one-item page of path; done is false when GitLab did not count (the
// list holds more than TotalCap items) and the caller must walk it.
func (c *Client) total(ctx context.Context, path string, q url.Values) (t Total, done bool, err error) {
	one := url.Values{"per_page": {"1"}}
	for k, v := range q {
		one[k] = v
	}
	resp, err := c.get(ctx, path, one, new([]struct{}))
	if err != nil {
		return t, false, err
	}
	t.RateLimit = announced(resp.Header)
	s := resp.Header.Get("X-Total")
	if s == "" {
		t.Walked = true
		return t, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > MaxCount {
		return t, false, c.clean(fmt.Errorf("count %s: %w: bad X-Total %q", EndpointClass("/api/v4/"+path), ErrMalformed, s))
	}
	t.Projects = n
	return t, true, nil
}

// announced is an answer's RateLimit-Limit, 0 when absent or not a positive number.
func announced(h http.Header) int {
	n, err := strconv.Atoi(h.Get("RateLimit-Limit"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// DescendantGroups lists every group below a group, subgroups of subgroups included,
// in ID order: one request per PerPage groups, where walking the tree level by level
// costs one per group.
func (c *Client) DescendantGroups(ctx context.Context, groupID int64) ([]Group, error) {
	q := url.Values{"order_by": {"id"}, "sort": {"asc"}}
	return listAll[Group](ctx, c, "groups/"+strconv.FormatInt(groupID, 10)+"/descendant_groups", q, 0)
}
