package readiness

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

func ptr(n int64) *int64 { return &n }

// clean is a fully scanned project that no rule flags.
func clean() inventory.Project {
	zero := func() *int64 { return ptr(0) }
	return inventory.Project{
		ID:                1,
		PathWithNamespace: "g/p",
		Visibility:        "private",
		ScanStatus:        inventory.StatusComplete,
		Statistics:        &inventory.Statistics{RepositorySize: 10 * int64(MiB)},
		Counts: inventory.Counts{
			Branches: zero(), Tags: zero(), MergeRequests: zero(), OpenMergeRequests: zero(),
			Issues: zero(), OpenIssues: zero(), Pipelines: zero(), Releases: zero(),
			Webhooks: zero(), ProtectedBranches: zero(), CIVariables: zero(), Environments: zero(),
		},
		Features: inventory.Features{
			HasCI: new(false), UsesLFS: new(false), HasSubmodules: new(false), HasCodeowners: new(false),
			RegistryInUse: new(false), PackageTypes: []string{},
		},
	}
}

func codes(fs []inventory.Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

func TestAssessRules(t *testing.T) {
	def, err := PathThresholds(PathGEI) // the path with every size blocker
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		mod      func(p *inventory.Project)
		codes    []string
		category string
	}{
		{"clean project is ready", func(*inventory.Project) {}, []string{}, inventory.Ready},

		{"repository exactly 40 GiB", func(p *inventory.Project) { p.Statistics.RepositorySize = int64(40 * GiB) },
			[]string{"large_repo"}, inventory.NeedsAttention},
		{"repository one byte over 40 GiB", func(p *inventory.Project) { p.Statistics.RepositorySize = int64(40*GiB) + 1 },
			[]string{"export_too_large", "repo_too_large"}, inventory.Blocked},
		{"export exactly 40 GiB", func(p *inventory.Project) {
			p.Statistics = &inventory.Statistics{RepositorySize: int64(GiB), WikiSize: int64(GiB), LFSObjectsSize: int64(36 * GiB), SnippetsSize: int64(GiB), UploadsSize: int64(GiB)}
		}, []string{"lfs"}, inventory.NeedsAttention},
		{"export one byte over 40 GiB", func(p *inventory.Project) {
			p.Statistics = &inventory.Statistics{RepositorySize: int64(GiB), WikiSize: int64(GiB), LFSObjectsSize: int64(36 * GiB), SnippetsSize: int64(GiB), UploadsSize: int64(GiB) + 1}
		}, []string{"export_too_large", "lfs"}, inventory.Blocked},
		{"artifacts count toward storage, not the export", func(p *inventory.Project) {
			p.Statistics = &inventory.Statistics{JobArtifactsSize: int64(100 * GiB), StorageSize: int64(100 * GiB)}
		}, []string{"large_storage"}, inventory.NeedsAttention},
		{"storage exactly 20 GiB", func(p *inventory.Project) { p.Statistics.StorageSize = int64(20 * GiB) }, []string{}, inventory.Ready},
		{"storage one byte over 20 GiB", func(p *inventory.Project) { p.Statistics.StorageSize = int64(20*GiB) + 1 },
			[]string{"large_storage"}, inventory.NeedsAttention},
		{"registry one byte over 20 GiB", func(p *inventory.Project) { p.Statistics.ContainerRegistrySize = int64(20*GiB) + 1 },
			[]string{"container_registry", "large_registry"}, inventory.NeedsAttention},
		{"commits at 50000", func(p *inventory.Project) { p.Statistics.CommitCount = 50000 }, []string{}, inventory.Ready},
		{"commits at 50001", func(p *inventory.Project) { p.Statistics.CommitCount = 50001 }, []string{"many_commits"}, inventory.NeedsAttention},

		{"repository exactly 5 GiB", func(p *inventory.Project) { p.Statistics.RepositorySize = int64(5 * GiB) }, []string{}, inventory.Ready},
		{"repository one byte over 5 GiB", func(p *inventory.Project) { p.Statistics.RepositorySize = int64(5*GiB) + 1 },
			[]string{"large_repo"}, inventory.NeedsAttention},

		{"gitlab ci", func(p *inventory.Project) {
			p.Features.HasCI = new(true)
			p.Features.CI = &inventory.CI{Jobs: 3, Complexity: 20}
		}, []string{"gitlab_ci"}, inventory.NeedsAttention},
		{"gitlab ci not parsed", func(p *inventory.Project) { p.Features.HasCI = new(true) }, []string{"gitlab_ci"}, inventory.NeedsAttention},
		{"invalid ci", func(p *inventory.Project) {
			p.Features.HasCI = new(true)
			p.Features.CI = &inventory.CI{Invalid: true}
		}, []string{"gitlab_ci", "ci_invalid"}, inventory.NeedsAttention},

		{"lfs flag", func(p *inventory.Project) { p.Features.UsesLFS = new(true) }, []string{"lfs"}, inventory.NeedsAttention},
		{"lfs bytes", func(p *inventory.Project) { p.Statistics.LFSObjectsSize = 1 }, []string{"lfs"}, inventory.NeedsAttention},
		{"submodules", func(p *inventory.Project) { p.Features.HasSubmodules = new(true) }, []string{"submodules"}, inventory.NeedsAttention},
		{"registry flag", func(p *inventory.Project) { p.Features.RegistryInUse = new(true) }, []string{"container_registry"}, inventory.NeedsAttention},
		{"registry bytes", func(p *inventory.Project) { p.Statistics.ContainerRegistrySize = 1 }, []string{"container_registry"}, inventory.NeedsAttention},
		{"registry enabled but empty", func(p *inventory.Project) { p.Features.RegistryEnabled = true }, []string{}, inventory.Ready},
		{"package types", func(p *inventory.Project) { p.Features.PackageTypes = []string{"maven", "npm"} }, []string{"packages"}, inventory.NeedsAttention},
		{"package bytes", func(p *inventory.Project) { p.Statistics.PackagesSize = 1 }, []string{"packages"}, inventory.NeedsAttention},

		{"one webhook", func(p *inventory.Project) { p.Counts.Webhooks = ptr(1) }, []string{"webhooks"}, inventory.NeedsAttention},
		{"one ci variable", func(p *inventory.Project) { p.Counts.CIVariables = ptr(1) }, []string{"ci_variables"}, inventory.NeedsAttention},
		{"one protected branch: the default branch", func(p *inventory.Project) { p.Counts.ProtectedBranches = ptr(1) }, []string{"default_branch_protected"}, inventory.Ready},
		{"two protected branches", func(p *inventory.Project) { p.Counts.ProtectedBranches = ptr(2) }, []string{"protected_branches"}, inventory.NeedsAttention},
		{"internal visibility", func(p *inventory.Project) { p.Visibility = "internal" }, []string{"internal_visibility"}, inventory.NeedsAttention},
		{"public visibility", func(p *inventory.Project) { p.Visibility = "public" }, []string{}, inventory.Ready},

		{"merge requests at 5000", func(p *inventory.Project) { p.Counts.MergeRequests = ptr(5000) }, []string{}, inventory.Ready},
		{"merge requests at 5001", func(p *inventory.Project) { p.Counts.MergeRequests = ptr(5001) }, []string{"many_merge_requests"}, inventory.NeedsAttention},
		{"issues at 5000", func(p *inventory.Project) { p.Counts.Issues = ptr(5000) }, []string{}, inventory.Ready},
		{"issues at 5001", func(p *inventory.Project) { p.Counts.Issues = ptr(5001) }, []string{"many_issues"}, inventory.NeedsAttention},
		{"pipelines at 5000", func(p *inventory.Project) { p.Counts.Pipelines = ptr(5000) }, []string{}, inventory.Ready},
		{"pipelines at 5001", func(p *inventory.Project) { p.Counts.Pipelines = ptr(5001) }, []string{"many_pipelines"}, inventory.NeedsAttention},
		{"branches at 1000", func(p *inventory.Project) { p.Counts.Branches = ptr(1000) }, []string{}, inventory.Ready},
		{"branches at 1001", func(p *inventory.Project) { p.Counts.Branches = ptr(1001) }, []string{"many_branches"}, inventory.NeedsAttention},
		{"tags at 5000", func(p *inventory.Project) { p.Counts.Tags = ptr(5000) }, []string{}, inventory.Ready},
		{"tags at 5001", func(p *inventory.Project) { p.Counts.Tags = ptr(5001) }, []string{"many_tags"}, inventory.NeedsAttention},

		{"archived", func(p *inventory.Project) { p.Archived = true }, []string{"archived"}, inventory.Ready},
		{"empty repo", func(p *inventory.Project) { p.EmptyRepo = true }, []string{"empty_repo"}, inventory.Ready},
		{"lower bound counts", func(p *inventory.Project) {
			p.Counts.MergeRequests = ptr(10000)
			p.Counts.LowerBounds = []string{"merge_requests"}
		}, []string{"many_merge_requests", "lower_bound_counts"}, inventory.NeedsAttention},
		{"partial scan", func(p *inventory.Project) {
			p.ScanStatus = inventory.StatusPartial
			p.Errors = []inventory.ScanError{{Step: "hooks", Status: 403, Message: "403 Forbidden"}}
			p.Counts.Webhooks = nil
		}, []string{"incomplete_scan", "unchecked"}, inventory.Ready},

		{"unknown values trigger no rule but unchecked", func(p *inventory.Project) {
			*p = inventory.Project{ID: 1, ScanStatus: inventory.StatusComplete}
		}, []string{"unchecked"}, inventory.Ready},
		{"unknown CI is unchecked, not no CI", func(p *inventory.Project) { p.Features.HasCI = nil }, []string{"unchecked"}, inventory.Ready},
		{"unknown webhooks are unchecked", func(p *inventory.Project) { p.Counts.Webhooks = nil }, []string{"unchecked"}, inventory.Ready},
		{"statistics settle unknown LFS and registry", func(p *inventory.Project) {
			p.Features.UsesLFS, p.Features.RegistryInUse = nil, nil
			p.Statistics.LFSObjectsSize = 1
		}, []string{"lfs"}, inventory.NeedsAttention},
		{"external CI config", func(p *inventory.Project) {
			p.Features.HasCI = new(true)
			p.Features.CIConfigExternal = "platform/ci-templates"
		}, []string{"gitlab_ci"}, inventory.NeedsAttention},

		{"everything at once, blockers first then by code", func(p *inventory.Project) {
			p.Statistics.RepositorySize = int64(41 * GiB)
			p.Archived = true
			p.Visibility = "internal"
			p.Counts.Webhooks = ptr(2)
			p.Features.HasCI = new(true)
			p.Features.HasSubmodules = new(true)
		}, []string{"export_too_large", "repo_too_large", "gitlab_ci", "internal_visibility", "submodules", "webhooks", "archived"}, inventory.Blocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := clean()
			tt.mod(&p)
			got := Assess(p, def)
			if c := codes(got.Findings); !slices.Equal(c, tt.codes) {
				t.Errorf("codes = %v, want %v", c, tt.codes)
			}
			if got.Category != tt.category {
				t.Errorf("category = %q, want %q", got.Category, tt.category)
			}
			if got.Score < 0 || got.Score > 100 {
				t.Errorf("score %d out of range", got.Score)
			}
			// The category follows the verdict tier.
			if want := map[string]string{TierBlocker: inventory.Blocked, TierNone: inventory.Ready}[got.Tier]; got.Category != cmp.Or(want, inventory.NeedsAttention) {
				t.Errorf("tier %s with category %s", got.Tier, got.Category)
			}
			if got.Path != PathGEI || got.Effort == "" || got.EffortHours < def.EffortBaseHours {
				t.Errorf("path %q, effort %q (%d h)", got.Path, got.Effort, got.EffortHours)
			}
			for _, f := range got.Findings {
				r, ok := RuleFor(f.Code)
				if !ok || f.Severity != r.Severity() || f.Tier != r.Tier || f.Remediation != r.Remediation || f.Message == "" {
					t.Errorf("finding %+v does not match its rule %+v", f, r)
				}
			}
		})
	}
	// A rule nobody tests can match wrongly or never: every rule needs a case above.
	tested := map[string]bool{}
	for _, tt := range tests {
		for _, c := range tt.codes {
			tested[c] = true
		}
	}
	for _, r := range Rules {
		if !tested[r.Code] {
			t.Errorf("no case finds rule %s", r.Code)
		}
	}
}

func TestAssessNilStatisticsDoNotPanic(t *testing.T) {
	p := inventory.Project{Features: inventory.Features{HasCI: new(true), UsesLFS: new(true), RegistryInUse: new(true)}}
	got := Assess(p, DefaultThresholds())
	if got.SizeClass != "" {
		t.Errorf("size class with unknown statistics = %q, want empty", got.SizeClass)
	}
	if want := []string{"container_registry", "lfs", "gitlab_ci", "unchecked"}; !slices.Equal(codes(got.Findings), want) { // data before ci, info last
		t.Errorf("codes = %v, want %v", codes(got.Findings), want)
	}
}

func TestAssessMessages(t *testing.T) {
	gei, err := PathThresholds(PathGEI)
	if err != nil {
		t.Fatal(err)
	}
	p := clean()
	p.Statistics.RepositorySize = int64(45 * GiB)
	p.Counts.MergeRequests = ptr(10000)
	p.Counts.LowerBounds = []string{"merge_requests"}
	p.Features.HasCI = new(true)
	p.Features.CI = &inventory.CI{Jobs: 12, Stages: 4, Includes: 2, Complexity: 57}
	got := Assess(p, gei)
	want := map[string]string{
		"repo_too_large":      "40 GiB limit of the gei path",
		"gitlab_ci":           "complexity 57/100",
		"many_merge_requests": "at least 10000 merge requests",
		"lower_bound_counts":  "merge_requests",
	}
	for _, f := range got.Findings {
		if w, ok := want[f.Code]; ok && !strings.Contains(f.Message, w) {
			t.Errorf("%s message %q does not mention %q", f.Code, f.Message, w)
		}
	}
}

func TestAssessOverrides(t *testing.T) {
	tight := DefaultThresholds()
	tight.MaxRepositorySize = 1 * GiB
	tight.ManyBranches = 10
	tight.LargeRepositorySize = 100 * MiB

	tests := []struct {
		name     string
		mod      func(p *inventory.Project)
		codes    []string
		category string
	}{
		{"repo at lowered limit", func(p *inventory.Project) { p.Statistics.RepositorySize = int64(GiB) }, []string{"large_repo"}, inventory.NeedsAttention},
		{"repo over lowered limit", func(p *inventory.Project) { p.Statistics.RepositorySize = int64(GiB) + 1 }, []string{"repo_too_large"}, inventory.Blocked},
		{"branches at lowered threshold", func(p *inventory.Project) { p.Counts.Branches = ptr(10) }, []string{}, inventory.Ready},
		{"branches over lowered threshold", func(p *inventory.Project) { p.Counts.Branches = ptr(11) }, []string{"many_branches"}, inventory.NeedsAttention},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := clean()
			tt.mod(&p)
			got := Assess(p, tight)
			if c := codes(got.Findings); !slices.Equal(c, tt.codes) || got.Category != tt.category {
				t.Errorf("got %v %s, want %v %s", c, got.Category, tt.codes, tt.category)
			}
		})
	}
}

func TestSizeClass(t *testing.T) {
	def := DefaultThresholds()
	tests := []struct {
		size int64
		want string
	}{
		{0, SizeS},
		{int64(100*MiB) - 1, SizeS},
		{int64(100 * MiB), SizeM},
		{int64(GiB) - 1, SizeM},
		{int64(GiB), SizeL},
		{int64(10*GiB) - 1, SizeL},
		{int64(10 * GiB), SizeXL},
		{int64(500 * GiB), SizeXL},
	}
	for _, tt := range tests {
		// Split across export components to show the class is of the export size.
		st := &inventory.Statistics{RepositorySize: tt.size / 2, WikiSize: tt.size - tt.size/2, JobArtifactsSize: int64(TiB)}
		if got := SizeClass(st, def); got != tt.want {
			t.Errorf("SizeClass(%d) = %q, want %q", tt.size, got, tt.want)
		}
	}
	if got := SizeClass(nil, def); got != "" {
		t.Errorf("SizeClass(nil) = %q, want empty", got)
	}
	custom := def
	custom.SizeM, custom.SizeL, custom.SizeXL = 10, 20, 30
	if got := SizeClass(&inventory.Statistics{RepositorySize: 25}, custom); got != SizeL {
		t.Errorf("SizeClass with overrides = %q, want L", got)
	}
}

func TestScore(t *testing.T) {
	blocker := inventory.Finding{Severity: SeverityBlocker}
	warning := inventory.Finding{Severity: SeverityWarning}
	info := inventory.Finding{Severity: SeverityInfo}
	tests := []struct {
		name     string
		p        inventory.Project
		findings []inventory.Finding
		want     int
	}{
		{"nothing known", inventory.Project{}, nil, 0},
		{"ci complexity 100", inventory.Project{Features: inventory.Features{CI: &inventory.CI{Complexity: 100}}}, nil, 25},
		{"ci complexity 40", inventory.Project{Features: inventory.Features{CI: &inventory.CI{Complexity: 40}}}, nil, 10},
		{"invalid ci adds nothing", inventory.Project{Features: inventory.Features{CI: &inventory.CI{Invalid: true, Complexity: 100}}}, nil, 0},
		{"9999 merge requests", inventory.Project{Counts: inventory.Counts{MergeRequests: ptr(9999)}}, nil, 25},
		{"99 merge requests", inventory.Project{Counts: inventory.Counts{MergeRequests: ptr(99)}}, nil, 13}, // 12.5 rounds up
		{"million issues capped", inventory.Project{Counts: inventory.Counts{Issues: ptr(1e6)}}, nil, 15},
		{"40 GiB export", inventory.Project{Statistics: &inventory.Statistics{RepositorySize: int64(40 * GiB)}}, nil, 20},
		{"one blocker two warnings one info", inventory.Project{}, []inventory.Finding{blocker, warning, warning, info}, 11},
		{"findings capped", inventory.Project{}, []inventory.Finding{blocker, blocker, blocker, blocker}, 15},
		{"everything maxed", inventory.Project{
			Features:   inventory.Features{CI: &inventory.CI{Complexity: 100}},
			Counts:     inventory.Counts{MergeRequests: ptr(1e5), Issues: ptr(1e5)},
			Statistics: &inventory.Statistics{RepositorySize: int64(TiB)},
		}, []inventory.Finding{blocker, blocker, blocker}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Score(tt.p, tt.findings); got != tt.want {
				t.Errorf("Score = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestScoreMonotone(t *testing.T) {
	prev := -1
	for _, n := range []int64{0, 1, 10, 100, 1000, 5000, 10000, 50000} {
		p := clean()
		p.Counts.MergeRequests = ptr(n)
		p.Counts.Issues = ptr(n)
		p.Statistics.RepositorySize = n * int64(MiB)
		s := Assess(p, DefaultThresholds()).Score
		if s < prev {
			t.Fatalf("score fell from %d to %d at n=%d", prev, s, n)
		}
		prev = s
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want Bytes
		err  bool
	}{
		{"0", 0, false},
		{"42949672960", 40 * GiB, false},
		{"40GiB", 40 * GiB, false},
		{"40 gib", 40 * GiB, false},
		{"5GB", 5e9, false},
		{"100 MiB", 100 * MiB, false},
		{"1.5KiB", 1536, false},
		{"7B", 7, false},
		{"", 0, true},
		{"GiB", 0, true},
		{"-1", 0, true},
		{"1 XB", 0, true},
		{"9223372036854775807", 1<<63 - 1, false},
		{"9000000 TiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestBytesString(t *testing.T) {
	tests := []struct {
		in   Bytes
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{KiB, "1 KiB"},
		{1536, "1.5 KiB"},
		{40 * GiB, "40 GiB"},
		{40*GiB + 1, "40 GiB"},
		{3 * TiB, "3 TiB"},
		{-2 * MiB, "-2 MiB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Bytes(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
}

// TestUncheckedNamesWhatIsUnknown: the unchecked finding names, as the exports do,
// every unknown fact the rules read, and nothing that is known.
func TestUncheckedNamesWhatIsUnknown(t *testing.T) {
	tests := []struct {
		name string
		mod  func(p *inventory.Project)
		want string
	}{
		{"repository denied", func(p *inventory.Project) {
			p.Features.HasCI, p.Features.HasSubmodules, p.Features.HasCodeowners, p.Features.UsesLFS = nil, nil, nil, nil
		}, "Could not check: has_ci, uses_lfs, has_submodules, has_codeowners."},
		{"statistics and packages", func(p *inventory.Project) {
			p.Statistics, p.Features.PackageTypes = nil, nil
		}, "Could not check: statistics, package_types."},
		{"counts", func(p *inventory.Project) { p.Counts.Webhooks, p.Counts.Tags = nil, nil }, "Could not check: tags, webhooks."},
		{"registry without statistics", func(p *inventory.Project) {
			p.Statistics, p.Features.RegistryInUse = nil, nil
		}, "Could not check: statistics, registry_in_use."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := clean()
			tt.mod(&p)
			var msg string
			for _, f := range Assess(p, DefaultThresholds()).Findings {
				if f.Code == "unchecked" {
					msg = f.Message
				}
			}
			if msg != tt.want {
				t.Errorf("unchecked message %q, want %q", msg, tt.want)
			}
		})
	}
}
