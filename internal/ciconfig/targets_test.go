package ciconfig

import (
	"reflect"
	"testing"
)

func TestProjectTargets(t *testing.T) {
	tests := []struct {
		name               string
		yaml               string
		includes, triggers []string
	}{
		{"none", "build:\n  script: [make]\n", nil, nil},
		{"include mapping", "include:\n  project: ci/templates\n  file: /build.yml\n", []string{"ci/templates"}, nil},
		{"include list", "include:\n  - local: /a.yml\n  - project: ci/b\n    file: [x.yml, y.yml]\n  - project: /ci/a/\n    ref: main\n    file: z.yml\n  - remote: https://example.com/c.yml\n  - project: ci/b\n    file: w.yml\n",
			[]string{"ci/a", "ci/b"}, nil},
		{"include string is local", "include: /templates/a.yml\n", nil, nil},
		{"include variable", "include:\n  - project: $CI_PROJECT_PATH\n    file: a.yml\n", nil, nil},
		{"trigger string", "deploy:\n  trigger: ops/deploy\n", nil, []string{"ops/deploy"}},
		{"trigger mapping", "deploy:\n  trigger:\n    project: ops/deploy\n    branch: main\n", nil, []string{"ops/deploy"}},
		{"child pipeline from another project", "child:\n  trigger:\n    include:\n      - project: ci/child\n        file: c.yml\n      - local: c.yml\n", []string{"ci/child"}, nil},
		{"child pipeline local", "child:\n  trigger:\n    include: child.yml\n", nil, nil},
		{"hidden job trigger", ".t:\n  trigger: ops/x\na:\n  extends: .t\n", nil, []string{"ops/x"}},
		{"both, sorted", "include: [{project: z/z, file: a.yml}, {project: a/a, file: b.yml}]\nb:\n  trigger: q/q\na:\n  trigger: {project: p/p}\n",
			[]string{"a/a", "z/z"}, []string{"p/p", "q/q"}},
		{"variables is not a job", "variables:\n  trigger: x/y\n", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci, err := Analyze([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ci.IncludeProjects, tt.includes) {
				t.Errorf("IncludeProjects = %q, want %q", ci.IncludeProjects, tt.includes)
			}
			if !reflect.DeepEqual(ci.TriggerProjects, tt.triggers) {
				t.Errorf("TriggerProjects = %q, want %q", ci.TriggerProjects, tt.triggers)
			}
		})
	}
}
