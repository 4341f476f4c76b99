package ciconfig

import (
	"slices"
	"testing"
)

func TestLocalIncludes(t *testing.T) {
	tests := []struct {
		name       string
		src        string
		want       []string
		unresolved bool
	}{
		{"none", "build:\n  script: make\n", nil, false},
		{"string", "include: '/ci/common.yml'\n", []string{"ci/common.yml"}, false},
		{"string URL is remote", "include: 'https://example.com/ci.yml'\n", nil, false},
		{"local mapping", "include:\n  local: ci/build.yml\n", []string{"ci/build.yml"}, false},
		{"list of kinds", "include:\n  - local: '/a.yml'\n  - project: g/p\n    file: x.yml\n  - remote: https://e.com/r.yml\n  - template: Auto-DevOps.gitlab-ci.yml\n  - '/b/../c.yml'\n  - component: $CI_SERVER_FQDN/c/d@1\n",
			[]string{"a.yml", "c.yml"}, false},
		{"wildcard", "include:\n  - local: 'configs/*.yml'\n  - local: b.yml\n", []string{"b.yml"}, true},
		{"variable", "include: '$CI_DIR/x.yml'\n", nil, true},
		{"with rules", "include:\n  - local: a.yml\n    rules:\n      - if: $X\n", []string{"a.yml"}, false},
		{"invalid", "include: [\n", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, unresolved := LocalIncludes([]byte(tt.src))
			if !slices.Equal(got, tt.want) || unresolved != tt.unresolved {
				t.Errorf("LocalIncludes = %q, %t; want %q, %t", got, unresolved, tt.want, tt.unresolved)
			}
		})
	}
}

func TestAnalyzeWith(t *testing.T) {
	main := "include:\n  - local: a.yml\n  - local: b.yml\nstages: [build, test]\nbuild:\n  stage: build\n  script: make\n"
	a := "include:\n  - project: g/templates\n    file: t.yml\nlint:\n  script: lint\nbuild:\n  stage: test\n  script: other\n"
	b := "test:\n  needs: [build]\n  script: test\n.hidden:\n  script: x\n"
	got, err := AnalyzeWith([]byte(main), [][]byte{[]byte(a), []byte(b), []byte("not: [valid\n")})
	if err != nil {
		t.Fatal(err)
	}
	// build (defined twice: once), lint, test.
	if got.Jobs != 3 || got.Stages != 2 || got.Includes != 2 || got.LocalIncludes != 3 ||
		!slices.Equal(got.IncludeProjects, []string{"g/templates"}) || !slices.Contains(got.Constructs, ConstructNeeds) {
		t.Errorf("AnalyzeWith = %+v", got)
	}
	alone := Parse([]byte(main))
	if alone.Jobs != 1 || got.Complexity < alone.Complexity {
		t.Errorf("main alone %+v; with includes %+v", alone, got)
	}
	if none, _ := AnalyzeWith([]byte(main), nil); none.Jobs != alone.Jobs || none.LocalIncludes != 0 {
		t.Errorf("AnalyzeWith without files = %+v, want Parse's %+v", none, alone)
	}
}
