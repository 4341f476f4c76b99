package export

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// ownersByPath sets plannerEstate's owners by project path; a path left out keeps
// nil (unknown), and membersFailed lists the unknown ones whose members step failed.
func ownersByPath(owners map[string][]string, membersFailed ...string) func([]inventory.Project) {
	return func(projects []inventory.Project) {
		for i := range projects {
			p := &projects[i]
			p.Owners = owners[p.PathWithNamespace]
			if slices.Contains(membersFailed, p.PathWithNamespace) {
				p.Errors = append(p.Errors, inventory.ScanError{Step: facts.Members.Name, Status: 403, Message: "403 Forbidden"})
				p.ScanStatus = inventory.StatusPartial
			}
		}
	}
}

// hostile are usernames that would be markup, an attribute break-out or reversed
// text if the report did not escape them.
var hostile = []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, "a&b", "evil\u202Egnp.exe", `'onmouseover='x`}

// setHostileOwners gives plannerEstate's projects hostile owners (and one none, one unknown).
func setHostileOwners(projects []inventory.Project) {
	ownersByPath(map[string][]string{
		"acme/a": hostile, "acme/sub/b": hostile[:1], "acme/sub/c": hostile[1:3], "beta/lib": {},
		"alice/tool": {"alice"}, "beta/none": {hostile[4]}, "gamma/hidden": hostile[2:],
	}, "beta/old")(projects)
}

// ownerCellText is what a listed project's owners cell says, derived from its owners.
func ownerCellText(owners []string) string {
	switch {
	case owners == nil:
		return "unknown"
	case len(owners) == 0:
		return "no owner"
	}
	n := min(len(owners), maxProjectOwners)
	s := strings.Join(owners[:n], ", ")
	if more := len(owners) - n; more > 0 {
		s += " +" + strconv.Itoa(more) + " more"
	}
	return s
}

// TestReportOwners: owners in the three states a run gives them. Not collected is said
// once, with how to collect them, and adds no column; unknown owners are counted as
// unknown, never as "no owner"; a known empty list is flagged as no owner.
func TestReportOwners(t *testing.T) {
	six := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	tests := []struct {
		name    string
		change  func([]inventory.Project)
		notice  string            // the not-collected notice; "" when owners are collected
		card    string            // the no-owner card; "" when there is none
		note    []string          // what the owners note says
		byGroup map[string]string // top-level group -> "owners|other owners|no owner|unknown"
	}{
		{
			name:   "not collected",
			change: nil,
			notice: "Owners were not collected, so the report names no one to contact. Scan with INCLUDE_MEMBERS=true",
		},
		{
			name:   "members step failed everywhere",
			change: ownersByPath(nil, "acme/a", "acme/sub/b", "acme/sub/c", "beta/lib", "beta/old", "alice/tool", "beta/none", "gamma/hidden"),
			notice: "No project's owners are known: the members step failed for 8 of 8 projects",
		},
		{
			name: "some unknown",
			change: ownersByPath(map[string][]string{
				"acme/a": {"alice", "bob"}, "acme/sub/b": {"bob"}, "acme/sub/c": {"bob", "carol"}, "beta/lib": {},
				"alice/tool": {"alice"}, "beta/none": {"dave"},
			}, "beta/old"),
			card: "1 projects with no active Maintainer or Owner; 2 unknown",
			note: []string{"Known for 6 of 8 projects.", "1 projects have no active Maintainer or Owner",
				"2 projects' owners are unknown (the members step failed for 1): counted as unknown, not as without owner."},
			byGroup: map[string]string{
				"acme": "bob (3), alice (1), carol (1)|0|0|0", "beta": "dave (1)|0|1|1",
				"gamma": "none known|0|0|1", personalRow: "alice (1)|0|0|0",
			},
		},
		{
			name: "all known, some none",
			change: ownersByPath(map[string][]string{
				"acme/a": six, "acme/sub/b": {"bob", "bob"}, "acme/sub/c": {"bob", "carol"}, "beta/lib": {}, "beta/old": {},
				"alice/tool": {"alice"}, "beta/none": {"dave"}, "gamma/hidden": {"gina"},
			}),
			card: "2 projects with no active Maintainer or Owner",
			note: []string{"Known for 8 of 8 projects.", "2 projects have no active Maintainer or Owner"},
			byGroup: map[string]string{
				"acme": "bob (3), carol (2), alice (1)|3|0|0", "beta": "dave (1)|0|2|0",
				"gamma": "gina (1)|0|0|0", personalRow: "alice (1)|0|0|0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, doc, projects := writePlannerReportWith(t, false, tt.change)
			page := string(readFile(t, filepath.Join(dir, ReportHTML)))
			collected := tt.notice == ""

			var notices []string
			walk(doc, func(n *html.Node) {
				if n.Type == html.ElementNode && n.Data == "p" && slices.Contains(n.Attr, html.Attribute{Key: "class", Val: "warn"}) &&
					strings.Contains(textOf(n), "owners") {
					notices = append(notices, textOf(n))
				}
			})
			switch {
			case collected && len(notices) > 0:
				t.Errorf("owners are collected, yet the report says %q", notices)
			case !collected && (len(notices) != 1 || !strings.Contains(notices[0], tt.notice)):
				t.Errorf("not-collected notices %q, want one saying %q", notices, tt.notice)
			}
			if n := strings.Count(page, "INCLUDE_MEMBERS"); n != map[bool]int{true: 1}[tt.name == "not collected"] {
				t.Errorf("INCLUDE_MEMBERS named %d times", n)
			}

			var card string
			walk(doc, func(n *html.Node) {
				if n.Type == html.ElementNode && n.Data == "div" && slices.Contains(n.Attr, html.Attribute{Key: "class", Val: "card"}) &&
					strings.Contains(textOf(n), "Maintainer") {
					var parts []string // the value, then what it counts
					for c := n.FirstChild; c != nil; c = c.NextSibling {
						if c.Type == html.ElementNode {
							parts = append(parts, textOf(c))
						}
					}
					card = strings.Join(parts, " ")
				}
			})
			if card != tt.card {
				t.Errorf("owners card %q, want %q", card, tt.card)
			}
			if collected {
				note := textOf(nextAfter(t, doc, "owners", "p"))
				for _, s := range tt.note {
					if !strings.Contains(note, s) {
						t.Errorf("owners note %q does not say %q", note, s)
					}
				}
			}
			checkGroupOwners(t, doc, collected, tt.byGroup)
			checkProjectOwners(t, doc, projects, collected)
		})
	}
}

// checkGroupOwners compares the owners of the top-level groups with want; without
// owners collected there is no such table.
func checkGroupOwners(t *testing.T, doc *html.Node, collected bool, want map[string]string) {
	t.Helper()
	owners := elementByID(t, doc, "owners")
	if got := owners.Data == "h3"; got != collected {
		t.Fatalf("owners by top-level group shown: %v, want %v", got, collected)
	}
	if !collected {
		return
	}
	rows := tableRows(nextAfter(t, doc, "owners", "table"))
	if len(rows) != len(want) {
		t.Fatalf("%d top-level rows, want %d", len(rows), len(want))
	}
	for _, cells := range rows {
		name := textOf(cells[0])
		var got []string
		for _, c := range cells[2:] {
			got = append(got, textOf(c))
		}
		if g := strings.Join(got, "|"); g != want[name] {
			t.Errorf("%s owners %q, want %q", name, g, want[name])
		}
	}
}

// checkProjectOwners checks the owners cell of every flagged and largest project
// against its owners, and that the tables show each state the estate has.
func checkProjectOwners(t *testing.T, doc *html.Node, projects []inventory.Project, collected bool) {
	t.Helper()
	owners := map[string][]string{}
	states := map[string]bool{} // what the estate's listed projects show
	for _, p := range projects {
		owners[p.PathWithNamespace] = p.Owners
	}
	for _, id := range []string{"flagged", "largest"} {
		table := nextAfter(t, doc, id, "table")
		if hasHeader(table, "Owners") != collected {
			t.Fatalf("%s has an owners column: %v, want %v", id, !collected, collected)
		}
		if !collected {
			continue
		}
		for _, cells := range tableRows(table) {
			path := textOf(cells[0])
			o, ok := owners[path]
			if !ok {
				t.Fatalf("%s lists %q, not in the estate", id, path)
			}
			want := ownerCellText(o)
			if got := textOf(cells[len(cells)-1]); got != want {
				t.Errorf("%s %s owners %q, want %q", id, path, got, want)
			}
			states[map[bool]string{true: "unknown"}[o == nil]+map[bool]string{true: "none"}[o != nil && len(o) == 0]] = true
		}
	}
	if collected && len(states) < 2 {
		t.Errorf("the listed projects show owner states %v: the fixture no longer covers them", states)
	}
}

func elementByID(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	var found *html.Node
	walk(doc, func(n *html.Node) {
		if found == nil && n.Type == html.ElementNode && slices.Contains(n.Attr, html.Attribute{Key: "id", Val: id}) {
			found = n
		}
	})
	if found == nil {
		t.Fatalf("no element with id %q", id)
	}
	return found
}

func hasHeader(table *html.Node, text string) bool {
	found := false
	walk(table, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "th" && textOf(n) == text {
			found = true
		}
	})
	return found
}

// TestReportOwnersEscaped: usernames are user input: they show as text, never as
// markup or attributes, and lose the bidirectional controls that would reverse them.
func TestReportOwnersEscaped(t *testing.T) {
	dir, doc, _ := writePlannerReportWith(t, false, setHostileOwners)
	page := string(readFile(t, filepath.Join(dir, ReportHTML)))
	for _, s := range []string{"<script", "<img", "\u202E"} {
		if strings.Contains(page, s) {
			t.Errorf("the report holds %q unescaped", s)
		}
	}
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		if n.Data == "script" || n.Data == "img" {
			t.Errorf("a username became a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "src" {
				t.Errorf("a username became the attribute %s=%q on <%s>", a.Key, a.Val, n.Data)
			}
		}
	})
	// The names read back as the text they are (the bidi control stripped).
	cells := tableRows(nextAfter(t, doc, "flagged", "table"))
	var got string
	for _, c := range cells {
		if textOf(c[0]) == "acme/a" {
			got = textOf(c[len(c)-1])
		}
	}
	want := strings.Join(strings.Fields(strings.ReplaceAll(ownerCellText(hostile), "\u202E", "")), " ")
	if got != want {
		t.Errorf("acme/a owners read %q, want %q", got, want)
	}
}

// TestOwnerCounts: a project counts once per owner whatever its list repeats, the
// top owners are by projects then name, and a cell names at most maxProjectOwners.
func TestOwnerCounts(t *testing.T) {
	o := newOwnerAgg()
	for _, owners := range [][]string{{"bob", "alice", "bob"}, {"carol", "bob"}, {"dave"}, {"alice"}, {}, nil} {
		o.add(&inventory.Project{GroupID: 1, Owners: owners})
	}
	c := o.byGroup[1]
	if got, want := c.top(3), []ownerCount{{"alice", 2}, {"bob", 2}, {"carol", 1}}; !slices.Equal(got, want) {
		t.Errorf("top 3 = %v, want %v (by projects, then name)", got, want)
	}
	if r := c.row(); r.Others != 1 || r.None != 1 || r.Unknown != 1 {
		t.Errorf("row = %+v, want 1 other owner, 1 without, 1 unknown", r)
	}
	if d := o.data(); d.Known != 5 || d.None != 1 || d.Unknown != 1 || !d.Collected {
		t.Errorf("data = %+v, want 5 known, 1 none, 1 unknown", d)
	}
	tests := []struct {
		owners []string
		want   ownerCell
	}{
		{nil, ownerCell{}},
		{[]string{}, ownerCell{Known: true, Names: []string{}}},
		{[]string{"a", "b"}, ownerCell{Known: true, Names: []string{"a", "b"}}},
		{[]string{"a", "b", "c", "d", "e", "f", "g"}, ownerCell{Known: true, Names: []string{"a", "b", "c", "d", "e"}, More: 2}},
	}
	for _, tt := range tests {
		got := ownerCellOf(tt.owners)
		if got.Known != tt.want.Known || !slices.Equal(got.Names, tt.want.Names) || got.More != tt.want.More {
			t.Errorf("ownerCellOf(%q) = %+v, want %+v", tt.owners, got, tt.want)
		}
	}
}

// TestReportOwnersNoProjects: a run without projects has no owners to miss.
func TestReportOwnersNoProjects(t *testing.T) {
	dir, _ := writeDir(t, newSource("r1"), testRun("r1"), nil)
	page := string(readFile(t, filepath.Join(dir, "latest", ReportHTML)))
	if strings.Contains(page, `id="owners"`) {
		t.Error("a report of no projects speaks of owners")
	}
}
