package gitlabsim

import (
	"math"
	"slices"
)

// Deleted is one project a Delete removed.
type Deleted struct {
	ID   int64  `json:"id"`
	Path string `json:"path_with_namespace"` // at the time of deletion
}

// Delete deletes a share of the projects as a deletion that has taken effect: at
// once on DELETE /projects/:id on GitLab Free before 18.0, otherwise (Premium, and
// every tier since 18.0) once the deletion delay has passed; until then GitLab
// keeps the project listed with marked_for_deletion_on, which the simulator does
// not model. The project leaves every listing and count (GET /projects, a group's
// projects with or without its subgroups, a user's projects, X-Total, the group
// totals, GraphQL's project connections and their counts), GET /projects/:id and
// everything below answer 404 {"message":"404 Project Not Found"} by id and by
// path, GraphQL's project(fullPath:) is null, and the truth no longer holds it.
// This is not the DeletedRate fault, which models a deletion during a scan: those
// projects are still listed and still in the truth.
//
// Projects others name by path are left alone, since GitLab would leave those
// references dangling, or unlink a fork, and the simulator models neither: CI
// include and trigger targets, submodule targets, another project's CI
// configuration, a fork's parent. A deleted project is gone for good: later
// changes, renames and deletions pass it by. Seeded like Change: a seed deletes
// the same projects of the same instance; share is clamped to [0, 1] and counts
// the projects in the instance before the deletion.
func (s *Server) Delete(share float64, seed int64) []Deleted {
	share = clampShare(share)
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.in
	named := s.namedByPath()
	for _, i := range s.allProjects {
		p := &in.projects[i]
		if _, target := in.ciFile(p); target != "" {
			named[target] = true
		}
		if p.forkOf >= 0 {
			named[in.pathWithNamespace(&in.projects[p.forkOf])] = true
		}
	}
	var free []int32
	for _, i := range s.allProjects {
		if !named[in.pathWithNamespace(&in.projects[i])] {
			free = append(free, i)
		}
	}
	in.rankBySeed(free, seed, saltRemove)
	n := min(int(math.Ceil(share*float64(len(s.allProjects))-1e-9)), len(free))
	out := make([]Deleted, 0, n)
	for _, i := range free[:n] {
		p := &in.projects[i]
		out = append(out, Deleted{ID: p.id, Path: in.pathWithNamespace(p)})
		p.removed = true
	}
	if n > 0 {
		s.dropRemoved()
	}
	slices.SortFunc(out, func(a, b Deleted) int { return int(a.ID - b.ID) })
	return out
}

// namedByPath are the paths of the projects other live projects name in their CI
// files (include and trigger targets) and .gitmodules.
func (s *Server) namedByPath() map[string]bool {
	named := map[string]bool{ciTemplates: true, ciDownstream: true}
	for _, i := range s.allProjects {
		for _, sm := range s.in.submodules(&s.in.projects[i]) {
			named[sm.target] = true
		}
	}
	return named
}

// dropRemoved takes the removed projects out of every index the listings, counts
// and path lookups read. They stay in instance.projects, marked, so that the
// indexes others hold and the targets drawn from the seed (modulo the number of
// projects) stay what they were: the other projects answer as before.
func (s *Server) dropRemoved() {
	in := s.in
	gone := func(i int32) bool { return in.projects[i].removed }
	s.allProjects = slices.DeleteFunc(s.allProjects, gone)
	for k := range in.groups {
		g := &in.groups[k]
		g.projects = slices.DeleteFunc(g.projects, gone)
		g.subtree = slices.DeleteFunc(g.subtree, gone)
	}
	for k := range in.users {
		u := &in.users[k]
		u.projects = slices.DeleteFunc(u.projects, gone)
	}
}
