package runner

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
)

// TestRepositoryDeniedIsUnknown: with 403 on the repository endpoints of a share of
// the projects, every fact read from the repository is empty in projects.csv and null
// in projects.jsonl for them, never false, and the exports equal the truth, which says
// unknown too.
func TestRepositoryDeniedIsUnknown(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 11, Groups: 8, Projects: 160, Faults: gitlabsim.Faults{
		ForbiddenRate:      0.3,
		ForbiddenEndpoints: []string{"projects/:id/repository/tree", "projects/:id/repository/files/:path/raw"},
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
	denied := map[int64]bool{} // projects whose repository facts are unknown
	for _, p := range truth.Projects {
		if slices.Contains(truth.Faults.Forbidden[p.ID], "projects/:id/repository/tree") && !p.EmptyRepo {
			denied[p.ID] = true
		}
	}
	if len(denied) == 0 {
		t.Fatal("no project has its repository denied: the test proves nothing")
	}

	latest := filepath.Join(e.cfg.ExportDir, "latest")
	_, projects, err := scancheck.ReadExportDir(latest)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range projects {
		if !denied[p.ID] {
			continue
		}
		f := p.Features
		if f.HasSubmodules != nil || f.HasCodeowners != nil || f.CI != nil || (f.HasCI != nil && f.CIConfigExternal == "") {
			t.Errorf("project %d: repository denied, projects.jsonl has_ci %v, has_submodules %v, has_codeowners %v, ci %v: want null",
				p.ID, f.HasCI, f.HasSubmodules, f.HasCodeowners, f.CI)
		}
		if f.UsesLFS != nil && (p.Statistics == nil || p.Statistics.LFSObjectsSize == 0) {
			t.Errorf("project %d: repository denied, uses_lfs %v without LFS bytes: want null", p.ID, *f.UsesLFS)
		}
	}

	b, err := os.Open(filepath.Join(latest, "projects.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rows, err := csv.NewReader(b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	seen := 0
	for _, row := range rows[1:] {
		id, err := strconv.ParseInt(row[col["project_id"]], 10, 64)
		if err != nil {
			t.Fatalf("projects.csv project_id: %v", err)
		}
		if !denied[id] {
			continue
		}
		seen++
		for _, name := range []string{"has_submodules", "has_codeowners", "ci_jobs"} {
			if v := row[col[name]]; v != "" {
				t.Errorf("project %d: repository denied, projects.csv %s = %q, want empty", id, name, v)
			}
		}
		if v := row[col["has_ci"]]; v != "" && row[col["ci_config_external"]] == "" {
			t.Errorf("project %d: repository denied, projects.csv has_ci = %q, want empty", id, v)
		}
	}
	if seen != len(denied) {
		t.Errorf("projects.csv has %d of the %d denied projects", seen, len(denied))
	}
}
