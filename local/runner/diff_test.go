package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// runDiff is what the tests read of a run's diff.json.
type runDiff struct {
	Counts  map[string]int `json:"counts"`
	Added   []diffEntry    `json:"added"`
	Removed []diffEntry    `json:"removed"`
	Moved   []diffEntry    `json:"moved"`
}

type diffEntry struct {
	ID       int64  `json:"project_id"`
	Path     string `json:"path_with_namespace"`
	Previous string `json:"previous_path_with_namespace"`
}

// readDiff reads run runID's diff.json from e's export directory.
func readDiff(t *testing.T, e *env, runID string) runDiff {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(e.cfg.ExportDir, "runs", runID, "diff.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d runDiff
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// checkMoved fails unless d lists exactly the renamed projects as moved.
func checkMoved(t *testing.T, d runDiff, renamed []gitlabsim.Renamed) {
	t.Helper()
	var got, want []string
	for _, m := range d.Moved {
		got = append(got, fmt.Sprintf("%d %s <- %s", m.ID, m.Path, m.Previous))
	}
	for _, rn := range renamed {
		want = append(want, fmt.Sprintf("%d %s <- %s", rn.ID, rn.To, rn.From))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("diff.json moved:\n%s\nwant the renamed projects:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
