package export

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

//go:embed report.html.tmpl
var reportSource string

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"bytes": func(n int64) string {
		if n < 0 {
			return "unknown"
		}
		return readiness.Bytes(n).String()
	},
	"deref": func(n *int64) int64 {
		if n == nil {
			return -1
		}
		return *n
	},
	"codes":   func(s string) string { return strings.ReplaceAll(s, ";", ", ") },
	"label":   func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"percent": func(share float64) string { return strconv.FormatFloat(share*100, 'f', 0, 64) + "%" },
	"is":      inventory.Is,
}).Parse(reportSource))

// reportData is everything report.html shows; it is built from the aggregates only.
type reportData struct {
	Summary         inventory.Summary
	Thresholds      readiness.Thresholds // the defaults, for the size class caption
	GeneratedAt     string
	StartedAt       string
	FinishedAt      string
	Duration        string
	CallsPerProject string
	ExportSize      int64
	RepoSize        int64
	UnknownSize     int

	Readiness chart
	Tiers     chart // projects by verdict tier
	Path      readiness.Path
	Sizes     chart
	Statuses  chart

	Findings []findingRow

	Flagged      []projectItem
	FlaggedTotal int
	Largest      []projectItem
	Groups       []*groupAgg
	GroupsTotal  int

	Changes *changes // nil without a previous run

	Exports        []exportLink // the files next to the report, linked from its sections
	Activity       chart        // projects by last_activity_at age
	AsOf           string       // what ages are measured from
	StaleAfter     string       // STALE_AFTER of the run, e.g. "365 days"; "" when not recorded
	StaleUnknown   int
	TopGroups      []topGroupRow
	TopGroupsTotal int
	Deps           depsData
	Owners         ownersData
}

// exportLink is an export file the report links to, relative to the report.
type exportLink struct{ Name, What string }

// topGroupRow is a top-level group with its bars laid out.
type topGroupRow struct {
	*topGroup
	TierBar, SizeBar stackBar
}

// stackBar is a stacked bar of Width px.
type stackBar struct {
	Width    int
	Segments []segment
}

// segment is one part of a stacked bar, in px.
type segment struct {
	X, Width int
	Class    string
	Title    string
}

type depsData struct {
	Edges, External, From, Targets int
	ByKind                         []kindCount
	Top                            []dependentRow
}

type kindCount struct {
	Kind  string
	Count int
}

type dependentRow struct {
	*dependent
	Kinds string // "submodule 3, ci_include 1"
	URL   string // the project in GitLab; "" for a target outside it
}

// Report lists of the planner sections.
const (
	maxTopGroups  = 50
	maxDependents = 20
	stackWidth    = 180 // px of a table row's stacked bar
)

// changes is the report's "Since last run" section: diff.json's counts and the first
// entries of each list.
type changes struct {
	PreviousRunID string
	Listed        int // entries shown per kind at most
	Kinds         []changeKind
}

type changeKind struct {
	Key, Title string
	Count      int
	Entries    []diffEntry
}

// tierLabels name the verdict tiers in the report's chart.
var tierLabels = map[string]string{
	readiness.TierBlocker:  "blocker",
	readiness.TierData:     "data to move",
	readiness.TierCI:       "CI to convert",
	readiness.TierSettings: "settings",
	readiness.TierNone:     "nothing to do",
}

type findingRow struct {
	findingCount
	Percent string
}

// chart is a horizontal bar chart drawn as inline SVG.
type chart struct {
	Height int
	Bars   []bar
}

type bar struct {
	Label   string
	Count   int
	Percent string
	Class   string
	Y       int // top of the row
	Width   int // bar length in px, 0..chartBarWidth
}

// Chart geometry, in px.
const (
	chartRow      = 28
	chartBarWidth = 200
)

// newChart lays out bars whose length is their share of total, so that charts of
// parts of the estate read as parts of the whole.
func newChart(total int, bars []bar) chart {
	for i := range bars {
		bars[i].Y = i * chartRow
		bars[i].Percent = percent(bars[i].Count, total)
		if total > 0 {
			bars[i].Width = min(bars[i].Count*chartBarWidth/total, chartBarWidth)
		}
		if bars[i].Count > 0 {
			bars[i].Width = max(bars[i].Width, 2) // a non-zero count stays visible
		}
	}
	return chart{Height: len(bars) * chartRow, Bars: bars}
}

func percent(n, total int) string {
	if total == 0 {
		return "0%"
	}
	p := float64(n) * 100 / float64(total)
	if p > 0 && p < 0.1 {
		return "<0.1%"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}

func (w *writer) report(now time.Time) reportData {
	s := w.summary
	a := w.agg
	d := reportData{
		Summary:     s,
		GeneratedAt: now.UTC().Format(time.RFC3339),
		StartedAt:   timestamp(s.StartedAt),
		FinishedAt:  timestamp(s.FinishedAt),
		ExportSize:  a.exportSize,
		RepoSize:    a.repoSize,
		UnknownSize: a.unknownSize,
		Thresholds:  readiness.DefaultThresholds(),
	}
	if !s.StartedAt.IsZero() && s.FinishedAt.After(s.StartedAt) {
		d.Duration = s.FinishedAt.Sub(s.StartedAt).Round(time.Second).String()
	}
	d.CallsPerProject = "n/a"
	if s.Projects > 0 {
		d.CallsPerProject = strconv.FormatFloat(float64(s.APICalls)/float64(s.Projects), 'f', 1, 64)
	}

	d.Readiness = newChart(s.Projects, []bar{
		{Label: "ready", Count: s.ByReadiness[inventory.Ready], Class: "ready"},
		{Label: "needs attention", Count: s.ByReadiness[inventory.NeedsAttention], Class: "attention"},
		{Label: "blocked", Count: s.ByReadiness[inventory.Blocked], Class: "blocked"},
	})
	tierBars := make([]bar, 0, len(readiness.Tiers)+1)
	for _, t := range append(slices.Clone(readiness.Tiers[:len(readiness.Tiers)-1]), readiness.TierNone) {
		tierBars = append(tierBars, bar{Label: tierLabels[t], Count: s.ByTier[t], Class: "tier-" + t})
	}
	if n := s.ByTier[unknownTier]; n > 0 {
		tierBars = append(tierBars, bar{Label: "unknown", Count: n, Class: "unknown"})
	}
	d.Tiers = newChart(s.Projects, tierBars)
	d.Path, _ = readiness.PathFor(s.MigrationPath) // several paths: none named
	sizeBars := []bar{
		{Label: readiness.SizeS, Count: s.BySizeClass[readiness.SizeS], Class: "size"},
		{Label: readiness.SizeM, Count: s.BySizeClass[readiness.SizeM], Class: "size"},
		{Label: readiness.SizeL, Count: s.BySizeClass[readiness.SizeL], Class: "size"},
		{Label: readiness.SizeXL, Count: s.BySizeClass[readiness.SizeXL], Class: "size"},
	}
	if n := s.BySizeClass[unknownSizeClass]; n > 0 {
		sizeBars = append(sizeBars, bar{Label: "unknown", Count: n, Class: "unknown"})
	}
	d.Sizes = newChart(s.Projects, sizeBars)
	var statusBars []bar
	for _, st := range []string{inventory.StatusComplete, inventory.StatusPartial, inventory.StatusForbidden, inventory.StatusNotFound, inventory.StatusError} {
		if n := s.ByStatus[st]; n > 0 {
			class := "unknown"
			if st == inventory.StatusComplete {
				class = "ready"
			}
			statusBars = append(statusBars, bar{Label: strings.ReplaceAll(st, "_", " "), Count: n, Class: class})
		}
	}
	d.Statuses = newChart(s.Projects, statusBars)

	for _, f := range a.topFindings() {
		d.Findings = append(d.Findings, findingRow{findingCount: f, Percent: percent(f.Projects, s.Projects)})
	}
	d.Flagged = a.flagged.sorted()
	d.FlaggedTotal = s.ByReadiness[inventory.Blocked] + s.ByReadiness[inventory.NeedsAttention]
	d.Largest = a.largest.sorted()
	d.Groups = a.rollUp(maxGroups)
	d.GroupsTotal = len(a.groupByID)
	if w.diff != nil {
		d.Changes = w.diff.changes()
	}
	w.plannerSections(&d)
	return d
}

// plannerSections fills what a planner looks at: activity ages, readiness, storage
// and owners by top-level group, the most depended-on projects and the export links.
func (w *writer) plannerSections(d *reportData) {
	a := w.agg
	d.Exports = []exportLink{
		{ProjectsCSV, "every project, one row each"}, {ProjectsJSONL, "every project, full profile"},
		{GroupsCSV, "groups with subtree totals"}, {DependenciesCSV, "dependency edges"},
		{InventoryXLSX, "workbook: every export as a sheet"}, {SummaryJSON, "run totals"},
	}
	if w.diff != nil {
		d.Exports = append(d.Exports, exportLink{DiffJSON, "changes since the previous run"})
	}
	ageClasses := [nAges]string{"ready", "ready", "size", "attention", "blocked", "unknown"}
	bars := make([]bar, 0, nAges)
	for i, n := range a.activity {
		if i == ageUnknown && n == 0 {
			continue
		}
		bars = append(bars, bar{Label: ageLabels[i], Count: n, Class: ageClasses[i]})
	}
	d.Activity = newChart(a.projects, bars)
	if !a.asOf.IsZero() {
		d.AsOf = a.asOf.UTC().Format(time.DateOnly)
	}
	if w.run.StaleAfter > 0 {
		d.StaleAfter = staleAfterLabel(w.run.StaleAfter)
	}
	d.StaleUnknown = a.staleUnknown
	d.Owners = a.owners.data()

	top := a.topLevel()
	d.TopGroupsTotal = len(top)
	top = top[:min(len(top), maxTopGroups)]
	var largest int64
	for _, g := range top {
		largest = max(largest, g.Storage.Total())
	}
	for _, g := range top {
		d.TopGroups = append(d.TopGroups, topGroupRow{topGroup: g, TierBar: tierBar(g), SizeBar: sizeBar(g.Storage, largest)})
	}

	dep := &a.deps
	d.Deps = depsData{Edges: dep.edges, External: dep.external, From: dep.from, Targets: len(dep.targets)}
	for _, k := range []string{inventory.DepFork, inventory.DepSubmodule, inventory.DepCIInclude, inventory.DepCITrigger, inventory.DepCIConfig} {
		if n := dep.byKind[k]; n > 0 {
			d.Deps.ByKind = append(d.Deps.ByKind, kindCount{k, n})
		}
	}
	base := strings.TrimRight(w.run.GitLabURL, "/")
	for _, t := range dep.top(maxDependents) {
		r := dependentRow{dependent: t}
		var kinds []string
		for _, k := range d.Deps.ByKind {
			if n := t.ByKind[k.Kind]; n > 0 {
				kinds = append(kinds, k.Kind+" "+strconv.Itoa(n))
			}
		}
		r.Kinds = strings.Join(kinds, ", ")
		if !t.External && base != "" {
			r.URL = base + "/" + t.Path
		}
		d.Deps.Top = append(d.Deps.Top, r)
	}
}

// staleAfterLabel says STALE_AFTER in days when it is whole days.
func staleAfterLabel(after time.Duration) string {
	if after%day == 0 {
		return strconv.FormatInt(int64(after/day), 10) + " days"
	}
	return after.String()
}

// stack lays out parts of total as adjacent segments of a bar width px long;
// cumulative rounding keeps them gapless.
func stack(width int, total int64, parts []int64, classes, titles []string) []segment {
	if total <= 0 {
		return nil
	}
	var out []segment
	var cum int64
	for i, n := range parts {
		x := int(cum * int64(width) / total)
		cum += n
		if n <= 0 {
			continue
		}
		w := max(int(cum*int64(width)/total)-x, 1) // a non-zero part stays visible
		out = append(out, segment{X: x, Width: w, Class: classes[i], Title: titles[i]})
	}
	return out
}

var tierClasses = [nTiers]string{"tier-blocker", "tier-data", "tier-ci", "tier-settings", "tier-none", "unknown"}

func tierBar(g *topGroup) stackBar {
	parts := make([]int64, nTiers)
	titles := make([]string, nTiers)
	for i, n := range g.Tiers {
		parts[i] = int64(n)
		titles[i] = tierLabels[tierOrder[i]] + ": " + strconv.Itoa(n)
	}
	titles[nTiers-1] = "unknown: " + strconv.Itoa(g.Tiers[nTiers-1])
	return stackBar{stackWidth, stack(stackWidth, int64(g.Projects), parts, tierClasses[:], titles)}
}

// sizeBar draws a group's storage by part, its length relative to the largest
// group's total.
func sizeBar(s storage, largest int64) stackBar {
	if largest <= 0 {
		return stackBar{Width: stackWidth}
	}
	parts := []int64{s.Repository, s.LFS, s.Registry, s.Packages}
	titles := []string{
		"repository: " + readiness.Bytes(s.Repository).String(), "LFS: " + readiness.Bytes(s.LFS).String(),
		"registry: " + readiness.Bytes(s.Registry).String(), "packages: " + readiness.Bytes(s.Packages).String(),
	}
	length := int(int64(stackWidth) * s.Total() / largest)
	return stackBar{stackWidth, stack(length, s.Total(), parts, []string{"part-repo", "part-lfs", "part-registry", "part-packages"}, titles)}
}

// writeReport renders the report. html/template escapes markup; what escaping
// leaves, control and bidirectional formatting characters (a project name with
// U+202E displays reversed), is stripped from the whole page, so no field can be
// missed. The page is bounded (lists are capped), so it is rendered in memory.
func writeReport(w io.Writer, d reportData) error {
	var buf strings.Builder
	if err := reportTemplate.Execute(&buf, d); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	if _, err := io.WriteString(w, stripUnsafe(buf.String())); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// changes summarizes a finished diff for the report.
func (d *differ) changes() *changes {
	c := &changes{PreviousRunID: d.prevID, Listed: maxChangesListed}
	for k, f := range d.lists {
		c.Kinds = append(c.Kinds, changeKind{Key: changeKinds[k].key, Title: changeKinds[k].title, Count: f.n, Entries: f.first})
	}
	return c
}
