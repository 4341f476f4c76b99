package export

import (
	"cmp"
	"container/heap"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// Report bounds: what the report lists, whatever the size of the estate.
const (
	maxFlagged = 200
	maxLargest = 20
	maxGroups  = 50
)

// Size class key for projects whose statistics are unknown.
const unknownSizeClass = "unknown"

// Tier key for projects whose stored verdict predates tiers.
const unknownTier = "unknown"

// newByTier counts every verdict tier from zero, so summary.json lists them all.
func newByTier() map[string]int {
	m := map[string]int{readiness.TierNone: 0}
	for _, t := range readiness.Tiers {
		if t != readiness.TierInfo { // info never is a verdict
			m[t] = 0
		}
	}
	return m
}

// aggregate is what Write keeps in memory while projects stream past: counters, the
// report's bounded project lists, and one small record per group for the roll-up.
type aggregate struct {
	groups, projects, withErrors  int
	failedGroups                  int
	byReadiness, byStatus, bySize map[string]int
	byTier                        map[string]int // projects per verdict tier
	paths                         map[string]bool
	findings                      map[string]int // projects per finding code
	exportSize, repoSize          int64
	unknownSize                   int // projects whose statistics are unknown
	stale                         int // projects whose stale flag is set
	staleUnknown                  int // projects whose stale flag is unknown

	asOf     time.Time     // what activity ages are measured from: the run's start
	activity [nAges]int    // projects by last_activity_at age (see ageBucket)
	deps     dependencyAgg // the edges of dependencies.csv, counted
	owners   ownerAgg      // projects per owner by group, and owners unknown or none

	flagged *topN[projectItem] // blocked first, then needs_attention by score
	largest *topN[projectItem] // by export size

	groupByID map[int64]*groupAgg
}

// projectItem is the little of a project the report shows.
type projectItem struct {
	ID         int64
	Path       string
	Category   string
	Score      int
	SizeClass  string
	ExportSize int64 // -1 when unknown
	Findings   string
	Tier       string
	Effort     string // class and hours, e.g. "M (8 h)"; empty for a verdict stored without one
	Owners     ownerCell
}

type groupAgg struct {
	ID, ParentID int64
	Path         string
	Direct       int // projects seen directly in the group
	// Subtree totals (the group and its descendants), filled by rollUp.
	Projects, Ready, NeedsAttention, Blocked int
	ExportSize, Storage                      int64  // of the projects with known statistics
	UnknownSize                              int    // projects whose statistics are unknown
	direct                                   [3]int // ready, needs_attention, blocked
	directSize, directStorage                int64
	directUnknown                            int
	// For the report's top-level rows: direct projects by verdict tier, their
	// storage by part, and whether the namespace is a user's.
	tiers       [nTiers]int
	directParts storage
	personal    bool
}

func newAggregate() *aggregate {
	return &aggregate{
		byReadiness: map[string]int{inventory.Ready: 0, inventory.NeedsAttention: 0, inventory.Blocked: 0},
		byStatus:    map[string]int{},
		bySize:      map[string]int{},
		byTier:      newByTier(),
		paths:       map[string]bool{},
		findings:    map[string]int{},
		flagged:     newTopN(maxFlagged, flaggedLess),
		largest:     newTopN(maxLargest, largestLess),
		groupByID:   map[int64]*groupAgg{},
		deps:        newDependencyAgg(),
		owners:      newOwnerAgg(),
	}
}

func (a *aggregate) addGroup(g inventory.Group) {
	a.groups++
	if inventory.Failed(g.ScanStatus) {
		a.failedGroups++
	}
	a.groupByID[g.ID] = &groupAgg{ID: g.ID, ParentID: g.ParentID, Path: g.FullPath}
}

// addProject counts a normalized project.
func (a *aggregate) addProject(p *inventory.Project) {
	a.projects++
	if len(p.Errors) > 0 {
		a.withErrors++
	}
	r := p.Readiness
	a.byReadiness[r.Category]++
	a.byTier[cmp.Or(r.Tier, unknownTier)]++
	if r.Path != "" {
		a.paths[r.Path] = true
	}
	a.byStatus[p.ScanStatus]++
	switch {
	case p.Stale == nil:
		a.staleUnknown++
	case *p.Stale:
		a.stale++
	}
	a.activity[ageBucket(p.LastActivityAt, a.asOf)]++
	a.deps.add(p)
	a.owners.add(p)
	sizeClass := cmp.Or(r.SizeClass, unknownSizeClass)
	a.bySize[sizeClass]++
	for i, f := range r.Findings {
		if !slices.ContainsFunc(r.Findings[:i], func(g inventory.Finding) bool { return g.Code == f.Code }) {
			a.findings[f.Code]++
		}
	}

	exportSize := int64(-1)
	if st := p.Statistics; st != nil {
		exportSize = st.ExportSize()
		a.exportSize += exportSize
		a.repoSize += st.RepositorySize
	} else {
		a.unknownSize++
	}
	item := func() projectItem {
		return projectItem{
			ID: p.ID, Path: p.PathWithNamespace, Category: r.Category, Score: r.Score, Tier: r.Tier, Effort: effortLabel(r),
			SizeClass: r.SizeClass, ExportSize: exportSize, Findings: findingCodes(r.Findings, ""),
			Owners: ownerCellOf(p.Owners),
		}
	}
	// Build the item only when it makes the cut: most projects do not.
	if r.Category == inventory.Blocked || r.Category == inventory.NeedsAttention {
		if probe := (projectItem{ID: p.ID, Category: r.Category, Tier: r.Tier, Score: r.Score}); a.flagged.wants(probe) {
			a.flagged.offer(item())
		}
	}
	if exportSize >= 0 {
		if probe := (projectItem{ID: p.ID, ExportSize: exportSize}); a.largest.wants(probe) {
			a.largest.offer(item())
		}
	}

	g := a.groupByID[p.GroupID]
	if g == nil {
		// A project whose group record is missing still counts under its namespace.
		g = &groupAgg{ID: p.GroupID, Path: p.GroupFullPath, personal: p.NamespaceKind == "user"}
		a.groupByID[p.GroupID] = g
	}
	g.Direct++
	g.tiers[tierIndex(r.Tier)]++
	switch r.Category {
	case inventory.Ready:
		g.direct[0]++
	case inventory.NeedsAttention:
		g.direct[1]++
	case inventory.Blocked:
		g.direct[2]++
	}
	if exportSize > 0 {
		g.directSize += exportSize
	}
	if st := p.Statistics; st != nil {
		g.directStorage += st.StorageSize
		g.directParts.add(storageOf(st))
	} else {
		g.directUnknown++
	}
}

// rollUp adds every group's direct counts to itself and its ancestors, and returns
// the groups with the most projects, subgroups included.
func (a *aggregate) rollUp(limit int) []*groupAgg {
	for _, g := range a.groupByID {
		g.Projects, g.Ready, g.NeedsAttention, g.Blocked, g.ExportSize, g.Storage, g.UnknownSize = 0, 0, 0, 0, 0, 0, 0
	}
	for _, g := range a.groupByID {
		// The depth bound guards against a parent cycle in corrupt data.
		for anc, depth := g, 0; anc != nil && depth < 100; anc, depth = a.groupByID[anc.ParentID], depth+1 {
			anc.Projects += g.Direct
			anc.Ready += g.direct[0]
			anc.NeedsAttention += g.direct[1]
			anc.Blocked += g.direct[2]
			anc.ExportSize += g.directSize
			anc.Storage += g.directStorage
			anc.UnknownSize += g.directUnknown
			if anc.ParentID == 0 || anc.ParentID == anc.ID {
				break
			}
		}
	}
	all := slices.Collect(maps.Values(a.groupByID))
	slices.SortFunc(all, func(x, y *groupAgg) int {
		return cmp.Or(cmp.Compare(y.Projects, x.Projects), cmp.Compare(x.Path, y.Path), cmp.Compare(x.ID, y.ID))
	})
	return all[:min(limit, len(all))]
}

func (a *aggregate) summary(run inventory.Run, apiCalls int64, now time.Time) inventory.Summary {
	status := run.Status
	switch status {
	case "", inventory.RunRunning, inventory.RunExporting:
		status = inventory.RunSucceeded
	}
	finished := run.FinishedAt
	if finished.IsZero() {
		finished = now
	}
	roots := run.RootGroups
	if roots == nil {
		roots = []string{}
	}
	return inventory.Summary{
		RunID:          run.ID,
		GitLabURL:      run.GitLabURL,
		RootGroups:     roots,
		StartedAt:      run.StartedAt.UTC(),
		FinishedAt:     finished.UTC(),
		Groups:         a.groups,
		Projects:       a.projects,
		APICalls:       apiCalls,
		Errors:         a.withErrors,
		FailedGroups:   a.failedGroups,
		FailedProjects: a.byStatus[inventory.StatusError] + a.byStatus[inventory.StatusForbidden],
		ByReadiness:    maps.Clone(a.byReadiness),
		ByTier:         maps.Clone(a.byTier),
		MigrationPath:  strings.Join(slices.Sorted(maps.Keys(a.paths)), ","),
		ByStatus:       maps.Clone(a.byStatus),
		BySizeClass:    maps.Clone(a.bySize),
		Status:         status,
		Stale:          a.stale,
		Instance:       run.Instance,
	}
}

var categoryRank = map[string]int{inventory.Blocked: 2, inventory.NeedsAttention: 1}

// flaggedLess orders flagged projects from least to most urgent: needs_attention
// before blocked, then by tier (settings before ci before data), lower score first,
// higher ID first (so that ties keep low IDs).
func flaggedLess(x, y projectItem) bool {
	return cmp.Or(
		cmp.Compare(categoryRank[x.Category], categoryRank[y.Category]),
		cmp.Compare(readiness.TierRank(y.Tier), readiness.TierRank(x.Tier)),
		cmp.Compare(x.Score, y.Score),
		cmp.Compare(y.ID, x.ID),
	) < 0
}

// effortLabel is a verdict's effort for the report, e.g. "M (8 h)".
func effortLabel(r *inventory.Readiness) string {
	if r.Effort == "" {
		return ""
	}
	return r.Effort + " (" + strconv.FormatInt(r.EffortHours, 10) + " h)"
}

func largestLess(x, y projectItem) bool {
	return cmp.Or(cmp.Compare(x.ExportSize, y.ExportSize), cmp.Compare(y.ID, x.ID)) < 0
}

// topN keeps the n greatest items offered, by less, in a min-heap.
type topN[T any] struct {
	n     int
	items []T
	less  func(a, b T) bool
}

func newTopN[T any](n int, less func(a, b T) bool) *topN[T] {
	return &topN[T]{n: n, less: less}
}

// wants reports whether x would be kept.
func (t *topN[T]) wants(x T) bool {
	return len(t.items) < t.n || t.less(t.items[0], x)
}

func (t *topN[T]) offer(x T) {
	switch {
	case len(t.items) < t.n:
		heap.Push(t, x)
	case t.less(t.items[0], x):
		t.items[0] = x
		heap.Fix(t, 0)
	}
}

// sorted returns the kept items, greatest first.
func (t *topN[T]) sorted() []T {
	out := slices.Clone(t.items)
	slices.SortFunc(out, func(a, b T) int {
		switch {
		case t.less(b, a):
			return -1
		case t.less(a, b):
			return 1
		}
		return 0
	})
	return out
}

func (t *topN[T]) Len() int           { return len(t.items) }
func (t *topN[T]) Less(i, j int) bool { return t.less(t.items[i], t.items[j]) }
func (t *topN[T]) Swap(i, j int)      { t.items[i], t.items[j] = t.items[j], t.items[i] }
func (t *topN[T]) Push(x any)         { t.items = append(t.items, x.(T)) }
func (t *topN[T]) Pop() any {
	x := t.items[len(t.items)-1]
	t.items = t.items[:len(t.items)-1]
	return x
}

// findingCount is one row of the report's findings table.
type findingCount struct {
	readiness.Rule
	Projects int
}

// topFindings returns the finding codes by tier, blockers first, then by descending
// number of projects.
func (a *aggregate) topFindings() []findingCount {
	out := make([]findingCount, 0, len(a.findings))
	for code, n := range a.findings {
		r, ok := readiness.RuleFor(code)
		if !ok {
			r = readiness.Rule{Code: code, Tier: readiness.TierInfo, Title: code}
		}
		out = append(out, findingCount{Rule: r, Projects: n})
	}
	slices.SortFunc(out, func(x, y findingCount) int {
		return cmp.Or(cmp.Compare(readiness.TierRank(x.Tier), readiness.TierRank(y.Tier)),
			cmp.Compare(y.Projects, x.Projects), cmp.Compare(x.Code, y.Code))
	})
	return out
}
