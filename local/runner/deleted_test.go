package runner

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// A project deleted in GitLab between two runs is gone from the later run's exports,
// which equal the truth, and diff.json lists exactly the deleted projects as removed,
// with the paths they had; projects renamed in the same change are moved, not
// removed, and nothing is added.
func TestDeletedProjectsAreRemoved(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 37, Groups: 6, Projects: 120})
	e.cfg.FullScanEvery = 7 * 24 * time.Hour
	r := e.runner(t)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first, err := r.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.checkAgainstTruth(t, first)
	deleted := e.sim.Delete(0.05, 3)
	renamed := e.sim.Rename(0.05, 3)
	if len(deleted) == 0 || len(renamed) == 0 {
		t.Fatalf("deleted %d and renamed %d projects; the test needs both", len(deleted), len(renamed))
	}
	run, err := r.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.checkAgainstTruth(t, run)
	if n := int64(len(e.sim.Truth().Projects)); run.ProjectsInScope != n || n != first.ProjectsInScope-int64(len(deleted)) {
		t.Errorf("%d projects in scope after deleting %d of %d, the truth has %d", run.ProjectsInScope, len(deleted), first.ProjectsInScope, n)
	}

	diff := readDiff(t, e, run.ID)
	var got, want []string
	for _, d := range diff.Removed {
		got = append(got, fmt.Sprintf("%d %s", d.ID, d.Path))
	}
	for _, d := range deleted {
		want = append(want, fmt.Sprintf("%d %s", d.ID, d.Path))
	}
	slices.Sort(want) // diff.json lists them by ID, as Delete does; sorted text compares the sets
	slices.Sort(got)
	if !slices.Equal(got, want) || diff.Counts["removed"] != len(deleted) {
		t.Errorf("diff.json removed (count %d):\n%s\nwant the deleted projects:\n%s", diff.Counts["removed"], strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	checkMoved(t, diff, renamed)
	if len(diff.Added) != 0 || diff.Counts["added"] != 0 {
		t.Errorf("diff.json added %v (count %d), want none", diff.Added, diff.Counts["added"])
	}
}
