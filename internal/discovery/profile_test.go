package discovery

import (
	"testing"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
)

// TestListedCountsHaveASource: every count the project carries as listed is read
// from the listing (listedCount panics on one it does not know).
func TestListedCountsHaveASource(t *testing.T) {
	gp := gitlab.Project{OpenIssuesCount: 7}
	for _, f := range facts.Counts {
		if !f.Listed() {
			continue
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("listed count %q: %v", f.Name, r)
				}
			}()
			listedCount(gp, f.Name)
		}()
	}
	if n := listedCount(gp, "open_issues"); n != 7 {
		t.Errorf("open_issues = %d, want open_issues_count 7", n)
	}
}
