package export

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// diffFile is diff.json as its contract (docs/EXPORTS.md) has it.
type diffFile struct {
	RunID            string         `json:"run_id"`
	Previous         string         `json:"previous_run_id"`
	Counts           map[string]int `json:"counts"`
	Added            []diffEntry    `json:"added"`
	Removed          []diffEntry    `json:"removed"`
	Moved            []diffEntry    `json:"moved"`
	ReadinessChanged []diffEntry    `json:"readiness_changed"`
	Grown            []diffEntry    `json:"grown"`
}

func readDiff(t *testing.T, path string) diffFile {
	t.Helper()
	var got diffFile
	dec := json.NewDecoder(bytes.NewReader(readFile(t, path)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

func blocked(p inventory.Project) inventory.Project {
	r := *p.Readiness
	r.Category = inventory.Blocked
	p.Readiness = &r
	return p
}

func withStorage(p inventory.Project, storage int64) inventory.Project {
	s := *p.Statistics
	s.StorageSize = storage
	p.Statistics = &s
	return p
}

func TestDiffKinds(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name      string
		prev, cur []inventory.Project
		want      map[string][]int64 // project IDs per list; lists not named are empty
		check     func(t *testing.T, d diffFile)
	}{{
		name: "added",
		cur:  []inventory.Project{project(5, "acme/new", 1)},
		want: map[string][]int64{"added": {5}},
		check: func(t *testing.T, d diffFile) {
			if e := d.Added[0]; e.Path != "acme/new" || e.WebURL != "https://gitlab.example.com/acme/new" || e.Readiness == "" || *e.Size != 1 {
				t.Errorf("added entry %+v", e)
			}
		},
	}, {
		name: "removed",
		prev: []inventory.Project{project(3, "acme/b", 7), project(1, "acme/gone", 5), project(2, "acme/gone-too", 6)},
		cur:  []inventory.Project{project(3, "acme/b", 7)},
		want: map[string][]int64{"removed": {1, 2}},
		check: func(t *testing.T, d diffFile) {
			if e := d.Removed[0]; e.Path != "acme/gone" || e.Size == nil || *e.Size != 5 {
				t.Errorf("removed entry %+v, want acme/gone of 5 bytes", e)
			}
		},
	}, {
		name: "moved",
		prev: []inventory.Project{project(1, "acme/old-name", 1)},
		cur:  []inventory.Project{project(1, "other/new-name", 1)},
		want: map[string][]int64{"moved": {1}},
		check: func(t *testing.T, d diffFile) {
			if e := d.Moved[0]; e.PreviousPath != "acme/old-name" || e.Path != "other/new-name" {
				t.Errorf("moved entry %+v", e)
			}
		},
	}, {
		name: "readiness changed",
		prev: []inventory.Project{project(1, "acme/a", 1)},
		cur:  []inventory.Project{blocked(project(1, "acme/a", 1))},
		want: map[string][]int64{"readiness_changed": {1}},
		check: func(t *testing.T, d diffFile) {
			if e := d.ReadinessChanged[0]; e.PreviousReadiness != inventory.Ready || e.Readiness != inventory.Blocked {
				t.Errorf("readiness entry %+v, want ready -> blocked", e)
			}
		},
	}, {
		name: "grown by share, by bytes, by storage; not below the thresholds",
		prev: []inventory.Project{
			project(2, "acme/small-growth", 1000*mib), project(3, "acme/pct-growth", 10*mib),
			project(4, "acme/abs-growth", 2000*mib), project(6, "acme/now-unknown", 1),
			project(7, "acme/shrunk", 100*mib), project(8, "acme/storage", 10*mib),
		},
		cur: []inventory.Project{
			project(2, "acme/small-growth", 1000*mib+50*mib), // +5%, +50 MiB: not grown
			project(3, "acme/pct-growth", 11*mib+1),          // just over +10%: grown
			project(4, "acme/abs-growth", 2000*mib+101*mib),  // +5%, but +101 MiB: grown
			{ID: 6, PathWithNamespace: "acme/now-unknown", ScanStatus: inventory.StatusForbidden, Readiness: project(6, "", 1).Readiness},
			project(7, "acme/shrunk", 1),
			withStorage(project(8, "acme/storage", 10*mib), 200*mib), // repository the same, storage x20
		},
		want: map[string][]int64{"grown": {3, 4, 8}},
		check: func(t *testing.T, d diffFile) {
			if e := d.Grown[0]; *e.PreviousSize != 10*mib || *e.Size != 11*mib+1 || *e.PreviousStorage != 10*mib || *e.Storage != 11*mib+1 {
				t.Errorf("grown entry %+v", e)
			}
		},
	}, {
		name: "a project one run could not scan: no move, no readiness change",
		prev: []inventory.Project{project(1, "acme/a", 1), {ID: 2, ScanStatus: inventory.StatusForbidden}},
		cur:  []inventory.Project{{ID: 1, ScanStatus: inventory.StatusForbidden}, project(2, "acme/b", 1)},
		want: map[string][]int64{},
	}, {
		name: "nothing changed: every list empty",
		prev: []inventory.Project{project(1, "acme/a", 1)},
		cur:  []inventory.Project{project(1, "acme/a", 1)},
		want: map[string][]int64{},
	}, {
		name: "moved, readiness changed and grown at once",
		prev: []inventory.Project{project(1, "acme/a", 1)},
		cur:  []inventory.Project{blocked(project(1, "acme/b", 100))},
		want: map[string][]int64{"moved": {1}, "readiness_changed": {1}, "grown": {1}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource("r2", tt.cur...)
			src.projects["r1"] = tt.prev
			prev := testRun("r1")
			dir, _ := writeDir(t, src, testRun("r2"), &prev)
			d := readDiff(t, filepath.Join(dir, "runs/r2/diff.json"))
			if d.RunID != "r2" || d.Previous != "r1" {
				t.Errorf("run ids %q, %q", d.RunID, d.Previous)
			}
			lists := map[string][]diffEntry{"added": d.Added, "removed": d.Removed, "moved": d.Moved,
				"readiness_changed": d.ReadinessChanged, "grown": d.Grown}
			for _, k := range changeKinds {
				got := []int64{}
				if lists[k.key] == nil {
					t.Errorf("%s missing or null, want a list", k.key)
				}
				for _, e := range lists[k.key] {
					got = append(got, e.ID)
				}
				want := tt.want[k.key]
				if want == nil {
					want = []int64{}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s = %v, want %v", k.key, got, want)
				}
				if n, ok := d.Counts[k.key]; !ok || n != len(want) {
					t.Errorf("counts[%s] = %d (present %v), want %d", k.key, n, ok, len(want))
				}
			}
			if tt.check != nil && !t.Failed() {
				tt.check(t, d)
			}
		})
	}
}

// The report has a "Since last run" section only when there is a previous run, with
// its counts and links to the projects it lists.
func TestReportSinceLastRun(t *testing.T) {
	src := newSource("r2", project(1, "acme/renamed", 1), project(3, "acme/<new>", 1))
	src.projects["r1"] = []inventory.Project{project(1, "acme/a", 1), project(2, "acme/gone", 1)}
	prev := testRun("r1")

	first, _ := writeDir(t, src, testRun("r2"), nil)
	if html := string(readFile(t, filepath.Join(first, "latest/report.html"))); strings.Contains(html, `id="since-last-run"`) {
		t.Error("report of a first run has a since-last-run section")
	}

	second, _ := writeDir(t, src, testRun("r2"), &prev)
	html := string(readFile(t, filepath.Join(second, "latest/report.html")))
	for _, want := range []string{
		`id="since-last-run"`,
		`r1`,
		`<td class="n">1</td><td>Added</td>`,
		`<td class="n">1</td><td>Removed</td>`,
		`<td class="n">1</td><td>Moved or renamed</td>`,
		`<td class="n">0</td><td>Grown</td>`,
		`<a href="https://gitlab.example.com/acme/renamed">acme/renamed</a>`,
		`acme/a → acme/renamed`,
		`acme/&lt;new&gt;`,
		`acme/gone`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report does not contain %q", want)
		}
	}
}
