package gitlabsim

import (
	"slices"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
)

// TestServesTheAgentsClasses: the simulator serves, under the same class, every
// endpoint class the agent requests (gitlab.EndpointClasses, derived from the
// declared facts), and the agent recognises every projects/:id class it serves.
func TestServesTheAgentsClasses(t *testing.T) {
	sim := EndpointClasses()
	for _, c := range gitlab.EndpointClasses() {
		if !slices.Contains(sim, c) {
			t.Errorf("the agent requests %q, which the simulator does not serve", c)
		}
		path := examplePath(c)
		if c != "other" && EndpointClass(path) != c {
			t.Errorf("EndpointClass(%q) = %q, want %q", path, EndpointClass(path), c)
		}
	}
	for _, c := range sim {
		if cls, _ := classByName(c); cls.projectScoped() && gitlab.EndpointClass(examplePath(c)) != c {
			t.Errorf("the simulator serves %q, which the agent's EndpointClass does not recognise", c)
		}
	}
}

// examplePath is a request path of class c.
func examplePath(c string) string {
	if c == "graphql" {
		return "/api/graphql" // GitLab serves GraphQL beside /api/v4, not under it
	}
	return "/api/v4/" + strings.NewReplacer(":id", "42", ":path", "CODEOWNERS").Replace(c)
}

// TestTruthAnswersEveryCount: each declared count has a simulated count behind it.
func TestTruthAnswersEveryCount(t *testing.T) {
	for _, f := range facts.Counts {
		if _, ok := truthCounts[f.Name]; !ok {
			t.Errorf("count %q has no simulated count in truthCounts", f.Name)
		}
	}
	if len(truthCounts) != len(facts.Counts) {
		t.Errorf("truthCounts has %d counts, facts.Counts %d", len(truthCounts), len(facts.Counts))
	}
}
