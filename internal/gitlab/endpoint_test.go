package gitlab

import (
	"strings"
	"testing"
)

// TestEndpointClassesAreRecognised: every class the agent requests is one that
// EndpointClass returns for a path of that class, so no request's metrics fall under "other".
func TestEndpointClassesAreRecognised(t *testing.T) {
	classes := EndpointClasses()
	if classes[len(classes)-1] != "other" {
		t.Errorf("EndpointClasses() ends with %q, want other", classes[len(classes)-1])
	}
	seen := map[string]bool{}
	for _, c := range classes[:len(classes)-1] {
		if seen[c] {
			t.Errorf("class %q listed twice", c)
		}
		seen[c] = true
		path := "/api/v4/" + strings.NewReplacer(":id", "42", ":path", ".gitlab-ci.yml").Replace(c)
		if c == GraphQLClass {
			path = "/api/graphql"
		}
		if got := EndpointClass(path); got != c {
			t.Errorf("EndpointClass(%q) = %q, want %q", path, got, c)
		}
	}
}
