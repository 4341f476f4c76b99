package export

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

func TestAgeBucket(t *testing.T) {
	asOf := t0
	tests := []struct {
		name     string
		activity time.Time
		want     int
	}{
		{"an hour ago", asOf.Add(-time.Hour), age30d},
		{"after the run's start", asOf.Add(time.Hour), age30d},
		{"just under 30 days", asOf.Add(-30*day + time.Second), age30d},
		{"30 days", asOf.Add(-30 * day), age90d},
		{"89 days", asOf.Add(-89 * day), age90d},
		{"90 days", asOf.Add(-90 * day), age1y},
		{"364 days", asOf.Add(-364 * day), age1y},
		{"365 days", asOf.Add(-365 * day), age2y},
		{"730 days", asOf.Add(-730 * day), ageOlder},
		{"ten years", asOf.Add(-3650 * day), ageOlder},
		{"never given", time.Time{}, ageUnknown},
	}
	for _, tt := range tests {
		if got := ageBucket(tt.activity, asOf); got != tt.want {
			t.Errorf("%s: bucket %q, want %q", tt.name, ageLabels[got], ageLabels[tt.want])
		}
	}
	if got := ageBucket(t0, time.Time{}); got != ageUnknown {
		t.Errorf("without a reference time: bucket %q, want unknown", ageLabels[got])
	}
}

// plannerEstate is a small inventory for the report's planner sections: two
// top-level groups (one with a subgroup), a personal project, unknown statistics and
// activity, and dependency edges of several kinds.
func plannerEstate() ([]inventory.Group, []inventory.Project) {
	groups := []inventory.Group{
		{ID: 10, FullPath: "acme", ScanStatus: inventory.StatusComplete},
		{ID: 11, ParentID: 10, FullPath: "acme/sub", ScanStatus: inventory.StatusComplete},
		{ID: 20, FullPath: "beta", ScanStatus: inventory.StatusComplete},
		{ID: 30, FullPath: "gamma", ScanStatus: inventory.StatusComplete},
	}
	mk := func(id, group int64, path string, activity time.Time, st *inventory.Statistics) inventory.Project {
		p := project(id, path, 0)
		p.GroupID, p.GroupFullPath, p.NamespaceKind = group, filepath.Dir(path), "group"
		p.LastActivityAt, p.Statistics = activity, st
		r := readiness.Assess(p, gei)
		p.Readiness = &r
		return p
	}
	stats := func(repo, lfs, registry, packages int64) *inventory.Statistics {
		return &inventory.Statistics{RepositorySize: repo, LFSObjectsSize: lfs, ContainerRegistrySize: registry,
			PackagesSize: packages, StorageSize: repo + lfs + registry + packages}
	}
	a := mk(1, 10, "acme/a", t0.Add(-time.Hour), stats(10*mib, 1*mib, 2*mib, 3*mib))
	b := mk(2, 11, "acme/sub/b", t0.Add(-45*day), stats(5*mib, 0, 0, 1*mib))
	b.Fork, b.ForkedFrom = true, "beta/lib"
	c := mk(3, 11, "acme/sub/c", t0.Add(-200*day), stats(41<<30, 0, 7*mib, 0)) // blocked on GEI
	c.Features.HasSubmodules, c.Features.Submodules = new(true), []string{"beta/lib", "acme/a"}
	c.Features.HasCI, c.Features.CI = new(true), &inventory.CI{IncludeProjects: []string{"beta/lib"}}
	lib := mk(4, 20, "beta/lib", t0.Add(-400*day), nil)
	old := mk(5, 20, "beta/old", t0.Add(-800*day), stats(1*mib, 0, 0, 0))
	tool := mk(6, 5000, "alice/tool", time.Time{}, stats(2*mib, 0, 0, 0))
	tool.NamespaceKind = "user"
	tool.Features.HasSubmodules, tool.Features.Submodules = new(true), []string{"https://github.com/x/y.git"}
	none := mk(7, 20, "beta/none", t0.Add(time.Hour), nil)
	hidden := mk(8, 30, "gamma/hidden", t0.Add(-60*day), nil) // a group whose size is all unknown
	for _, p := range []*inventory.Project{&c, &tool} {       // reassess with the dependencies set
		r := readiness.Assess(*p, gei)
		p.Readiness = &r
	}
	return groups, []inventory.Project{a, b, c, lib, old, tool, none, hidden}
}

const mib = 1 << 20

func writePlannerReport(t *testing.T, prev bool) (dir string, doc *html.Node, projects []inventory.Project) {
	t.Helper()
	return writePlannerReportWith(t, prev, nil)
}

// writePlannerReportWith writes plannerEstate's report after change, when not nil,
// has altered its projects (their owners, say).
func writePlannerReportWith(t *testing.T, prev bool, change func([]inventory.Project)) (dir string, doc *html.Node, projects []inventory.Project) {
	t.Helper()
	groups, projects := plannerEstate()
	if change != nil {
		change(projects)
	}
	src := &memSource{
		groups:   map[string][]inventory.Group{"r1": groups, "r0": groups},
		projects: map[string][]inventory.Project{"r1": projects, "r0": projects[:3]},
		calls:    map[string]int64{"r1": 70},
	}
	run := testRun("r1")
	run.StaleAfter = 365 * day
	var p *inventory.Run
	if prev {
		r0 := testRun("r0")
		p = &r0
	}
	dir, _ = writeDir(t, src, run, p)
	dir = filepath.Join(dir, "runs/r1")
	doc, err := html.Parse(strings.NewReader(string(readFile(t, filepath.Join(dir, ReportHTML)))))
	if err != nil {
		t.Fatalf("parse report: %v", err)
	}
	return dir, doc, projects
}

// TestReportActivityHistogram: the histogram's bars are the projects' activity ages
// at the run's start; no activity is "unknown", not the youngest or oldest bucket.
func TestReportActivityHistogram(t *testing.T) {
	_, doc, projects := writePlannerReport(t, false)
	want := map[string]int{}
	for _, l := range ageLabels {
		want[l] = 0
	}
	stale, staleUnknown := 0, 0
	for _, p := range projects {
		want[ageLabels[ageBucket(p.LastActivityAt, t0)]]++
		switch {
		case p.LastActivityAt.IsZero():
			staleUnknown++
		case p.LastActivityAt.Before(t0.Add(-365 * day)):
			stale++
		}
	}
	got := chartCounts(t, nextAfter(t, doc, "activity", "svg"))
	for label, n := range want {
		if got[label] != n {
			t.Errorf("activity %q: %d projects in the report, %d in the data", label, got[label], n)
		}
	}
	// Spelled out once, so the derivation above cannot hide a bucketing error.
	if fixed := map[string]int{"< 30 days": 2, "30–90 days": 2, "90 days–1 year": 1, "1–2 years": 1, "over 2 years": 1, "unknown": 1}; !mapsEqual(got, fixed) {
		t.Errorf("activity histogram %v, want %v", got, fixed)
	}
	note := textOf(nextAfter(t, doc, "activity", "p"))
	for _, s := range []string{strconv.Itoa(stale) + " projects are stale", "365 days", strconv.Itoa(staleUnknown) + " unknown"} {
		if !strings.Contains(note, s) {
			t.Errorf("activity note %q does not say %q", note, s)
		}
	}
}

// TestReportTopLevelGroups: each top-level row sums its subtree (subgroups included),
// personal projects share a row, and projects without statistics are counted as
// unknown, not as 0 bytes.
func TestReportTopLevelGroups(t *testing.T) {
	_, doc, projects := writePlannerReport(t, false)
	type row struct {
		projects, ready, attention, blocked, unknown int
		storage                                      storage
		tiers                                        map[string]int
	}
	want := map[string]*row{}
	for _, p := range projects {
		key := strings.SplitN(p.PathWithNamespace, "/", 2)[0]
		if p.NamespaceKind == "user" {
			key = personalRow
		}
		r := want[key]
		if r == nil {
			r = &row{tiers: map[string]int{}}
			want[key] = r
		}
		r.projects++
		switch p.Readiness.Category {
		case inventory.Ready:
			r.ready++
		case inventory.NeedsAttention:
			r.attention++
		case inventory.Blocked:
			r.blocked++
		}
		r.tiers[tierLabels[p.Readiness.Tier]]++
		if p.Statistics == nil {
			r.unknown++
			continue
		}
		st := p.Statistics
		r.storage.add(storage{st.RepositorySize, st.LFSObjectsSize, st.ContainerRegistrySize, st.PackagesSize})
	}
	if len(want) != 4 || want["acme"].projects != 3 || want["beta"].unknown != 2 || want["gamma"].unknown != 1 || want[personalRow] == nil {
		t.Fatalf("the estate is not what the test expects: %+v", want)
	}

	rows := tableRows(nextAfter(t, doc, "top-groups", "table"))
	if len(rows) != len(want) {
		t.Fatalf("%d top-level rows, want %d", len(rows), len(want))
	}
	for _, cells := range rows {
		name := textOf(cells[0])
		w := want[name]
		if w == nil {
			t.Errorf("unexpected top-level row %q", name)
			continue
		}
		ints := []int{w.projects, w.blocked, w.attention, w.ready}
		for i, n := range ints {
			if got := textOf(cells[1+i]); got != strconv.Itoa(n) {
				t.Errorf("%s column %d = %q, want %d", name, 1+i, got, n)
			}
		}
		tiers := map[string]int{}
		for _, title := range titles(cells[5]) {
			label, n := splitTitle(t, title)
			tiers[label] = n
		}
		if !mapsEqual(tiers, w.tiers) {
			t.Errorf("%s tiers %v, want %v", name, tiers, w.tiers)
		}
		parts := map[string]string{}
		for _, title := range titles(cells[6]) {
			label, value, _ := strings.Cut(title, ": ")
			parts[label] = value
		}
		for label, n := range map[string]int64{"repository": w.storage.Repository, "LFS": w.storage.LFS, "registry": w.storage.Registry, "packages": w.storage.Packages} {
			if n == 0 {
				if _, ok := parts[label]; ok {
					t.Errorf("%s: a %s segment for 0 bytes", name, label)
				}
				continue
			}
			if got := parts[label]; got != readiness.Bytes(n).String() {
				t.Errorf("%s %s = %q, want %q", name, label, got, readiness.Bytes(n).String())
			}
		}
		wantTotal := readiness.Bytes(w.storage.Total()).String()
		if w.unknown == w.projects {
			wantTotal = "unknown"
		}
		if got := textOf(cells[7]); got != wantTotal {
			t.Errorf("%s storage %q, want %q", name, got, wantTotal)
		}
		if got := textOf(cells[8]); got != strconv.Itoa(w.unknown) {
			t.Errorf("%s size unknown %q, want %d", name, got, w.unknown)
		}
	}
	if first := textOf(rows[0][0]); first != "acme" {
		t.Errorf("first row %q, want acme (most projects)", first)
	}
}

// TestReportDependencies: the most depended-on projects count the projects that
// name them (once per project, whatever the number of kinds) and the edges by kind.
func TestReportDependencies(t *testing.T) {
	dir, doc, projects := writePlannerReport(t, false)
	edges := 0
	for _, p := range projects {
		edges += len(inventory.Dependencies(&p))
	}
	csvRows := readCSV(t, filepath.Join(dir, DependenciesCSV))
	if len(csvRows) != edges || edges != 5 {
		t.Fatalf("dependencies.csv has %d edges, the data %d, the test expects 5", len(csvRows), edges)
	}
	note := textOf(nextAfter(t, doc, "dependencies", "p"))
	for _, s := range []string{"5 edges from 3 projects to 3 targets", "1 edges point outside", "fork 1, submodule 3, ci_include 1"} {
		if !strings.Contains(note, s) {
			t.Errorf("dependencies note %q does not say %q", note, s)
		}
	}
	var got [][3]string
	for _, cells := range tableRows(nextAfter(t, doc, "dependencies", "table")) {
		got = append(got, [3]string{textOf(cells[0]), textOf(cells[1]), textOf(cells[2])})
	}
	want := [][3]string{
		{"beta/lib", "2", "fork 1, submodule 1, ci_include 1"},
		{"acme/a", "1", "submodule 1"},
		{"https://github.com/x/y.git (outside this GitLab)", "1", "submodule 1"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("most depended on:\n got %q\nwant %q", got, want)
	}
}

// TestReportSelfContained: the report is well-formed HTML that loads nothing: no
// script, stylesheet, image, frame or font; its links are the exports next to it
// (each of which exists), in-page anchors, or project pages of the scanned GitLab.
func TestReportSelfContained(t *testing.T) {
	for _, tt := range []struct {
		prev   bool
		owners bool // owners collected, some of them hostile usernames
	}{{false, false}, {true, false}, {false, true}} {
		t.Run("previous run "+strconv.FormatBool(tt.prev)+" owners "+strconv.FormatBool(tt.owners), func(t *testing.T) {
			prev := tt.prev
			var change func([]inventory.Project)
			if tt.owners {
				change = setHostileOwners
			}
			dir, doc, _ := writePlannerReportWith(t, prev, change)
			checkWellFormed(t, string(readFile(t, filepath.Join(dir, ReportHTML))))
			ids := map[string]bool{}
			var links []string
			walk(doc, func(n *html.Node) {
				if n.Type == html.TextNode && n.Parent != nil && n.Parent.Data == "style" {
					for _, bad := range []string{"url(", "@import", "@font-face"} {
						if strings.Contains(n.Data, bad) {
							t.Errorf("style loads something: %q", bad)
						}
					}
				}
				if n.Type != html.ElementNode {
					return
				}
				switch n.Data {
				case "script", "link", "img", "iframe", "object", "embed", "image", "use", "audio", "video", "source", "form":
					t.Errorf("report has a <%s> element", n.Data)
				}
				for _, a := range n.Attr {
					switch strings.ToLower(a.Key) {
					case "id":
						ids[a.Val] = true
					case "href":
						links = append(links, a.Val)
					case "src", "srcset", "xlink:href", "action", "formaction", "poster", "background", "style":
						t.Errorf("<%s %s=%q>: loads or styles from outside", n.Data, a.Key, a.Val)
					}
				}
			})
			exports := 0
			for _, l := range links {
				switch {
				case strings.HasPrefix(l, "#"):
					if !ids[l[1:]] {
						t.Errorf("anchor %s points nowhere", l)
					}
				case strings.HasPrefix(l, "https://gitlab.example.com/"):
					// a project's page in the scanned GitLab: a link, nothing loaded
				case !strings.ContainsAny(l, ":/"):
					exports++
					if _, err := os.Stat(filepath.Join(dir, l)); err != nil {
						t.Errorf("link to %s, which is not an export of the run: %v", l, err)
					}
				default:
					t.Errorf("external link %q", l)
				}
			}
			if exports == 0 {
				t.Error("no link to the exports")
			}
			hasDiff := slices.Contains(links, DiffJSON)
			if hasDiff != prev {
				t.Errorf("link to diff.json %v, want %v (only with a previous run)", hasDiff, prev)
			}
		})
	}
}

// checkWellFormed tokenizes page and checks that every element is closed in order.
func checkWellFormed(t *testing.T, page string) {
	t.Helper()
	void := map[string]bool{"meta": true, "br": true, "hr": true, "img": true, "input": true, "link": true, "wbr": true}
	z := html.NewTokenizer(strings.NewReader(page))
	var open []string
	for {
		switch z.Next() {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatalf("tokenize: %v", z.Err())
			}
			if len(open) > 0 {
				t.Errorf("unclosed elements at the end: %v", open)
			}
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			if !void[string(name)] {
				open = append(open, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(open) == 0 || open[len(open)-1] != string(name) {
				t.Fatalf("</%s> closes %v", name, open)
			}
			open = open[:len(open)-1]
		}
	}
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

// nextAfter returns the first tag element after the element with id, in document order.
func nextAfter(t *testing.T, doc *html.Node, id, tag string) *html.Node {
	t.Helper()
	var order []*html.Node
	walk(doc, func(n *html.Node) { order = append(order, n) })
	start := slices.IndexFunc(order, func(n *html.Node) bool {
		return n.Type == html.ElementNode && slices.Contains(n.Attr, html.Attribute{Key: "id", Val: id})
	})
	if start < 0 {
		t.Fatalf("no element with id %q", id)
	}
	for _, n := range order[start+1:] {
		if n.Type == html.ElementNode && n.Data == tag {
			return n
		}
	}
	t.Fatalf("no <%s> after #%s", tag, id)
	return nil
}

func textOf(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode && (c.Parent == nil || c.Parent.Data != "title") {
			b.WriteString(c.Data)
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

// titles are the tooltips of an SVG's parts.
func titles(n *html.Node) []string {
	var out []string
	walk(n, func(c *html.Node) {
		if c.Type == html.ElementNode && c.Data == "title" && c.FirstChild != nil {
			out = append(out, c.FirstChild.Data)
		}
	})
	return out
}

func splitTitle(t *testing.T, title string) (string, int) {
	t.Helper()
	label, count, ok := strings.Cut(title, ": ")
	n, err := strconv.Atoi(count)
	if !ok || err != nil {
		t.Fatalf("bar title %q is not label: count", title)
	}
	return label, n
}

// chartCounts reads a bar chart's "label: count" tooltips.
func chartCounts(t *testing.T, svg *html.Node) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, title := range titles(svg) {
		label, n := splitTitle(t, title)
		out[label] = n
	}
	return out
}

// tableRows returns the cells of a table's body rows.
func tableRows(table *html.Node) [][]*html.Node {
	var rows [][]*html.Node
	walk(table, func(n *html.Node) {
		if n.Type != html.ElementNode || n.Data != "tr" || n.Parent == nil || n.Parent.Data != "tbody" {
			return
		}
		var cells []*html.Node
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == "td" {
				cells = append(cells, c)
			}
		}
		rows = append(rows, cells)
	})
	return rows
}

func mapsEqual(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// TestStack: a stacked bar's segments are adjacent, fill its length, and a part too
// small for a pixel still shows.
func TestStack(t *testing.T) {
	tests := []struct {
		width  int
		total  int64
		parts  []int64
		widths []int
	}{
		{180, 3, []int64{1, 1, 1}, []int{60, 60, 60}},
		{180, 1000, []int64{999, 0, 1}, []int{179, 1}},
		{180, 7, []int64{3, 4}, []int{77, 103}},
		{0, 5, []int64{5}, []int{1}},
		{180, 0, []int64{0}, nil},
	}
	for _, tt := range tests {
		classes := make([]string, len(tt.parts))
		segs := stack(tt.width, tt.total, tt.parts, classes, classes)
		var widths []int
		x := 0
		for _, s := range segs {
			if s.X != x && tt.width > 0 {
				t.Errorf("stack(%d, %v): segment at %d, want %d (adjacent)", tt.width, tt.parts, s.X, x)
			}
			x = s.X + s.Width
			widths = append(widths, s.Width)
		}
		if !slices.Equal(widths, tt.widths) {
			t.Errorf("stack(%d, %d, %v) widths %v, want %v", tt.width, tt.total, tt.parts, widths, tt.widths)
		}
	}
}
