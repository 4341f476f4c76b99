package scancheck

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// ReadDependenciesCSV reads dependencies.csv, checking its external column against
// each edge's target.
func ReadDependenciesCSV(r io.Reader) ([]inventory.Dependency, error) {
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("dependencies.csv: %w", err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], []string{"from", "to", "kind", "external"}) {
		return nil, fmt.Errorf("dependencies.csv: header %v", recs)
	}
	var out []inventory.Dependency
	for i, rec := range recs[1:] {
		d := inventory.Dependency{From: rec[0], To: rec[1], Kind: rec[2]}
		if ext, err := strconv.ParseBool(rec[3]); err != nil || ext != d.External() {
			return nil, fmt.Errorf("dependencies.csv row %d: external %q for %q", i+2, rec[3], d.To)
		}
		out = append(out, d)
	}
	return out, nil
}

// DiffDependencies lists the differences between dependencies.csv and the edges of
// the truth (each project's inventory.Dependencies; deleted projects have none), and
// every wave that does not follow them: a project's wave is at least 1, and at least
// that of each project of the run it depends on.
func DiffDependencies(truth gitlabsim.Truth, projects []inventory.Project, deps []inventory.Dependency) []string {
	var diffs []string
	add := func(format string, args ...any) {
		if len(diffs) < 50 {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	deleted := map[int64]bool{}
	for _, id := range truth.Faults.Deleted {
		deleted[id] = true
	}
	want := map[inventory.Dependency]bool{}
	for i := range truth.Projects {
		if !deleted[truth.Projects[i].ID] {
			for _, d := range inventory.Dependencies(&truth.Projects[i]) {
				want[d] = true
			}
		}
	}
	got := map[inventory.Dependency]bool{}
	for _, d := range deps {
		if got[d] {
			add("edge %+v appears twice", d)
		}
		got[d] = true
		if !want[d] {
			add("edge %+v is not in the truth", d)
		}
	}
	for d := range want {
		if !got[d] {
			add("edge %+v missing", d)
		}
	}
	wave := map[string]int{}
	for _, p := range projects {
		wave[p.PathWithNamespace] = p.Wave
		if p.Wave < 1 {
			add("project %s: wave %d", p.PathWithNamespace, p.Wave)
		}
	}
	for _, d := range deps {
		if to, ok := wave[d.To]; ok && !d.External() && wave[d.From] < to {
			add("%s (wave %d) depends on %s (wave %d)", d.From, wave[d.From], d.To, to)
		}
	}
	slices.Sort(diffs)
	return diffs
}

// DiffExportDir compares an export folder (runs/<id>/ or latest/) with the truth:
// groups and projects (Diff), then dependencies.csv and waves (DiffDependencies).
func DiffExportDir(truth gitlabsim.Truth, dir string) ([]string, error) {
	groups, projects, err := ReadExportDir(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, "dependencies.csv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	deps, err := ReadDependenciesCSV(f)
	if err != nil {
		return nil, err
	}
	return append(Diff(truth, groups, projects), DiffDependencies(truth, projects, deps)...), nil
}
