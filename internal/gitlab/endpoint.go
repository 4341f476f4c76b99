package gitlab

import "strings"

// EndpointClass maps a request path to a bounded endpoint class such as
// "projects/:id/merge_requests": metric labels and stats must never carry raw IDs.
func EndpointClass(path string) string {
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
				return "projects/:id/repository/files/:path/raw"
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

var known = map[string]bool{
	"groups/:id": true, "groups/:id/subgroups": true, "groups/:id/descendant_groups": true,
	"groups/:id/projects": true, "projects/:id": true,
	"projects/:id/repository/branches": true, "projects/:id/repository/tags": true,
	"projects/:id/repository/tree": true, "projects/:id/merge_requests": true,
	"projects/:id/issues": true, "projects/:id/pipelines": true, "projects/:id/releases": true,
	"projects/:id/hooks": true, "projects/:id/protected_branches": true,
	"projects/:id/variables": true, "projects/:id/packages": true,
	"projects/:id/registry/repositories": true,
}
