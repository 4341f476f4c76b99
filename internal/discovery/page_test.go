package discovery

import (
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// A profile is carried over only while nothing that shapes it changed.
func TestUnchanged(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	base := func() inventory.Project {
		return inventory.Project{
			ID: 1, DefaultBranch: "main", LastActivityAt: at, LastProfiledAt: at.Add(time.Hour),
			ScanStatus: inventory.StatusComplete,
			Statistics: &inventory.Statistics{RepositorySize: 100, PackagesSize: 0, ContainerRegistrySize: 5},
			Features:   inventory.Features{WikiEnabled: true, IssuesEnabled: true, MREnabled: true, JobsEnabled: true},
		}
	}
	tests := []struct {
		name  string
		old   func(*inventory.Project)
		cur   func(*inventory.Project)
		carry bool
	}{
		{"same", nil, nil, true},
		{"repository grew without activity: statistics come with the listing", nil, func(p *inventory.Project) { p.Statistics.RepositorySize = 200 }, true},
		{"new activity", nil, func(p *inventory.Project) { p.LastActivityAt = at.Add(time.Second) }, false},
		{"last profile partial", func(p *inventory.Project) { p.ScanStatus = inventory.StatusPartial }, nil, false},
		{"last profile without a time (older agent)", func(p *inventory.Project) { p.LastProfiledAt = time.Time{} }, nil, false},
		{"default branch renamed", nil, func(p *inventory.Project) { p.DefaultBranch = "trunk" }, false},
		{"repository emptied", nil, func(p *inventory.Project) { p.EmptyRepo = true }, false},
		{"merge requests turned off", nil, func(p *inventory.Project) { p.Features.MREnabled = false }, false},
		{"CI/CD turned off", nil, func(p *inventory.Project) { p.Features.JobsEnabled = false }, false},
		{"registry turned on", nil, func(p *inventory.Project) { p.Features.RegistryEnabled = true }, false},
		{"statistics no longer listed", nil, func(p *inventory.Project) { p.Statistics = nil }, false},
		{"first package", nil, func(p *inventory.Project) { p.Statistics.PackagesSize = 1 }, false},
		{"registry emptied", nil, func(p *inventory.Project) { p.Statistics.ContainerRegistrySize = 0 }, false},
		{"LFS objects appeared", nil, func(p *inventory.Project) { p.Statistics.LFSObjectsSize = 1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, cur := base(), base()
			cur.ScanStatus, cur.LastProfiledAt = "", time.Time{} // as listed: identity only
			if tt.old != nil {
				tt.old(&old)
			}
			if tt.cur != nil {
				tt.cur(&cur)
			}
			if got := unchanged(old, cur); got != tt.carry {
				t.Errorf("unchanged = %v, want %v", got, tt.carry)
			}
		})
	}
}
