package runner

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// TestDeniedFactsAreUnknown: with 403 on whole projects, on their repositories or on
// their hooks, every fact the denied endpoints give is empty in projects.csv and null
// in projects.jsonl for the affected projects, never false or 0, and the exports equal
// the truth, which says unknown too.
func TestDeniedFactsAreUnknown(t *testing.T) {
	repo := []string{"has_submodules", "has_codeowners", "ci_jobs", "ci_complexity", "ci_constructs"}
	tests := []struct {
		name      string
		endpoints []string
		// empty are the projects.csv columns (projects.jsonl fields, dotted) that
		// must be empty (null) for an affected project with a non-empty repository.
		empty []string
		jsonl []string
	}{
		{"whole project", []string{"*"},
			append([]string{"branches", "webhooks", "ci_variables", "merge_requests"}, repo...),
			[]string{"features.has_submodules", "features.has_codeowners", "features.ci", "counts.webhooks", "counts.branches"}},
		{"repository", []string{"projects/:id/repository/tree", "projects/:id/repository/files/:path/raw"},
			repo, []string{"features.has_submodules", "features.has_codeowners", "features.ci"}},
		{"hooks", []string{"projects/:id/hooks"}, []string{"webhooks"}, []string{"counts.webhooks"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gitlabsim.Options{Seed: int64(11 + i), Groups: 6, Projects: 100, Faults: gitlabsim.Faults{
				ForbiddenRate: 0.3, ForbiddenEndpoints: tt.endpoints,
			}})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			r := e.runner(t)
			defer r.Close()
			run, err := r.Scan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			e.checkAgainstTruth(t, run)

			truth := e.sim.Truth()
			affected := map[int64]bool{}
			for _, p := range truth.Projects {
				if len(truth.Faults.Forbidden[p.ID]) > 0 && !p.EmptyRepo {
					affected[p.ID] = true
				}
			}
			if len(affected) == 0 {
				t.Fatal("no project is affected: the test proves nothing")
			}
			latest := filepath.Join(e.cfg.ExportDir, "latest")
			checkCSV(t, filepath.Join(latest, "projects.csv"), affected, tt.empty)
			checkJSONL(t, filepath.Join(latest, "projects.jsonl"), affected, tt.jsonl)
		})
	}
}

// checkCSV checks that the columns are empty in the rows of the affected projects, and
// that has_ci is empty there unless the CI configuration is external.
func checkCSV(t *testing.T, path string, affected map[int64]bool, empty []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	repoDenied := slices.Contains(empty, "has_submodules")
	seen := 0
	for _, row := range rows[1:] {
		id, err := strconv.ParseInt(row[col["project_id"]], 10, 64)
		if err != nil {
			t.Fatalf("projects.csv project_id: %v", err)
		}
		if !affected[id] {
			continue
		}
		seen++
		for _, name := range empty {
			if v := row[col[name]]; v != "" {
				t.Errorf("project %d: projects.csv %s = %q, want empty", id, name, v)
			}
		}
		if v := row[col["has_ci"]]; repoDenied && v != "" && row[col["ci_config_external"]] == "" {
			t.Errorf("project %d: repository denied, projects.csv has_ci = %q, want empty", id, v)
		}
	}
	if seen != len(affected) {
		t.Errorf("projects.csv has %d of the %d affected projects", seen, len(affected))
	}
}

// checkJSONL checks that the dotted fields are null for the affected projects.
func checkJSONL(t *testing.T, path string, affected map[int64]bool, null []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var p map[string]any
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatal(err)
		}
		id := int64(p["project_id"].(float64))
		if !affected[id] {
			continue
		}
		if f, _ := p["features"].(map[string]any); slices.Contains(null, "features.has_submodules") && f["has_ci"] != nil && f["ci_config_external"] == nil {
			t.Errorf("project %d: repository denied, projects.jsonl features.has_ci = %#v, want null", id, f["has_ci"])
		}
		for _, field := range null {
			obj, key, _ := strings.Cut(field, ".")
			m, _ := p[obj].(map[string]any)
			if v, ok := m[key]; !ok || v != nil {
				if key == "ci" && !ok { // ci is left out when there is none
					continue
				}
				t.Errorf("project %d: projects.jsonl %s = %#v, want null", id, field, v)
			}
		}
	}
}
