package readiness_test

import (
	"testing"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// needs says, from the simulator's truth, which projects really need a rule's work:
// a rule may flag more than half of an estate only for the projects its fact names.
var needs = map[string]func(p inventory.Project) bool{
	"gitlab_ci": func(p inventory.Project) bool { return inventory.Is(p.Features.HasCI) },
	"ci_variables": func(p inventory.Project) bool {
		return p.Counts.CIVariables != nil && *p.Counts.CIVariables > 0
	},
}

// TestDemoEstateTriages: on the demo estate (simulator seed 1, 40 groups, 3,000
// projects), no rule of a work tier (data, ci, settings) flags more than half the
// projects unless the truth says each of them needs that work, and protecting only
// the default branch is info.
func TestDemoEstateTriages(t *testing.T) {
	sim, err := gitlabsim.New(gitlabsim.Options{Seed: 1, Groups: 40, Projects: 3000})
	if err != nil {
		t.Fatal(err)
	}
	projects := sim.Truth().Projects
	flagged := map[string]map[int64]bool{}
	for _, p := range projects {
		for _, f := range readiness.Assess(p, readiness.DefaultThresholds()).Findings {
			if flagged[f.Code] == nil {
				flagged[f.Code] = map[int64]bool{}
			}
			flagged[f.Code][p.ID] = true
		}
	}
	for _, r := range readiness.Rules {
		n := len(flagged[r.Code])
		t.Logf("%-26s %-8s %5d (%.1f%%)", r.Code, r.Tier, n, 100*float64(n)/float64(len(projects)))
		if r.Tier == readiness.TierBlocker || r.Tier == readiness.TierInfo || 2*n <= len(projects) {
			continue
		}
		need, ok := needs[r.Code]
		if !ok {
			t.Errorf("%s (%s) flags %d of %d projects and the truth names no need for it", r.Code, r.Tier, n, len(projects))
			continue
		}
		for _, p := range projects {
			if need(p) != flagged[r.Code][p.ID] {
				t.Errorf("%s: project %d flagged %v, the truth says it needs the work: %v", r.Code, p.ID, flagged[r.Code][p.ID], need(p))
				break
			}
		}
	}
	if len(flagged["default_branch_protected"]) == 0 {
		t.Error("no project protects only its default branch: the case this test guards is gone")
	}
}
