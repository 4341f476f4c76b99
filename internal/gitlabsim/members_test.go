package gitlabsim

import (
	"slices"
	"strconv"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// TestMembersAll: members/all lists a project's members with its groups', each user
// once at the highest level, paginated with X-Total; the truth's owners are the active
// Maintainers and Owners among them.
func TestMembersAll(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 2, Groups: 40, Projects: 300})
	cl := newClient(t, ts.URL, "sim-token")
	in := s.in
	var paged, inherited, blocked, subgroup bool
	for i := range in.projects {
		p := &in.projects[i]
		all := in.projectMembersAll(p)
		var got []*gitlab.ProjectMember
		opt := &gitlab.ListProjectMembersOptions{ListOptions: gitlab.ListOptions{PerPage: 100, Page: 1}}
		for {
			ms, r, err := cl.ProjectMembers.ListAllProjectMembers(int(p.id), opt)
			if err != nil {
				t.Fatalf("project %d: %v", p.id, err)
			}
			if r.Header.Get("X-Total") != strconv.Itoa(len(all)) {
				t.Fatalf("project %d: X-Total %q, want %d", p.id, r.Header.Get("X-Total"), len(all))
			}
			got = append(got, ms...)
			if r.NextPage == 0 {
				break
			}
			paged = true
			opt.Page = r.NextPage
		}
		if len(got) != len(all) {
			t.Fatalf("project %d: %d members served, want %d", p.id, len(got), len(all))
		}
		best := map[int64]int{}
		for _, m := range in.projectMembers(p) {
			best[in.people[m.person].id] = max(best[in.people[m.person].id], int(m.access))
		}
		for gi := p.group; gi >= 0; gi = in.groups[gi].parent {
			subgroup = subgroup || in.groups[gi].parent >= 0 && len(in.groupMembers(gi)) > 0
			for _, m := range in.groupMembers(gi) {
				best[in.people[m.person].id] = max(best[in.people[m.person].id], int(m.access))
			}
		}
		ids := map[int64]bool{}
		for k, m := range got {
			if ids[m.ID] {
				t.Fatalf("project %d: user %d listed twice", p.id, m.ID)
			}
			ids[m.ID] = true
			if k > 0 && got[k-1].ID >= m.ID {
				t.Fatalf("project %d: members not in user id order", p.id)
			}
			if int(m.AccessLevel) != best[m.ID] {
				t.Fatalf("project %d: user %d at %d, want its highest %d", p.id, m.ID, m.AccessLevel, best[m.ID])
			}
			inherited = inherited || !slices.ContainsFunc(in.projectMembers(p), func(d membership) bool { return in.people[d.person].id == m.ID })
			blocked = blocked || m.State != "active" && m.AccessLevel >= gitlab.MaintainerPermissions
		}
		var owners []string
		for _, m := range got {
			if m.State == "active" && m.AccessLevel >= gitlab.MaintainerPermissions {
				owners = append(owners, m.Username)
			}
		}
		slices.Sort(owners)
		if truth := in.owners(all); !slices.Equal(truth, owners) && len(truth)+len(owners) > 0 {
			t.Fatalf("project %d: truth owners %v, served %v", p.id, truth, owners)
		}
	}
	if !paged || !inherited || !blocked || !subgroup {
		t.Errorf("paged %t, inherited %t, blocked owner %t, subgroup members %t: the instance does not exercise them all", paged, inherited, blocked, subgroup)
	}
}

// TestGroupMembersAll: a group's members/all holds its ancestors' members.
func TestGroupMembersAll(t *testing.T) {
	s, ts := startSim(t, Options{Seed: 2, Groups: 20, Projects: 10})
	cl := newClient(t, ts.URL, "sim-token")
	for gi := range s.in.groups {
		g := &s.in.groups[gi]
		ms, _, err := cl.Groups.ListAllGroupMembers(int(g.id), &gitlab.ListGroupMembersOptions{ListOptions: gitlab.ListOptions{PerPage: 100}})
		if err != nil {
			t.Fatal(err)
		}
		if want := s.in.groupMembersAll(int32(gi)); len(ms) != min(len(want), 100) {
			t.Fatalf("group %s: %d members, want %d", g.fullPath, len(ms), len(want))
		}
		if g.parent < 0 && !slices.ContainsFunc(ms, func(m *gitlab.GroupMember) bool { return m.AccessLevel == gitlab.OwnerPermissions }) {
			t.Errorf("top-level group %s has no Owner", g.fullPath)
		}
	}
}
