package gitlabsim

import (
	"net/http"
	"strconv"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// appStatistics answers GET /application/statistics as GitLab documents it: counts as
// strings, administrators only.
func (s *Server) appStatistics(c *call) {
	if s.notAdmin {
		c.error(http.StatusForbidden, "message", "403 Forbidden")
		return
	}
	users, projects := s.totals()
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	c.json(http.StatusOK, map[string]any{
		"forks": "0", "issues": "0", "merge_requests": "0", "notes": "0", "snippets": "0",
		"ssh_keys": "0", "milestones": "0", "users": n(users), "groups": strconv.Itoa(len(s.in.groups)),
		"projects": n(projects), "active_users": n(users),
	})
}

// totals are the instance's users (the token's own, sim-admin, and the user
// namespaces) and projects, deleted ones (Delete) not counted.
func (s *Server) totals() (users, projects int64) {
	return int64(len(s.in.users)) + 1, int64(len(s.allProjects))
}

// truthInstance is the instance as the scheduler reports it: totals only for an
// administrator's token.
func (s *Server) truthInstance() *inventory.Instance {
	v := versionBody
	ent := v["enterprise"].(bool)
	in := &inventory.Instance{Version: v["version"].(string), Revision: v["revision"].(string), Enterprise: &ent}
	if !s.notAdmin {
		users, projects := s.totals()
		in.Users, in.Projects = &users, &projects
	}
	return in
}
