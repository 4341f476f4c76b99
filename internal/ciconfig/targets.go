package ciconfig

import (
	"slices"
	"strings"
)

// includeProjects lists the projects an include value names with `project:`, in any of
// its forms: a mapping, or a list of strings and mappings.
func includeProjects(v any) []string {
	var out []string
	for _, entry := range asList(v) {
		if m, ok := asMap(entry); ok {
			if p := projectPath(m["project"]); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// triggerTargets lists what a job's trigger names: the downstream project of a
// multi-project pipeline (`trigger: group/project` or `trigger: {project: ...}`) and,
// for a child pipeline (`trigger: {include: ...}`), the projects its include names.
func triggerTargets(job map[string]any) (triggers, includes []string) {
	switch t := job["trigger"].(type) {
	case string:
		if p := projectPath(t); p != "" {
			triggers = append(triggers, p)
		}
	default:
		m, ok := asMap(t)
		if !ok {
			return nil, nil
		}
		if p := projectPath(m["project"]); p != "" {
			triggers = append(triggers, p)
		}
		includes = includeProjects(m["include"])
	}
	return triggers, includes
}

// projectPath is a project path as written in a CI file, without surrounding slashes;
// "" for anything else, including variables ($CI_PROJECT_PATH) that only a pipeline
// resolves.
func projectPath(v any) string {
	s, ok := v.(string)
	if !ok {
		return ""
	}
	s = strings.Trim(strings.TrimSpace(s), "/")
	if s == "" || strings.ContainsAny(s, "$ :") {
		return ""
	}
	return s
}

// sortedUnique sorts and de-duplicates a list, nil when empty.
func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}
