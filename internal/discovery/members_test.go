package discovery

import (
	"testing"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// TestMembersInEstimate: INCLUDE_MEMBERS adds the members step's one page to every
// profile, in both figures of the estimate.
func TestMembersInEstimate(t *testing.T) {
	always, most := callsPerProject(false, false)
	withAlways, withMost := callsPerProject(true, false)
	if withAlways-always != 1 || withMost-most != 1 {
		t.Errorf("members add %.2f and %.2f calls per project, want 1 and 1", withAlways-always, withMost-most)
	}
}

// TestCarryOwners: a carried-over profile keeps owners only when they are asked for
// and known; asked for and unknown, the project is profiled again.
func TestCarryOwners(t *testing.T) {
	tests := []struct {
		name    string
		members bool
		old     []string
		ok      bool
		want    []string
	}{
		{"off, old known", false, []string{"ann"}, true, nil},
		{"off, old unknown", false, nil, true, nil},
		{"on, old known", true, []string{"ann"}, true, []string{"ann"}},
		{"on, old known empty", true, []string{}, true, []string{}},
		{"on, old unknown", true, nil, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Worker{IncludeMembers: tt.members}
			var p inventory.Project
			ok := w.carryOwners(inventory.Project{Owners: tt.old}, &p)
			if ok != tt.ok || (p.Owners == nil) != (tt.want == nil) || len(p.Owners) != len(tt.want) {
				t.Errorf("carryOwners = %t, owners %v; want %t, %v", ok, p.Owners, tt.ok, tt.want)
			}
		})
	}
}
