package scancheck

import (
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

func n(v int64) *int64 { return &v }

func truthProject() inventory.Project {
	return inventory.Project{
		ID: 1, PathWithNamespace: "g/p", GroupID: 2, GroupFullPath: "g", ScanStatus: inventory.StatusComplete,
		Errors: []inventory.ScanError{}, Owners: []string{"ann"},
		Counts: inventory.Counts{Branches: n(3), Releases: n(1), Webhooks: n(2), CIVariables: n(4)},
		Features: inventory.Features{HasCI: new(true), CI: &inventory.CI{Jobs: 2}, HasSubmodules: new(false),
			HasCodeowners: new(true), UsesLFS: new(false), RegistryInUse: new(false), PackageTypes: []string{}},
	}
}

func TestDiffProjects(t *testing.T) {
	forbid := func(p *inventory.Project, step string) {
		p.Errors = append(p.Errors, inventory.ScanError{Step: step, Status: 403, Message: "403 Forbidden"})
		p.ScanStatus = inventory.StatusPartial
	}
	tests := []struct {
		name      string
		forbidden []string
		scan      func(*inventory.Project)
		want      string // a substring of the only diff; "" for none
	}{
		{"equal", nil, func(*inventory.Project) {}, ""},
		{"count differs", nil, func(p *inventory.Project) { p.Counts.Branches = n(4) }, "counts"},
		{"forbidden count unknown", []string{"projects/:id/releases"},
			func(p *inventory.Project) { forbid(p, "releases"); p.Counts.Releases = nil }, ""},
		{"forbidden count not recorded", []string{"projects/:id/releases"},
			func(p *inventory.Project) {}, "403 on projects/:id/releases not recorded"},
		{"unexpected 403", nil, func(p *inventory.Project) { forbid(p, "webhooks"); p.Counts.Webhooks = nil }, "unexpected error"},
		{"repository denied, facts unknown", []string{"projects/:id/repository/tree"}, func(p *inventory.Project) {
			forbid(p, "tree")
			p.Features.HasCI, p.Features.CI, p.Features.HasSubmodules, p.Features.HasCodeowners, p.Features.UsesLFS = nil, nil, nil, nil, nil
		}, ""},
		{"repository denied, reported as no submodules", []string{"projects/:id/repository/tree"}, func(p *inventory.Project) {
			forbid(p, "tree")
			p.Features.HasCI, p.Features.CI, p.Features.HasCodeowners, p.Features.UsesLFS = nil, nil, nil, nil
		}, "has_submodules:false"},
		{"repository denied, reported as no CI", []string{"projects/:id/repository/tree"}, func(p *inventory.Project) {
			forbid(p, "tree")
			p.Features.HasCI, p.Features.CI, p.Features.HasSubmodules, p.Features.HasCodeowners, p.Features.UsesLFS = new(false), nil, nil, nil, nil
		}, "has_ci:false"},
		{"CI file denied, CI known", []string{"projects/:id/repository/files/:path/raw"}, func(p *inventory.Project) {
			forbid(p, "file:.gitlab-ci.yml")
			p.Features.CI = nil
		}, ""},
		{"packages denied, reported as none", []string{"projects/:id/packages"}, func(p *inventory.Project) {
			forbid(p, "packages")
		}, "package_types:[]"},
		{"known fact left unknown", nil, func(p *inventory.Project) { p.Features.HasCodeowners = nil }, "has_codeowners:<nil>"},
		{"CODEOWNERS not found in docs/", nil, func(p *inventory.Project) { p.Features.HasCodeowners = new(false) }, "has_codeowners:false"},
		{"external CI config not in the truth", nil, func(p *inventory.Project) { p.Features.CIConfigExternal = "platform/ci" }, "ci_config_external"},
		{"fork parent not in the truth", nil, func(p *inventory.Project) { p.ForkedFrom = "up/p" }, "forked_from"},
		{"submodule target not in the truth", nil, func(p *inventory.Project) { p.Features.Submodules = []string{"g/lib"} }, "submodules"},
		{"include project not in the truth", nil, func(p *inventory.Project) { p.Features.CI.IncludeProjects = []string{"ci/t"} }, "include_projects"},
		{"wave is not compared", nil, func(p *inventory.Project) { p.Wave = 3 }, ""},
		{"members not asked, owners not compared", nil, func(p *inventory.Project) { p.Owners = nil }, ""},
		{"owners differ", nil, func(p *inventory.Project) { p.Owners = []string{"bob"} }, "owners"},
		{"owners known empty, truth has some", nil, func(p *inventory.Project) { p.Owners = []string{} }, "owners: got []"},
		{"members denied, owners unknown", []string{"projects/:id/members/all"}, func(p *inventory.Project) {
			forbid(p, "members")
			p.Owners = nil
		}, ""},
		{"members denied, reported as no owners", []string{"projects/:id/members/all"}, func(p *inventory.Project) {
			forbid(p, "members")
			p.Owners = []string{}
		}, "owners: got []"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := truthProject()
			got := truthProject()
			tt.scan(&got)
			truth := gitlabsim.Truth{Projects: []inventory.Project{want}, Faults: gitlabsim.TruthFaults{Forbidden: map[int64][]string{}}}
			if tt.forbidden != nil {
				truth.Faults.Forbidden[1] = tt.forbidden
			}
			diffs := Diff(truth, nil, []inventory.Project{got})
			switch {
			case tt.want == "" && len(diffs) > 0:
				t.Errorf("diffs %q, want none", diffs)
			case tt.want != "" && (len(diffs) == 0 || !strings.Contains(strings.Join(diffs, "\n"), tt.want)):
				t.Errorf("diffs %q, want one with %q", diffs, tt.want)
			}
		})
	}
}
