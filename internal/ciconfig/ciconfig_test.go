package ciconfig

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want inventory.CI // Complexity is checked separately
	}{
		{
			name: "empty file",
			yaml: "",
			want: inventory.CI{Invalid: true},
		},
		{
			name: "comments only",
			yaml: "# nothing here\n",
			want: inventory.CI{Invalid: true},
		},
		{
			name: "invalid yaml",
			yaml: "build:\n  script: [unclosed\n",
			want: inventory.CI{Invalid: true},
		},
		{
			name: "scalar document",
			yaml: "just a string\n",
			want: inventory.CI{Invalid: true},
		},
		{
			name: "list document",
			yaml: "- build\n- test\n",
			want: inventory.CI{Invalid: true},
		},
		{
			name: "one job",
			yaml: "build:\n  script: make\n",
			want: inventory.CI{Jobs: 1, Constructs: []string{}},
		},
		{
			name: "reserved keywords and hidden jobs are not jobs",
			yaml: `
default: {retry: 1}
stages: [build, test, deploy]
variables: {A: b}
workflow: {name: x}
image: golang:1.26
cache: {paths: [x]}
before_script: [echo]
after_script: [echo]
types: [build]
.template: {script: echo}
build: {script: make}
test: {script: make test}
`,
			want: inventory.CI{Jobs: 2, Stages: 3, Constructs: []string{}},
		},
		{
			name: "types counts as stages when stages is absent",
			yaml: "types: [a, b]\njob: {script: x}\n",
			want: inventory.CI{Jobs: 1, Stages: 2, Constructs: []string{}},
		},
		{
			name: "include string",
			yaml: "include: ci/build.yml\njob: {script: x}\n",
			want: inventory.CI{Jobs: 1, Includes: 1, Constructs: []string{"include"}},
		},
		{
			name: "include list",
			yaml: "include:\n  - local: a.yml\n  - project: g/p\n    file: b.yml\n  - remote: https://example.com/c.yml\n",
			want: inventory.CI{Includes: 3, Constructs: []string{"include"}, IncludeProjects: []string{"g/p"}},
		},
		{
			name: "include map",
			yaml: "include:\n  template: Auto-DevOps.gitlab-ci.yml\n",
			want: inventory.CI{Includes: 1, Constructs: []string{"include"}},
		},
		{
			name: "include with rules",
			yaml: "include:\n  - local: a.yml\n    rules: [{if: $X}]\n",
			want: inventory.CI{Includes: 1, Constructs: []string{"include", "rules"}},
		},
		{
			name: "null include is no include",
			yaml: "include:\njob: {script: x}\n",
			want: inventory.CI{Jobs: 1, Constructs: []string{}},
		},
		{
			name: "job constructs",
			yaml: `
build:
  extends: .base
  needs: [lint]
  rules: [{if: $CI}]
  tags: [docker]
deploy:
  trigger: {include: child.yml}
`,
			want: inventory.CI{Jobs: 2, Constructs: []string{"extends", "needs", "rules", "tags", "trigger"}},
		},
		{
			name: "workflow rules",
			yaml: "workflow:\n  rules: [{if: $CI}]\njob: {script: x}\n",
			want: inventory.CI{Jobs: 1, Constructs: []string{"rules"}},
		},
		{
			name: "constructs in default and hidden jobs",
			yaml: "default:\n  tags: [a]\n.base:\n  needs: []\n",
			want: inventory.CI{Constructs: []string{"needs", "tags"}},
		},
		{
			name: "top-level services",
			yaml: "services: [postgres:16]\njob: {script: x}\n",
			want: inventory.CI{Jobs: 1, Constructs: []string{"services"}},
		},
		{
			name: "dind service as string",
			yaml: "job:\n  services: [docker:24-dind]\n",
			want: inventory.CI{Jobs: 1, Constructs: []string{"dind", "services"}},
		},
		{
			name: "dind service as name mapping",
			yaml: "job:\n  services:\n    - name: docker:dind\n      alias: docker\n",
			want: inventory.CI{Jobs: 1, Constructs: []string{"dind", "services"}},
		},
		{
			name: "dind image mapping in default",
			yaml: "default:\n  image: {name: registry/Docker-DIND:1}\n",
			want: inventory.CI{Constructs: []string{"dind"}},
		},
		{
			name: "dind top-level image",
			yaml: "image: docker:dind\n",
			want: inventory.CI{Constructs: []string{"dind"}},
		},
		{
			name: "docker image that is not dind",
			yaml: "job:\n  image: docker:24\n",
			want: inventory.CI{Jobs: 1, Constructs: []string{}},
		},
		{
			name: "keyword names at top level are jobs, not constructs",
			yaml: "needs: {script: x}\ntags: {script: y}\n",
			want: inventory.CI{Jobs: 2, Constructs: []string{}},
		},
		{
			name: "merge keys carry constructs",
			yaml: ".base: &base\n  tags: [a]\njob:\n  <<: *base\n  script: x\n",
			want: inventory.CI{Jobs: 1, Constructs: []string{"tags"}},
		},
		{
			name: "non-string keys",
			yaml: "1: {script: x}\ntrue: {script: y}\n",
			want: inventory.CI{Jobs: 2, Constructs: []string{}},
		},
		{
			name: "spec header document",
			yaml: "spec:\n  inputs:\n    env: {default: dev}\n---\nstages: [a]\njob: {script: x, rules: [{when: always}]}\n",
			want: inventory.CI{Jobs: 1, Stages: 1, Constructs: []string{"rules"}},
		},
		{
			name: "spec header only",
			yaml: "spec:\n  inputs: {}\n",
			want: inventory.CI{Constructs: []string{}},
		},
		{
			name: "excessive aliasing is invalid, not a hang",
			yaml: aliasBomb(),
			want: inventory.CI{Invalid: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse([]byte(tt.yaml))
			if !tt.want.Invalid {
				tt.want.Complexity = Complexity(tt.want)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// aliasBomb is the "billion laughs" document: each level refers to the previous one
// nine times.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := range 9 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestComplexity(t *testing.T) {
	all := []string{"dind", "extends", "include", "needs", "rules", "services", "tags", "trigger"}
	tests := []struct {
		name string
		ci   inventory.CI
		want int
	}{
		{"invalid", inventory.CI{Invalid: true, Jobs: 10}, 0},
		{"empty", inventory.CI{}, 0},
		{"one job", inventory.CI{Jobs: 1}, 2},
		{"jobs cap at 20", inventory.CI{Jobs: 20}, 40},
		{"jobs over cap", inventory.CI{Jobs: 500}, 40},
		{"stages", inventory.CI{Stages: 3}, 6},
		{"stages cap", inventory.CI{Stages: 50}, 10},
		{"includes", inventory.CI{Includes: 2}, 6},
		{"includes cap", inventory.CI{Includes: 50}, 15},
		{"trigger weighs more than tags", inventory.CI{Constructs: []string{"trigger"}}, 8},
		{"tags", inventory.CI{Constructs: []string{"tags"}}, 2},
		{"all constructs", inventory.CI{Constructs: all}, 38},
		{"duplicate constructs count once", inventory.CI{Constructs: []string{"rules", "rules"}}, 6},
		{"unknown construct adds nothing", inventory.CI{Constructs: []string{"cache"}}, 0},
		{"capped at 100", inventory.CI{Jobs: 100, Stages: 10, Includes: 10, Constructs: all}, 100},
		{"just under the cap", inventory.CI{Jobs: 20, Stages: 5, Includes: 2, Constructs: all}, 94},
		{"negative counts are zero", inventory.CI{Jobs: -5, Stages: -1, Includes: -1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Complexity(tt.ci); got != tt.want {
				t.Errorf("Complexity(%+v) = %d, want %d", tt.ci, got, tt.want)
			}
		})
	}
}

// TestComplexityMonotone checks that adding a job, stage, include or construct never
// lowers the score.
func TestComplexityMonotone(t *testing.T) {
	all := []string{"dind", "extends", "include", "needs", "rules", "services", "tags", "trigger"}
	for jobs := 0; jobs <= 25; jobs += 5 {
		for stages := 0; stages <= 6; stages += 2 {
			for includes := 0; includes <= 6; includes += 3 {
				for mask := 0; mask < 1<<len(all); mask++ {
					var cs []string
					for i, c := range all {
						if mask&(1<<i) != 0 {
							cs = append(cs, c)
						}
					}
					base := inventory.CI{Jobs: jobs, Stages: stages, Includes: includes, Constructs: cs}
					s := Complexity(base)
					if s < 0 || s > 100 {
						t.Fatalf("Complexity(%+v) = %d, out of 0-100", base, s)
					}
					more := []inventory.CI{
						{Jobs: jobs + 1, Stages: stages, Includes: includes, Constructs: cs},
						{Jobs: jobs, Stages: stages + 1, Includes: includes, Constructs: cs},
						{Jobs: jobs, Stages: stages, Includes: includes + 1, Constructs: cs},
					}
					for i, c := range all {
						if mask&(1<<i) == 0 {
							more = append(more, inventory.CI{Jobs: jobs, Stages: stages, Includes: includes, Constructs: append(append([]string{}, cs...), c)})
						}
					}
					for _, m := range more {
						if got := Complexity(m); got < s {
							t.Fatalf("Complexity(%+v) = %d < Complexity(%+v) = %d", m, got, base, s)
						}
					}
				}
			}
		}
	}
}

func TestParseComplexityMatchesFormula(t *testing.T) {
	src := `
stages: [build, test]
include: [a.yml, b.yml]
build:
  image: docker:24
  services: [docker:dind]
  script: make
test:
  needs: [build]
  script: make test
`
	got := Parse([]byte(src))
	// 2 jobs (4) + 2 stages (4) + 2 includes (6) + dind 6 + include 4 + needs 6 + services 3.
	if want := 33; got.Complexity != want {
		t.Errorf("Complexity = %d, want %d (%+v)", got.Complexity, want, got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "a: b", "include: x\njob: {needs: []}", "- x", aliasBomb(),
		"spec:\n  inputs: {}\n---\njob: {script: x}\n", ".b: &b {tags: [x]}\njob: {<<: *b}\n",
		"job: &j {script: [*j]}\n", nested(MaxDepth + 1), aliasChain(20), "1: {script: x}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ci, err := Analyze(data)
		if ci.Complexity < 0 || ci.Complexity > 100 {
			t.Fatalf("complexity %d out of range", ci.Complexity)
		}
		if ci.Invalid != (err != nil) {
			t.Fatalf("Analyze = %+v, %v: invalid exactly when there is an error", ci, err)
		}
		if ci.Invalid && (ci.Jobs != 0 || ci.Complexity != 0) {
			t.Fatalf("invalid CI with content: %+v", ci)
		}
		if !ci.Invalid && (ci.Jobs < 0 || ci.Stages < 0 || ci.Includes < 0 || ci.Complexity != Complexity(ci)) {
			t.Fatalf("inconsistent CI: %+v", ci)
		}
		if got := Parse(data); !reflect.DeepEqual(got, ci) {
			t.Fatalf("Parse = %+v, Analyze = %+v", got, ci)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	var src strings.Builder
	src.WriteString("stages: [build, test, deploy]\ninclude:\n  - local: ci/common.yml\n  - project: acme/templates\n    file: go.yml\n")
	src.WriteString("default:\n  image: golang:1.26\n  tags: [docker]\n.base: &base\n  rules: [{if: $CI_COMMIT_BRANCH}]\n")
	for i := range 40 {
		fmt.Fprintf(&src, "job-%d:\n  <<: *base\n  stage: test\n  needs: [job-%d]\n  services: [docker:24-dind]\n  script:\n    - make test-%d\n", i, max(i-1, 0), i)
	}
	data := []byte(src.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if ci := Parse(data); ci.Jobs != 40 {
			b.Fatalf("jobs = %d", ci.Jobs)
		}
	}
}
