package gitlabsim

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Members follow GitLab's members API. Groups and projects have direct members, each a
// person (a user account) with an access level; GET /groups/:id/members/all and GET
// /projects/:id/members/all list the direct members together with those inherited from
// the ancestor groups, each person once at the highest level any membership gives it,
// by user id. Invited (shared) groups are not modelled. A person's state is its user
// account's: mostly active, some blocked or deactivated; they stay members.

// Access levels (Gitlab::Access).
const (
	accessGuest      = 10
	accessReporter   = 20
	accessDeveloper  = 30
	accessMaintainer = 40
	accessOwner      = 50
)

// membership is one person's access to a group or project; person indexes in.people.
type membership struct {
	person int32
	access uint8
}

// person is a user account members are drawn from: the users owning personal
// namespaces first (same index and id), then accounts without projects.
type person struct {
	id       int64
	username string
	name     string
	created  int64
	state    string
}

// maxPeople bounds the accounts without projects that members are drawn from.
const maxPeople = 5000

// buildPeople creates the pool members are drawn from; it draws on its own random
// stream (saltMembers), so nothing else the instance generates changes with it.
func (in *instance) buildPeople() {
	n := max(len(in.users), min(400+2*len(in.groups), maxPeople))
	in.people = make([]person, n)
	used := make(map[string]int, 26*26)
	id := int64(userIDBase)
	if last := in.groups[len(in.groups)-1].id; last >= id {
		id = (last/userIDBase + 1) * userIDBase
	}
	for k := range in.people {
		r := newRNG(in.seed, uint64(k), saltMembers)
		p := &in.people[k]
		if k < len(in.users) {
			u := &in.users[k]
			p.id, p.username, p.name, p.created = u.id, u.username, u.name, u.created
		} else {
			id += 1 + int64(r.intn(3))
			first, last := firstNames[r.intn(len(firstNames))], lastNames[r.intn(len(lastNames))]
			p.id = id
			p.username = first + "_" + last
			if c := used[p.username]; c > 0 {
				p.username += strconv.Itoa(c + 1) // users' names have a dot: never these
			}
			used[first+"_"+last]++
			p.name = strings.ToUpper(first[:1]) + first[1:] + " " + strings.ToUpper(last[:1]) + last[1:]
			p.created = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + int64(r.intn(9*365))*86400
		}
		if k < len(in.users) {
			id = max(id, p.id)
		}
		switch x := r.float(); {
		case x < 0.06:
			p.state = "blocked"
		case x < 0.08:
			p.state = "deactivated"
		default:
			p.state = "active"
		}
	}
}

// accessWeights are how often each level is given to a non-first member.
var accessLevels = []uint8{accessGuest, accessReporter, accessDeveloper, accessMaintainer, accessOwner}

// groupMembers are a group's direct members. A top-level group's first member is an
// Owner (GitLab keeps one); about one top-level group in ten is large (100-160
// members), so that member lists span pages.
func (in *instance) groupMembers(gi int32) []membership {
	g := &in.groups[gi]
	r := newRNG(in.seed, uint64(g.id), saltMembers)
	var n int
	switch {
	case g.parent >= 0:
		n = r.intn(3)
	case r.chance(0.1):
		n = 100 + r.intn(61)
	default:
		n = 2 + r.intn(5)
	}
	out := make([]membership, 0, n)
	for k := range n {
		m := membership{person: int32(r.intn(len(in.people))), access: accessLevels[r.pick([]float64{1, 2, 4, 2, 1})]}
		if k == 0 && g.parent < 0 {
			m.access = accessOwner
		}
		out = append(out, m)
	}
	return out
}

// projectMembers are a project's direct members: up to three, Guest to Maintainer,
// and for a personal project its namespace's user as Owner.
func (in *instance) projectMembers(p *project) []membership {
	r := newRNG(in.seed, uint64(p.id), saltMembers)
	n := r.intn(4)
	out := make([]membership, 0, n+1)
	if p.owner >= 0 {
		out = append(out, membership{person: p.owner, access: accessOwner})
	}
	for range n {
		out = append(out, membership{person: int32(r.intn(len(in.people))), access: accessLevels[r.pick([]float64{1, 2, 4, 2})]})
	}
	return out
}

// mergeMembers keeps each person once at its highest access, ordered by user id.
func mergeMembers(lists ...[]membership) []membership {
	best := map[int32]uint8{}
	for _, l := range lists {
		for _, m := range l {
			best[m.person] = max(best[m.person], m.access)
		}
	}
	out := make([]membership, 0, len(best))
	for p, a := range best {
		out = append(out, membership{person: p, access: a})
	}
	slices.SortFunc(out, func(a, b membership) int { return cmp.Compare(a.person, b.person) })
	return out
}

// groupMembersAll is GET /groups/:id/members/all: the group's and its ancestors'.
func (in *instance) groupMembersAll(gi int32) []membership {
	var lists [][]membership
	for ; gi >= 0; gi = in.groups[gi].parent {
		lists = append(lists, in.groupMembers(gi))
	}
	return mergeMembers(lists...)
}

// projectMembersAll is GET /projects/:id/members/all: the project's and its groups'.
func (in *instance) projectMembersAll(p *project) []membership {
	lists := [][]membership{in.projectMembers(p)}
	if p.group >= 0 {
		lists = append(lists, in.groupMembersAll(p.group))
	}
	return mergeMembers(lists...)
}

// owners are the usernames of the active Maintainers and Owners of members, sorted:
// what the agent's owners field must say.
func (in *instance) owners(members []membership) []string {
	out := []string{}
	for _, m := range members {
		if pp := &in.people[m.person]; m.access >= accessMaintainer && pp.state == "active" {
			out = append(out, pp.username)
		}
	}
	slices.Sort(out)
	return out
}

// apiMember is one entry of a members list, as GitLab's REST API writes it.
type apiMember struct {
	ID              int64   `json:"id"`
	Username        string  `json:"username"`
	Name            string  `json:"name"`
	State           string  `json:"state"`
	Locked          bool    `json:"locked"`
	AvatarURL       *string `json:"avatar_url"`
	WebURL          string  `json:"web_url"`
	AccessLevel     int     `json:"access_level"`
	CreatedAt       string  `json:"created_at"`
	ExpiresAt       *string `json:"expires_at"`
	MembershipState string  `json:"membership_state"`
}

func (in *instance) member(m membership) apiMember {
	pp := &in.people[m.person]
	return apiMember{
		ID: pp.id, Username: pp.username, Name: pp.name, State: pp.state,
		WebURL: in.externalURL + "/" + pp.username, AccessLevel: int(m.access),
		CreatedAt:       time.Unix(pp.created, 0).UTC().Format("2006-01-02T15:04:05.000Z"),
		MembershipState: "active",
	}
}

// listMembers writes a members list, offset-paginated with X-Total like GitLab's.
func (in *instance) listMembers(c *call, members []membership) {
	listItems(c, int64(len(members)), false, func(pos int64) apiMember { return in.member(members[pos]) })
}
