package export

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// TestDependenciesCSV: each project's edges in dependencies.csv, external ones
// marked, and the waves and counts they give in projects.csv.
func TestDependenciesCSV(t *testing.T) {
	lib := project(1, "acme/lib", 10)
	tmpl := project(2, "acme/ci-templates", 10)
	app := project(3, "acme/app", 10)
	app.Features.Submodules = []string{"acme/lib", "https://github.com/x/y.git"}
	app.Features.CI = &inventory.CI{IncludeProjects: []string{"acme/ci-templates"}, TriggerProjects: []string{"acme/deploy"}}
	deploy := project(4, "acme/deploy", 10)
	deploy.Features.CIConfigExternal = "acme/app" // a cycle: app triggers deploy
	fork := project(5, "acme/fork", 10)
	fork.Fork, fork.ForkedFrom = true, "acme/app"
	outside := project(6, "acme/uses-outside", 10)
	outside.ForkedFrom = "elsewhere/p"

	dir, _ := writeDir(t, newSource("r1", lib, tmpl, app, deploy, fork, outside), testRun("r1"), nil)
	got := readCSV(t, filepath.Join(dir, "runs/r1", DependenciesCSV))
	want := []map[string]string{
		{"from": "acme/app", "to": "acme/lib", "kind": "submodule", "external": "false"},
		{"from": "acme/app", "to": "https://github.com/x/y.git", "kind": "submodule", "external": "true"},
		{"from": "acme/app", "to": "acme/ci-templates", "kind": "ci_include", "external": "false"},
		{"from": "acme/app", "to": "acme/deploy", "kind": "ci_trigger", "external": "false"},
		{"from": "acme/deploy", "to": "acme/app", "kind": "ci_config", "external": "false"},
		{"from": "acme/fork", "to": "acme/app", "kind": "fork", "external": "false"},
		{"from": "acme/uses-outside", "to": "elsewhere/p", "kind": "fork", "external": "false"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dependencies.csv\n got %v\nwant %v", got, want)
	}
	wave := map[string]string{}
	deps := map[string]string{}
	for _, r := range readCSV(t, filepath.Join(dir, "runs/r1", ProjectsCSV)) {
		wave[r["path_with_namespace"]] = r["wave"]
		deps[r["path_with_namespace"]] = r["dependencies"]
	}
	wantWave := map[string]string{"acme/lib": "1", "acme/ci-templates": "1", "acme/app": "2", "acme/deploy": "2", "acme/fork": "3", "acme/uses-outside": "1"}
	if !reflect.DeepEqual(wave, wantWave) {
		t.Errorf("waves %v, want %v", wave, wantWave)
	}
	wantDeps := map[string]string{"acme/lib": "0", "acme/ci-templates": "0", "acme/app": "4", "acme/deploy": "1", "acme/fork": "1", "acme/uses-outside": "1"}
	if !reflect.DeepEqual(deps, wantDeps) {
		t.Errorf("dependencies %v, want %v", deps, wantDeps)
	}
	book, err := excelize.OpenFile(filepath.Join(dir, "runs/r1", InventoryXLSX))
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	rows, err := book.GetRows(sheetDeps)
	if err != nil || len(rows) != 1+len(want) || !reflect.DeepEqual(rows[0], dependenciesHeader) || rows[2][1] != "https://github.com/x/y.git" {
		t.Errorf("dependencies sheet %q (%v), want the header and %d edges", rows, err, len(want))
	}
	if typ, _ := book.GetCellType(sheetDeps, "D3"); typ != excelize.CellTypeBool {
		t.Errorf("external cell type %v, want a boolean", typ)
	}
	jsonl := string(readFile(t, filepath.Join(dir, "runs/r1", ProjectsJSONL)))
	if !strings.Contains(jsonl, `"forked_from":"acme/app"`) || !strings.Contains(jsonl, `"wave":3`) {
		t.Errorf("projects.jsonl lacks forked_from or wave:\n%s", jsonl)
	}
}
