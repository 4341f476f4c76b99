package readiness

import "github.com/gl2gh/discovery-agent/internal/inventory"

// Tiers say what kind of work a finding asks for, worst first: the order a planner
// deals with them. A project's verdict tier is the worst tier of its findings.
const (
	TierBlocker  = "blocker"  // the path cannot take the project as it is
	TierData     = "data"     // data to move beside the Git history: LFS, registry, packages, large repositories
	TierCI       = "ci"       // CI/CD to convert
	TierSettings = "settings" // settings to recreate: webhooks, variables, branch rules, visibility
	TierInfo     = "info"     // nothing to do before migrating; never changes the verdict
)

// TierNone is the verdict tier of a project with no finding above info.
const TierNone = "none"

// Tiers lists every tier, worst first.
var Tiers = []string{TierBlocker, TierData, TierCI, TierSettings, TierInfo}

// TierRank orders tiers worst first; an unknown tier ranks with info.
func TierRank(tier string) int {
	for i, t := range Tiers {
		if t == tier {
			return i
		}
	}
	return len(Tiers) - 1
}

// severityOf is a tier's severity, the coarser scale findings carried before tiers:
// blocker and info as they are, every other tier a warning.
func severityOf(tier string) string {
	switch tier {
	case TierBlocker:
		return SeverityBlocker
	case TierInfo:
		return SeverityInfo
	default:
		return SeverityWarning
	}
}

// VerdictTier is the worst tier of the findings, TierNone when none is above info.
func VerdictTier(findings []inventory.Finding) string {
	worst := TierNone
	for _, f := range findings {
		if r := TierRank(f.Tier); r < TierRank(TierInfo) && (worst == TierNone || r < TierRank(worst)) {
			worst = f.Tier
		}
	}
	return worst
}
