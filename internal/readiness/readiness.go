// Package readiness judges how ready a GitLab project is to move to GitHub. The rules,
// one list of values (Rules), produce findings, each with a code, a tier (blocker,
// data, ci, settings or info: the kind of work, see Tiers), a message and remediation.
// The worst tier is the project's verdict tier; its category follows:
//
//	blocked          a blocker
//	needs_attention  a data, ci or settings finding, no blocker
//	ready            neither (info findings do not count)
//
// The thresholds assume a migration path (MIGRATION_PATH, see Paths), whose limits
// decide the size blockers; each verdict names it. Each project gets an effort
// estimate in hours and an effort class from overridable weights (see Effort).
//
// Unknown values (a nil count, nil statistics) never trigger a rule.
//
// The thresholds the rules compare against are one table, Thresholds. The defaults
// come from DefaultThresholds; the file named by the READINESS_THRESHOLDS environment
// variable (JSON or YAML, see LoadThresholds) overrides any of them.
//
// Besides the category, Assess gives a 0-100 complexity score (see Score) and a size
// class S/M/L/XL of the export size (see SizeClass).
package readiness

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// Size classes.
const (
	SizeS  = "S"
	SizeM  = "M"
	SizeL  = "L"
	SizeXL = "XL"
)

// Assess applies every rule in Rules to a project.
func Assess(p inventory.Project, t Thresholds) inventory.Readiness {
	findings := []inventory.Finding{}
	for _, r := range Rules {
		if msg, ok := r.Check(p, t); ok {
			findings = append(findings, inventory.Finding{
				Code:        r.Code,
				Severity:    r.Severity(),
				Tier:        r.Tier,
				Message:     msg,
				Remediation: r.Remediation,
			})
		}
	}
	slices.SortStableFunc(findings, func(x, y inventory.Finding) int {
		return cmp.Or(cmp.Compare(TierRank(x.Tier), TierRank(y.Tier)), strings.Compare(x.Code, y.Code))
	})
	hours := Effort(p, findings, t)
	return inventory.Readiness{
		Category:    Category(findings),
		Tier:        VerdictTier(findings),
		Score:       Score(p, findings),
		SizeClass:   SizeClass(p.Statistics, t),
		EffortHours: hours,
		Effort:      EffortClass(hours, t),
		Path:        t.Path,
		Findings:    findings,
	}
}

func known(n *int64) (int64, bool) {
	if n == nil {
		return 0, false
	}
	return *n, true
}

// Category is blocked with any blocker, needs_attention with any warning, else ready.
func Category(findings []inventory.Finding) string {
	category := inventory.Ready
	for _, f := range findings {
		switch f.Severity {
		case SeverityBlocker:
			return inventory.Blocked
		case SeverityWarning:
			category = inventory.NeedsAttention
		}
	}
	return category
}

// SizeClass classes a project by its export size (repository + wiki + LFS + snippets
// + uploads: what has to move). It is "" when the statistics are unknown.
func SizeClass(st *inventory.Statistics, t Thresholds) string {
	if st == nil {
		return ""
	}
	switch size := Bytes(st.ExportSize()); {
	case size < t.SizeM:
		return SizeS
	case size < t.SizeL:
		return SizeM
	case size < t.SizeXL:
		return SizeL
	default:
		return SizeXL
	}
}

// Score weights (points), see Score.
const (
	scoreCI          = 25
	scoreMRs         = 25
	scoreIssues      = 15
	scoreSize        = 20
	scoreFindings    = 15
	pointsPerBlocker = 5
	pointsPerWarning = 3
)

// Score is a 0-100 estimate of the migration effort, the rounded sum of
//
//	CI           25 × CI complexity / 100          (0 when unknown or invalid)
//	MRs          25 × min(1, log10(1 + MRs) / 4)   (10,000 MRs or more give 25)
//	issues       15 × min(1, log10(1 + issues) / 4)
//	size         20 × min(1, log10(1 + export MiB) / log10(1 + 40960))  (40 GiB or more give 20)
//	findings     min(15, 5 × blockers + 3 × warnings)
//
// Unknown values add nothing. Every term grows with its input, so more of anything
// never lowers the score. The score does not depend on Thresholds, so it stays
// comparable across runs with different overrides.
func Score(p inventory.Project, findings []inventory.Finding) int {
	var s float64
	if ci := p.Features.CI; ci != nil && !ci.Invalid {
		s += scoreCI * float64(min(max(ci.Complexity, 0), 100)) / 100
	}
	s += logPoints(p.Counts.MergeRequests, scoreMRs)
	s += logPoints(p.Counts.Issues, scoreIssues)
	if st := p.Statistics; st != nil && st.ExportSize() > 0 {
		mib := float64(st.ExportSize()) / float64(MiB)
		s += scoreSize * math.Min(1, math.Log10(1+mib)/math.Log10(1+40960))
	}
	fp := 0
	for _, f := range findings {
		switch f.Severity {
		case SeverityBlocker:
			fp += pointsPerBlocker
		case SeverityWarning:
			fp += pointsPerWarning
		}
	}
	s += float64(min(fp, scoreFindings))
	return min(max(int(math.Round(s)), 0), 100)
}

// logPoints gives weight × min(1, log10(1+n)/4) for a known count n: on a log scale
// 10 earns about a quarter of the weight, 100 half and 10,000 all of it, so the first
// hundreds matter and a long tail does not dominate.
func logPoints(n *int64, weight float64) float64 {
	v, ok := known(n)
	if !ok || v <= 0 {
		return 0
	}
	return weight * math.Min(1, math.Log10(1+float64(v))/4)
}
