package gitlabsim

import (
	"math"
	"slices"
	"strings"
)

// Renamed is one project a Rename renamed: same id, new path.
type Renamed struct {
	ID   int64  `json:"id"`
	From string `json:"from"` // path_with_namespace before
	To   string `json:"to"`
}

// renameSuffix is what a rename appends to a project's path.
const renameSuffix = "-next"

// Rename renames a share of the projects, as a team tidying its namespace does: the
// project keeps its id, data and last_activity_at; its path, path_with_namespace and
// web_url change, and it answers under the new path. Projects others name by path
// (CI include and trigger targets, submodule targets) are left alone, since GitLab
// would not rewrite those references, and so are projects renamed before and
// deleted ones (Delete). Seeded
// like Change: a seed renames the same projects; share is clamped to [0, 1].
func (s *Server) Rename(share float64, seed int64) []Renamed {
	share = clampShare(share)
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.in
	named := s.namedByPath()
	var free []int32
	for _, i := range s.allProjects {
		p := &in.projects[i]
		if !strings.HasSuffix(p.path, renameSuffix) && !named[in.pathWithNamespace(p)] {
			free = append(free, i)
		}
	}
	in.rankBySeed(free, seed, saltRename)
	n := min(int(math.Ceil(share*float64(len(s.allProjects))-1e-9)), len(free))
	out := make([]Renamed, 0, n)
	for _, i := range free[:n] {
		p := &in.projects[i]
		from := in.pathWithNamespace(p)
		if _, taken := in.lookupProject(from + renameSuffix); taken {
			continue // a sibling has the path already
		}
		p.path += renameSuffix
		out = append(out, Renamed{ID: p.id, From: from, To: in.pathWithNamespace(p)})
	}
	slices.SortFunc(out, func(a, b Renamed) int { return int(a.ID - b.ID) })
	return out
}
