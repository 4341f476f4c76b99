package export

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// The report's planner aggregates: activity ages, totals by top-level group and the
// dependency in-degrees. Like the rest of aggregate they are counters, bounded by the
// number of groups and dependency targets, never a list of projects.

// Activity age buckets of the report's histogram, youngest first; ageUnknown counts
// projects without a last_activity_at.
const (
	age30d = iota
	age90d
	age1y
	age2y
	ageOlder
	ageUnknown
	nAges
)

const day = 24 * time.Hour

// ageBounds are the exclusive upper bounds of the buckets before ageOlder.
var ageBounds = [...]time.Duration{30 * day, 90 * day, 365 * day, 2 * 365 * day}

var ageLabels = [nAges]string{"< 30 days", "30–90 days", "90 days–1 year", "1–2 years", "over 2 years", "unknown"}

// ageBucket places a last activity relative to asOf (the run's start, as the stale
// flag is): activity after asOf (a clock skew, a push during the run) is recent.
func ageBucket(activity, asOf time.Time) int {
	if activity.IsZero() || asOf.IsZero() {
		return ageUnknown
	}
	age := asOf.Sub(activity)
	for i, b := range ageBounds {
		if age < b {
			return i
		}
	}
	return ageOlder
}

// tierOrder are the verdict tier columns of groupAgg.tiers and topGroup.Tiers.
var tierOrder = [...]string{readiness.TierBlocker, readiness.TierData, readiness.TierCI, readiness.TierSettings, readiness.TierNone, unknownTier}

const nTiers = len(tierOrder)

func tierIndex(t string) int {
	if i := slices.Index(tierOrder[:], t); i >= 0 {
		return i
	}
	return nTiers - 1 // unknown: a verdict stored before tiers
}

// storage is the bytes a planner moves besides the export archive's own count: the
// repository, LFS objects, the container registry and packages.
type storage struct {
	Repository, LFS, Registry, Packages int64
}

func (s storage) Total() int64 { return s.Repository + s.LFS + s.Registry + s.Packages }

func (s *storage) add(o storage) {
	s.Repository += o.Repository
	s.LFS += o.LFS
	s.Registry += o.Registry
	s.Packages += o.Packages
}

func storageOf(st *inventory.Statistics) storage {
	return storage{Repository: st.RepositorySize, LFS: st.LFSObjectsSize, Registry: st.ContainerRegistrySize, Packages: st.PackagesSize}
}

// topGroup is one top-level group's row in the report: its subtree's projects by
// readiness and tier, its storage and its owners.
type topGroup struct {
	Path                           string
	Personal                       bool // the row of every user namespace together
	Projects                       int
	Ready, NeedsAttention, Blocked int
	Tiers                          [nTiers]int // by tierOrder
	Storage                        storage     // of the projects with known statistics
	Unknown                        int         // projects whose statistics are unknown
	Owners                         groupOwners
}

// personalRow is the top-level row that gathers personal projects.
const personalRow = "(personal namespaces)"

// topLevel sums every group's direct counts into its top-level group's row; user
// namespaces share one row. Rows are by descending project count.
func (a *aggregate) topLevel() []*topGroup {
	rows := map[*groupAgg]*topGroup{}
	owners := map[*topGroup]*ownerCounts{}
	var personal *topGroup
	for _, g := range a.groupByID {
		if g.Direct == 0 {
			continue
		}
		root := g
		for depth := 0; depth < 100 && root.ParentID != 0 && root.ParentID != root.ID; depth++ {
			parent := a.groupByID[root.ParentID]
			if parent == nil {
				break
			}
			root = parent
		}
		var row *topGroup
		switch {
		case g.personal:
			if personal == nil {
				personal = &topGroup{Path: personalRow, Personal: true}
			}
			row = personal
		default:
			if row = rows[root]; row == nil {
				row = &topGroup{Path: root.Path}
				rows[root] = row
			}
		}
		row.Projects += g.Direct
		row.Ready += g.direct[0]
		row.NeedsAttention += g.direct[1]
		row.Blocked += g.direct[2]
		for i, n := range g.tiers {
			row.Tiers[i] += n
		}
		row.Storage.add(g.directParts)
		row.Unknown += g.directUnknown
		if c := a.owners.byGroup[g.ID]; c != nil {
			if owners[row] == nil {
				owners[row] = &ownerCounts{}
			}
			owners[row].merge(c)
		}
	}
	out := slices.Collect(maps.Values(rows))
	if personal != nil {
		out = append(out, personal)
	}
	for row, c := range owners {
		row.Owners = c.row()
	}
	slices.SortFunc(out, func(x, y *topGroup) int {
		return cmp.Or(cmp.Compare(y.Projects, x.Projects), cmp.Compare(x.Path, y.Path))
	})
	return out
}

// dependencyAgg counts the edges of dependencies.csv and, per target, the projects
// that depend on it.
type dependencyAgg struct {
	edges, external int
	from            int // projects with at least one edge
	byKind          map[string]int
	targets         map[string]*dependent
}

type dependent struct {
	Path     string
	External bool
	Projects int            // distinct projects depending on it
	ByKind   map[string]int // edges by kind
}

func newDependencyAgg() dependencyAgg {
	return dependencyAgg{byKind: map[string]int{}, targets: map[string]*dependent{}}
}

func (d *dependencyAgg) add(p *inventory.Project) {
	deps := inventory.Dependencies(p)
	if len(deps) == 0 {
		return
	}
	d.from++
	for i, e := range deps {
		d.edges++
		d.byKind[e.Kind]++
		if e.External() {
			d.external++
		}
		t := d.targets[e.To]
		if t == nil {
			t = &dependent{Path: e.To, External: e.External(), ByKind: map[string]int{}}
			d.targets[e.To] = t
		}
		t.ByKind[e.Kind]++
		// Dependencies lists a target once per kind: count the project once.
		if !slices.ContainsFunc(deps[:i], func(o inventory.Dependency) bool { return o.To == e.To }) {
			t.Projects++
		}
	}
}

// top returns the n targets most depended on, by projects, then path.
func (d *dependencyAgg) top(n int) []*dependent {
	out := slices.Collect(maps.Values(d.targets))
	slices.SortFunc(out, func(x, y *dependent) int {
		return cmp.Or(cmp.Compare(y.Projects, x.Projects), cmp.Compare(x.Path, y.Path))
	})
	return out[:min(n, len(out))]
}
