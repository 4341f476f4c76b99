package runner

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
)

// scanCalls scans e's estate once and returns the run and the simulator's requests per
// project.
func scanCalls(t *testing.T, e *env) (inventory.Run, float64) {
	t.Helper()
	before := e.sim.Stats().Requests
	r := e.runner(t)
	defer r.Close()
	run, err := r.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return run, float64(e.sim.Stats().Requests-before) / float64(len(e.sim.Truth().Projects))
}

// TestIncludeMembers: with INCLUDE_MEMBERS every project's owners equal the truth's,
// at about one more request per project; without it owners are unknown (null) and no
// member list is asked for. Turning it on makes an incremental run profile again the
// projects whose carried-over profile has no owners.
func TestIncludeMembers(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 2, Groups: 40, Projects: 300})
	e.cfg.FullScanEvery = 24 * time.Hour
	e.cfg.API = "rest" // the cost of members/all; through GraphQL see TestGraphQLOwnersEqualREST
	run, off := scanCalls(t, e)
	e.checkAgainstTruth(t, run)
	_, projects, err := scancheck.ReadExportDir(filepath.Join(e.cfg.ExportDir, "runs", run.ID))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range projects {
		if p.Owners != nil {
			t.Fatalf("INCLUDE_MEMBERS off: project %d has owners %v, want unknown", p.ID, p.Owners)
		}
	}
	if n := e.sim.Stats().ByClass["projects/:id/members/all"]; n != 0 {
		t.Fatalf("INCLUDE_MEMBERS off: %d member requests", n)
	}

	// On, the next run is incremental but every project is profiled again for owners.
	e.cfg.IncludeMembers = true
	run, on := scanCalls(t, e)
	e.checkAgainstTruth(t, run)
	_, projects, err = scancheck.ReadExportDir(filepath.Join(e.cfg.ExportDir, "runs", run.ID))
	if err != nil {
		t.Fatal(err)
	}
	some := false
	for _, p := range projects {
		if p.Owners == nil {
			t.Fatalf("INCLUDE_MEMBERS on: project %d has unknown owners (errors %v)", p.ID, p.Errors)
		}
		some = some || len(p.Owners) > 0
	}
	if !some {
		t.Fatal("no project has owners: the test proves nothing")
	}
	t.Logf("calls per project: %.2f with INCLUDE_MEMBERS off, %.2f on", off, on)
	if d := on - off; d < 1 || d > 1.2 {
		t.Errorf("INCLUDE_MEMBERS costs %.2f calls per project, want about one (1 to 1.2)", d)
	}

	// Unchanged since, the third run carries the owners over without asking again.
	run, carried := scanCalls(t, e)
	e.checkAgainstTruth(t, run)
	if carried >= off {
		t.Errorf("the unchanged run made %.2f calls per project, no fewer than a full one (%.2f)", carried, off)
	}
}

// TestMembersDenied: a project whose members list answers 403 has unknown owners and
// the members step's error, never "no owners"; the other projects' owners are known.
func TestMembersDenied(t *testing.T) {
	e := newEnv(t, gitlabsim.Options{Seed: 5, Groups: 10, Projects: 150, Faults: gitlabsim.Faults{
		ForbiddenRate: 0.2, ForbiddenEndpoints: []string{"projects/:id/members/all"},
	}})
	e.cfg.IncludeMembers = true
	run, _ := scanCalls(t, e)
	e.checkAgainstTruth(t, run)
	_, projects, err := scancheck.ReadExportDir(filepath.Join(e.cfg.ExportDir, "runs", run.ID))
	if err != nil {
		t.Fatal(err)
	}
	forbidden := e.sim.Truth().Faults.Forbidden
	denied := 0
	for _, p := range projects {
		if slices.Contains(forbidden[p.ID], "projects/:id/members/all") {
			denied++
			if p.Owners != nil || p.ScanStatus != inventory.StatusPartial {
				t.Errorf("project %d: members denied, owners %v, status %s; want unknown, partial", p.ID, p.Owners, p.ScanStatus)
			}
		} else if p.Owners == nil {
			t.Errorf("project %d: owners unknown, members not denied", p.ID)
		}
	}
	if denied == 0 {
		t.Fatal("no project's members were denied: the test proves nothing")
	}
}
