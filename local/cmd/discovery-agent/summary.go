package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
	"github.com/gl2gh/discovery-agent/local/runner"
)

// topFindings is how many findings the summary lists.
const topFindings = 5

// writeSummary tells a person what the run found: readiness by category and tier (the
// run's summary.json), the blockers and the most frequent findings (the run's
// projects), and where the exports are.
func writeSummary(ctx context.Context, w io.Writer, r *runner.Runner, run inventory.Run, dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		return err
	}
	var s inventory.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("summary.json: %w", err)
	}
	blockers, others := map[string]*finding{}, map[string]*finding{}
	profiled := 0 // projects GitLab was asked about in this run; the rest were carried over
	prev, hasPrev, err := r.Store.PreviousRun(ctx, run.ID)
	if err != nil {
		return err
	}
	err = r.Store.Projects(ctx, run.ID, func(p inventory.Project) error {
		// A carried-over project keeps its previous complete profile, its time and
		// its activity. Times are kept to the second, so comparing with the run's
		// start would miscount runs that follow each other within one; a changed
		// project profiled in the same second as before differs in its activity.
		carried := false
		if hasPrev && !run.Full {
			old, ok, err := r.Store.GetProject(ctx, prev.ID, p.ID)
			if err != nil {
				return err
			}
			carried = ok && old.ScanStatus == inventory.StatusComplete && !old.LastProfiledAt.IsZero() &&
				old.LastProfiledAt.Equal(p.LastProfiledAt) && old.LastActivityAt.Equal(p.LastActivityAt)
		}
		if !carried {
			profiled++
		}
		if p.Readiness == nil {
			return nil
		}
		for _, f := range p.Readiness.Findings {
			m := others
			if f.Severity == readiness.SeverityBlocker {
				m = blockers
			} else if f.Severity == readiness.SeverityInfo {
				continue
			}
			if m[f.Code] == nil {
				m[f.Code] = &finding{code: f.Code}
			}
			m[f.Code].projects++
		}
		return nil
	})
	if err != nil {
		return err
	}

	fmt.Fprintf(w, "\n%d projects in %d groups, %d API calls, %s", s.Projects, s.Groups, s.APICalls,
		s.FinishedAt.Sub(s.StartedAt).Round(time.Second))
	if carried := s.Projects - profiled; carried > 0 && profiled <= s.Projects {
		fmt.Fprintf(w, "; %d profiled, %d unchanged since the last run and carried over", profiled, carried)
	}
	if s.FailedGroups+s.FailedProjects > 0 {
		fmt.Fprintf(w, "; not scanned: %d groups, %d projects", s.FailedGroups, s.FailedProjects)
	}
	fmt.Fprintf(w, "\nreadiness (%s): ready %d, needs attention %d, blocked %d\n", s.MigrationPath,
		s.ByReadiness["ready"], s.ByReadiness["needs_attention"], s.ByReadiness["blocked"])
	var tiers []string
	for _, t := range append(slices.Clone(readiness.Tiers), readiness.TierNone, "unknown") {
		if n, ok := s.ByTier[t]; ok && t != readiness.TierInfo {
			tiers = append(tiers, fmt.Sprintf("%s %d", t, n))
		}
	}
	fmt.Fprintf(w, "by tier (worst finding): %s\n", strings.Join(tiers, ", "))
	listFindings(w, "blockers", blockers, len(blockers))
	listFindings(w, "top findings", others, topFindings)
	fmt.Fprintf(w, "report: %s\nworkbook: %s\n", filepath.Join(dir, "report.html"), filepath.Join(dir, "inventory.xlsx"))
	return nil
}

type finding struct {
	code     string
	projects int
}

// listFindings lists up to n findings, the most frequent first.
func listFindings(w io.Writer, title string, m map[string]*finding, n int) {
	if len(m) == 0 {
		fmt.Fprintf(w, "%s: none\n", title)
		return
	}
	fs := slices.SortedFunc(maps.Values(m), func(a, b *finding) int {
		return cmp.Or(cmp.Compare(b.projects, a.projects), cmp.Compare(a.code, b.code))
	})
	fmt.Fprintf(w, "%s:\n", title)
	for _, f := range fs[:min(n, len(fs))] {
		fmt.Fprintf(w, "  %-24s %d projects\n", f.code, f.projects)
	}
}
