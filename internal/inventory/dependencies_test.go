package inventory

import (
	"reflect"
	"testing"
)

func TestDependencies(t *testing.T) {
	p := &Project{
		PathWithNamespace: "g/app",
		ForkedFrom:        "up/app",
		Features: Features{
			Submodules:       []string{"g/lib", "https://github.com/x/y.git", "g/lib", "g/app"},
			CI:               &CI{IncludeProjects: []string{"ci/templates"}, TriggerProjects: []string{"g/deploy"}},
			CIConfigExternal: "ci/pipelines",
		},
	}
	want := []Dependency{
		{"g/app", "up/app", DepFork},
		{"g/app", "g/lib", DepSubmodule},
		{"g/app", "https://github.com/x/y.git", DepSubmodule},
		{"g/app", "ci/templates", DepCIInclude},
		{"g/app", "g/deploy", DepCITrigger},
		{"g/app", "ci/pipelines", DepCIConfig},
	}
	got := Dependencies(p)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Dependencies = %v, want %v", got, want)
	}
	if got[1].External() || !got[2].External() {
		t.Errorf("External: %v %v, want false true", got[1].External(), got[2].External())
	}
	if d := Dependencies(&Project{PathWithNamespace: "a"}); len(d) != 0 {
		t.Errorf("no facts: %v, want none", d)
	}
}
