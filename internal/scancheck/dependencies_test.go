package scancheck

import (
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

func TestReadDependenciesCSV(t *testing.T) {
	good := "from,to,kind,external\ng/a,g/b,fork,false\ng/a,https://x.example/y.git,submodule,true\n"
	deps, err := ReadDependenciesCSV(strings.NewReader(good))
	if err != nil || len(deps) != 2 || deps[1].Kind != inventory.DepSubmodule {
		t.Fatalf("ReadDependenciesCSV = %v, %v", deps, err)
	}
	for _, bad := range []string{"", "from,to\n", "from,to,kind,external\ng/a,g/b,fork,true\n"} {
		if _, err := ReadDependenciesCSV(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadDependenciesCSV(%q): no error", bad)
		}
	}
}

func TestDiffDependencies(t *testing.T) {
	app := inventory.Project{ID: 1, PathWithNamespace: "g/app", ForkedFrom: "g/lib"}
	lib := inventory.Project{ID: 2, PathWithNamespace: "g/lib", Features: inventory.Features{Submodules: []string{"https://x.example/y.git"}}}
	gone := inventory.Project{ID: 3, PathWithNamespace: "g/gone", ForkedFrom: "g/lib"}
	truth := gitlabsim.Truth{Projects: []inventory.Project{app, lib, gone}, Faults: gitlabsim.TruthFaults{Deleted: []int64{3}}}
	edges := []inventory.Dependency{
		{From: "g/app", To: "g/lib", Kind: inventory.DepFork},
		{From: "g/lib", To: "https://x.example/y.git", Kind: inventory.DepSubmodule},
	}
	scanned := func(appWave, libWave int) []inventory.Project {
		a, l := app, lib
		a.Wave, l.Wave = appWave, libWave
		return []inventory.Project{a, l}
	}
	tests := []struct {
		name     string
		projects []inventory.Project
		deps     []inventory.Dependency
		want     string // a substring of the diffs; "" for none
	}{
		{"equal", scanned(2, 1), edges, ""},
		{"edge missing", scanned(2, 1), edges[:1], "missing"},
		{"edge not in the truth", scanned(2, 1), append(edges, inventory.Dependency{From: "g/lib", To: "g/app", Kind: inventory.DepCIInclude}), "not in the truth"},
		{"edge twice", scanned(2, 1), append(edges, edges[0]), "twice"},
		{"wave before its dependency", scanned(1, 2), edges, "depends on g/lib"},
		{"no wave", scanned(0, 1), edges, "wave 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diffs := DiffDependencies(truth, tt.projects, tt.deps)
			switch {
			case tt.want == "" && len(diffs) > 0:
				t.Errorf("diffs %q, want none", diffs)
			case tt.want != "" && !strings.Contains(strings.Join(diffs, "\n"), tt.want):
				t.Errorf("diffs %q, want one with %q", diffs, tt.want)
			}
		})
	}
}
