package export

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/facts"
)

// docColumns returns the projects.csv columns docs/EXPORTS.md lists: the
// backquoted names in the first cell of each table row of its "## projects.csv"
// section, in order.
func docColumns(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../docs/EXPORTS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## projects.csv\n")
	if !ok {
		t.Fatal("docs/EXPORTS.md has no projects.csv section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	name := regexp.MustCompile("`([a-z0-9_]+)`")
	var cols []string
	for _, line := range strings.Split(sec, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			cols = append(cols, m[1])
		}
	}
	return cols
}

func TestDocsListEveryColumn(t *testing.T) {
	if got := docColumns(t); !slices.Equal(got, projectsHeader) {
		t.Errorf("docs/EXPORTS.md lists the projects.csv columns\n%s\nthe export writes\n%s",
			strings.Join(got, ","), strings.Join(projectsHeader, ","))
	}
}

// TestEveryFactHasOneColumn: each declared count and statistics field is written
// once, under its declared name.
func TestEveryFactHasOneColumn(t *testing.T) {
	want := map[string]int{}
	for _, f := range facts.Counts {
		want[f.Name]++
	}
	for _, s := range facts.Stats {
		want[s.Column]++
	}
	for _, c := range projectsHeader {
		if _, ok := want[c]; ok {
			want[c]--
		}
	}
	for c, n := range want {
		if n != 0 {
			t.Errorf("fact column %q is written %d times, want once", c, 1-n)
		}
	}
	seen := map[string]bool{}
	for _, c := range projectsHeader {
		if seen[c] {
			t.Errorf("column %q appears twice", c)
		}
		seen[c] = true
	}
}
