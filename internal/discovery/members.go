package discovery

import (
	"context"
	"slices"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// members fills the owners from the project's members (facts.Members), when the
// worker is asked to (INCLUDE_MEMBERS). It runs last: the other facts do not wait on
// a long member list, and a failure leaves the owners unknown (nil), never "none".
func (pr *profiler) members(ctx context.Context) error {
	if !pr.w.IncludeMembers {
		return nil
	}
	if pr.pre != nil && pr.pre.owners != nil {
		pr.ok++
		pr.p.Owners = slices.Clone(pr.pre.owners)
		return nil
	}
	owners, err := pr.w.GitLab.Owners(ctx, pr.gp.ID)
	if err := pr.check(ctx, facts.Members.Name, err); err != nil {
		return err
	}
	if err == nil {
		pr.p.Owners = owners
	}
	return nil
}

// carryOwners carries an unchanged project's owners over as INCLUDE_MEMBERS says now:
// false when members are asked for and the old profile has none (it was made with the
// setting off), so the project is profiled again; with the setting off the owners are
// left unknown, whatever the old profile knew.
func (w *Worker) carryOwners(old inventory.Project, p *inventory.Project) bool {
	if !w.IncludeMembers {
		return true
	}
	if old.Owners == nil {
		return false
	}
	p.Owners = old.Owners
	return true
}
