package discovery

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// TestCIIncludes: local includes are read breadth first, nested ones too, at most
// facts.MaxCIIncludes files; their jobs count once each; what is not read makes the
// count a lower bound; a denied include leaves the CI analysis unknown.
func TestCIIncludes(t *testing.T) {
	job := func(names ...string) string {
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "%s:\n  script: x\n", n)
		}
		return b.String()
	}
	many := map[string]string{".gitlab-ci.yml": "include:\n"}
	for k := range facts.MaxCIIncludes + 2 {
		many[".gitlab-ci.yml"] += fmt.Sprintf("  - local: /ci/%d.yml\n", k)
		many[fmt.Sprintf("ci/%d.yml", k)] = job(fmt.Sprintf("job%d", k))
	}
	tests := []struct {
		name   string
		files  map[string]string
		denied []string
		jobs   int // -1: CI unknown
		locals int
		lower  bool
		reads  int // include files requested
		failed []string
	}{
		{"none", map[string]string{".gitlab-ci.yml": job("a", "b")}, nil, 2, 0, false, 0, nil},
		{"string and local, nested, duplicate job", map[string]string{
			".gitlab-ci.yml": "include:\n  - '/ci/a.yml'\n  - local: ci/b.yml\n  - project: g/t\n    file: t.yml\n" + job("build"),
			"ci/a.yml":       "include:\n  - local: /ci/c.yml\n  - local: ci/b.yml\n" + job("build", "lint"),
			"ci/b.yml":       job("test"),
			"ci/c.yml":       job("deploy"),
		}, nil, 4, 3, false, 3, nil},
		{"wildcard", map[string]string{".gitlab-ci.yml": "include:\n  - local: 'ci/*.yml'\n" + job("a")}, nil, 1, 0, true, 0, nil},
		{"missing file", map[string]string{".gitlab-ci.yml": "include: /ci/gone.yml\n" + job("a")}, nil, 1, 0, true, 1, nil},
		{"over the bound", many, nil, facts.MaxCIIncludes, facts.MaxCIIncludes, true, facts.MaxCIIncludes, nil},
		{"denied", map[string]string{".gitlab-ci.yml": "include: /ci/a.yml\n" + job("a"), "ci/a.yml": job("b")},
			[]string{"ci/a.yml"}, -1, 0, false, 1, []string{facts.CIIncludeFile.Name}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := &fakeRepo{trees: map[string][]string{"": {".gitlab-ci.yml"}}, files: tt.files, denied: tt.denied}
			ts := httptest.NewServer(repo)
			defer ts.Close()
			gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{}), MaxRetries: -1})
			if err != nil {
				t.Fatal(err)
			}
			gp := gitlab.Project{ID: 1, DefaultBranch: "main"}
			pr := &profiler{w: &Worker{GitLab: gl}, gp: gp, p: identity(gp)}
			if err := pr.files(context.Background()); err != nil {
				t.Fatal(err)
			}
			ci := pr.p.Features.CI
			switch {
			case tt.jobs < 0 && ci != nil:
				t.Errorf("CI %+v, want unknown", ci)
			case tt.jobs >= 0 && (ci == nil || ci.Jobs != tt.jobs || ci.LocalIncludes != tt.locals || ci.JobsLowerBound != tt.lower):
				t.Errorf("CI %+v, want %d jobs, %d local includes, lower bound %t", ci, tt.jobs, tt.locals, tt.lower)
			}
			if !inventory.Is(pr.p.Features.HasCI) {
				t.Error("has_ci not true")
			}
			reads := 0
			for _, c := range repo.calls {
				if strings.HasPrefix(c, "file:") && c != "file:.gitlab-ci.yml" {
					reads++
				}
			}
			if reads != tt.reads {
				t.Errorf("%d include files read (%v), want %d", reads, repo.calls, tt.reads)
			}
			var failed []string
			for _, e := range pr.p.Errors {
				failed = append(failed, e.Step)
			}
			if !slices.Equal(failed, tt.failed) || (tt.failed == nil && pr.gone) {
				t.Errorf("failed steps %v (gone %t), want %v", failed, pr.gone, tt.failed)
			}
		})
	}
}
