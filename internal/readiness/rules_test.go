package readiness

import (
	"regexp"
	"slices"
	"testing"
)

// TestRulesWellFormed: every rule has a unique code, a known tier, a title,
// a remediation and a check.
func TestRulesWellFormed(t *testing.T) {
	code := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	seen := map[string]bool{}
	for i, r := range Rules {
		if !code.MatchString(r.Code) {
			t.Errorf("rule %d: code %q is not lower_snake_case", i, r.Code)
		}
		if seen[r.Code] {
			t.Errorf("rule %s listed twice", r.Code)
		}
		seen[r.Code] = true
		if !slices.Contains(Tiers, r.Tier) {
			t.Errorf("rule %s: unknown tier %q", r.Code, r.Tier)
		}
		if r.Title == "" || r.Remediation == "" || r.Check == nil {
			t.Errorf("rule %s: title, remediation and check are required", r.Code)
		}
	}
}

func TestRuleFor(t *testing.T) {
	for _, r := range Rules {
		if got, ok := RuleFor(r.Code); !ok || got.Code != r.Code || got.Tier != r.Tier {
			t.Errorf("RuleFor(%q) = %+v, %v", r.Code, got, ok)
		}
	}
	if r, ok := RuleFor("no_such_rule"); ok {
		t.Errorf("RuleFor(no_such_rule) = %+v, true", r)
	}
}

func TestRuleSeverity(t *testing.T) {
	for tier, want := range map[string]string{
		TierBlocker: SeverityBlocker, TierData: SeverityWarning, TierCI: SeverityWarning,
		TierSettings: SeverityWarning, TierInfo: SeverityInfo,
	} {
		if got := (Rule{Tier: tier}).Severity(); got != want {
			t.Errorf("tier %s: severity %s, want %s", tier, got, want)
		}
	}
}
