package export

import (
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

func TestStale(t *testing.T) {
	const year = 365 * 24 * time.Hour
	run := testRun("r1")
	run.StaleAfter = year
	tests := []struct {
		name     string
		activity time.Time
		after    time.Duration
		want     string // the CSV cell
	}{
		{"active", t0.Add(-time.Hour), year, "false"},
		{"just inside", t0.Add(-year), year, "false"},
		{"older", t0.Add(-year - time.Second), year, "true"},
		{"activity unknown", time.Time{}, year, ""},
		{"run without STALE_AFTER", t0.Add(-10 * year), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(1, "acme/a", 1)
			p.LastActivityAt = tt.activity
			p.NamespaceKind = "user"
			run.StaleAfter = tt.after
			dir, sum := writeDir(t, newSource("r1", p), run, nil)
			rows := readCSV(t, filepath.Join(dir, "latest/projects.csv"))
			if got := rows[0]["stale"]; got != tt.want {
				t.Errorf("stale = %q, want %q", got, tt.want)
			}
			if got := rows[0]["namespace_kind"]; got != "user" {
				t.Errorf("namespace_kind = %q, want user", got)
			}
			if want := map[bool]int{true: 1}[tt.want == "true"]; sum.Stale != want {
				t.Errorf("summary stale = %d, want %d", sum.Stale, want)
			}
		})
	}
}

func TestSummaryInstance(t *testing.T) {
	run := testRun("r1")
	_, sum := writeDir(t, newSource("r1", project(1, "acme/a", 1)), run, nil)
	if sum.Instance != nil {
		t.Errorf("instance of a run without one = %+v, want nil", sum.Instance)
	}
	run.Instance = &inventory.Instance{Version: "17.5.1-ee", Revision: "abc", Enterprise: new(true), Users: ptr(12)}
	dir, sum := writeDir(t, newSource("r1", project(1, "acme/a", 1)), run, nil)
	if !reflect.DeepEqual(sum.Instance, run.Instance) {
		t.Errorf("instance = %+v, want %+v", sum.Instance, run.Instance)
	}
	report := string(readFile(t, filepath.Join(dir, "latest/report.html")))
	if want := "GitLab 17.5.1-ee (abc), Enterprise Edition, 12 users."; !strings.Contains(report, want) {
		t.Errorf("the report lacks %q", want)
	}
}

func TestCountDrop(t *testing.T) {
	tests := []struct {
		prev, now int
		want      *inventory.CountDrop
	}{
		{0, 0, nil},
		{100, 120, nil},
		{100, 80, nil}, // exactly the documented share: not flagged
		{100, 79, &inventory.CountDrop{Previous: 100, Now: 79, Share: 0.21}},
		{3, 0, &inventory.CountDrop{Previous: 3, Now: 0, Share: 1}},
	}
	for _, tt := range tests {
		if got := countDrop(tt.prev, tt.now); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("countDrop(%d, %d) = %+v, want %+v", tt.prev, tt.now, got, tt.want)
		}
	}
}

func TestProjectCountDropFlagged(t *testing.T) {
	src := newSource("r2", project(1, "acme/a", 1))
	src.projects["r1"] = []inventory.Project{project(1, "acme/a", 1), project(2, "acme/b", 1), project(3, "acme/c", 1)}
	prev := testRun("r1")
	dir, sum := writeDir(t, src, testRun("r2"), &prev)
	want := &inventory.CountDrop{Previous: 3, Now: 1, Share: 0.667}
	if !reflect.DeepEqual(sum.ProjectCountDrop, want) {
		t.Errorf("project_count_drop = %+v, want %+v", sum.ProjectCountDrop, want)
	}
	report := string(readFile(t, filepath.Join(dir, "latest/report.html")))
	if !strings.Contains(report, "1 projects against 3 in the previous run: 67% fewer") {
		t.Error("the report does not warn of the drop")
	}
	if _, sum := writeDir(t, src, testRun("r2"), nil); sum.ProjectCountDrop != nil {
		t.Errorf("first run flagged a drop: %+v", sum.ProjectCountDrop)
	}
}

func TestGroupsSubtreeTotals(t *testing.T) {
	deep := project(3, "acme/sub/big", 41<<30) // blocked on gei
	deep.GroupID = 11
	unknown := project(2, "acme/sub/nostats", 1)
	unknown.GroupID = 11
	unknown.Statistics = nil
	src := newSource("r1", project(1, "acme/a", 5), unknown, deep)
	src.groups["r1"] = append(src.groups["r1"], inventory.Group{ID: 11, FullPath: "acme/sub", ParentID: 10, Projects: 2, ScanStatus: inventory.StatusComplete})
	dir, _ := writeDir(t, src, testRun("r1"), nil)
	got := map[string]string{}
	for _, r := range readCSV(t, filepath.Join(dir, "latest/groups.csv")) {
		got[r["full_path"]] = strings.Join([]string{r["projects"], r["subtree_projects"], r["subtree_storage_size_bytes"],
			r["subtree_ready"], r["subtree_needs_attention"], r["subtree_blocked"], r["subtree_unknown_size"]}, ",")
	}
	big := strconv.FormatInt(41<<30, 10)
	want := map[string]string{
		"acme":     "3,3," + strconv.FormatInt(41<<30+5, 10) + ",2,0,1,1",
		"acme/sub": "2,2," + big + ",1,0,1,1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups.csv projects,subtree_projects,storage,ready,needs_attention,blocked,unknown_size\n got %v\nwant %v", got, want)
	}
}
