package readiness

import "github.com/gl2gh/discovery-agent/internal/inventory"

// Effort estimates the hours a project's migration takes, from the weights in t:
//
//	effort_base_hours                               every project (create, import, verify)
//	+ effort_<tier>_hours × findings of the tier    blocker, data, ci, settings; info adds nothing
//	+ ⌈CI jobs / effort_ci_jobs_per_hour⌉           converting a parsed CI grows with its jobs
//	+ ⌈export size / effort_size_per_hour⌉          moving and checking the data
//
// A size term whose weight is 0 is off. Unknown values add nothing, so the estimate
// of a partly scanned project is a lower bound. More of anything never lowers it.
func Effort(p inventory.Project, findings []inventory.Finding, t Thresholds) int64 {
	hours := t.EffortBaseHours
	for _, f := range findings {
		switch f.Tier {
		case TierBlocker:
			hours += t.EffortBlockerHours
		case TierData:
			hours += t.EffortDataHours
		case TierCI:
			hours += t.EffortCIHours
		case TierSettings:
			hours += t.EffortSettingsHours
		}
	}
	if ci := p.Features.CI; ci != nil && !ci.Invalid {
		hours += ceilDiv(int64(max(ci.Jobs, 0)), t.EffortCIJobsPerHour)
	}
	if st := p.Statistics; st != nil {
		hours += ceilDiv(max(st.ExportSize(), 0), int64(t.EffortSizePerHour))
	}
	return hours
}

// ceilDiv is ⌈n/d⌉ for n ≥ 0, and 0 when d is 0 (the term is off).
func ceilDiv(n, d int64) int64 {
	if d <= 0 || n <= 0 {
		return 0
	}
	return (n-1)/d + 1
}

// EffortClass classes an effort estimate: S below effort_m hours, M below effort_l,
// L below effort_xl, XL from there.
func EffortClass(hours int64, t Thresholds) string {
	switch {
	case hours < t.EffortM:
		return SizeS
	case hours < t.EffortL:
		return SizeM
	case hours < t.EffortXL:
		return SizeL
	default:
		return SizeXL
	}
}
