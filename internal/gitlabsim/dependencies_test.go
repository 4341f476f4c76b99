package gitlabsim

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// TestTruthHasDependencies: an instance of a few hundred projects has edges of every
// kind, submodules both into the instance (in each URL form) and outside it, and the
// .gitmodules served names what the truth says.
func TestTruthHasDependencies(t *testing.T) {
	s := newTestServer(t, Options{Seed: 1, Groups: 12, Projects: 300})
	tr := s.Truth()
	paths := map[string]bool{}
	for _, p := range tr.Projects {
		paths[p.PathWithNamespace] = true
	}
	kinds := map[string]int{}
	internal, external := 0, 0
	for i := range tr.Projects {
		for _, d := range inventory.Dependencies(&tr.Projects[i]) {
			kinds[d.Kind]++
			if d.Kind == inventory.DepSubmodule {
				switch {
				case d.External():
					external++
				case paths[d.To]:
					internal++
				default:
					t.Errorf("submodule %s -> %s: neither in the instance nor a URL", d.From, d.To)
				}
			}
		}
	}
	for _, k := range []string{inventory.DepFork, inventory.DepSubmodule, inventory.DepCIInclude, inventory.DepCITrigger, inventory.DepCIConfig} {
		if kinds[k] == 0 {
			t.Errorf("no %s edges in the truth: %v", k, kinds)
		}
	}
	if internal == 0 || external == 0 {
		t.Errorf("submodules: %d into the instance, %d outside; want both", internal, external)
	}
	forms := map[string]bool{}
	for i := range s.in.projects {
		p := &s.in.projects[i]
		subs := s.in.submodules(p)
		if len(subs) == 0 {
			continue
		}
		body, ok := s.in.file(p, ".gitmodules")
		if !ok {
			t.Fatalf("project %d: submodules without .gitmodules", p.id)
		}
		for _, sm := range subs {
			if !strings.Contains(body, "url = "+sm.url+"\n") {
				t.Errorf("project %d: .gitmodules lacks %s:\n%s", p.id, sm.url, body)
			}
			switch {
			case strings.HasPrefix(sm.url, "../"):
				forms["relative"] = true
			case strings.HasPrefix(sm.url, "git@"):
				forms["scp"] = true
			case strings.HasPrefix(sm.url, s.in.externalURL):
				forms["https"] = true
			}
		}
		if _, want := s.in.tree(p, "", false); !want {
			t.Errorf("project %d: no tree", p.id)
		}
	}
	if got := slices.Sorted(maps.Keys(forms)); !slices.Equal(got, []string{"https", "relative", "scp"}) {
		t.Errorf("submodule URL forms %v, want https, relative, scp", got)
	}
}
