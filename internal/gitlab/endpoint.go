package gitlab

import (
	"slices"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/facts"
)

// rawFileClass is the endpoint class of raw repository files, read under MaxFileSize.
const rawFileClass = "projects/:id/repository/files/:path/raw"

// EndpointClass maps a request path to a bounded endpoint class such as
// "projects/:id/merge_requests": metric labels and stats must never carry raw IDs.
func EndpointClass(path string) string {
	if strings.HasSuffix(path, "/api/graphql") {
		return GraphQLClass
	}
	p := strings.TrimPrefix(path, "/api/v4/")
	if p == path {
		return "other"
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch parts[0] {
	case "version", "user":
		if len(parts) == 1 {
			return parts[0]
		}
	case "groups", "projects":
		if len(parts) == 1 {
			return parts[0]
		}
		parts[1] = ":id"
		if parts[0] == "projects" && len(parts) >= 5 && parts[2] == "repository" && parts[3] == "files" {
			// files/:path/raw, where :path is URL-encoded or (rarely) spans segments.
			if parts[len(parts)-1] == "raw" {
				return rawFileClass
			}
			return "projects/:id/repository/files/:path"
		}
		c := strings.Join(parts, "/")
		if known[c] {
			return c
		}
	}
	return "other"
}

// walkClasses are the endpoints of the walk over groups; a profile's come from the
// facts it reads (facts.Endpoints).
var walkClasses = []string{"version", "user", "groups", "projects", "groups/:id", "groups/:id/subgroups",
	"groups/:id/descendant_groups", "groups/:id/projects"}

// EndpointClasses lists the endpoint classes of the requests the agent makes, each
// once, and "other" last: the walk's, then those of the facts a profile reads, then
// GraphQL's.
func EndpointClasses() []string {
	out := append(slices.Clone(walkClasses), facts.Endpoints()...)
	return append(out, GraphQLClass, "other")
}

var known = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range walkClasses {
		m[c] = true
	}
	for _, c := range facts.Endpoints() {
		m[c] = true
	}
	return m
}()
