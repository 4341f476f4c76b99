package discovery

import (
	"context"
	"net/http/httptest"
	"net/url"
	"slices"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"

	"reflect"
	"testing"
)

func TestResolveSubmodule(t *testing.T) {
	const web, project = "https://gitlab.example.com/group/app", "group/app"
	tests := []struct{ raw, want string }{
		{"https://gitlab.example.com/group/lib.git", "group/lib"},
		{"https://gitlab.example.com/group/sub/lib", "group/sub/lib"},
		{"http://GITLAB.example.com:8080/other/lib.git/", "other/lib"},
		{"ssh://git@gitlab.example.com:2222/group/lib.git", "group/lib"},
		{"git@gitlab.example.com:group/lib.git", "group/lib"},
		{"gitlab.example.com:group/lib", "group/lib"},
		{"../lib.git", "group/lib"},
		{"../../other/lib.git", "other/lib"},
		{"./vendored", "group/app/vendored"},
		{"../../../outside.git", ""},
		{"https://github.com/x/y.git", "https://github.com/x/y.git"},
		{"https://user:secret@github.com/x/y.git", "https://github.com/x/y.git"},
		{"git@github.com:x/y.git", "git@github.com:x/y.git"},
		{"u:secret@github.com:x/y.git", "github.com:x/y.git"},
		{"//user:secret@github.com/x/y.git", "//github.com/x/y.git"}, // scheme-relative
		{"//:@", ""}, // user information and nothing else (found by FuzzSubmoduleTargets)
		{"", ""},
	}
	for _, tt := range tests {
		if got := resolveSubmodule(tt.raw, web, project); got != tt.want {
			t.Errorf("resolveSubmodule(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
	// An instance under a relative URL root.
	if got := resolveSubmodule("https://h.example/gitlab/g/lib.git", "https://h.example/gitlab/g/app", "g/app"); got != "g/lib" {
		t.Errorf("relative root: %q, want g/lib", got)
	}
}

func TestSubmoduleTargets(t *testing.T) {
	data := []byte(`[submodule "lib"]
	path = lib
	url = ../lib.git
[submodule "ext"]
	path = ext
	URL = "https://github.com/x/y.git"
[submodule "again"]
	url=https://gitlab.example.com/group/lib.git
	branch = main
`)
	got := submoduleTargets(data, "https://gitlab.example.com/group/app", "group/app")
	want := []string{"group/lib", "https://github.com/x/y.git"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("submoduleTargets = %q, want %q", got, want)
	}
}

// TestSubmodulesProfiled: the profile reads .gitmodules when the root has it, and a
// denied file leaves the targets unknown while has_submodules stays known.
func TestSubmodulesProfiled(t *testing.T) {
	for _, tt := range []struct {
		name   string
		denied []string
		want   []string
		errs   int
	}{
		{"read", nil, []string{"g/lib", "https://github.com/x/y.git"}, 0},
		{"denied", []string{".gitmodules"}, nil, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			repo := &fakeRepo{
				trees:  map[string][]string{"": {".gitmodules"}},
				files:  map[string]string{".gitmodules": "[submodule \"l\"]\n\turl = ../lib.git\n[submodule \"x\"]\n\turl = https://github.com/x/y.git\n"},
				denied: tt.denied,
			}
			ts := httptest.NewServer(repo)
			defer ts.Close()
			gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{}), MaxRetries: -1})
			if err != nil {
				t.Fatal(err)
			}
			gp := gitlab.Project{ID: 1, DefaultBranch: "main", PathWithNamespace: "g/app", WebURL: ts.URL + "/g/app"}
			pr := &profiler{w: &Worker{GitLab: gl}, gp: gp, p: identity(gp)}
			if err := pr.files(ctx); err != nil {
				t.Fatal(err)
			}
			if got := pr.p.Features.Submodules; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Submodules = %q, want %q", got, tt.want)
			}
			if !inventory.Is(pr.p.Features.HasSubmodules) {
				t.Error("has_submodules not true")
			}
			if len(pr.p.Errors) != tt.errs {
				t.Errorf("errors = %v, want %d", pr.p.Errors, tt.errs)
			}
		})
	}
}

// FuzzSubmoduleTargets: any .gitmodules gives sorted, unique targets, none with a
// password, each a project path (no ":") or a URL.
func FuzzSubmoduleTargets(f *testing.F) {
	f.Add("[submodule \"a\"]\n\turl = ../a.git\n", "https://gitlab.example.com/g/app", "g/app")
	f.Add("url = https://u:secret@gitlab.example.com/g/b.git\nurl=git@gitlab.example.com:g/c\n", "https://gitlab.example.com/g/app", "g/app")
	f.Add("url = ../../../../x\nurl = \"\"\nurl = ssh://[::1]/x\n", "http://[::1]:8080/a/b", "a/b")
	f.Fuzz(func(t *testing.T, data, webURL, project string) {
		got := submoduleTargets([]byte(data), webURL, project)
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Errorf("targets %q not sorted and unique", got)
		}
		for _, g := range got {
			if g == "" {
				t.Error("empty target")
			}
			if u, err := url.Parse(g); err == nil && u.User != nil {
				if _, has := u.User.Password(); has {
					t.Errorf("target %q keeps a password", g)
				}
			}
		}
	})
}
