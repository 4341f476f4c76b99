package gitlabsim

import (
	"net/url"
	"strings"
)

// class is an endpoint class: a bounded label for a route.
type class uint8

const (
	clsOther class = iota
	clsVersion
	clsUser
	clsAppStatistics
	clsGroups
	clsGroup
	clsGroupSubgroups
	clsGroupDescendants
	clsGroupProjects
	clsGroupMembers
	clsProjects
	clsUserProjects
	clsGraphQL
	clsProject
	clsBranches
	clsTags
	clsTree
	clsFileRaw
	clsMergeRequests
	clsIssues
	clsPipelines
	clsReleases
	clsHooks
	clsProtectedBranches
	clsVariables
	clsPackages
	clsRegistry
	clsEnvironments
	clsProjectMembers
	nClasses
)

var classNames = [nClasses]string{
	clsOther:             "other",
	clsVersion:           "version",
	clsUser:              "user",
	clsAppStatistics:     "application/statistics",
	clsGroups:            "groups",
	clsGroup:             "groups/:id",
	clsGroupSubgroups:    "groups/:id/subgroups",
	clsGroupDescendants:  "groups/:id/descendant_groups",
	clsGroupProjects:     "groups/:id/projects",
	clsGroupMembers:      "groups/:id/members/all",
	clsProjects:          "projects",
	clsUserProjects:      "users/:id/projects",
	clsGraphQL:           "graphql",
	clsProject:           "projects/:id",
	clsBranches:          "projects/:id/repository/branches",
	clsTags:              "projects/:id/repository/tags",
	clsTree:              "projects/:id/repository/tree",
	clsFileRaw:           "projects/:id/repository/files/:path/raw",
	clsMergeRequests:     "projects/:id/merge_requests",
	clsIssues:            "projects/:id/issues",
	clsPipelines:         "projects/:id/pipelines",
	clsReleases:          "projects/:id/releases",
	clsHooks:             "projects/:id/hooks",
	clsProtectedBranches: "projects/:id/protected_branches",
	clsVariables:         "projects/:id/variables",
	clsPackages:          "projects/:id/packages",
	clsRegistry:          "projects/:id/registry/repositories",
	clsEnvironments:      "projects/:id/environments",
	clsProjectMembers:    "projects/:id/members/all",
}

func (c class) String() string { return classNames[c] }

// projectScoped reports whether the class is projects/:id or below.
func (c class) projectScoped() bool { return c >= clsProject && c < nClasses }

func classByName(name string) (class, bool) {
	for i, n := range classNames {
		if n == name {
			return class(i), true
		}
	}
	return clsOther, false
}

// EndpointClasses lists every endpoint class, "other" last.
func EndpointClasses() []string {
	out := make([]string, 0, nClasses)
	for _, n := range classNames[1:] {
		out = append(out, n)
	}
	return append(out, classNames[clsOther])
}

// route is a parsed API path.
type route struct {
	cls  class
	ref  string // group or project id, or its URL-decoded full path
	file string // repository file path for files/:path/raw
}

// EndpointClass returns the endpoint class of a URL path that includes /api/v4, such
// as "projects/:id/merge_requests", or "other". Pass the escaped path
// (URL.EscapedPath) so that an id given as an encoded full path stays one segment;
// decoded full paths are recognised too, by their known suffixes.
func EndpointClass(path string) string {
	path, _, _ = strings.Cut(path, "?")
	return parseRoute(path).cls.String()
}

func parseRoute(escapedPath string) route {
	if strings.TrimSuffix(escapedPath, "/") == "/api/graphql" {
		return route{cls: clsGraphQL}
	}
	rest, ok := strings.CutPrefix(escapedPath, "/api/v4/")
	if !ok {
		return route{}
	}
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return route{}
	}
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			segs[i] = u
		}
	}
	switch segs[0] {
	case "version", "user":
		if len(segs) == 1 {
			if segs[0] == "version" {
				return route{cls: clsVersion}
			}
			return route{cls: clsUser}
		}
	case "application":
		if len(segs) == 2 && segs[1] == "statistics" {
			return route{cls: clsAppStatistics}
		}
	case "groups":
		if len(segs) == 1 {
			return route{cls: clsGroups}
		}
		return splitRef(segs[1:], matchGroupSuffix)
	case "projects":
		if len(segs) == 1 {
			return route{cls: clsProjects}
		}
		return splitRef(segs[1:], matchProjectSuffix)
	case "users":
		if len(segs) == 3 && segs[1] != "" && segs[2] == "projects" {
			return route{cls: clsUserProjects, ref: segs[1]}
		}
	}
	return route{}
}

// splitRef finds the shortest id prefix of tail whose remainder is a known suffix.
func splitRef(tail []string, match func([]string) (class, string, bool)) route {
	last := len(tail)
	if isNumeric(tail[0]) {
		last = 1 // a numeric id is one segment
	}
	for j := 1; j <= last; j++ {
		if tail[j-1] == "" {
			break
		}
		if cls, file, ok := match(tail[j:]); ok {
			return route{cls: cls, ref: strings.Join(tail[:j], "/"), file: file}
		}
	}
	return route{}
}

func matchGroupSuffix(s []string) (class, string, bool) {
	switch len(s) {
	case 0:
		return clsGroup, "", true
	case 1:
		switch s[0] {
		case "subgroups":
			return clsGroupSubgroups, "", true
		case "descendant_groups":
			return clsGroupDescendants, "", true
		case "projects":
			return clsGroupProjects, "", true
		}
	case 2:
		if s[0] == "members" && s[1] == "all" {
			return clsGroupMembers, "", true
		}
	}
	return clsOther, "", false
}

// projectLists maps the path below projects/:id of each project class without a
// parameter, such as "repository/branches", to the class: a list is routed by its name.
var projectLists = func() map[string]class {
	m := map[string]class{}
	for c := clsProject + 1; c < nClasses; c++ {
		if rest, ok := strings.CutPrefix(c.String(), "projects/:id/"); ok && !strings.Contains(rest, ":") {
			m[rest] = c
		}
	}
	return m
}()

func matchProjectSuffix(s []string) (class, string, bool) {
	switch {
	case len(s) == 0:
		return clsProject, "", true
	case len(s) >= 4 && s[0] == "repository" && s[1] == "files" && s[len(s)-1] == "raw":
		return clsFileRaw, strings.Join(s[2:len(s)-1], "/"), true
	case len(s) <= 2:
		c, ok := projectLists[strings.Join(s, "/")]
		return c, "", ok
	}
	return clsOther, "", false
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
