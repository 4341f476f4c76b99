package export

import (
	"cmp"
	"maps"
	"slices"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// The report's owners: whom a planner contacts about a group or a project. A
// project's owners (inventory.Project.Owners) are known ([] when none), or unknown
// (nil): INCLUDE_MEMBERS was off, or the members step failed. The report keeps the
// two apart and never counts an unknown as "no owner".

// Report bounds for owners.
const (
	maxGroupOwners   = 3 // owners named per top-level group
	maxProjectOwners = 5 // owners named per listed project; the rest are counted
)

// ownerAgg counts owners as projects stream past. Like the rest of aggregate it is
// counters: per direct group, the projects of each owner, bounded by the distinct
// (group, owner) pairs, never a list of projects.
type ownerAgg struct {
	known, none, unknown int
	membersFailed        int                    // unknown because the members step failed
	byGroup              map[int64]*ownerCounts // by the project's own group
	names                map[string]string      // interned usernames: one copy each
}

// ownerCounts are the owners of some projects: projects per owner, and the projects
// whose owners are known to be none or are unknown.
type ownerCounts struct {
	none, unknown int
	projects      map[string]int
}

func newOwnerAgg() ownerAgg {
	return ownerAgg{byGroup: map[int64]*ownerCounts{}, names: map[string]string{}}
}

func (o *ownerAgg) add(p *inventory.Project) {
	c := o.byGroup[p.GroupID]
	if c == nil {
		c = &ownerCounts{}
		o.byGroup[p.GroupID] = c
	}
	switch {
	case p.Owners == nil:
		o.unknown++
		c.unknown++
		if slices.ContainsFunc(p.Errors, func(e inventory.ScanError) bool { return e.Step == facts.Members.Name }) {
			o.membersFailed++
		}
	case len(p.Owners) == 0:
		o.known++
		o.none++
		c.none++
	default:
		o.known++
		if c.projects == nil {
			c.projects = map[string]int{}
		}
		for i, u := range p.Owners {
			if slices.Contains(p.Owners[:i], u) {
				continue // a project counts once per owner
			}
			name, ok := o.names[u]
			if !ok {
				name = u
				o.names[u] = u
			}
			c.projects[name]++
		}
	}
}

// collected reports whether any project's owners are known: false is a run with
// INCLUDE_MEMBERS off (or one whose members step failed everywhere).
func (o *ownerAgg) collected() bool { return o.known > 0 }

// merge adds o's counts to c.
func (c *ownerCounts) merge(o *ownerCounts) {
	c.none += o.none
	c.unknown += o.unknown
	if len(o.projects) > 0 && c.projects == nil {
		c.projects = map[string]int{}
	}
	for u, n := range o.projects {
		c.projects[u] += n
	}
}

// ownerCount is an owner and the projects it owns, in a group's row.
type ownerCount struct {
	Name     string
	Projects int
}

// top returns the n owners of the most projects, then by name.
func (c *ownerCounts) top(n int) []ownerCount {
	out := make([]ownerCount, 0, len(c.projects))
	for _, u := range slices.Sorted(maps.Keys(c.projects)) {
		out = append(out, ownerCount{u, c.projects[u]})
	}
	slices.SortStableFunc(out, func(x, y ownerCount) int { return cmp.Compare(y.Projects, x.Projects) })
	return out[:min(n, len(out))]
}

// groupOwners is a top-level group's owners column.
type groupOwners struct {
	Top           []ownerCount // the owners of the most projects, at most maxGroupOwners
	Others        int          // further owners not named
	None, Unknown int          // projects without an owner; whose owners are unknown
}

func (c *ownerCounts) row() groupOwners {
	top := c.top(maxGroupOwners)
	return groupOwners{Top: top, Others: len(c.projects) - len(top), None: c.none, Unknown: c.unknown}
}

// ownerCell is a listed project's owners: unknown, none (Known and no Names), or the
// first maxProjectOwners names and how many more.
type ownerCell struct {
	Known bool
	Names []string
	More  int
}

func ownerCellOf(owners []string) ownerCell {
	if owners == nil {
		return ownerCell{}
	}
	n := min(len(owners), maxProjectOwners)
	return ownerCell{Known: true, Names: slices.Clone(owners[:n]), More: len(owners) - n}
}

// ownersData is the report's owners summary.
type ownersData struct {
	Collected            bool // some project's owners are known
	Known, None, Unknown int
	MembersFailed        int // of Unknown: the members step failed
	Named                int // owners named per top-level group
}

func (o *ownerAgg) data() ownersData {
	return ownersData{Collected: o.collected(), Known: o.known, None: o.none, Unknown: o.unknown, MembersFailed: o.membersFailed, Named: maxGroupOwners}
}
