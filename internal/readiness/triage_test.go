package readiness

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// TestAssessPaths: the size blockers and the large-repository threshold follow the
// migration path, and the verdict names the path.
func TestAssessPaths(t *testing.T) {
	tests := []struct {
		path, name string
		repo       int64
		codes      []string
		tier       string
	}{
		{PathMirror, "100 GiB: no size blocker on a mirror push", int64(100 * GiB), []string{"large_repo"}, TierData},
		{PathMirror, "2 GiB: one push", int64(2 * GiB), []string{}, TierNone},
		{PathMirror, "2 GiB + 1: pushed in pieces", int64(2*GiB) + 1, []string{"large_repo"}, TierData},
		{PathGHES, "over the 40 GiB archive", int64(40*GiB) + 1, []string{"export_too_large", "repo_too_large"}, TierBlocker},
		{PathGHES, "3 GiB", int64(3 * GiB), []string{}, TierNone},
		{PathGEI, "over the 40 GiB limit", int64(40*GiB) + 1, []string{"export_too_large", "repo_too_large"}, TierBlocker},
		{PathGEI, "5 GiB + 1", int64(5*GiB) + 1, []string{"large_repo"}, TierData},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.name, func(t *testing.T) {
			th, err := PathThresholds(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			p := clean()
			p.Statistics.RepositorySize = tt.repo
			got := Assess(p, th)
			if c := codes(got.Findings); strings.Join(c, ",") != strings.Join(tt.codes, ",") || got.Tier != tt.tier || got.Path != tt.path {
				t.Errorf("got %v tier %s path %s, want %v tier %s path %s", c, got.Tier, got.Path, tt.codes, tt.tier, tt.path)
			}
		})
	}
	if _, err := PathThresholds("github-importer"); err == nil || !strings.Contains(err.Error(), "mirror, ghes, gei") {
		t.Errorf("unknown path: err = %v, want the known paths listed", err)
	}
	if _, err := Load("nope", ""); err == nil || !strings.Contains(err.Error(), EnvPath) {
		t.Errorf("Load with an unknown path: err = %v, want one naming %s", err, EnvPath)
	}
	if DefaultThresholds().Path != DefaultPath {
		t.Errorf("DefaultThresholds assume %q, want %q", DefaultThresholds().Path, DefaultPath)
	}
}

// TestLoadOverridesPathDefaults: a thresholds file overrides the path's defaults, and
// what it leaves out keeps them.
func TestLoadOverridesPathDefaults(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(file, []byte("max_export_size: 10GiB\neffort_ci_hours: 9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(PathMirror, file)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := PathThresholds(PathMirror)
	want.MaxExportSize, want.EffortCIHours = 10*GiB, 9
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestVerdictTier(t *testing.T) {
	f := func(tiers ...string) []inventory.Finding {
		var fs []inventory.Finding
		for _, tier := range tiers {
			fs = append(fs, inventory.Finding{Tier: tier})
		}
		return fs
	}
	tests := []struct {
		findings []inventory.Finding
		want     string
	}{
		{nil, TierNone},
		{f(TierInfo, TierInfo), TierNone},
		{f(TierSettings, TierInfo), TierSettings},
		{f(TierSettings, TierCI), TierCI},
		{f(TierCI, TierData, TierSettings), TierData},
		{f(TierData, TierBlocker), TierBlocker},
		{f(""), TierNone}, // a stored finding from before tiers counts as info
	}
	for _, tt := range tests {
		if got := VerdictTier(tt.findings); got != tt.want {
			t.Errorf("VerdictTier(%v) = %s, want %s", tt.findings, got, tt.want)
		}
	}
}

func TestEffort(t *testing.T) {
	def := DefaultThresholds()
	finding := func(tier string) inventory.Finding { return inventory.Finding{Tier: tier} }
	tests := []struct {
		name     string
		p        inventory.Project
		findings []inventory.Finding
		hours    int64
		class    string
	}{
		{"nothing known: the base", inventory.Project{}, nil, 1, SizeS},
		{"info adds nothing", inventory.Project{}, []inventory.Finding{finding(TierInfo)}, 1, SizeS},
		{"two settings", inventory.Project{}, []inventory.Finding{finding(TierSettings), finding(TierSettings)}, 3, SizeS},
		{"ci finding and 40 jobs", inventory.Project{Features: inventory.Features{CI: &inventory.CI{Jobs: 40}}},
			[]inventory.Finding{finding(TierCI)}, 1 + 4 + 8, SizeM},
		{"invalid ci: no job term", inventory.Project{Features: inventory.Features{CI: &inventory.CI{Jobs: 40, Invalid: true}}},
			[]inventory.Finding{finding(TierCI)}, 5, SizeM},
		{"6 jobs round up", inventory.Project{Features: inventory.Features{CI: &inventory.CI{Jobs: 6}}}, nil, 3, SizeS},
		{"one byte of export: one hour", inventory.Project{Statistics: &inventory.Statistics{RepositorySize: 1}}, nil, 2, SizeS},
		{"blocker and 25 GiB", inventory.Project{Statistics: &inventory.Statistics{RepositorySize: int64(25 * GiB)}},
			[]inventory.Finding{finding(TierBlocker), finding(TierData)}, 1 + 16 + 2 + 3, SizeL},
		{"everything", inventory.Project{Features: inventory.Features{CI: &inventory.CI{Jobs: 100}}},
			[]inventory.Finding{finding(TierBlocker), finding(TierBlocker), finding(TierCI)}, 1 + 32 + 4 + 20, SizeXL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Effort(tt.p, tt.findings, def)
			if c := EffortClass(h, def); h != tt.hours || c != tt.class {
				t.Errorf("Effort = %d h %s, want %d h %s", h, c, tt.hours, tt.class)
			}
		})
	}
	off := def
	off.EffortCIJobsPerHour, off.EffortSizePerHour = 0, 0
	p := inventory.Project{Features: inventory.Features{CI: &inventory.CI{Jobs: 100}}, Statistics: &inventory.Statistics{RepositorySize: int64(TiB)}}
	if h := Effort(p, nil, off); h != off.EffortBaseHours {
		t.Errorf("size terms off: %d h, want the base %d", h, off.EffortBaseHours)
	}
}

func TestEffortClassesValidated(t *testing.T) {
	th := DefaultThresholds()
	th.EffortL = th.EffortXL + 1
	if err := th.Validate(); err == nil || !strings.Contains(err.Error(), "effort classes out of order") {
		t.Errorf("Validate = %v, want effort classes out of order", err)
	}
	th = DefaultThresholds()
	th.Path = "teleport"
	if err := th.Validate(); err == nil || !errors.Is(err, err) || !strings.Contains(err.Error(), "teleport") {
		t.Errorf("Validate with an unknown path = %v", err)
	}
}
