package ciconfig

import (
	"path"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// LocalIncludes lists the repository files a configuration includes from its own
// project, in order: `include: local:` entries and string includes that are not URLs
// (GitLab reads a string include as a local file unless it is a URL). Paths are
// cleaned and relative to the repository root. unresolved says some local include
// names files only a pipeline resolves (a wildcard or a $VARIABLE): they are not
// listed. An invalid configuration includes nothing.
func LocalIncludes(data []byte) (paths []string, unresolved bool) {
	top, err := document(data)
	if err != nil {
		return nil, false
	}
	for _, entry := range asList(top["include"]) {
		var p string
		switch e := entry.(type) {
		case string:
			if strings.HasPrefix(e, "https://") || strings.HasPrefix(e, "http://") {
				continue
			}
			p = e
		default:
			m, ok := asMap(e)
			if !ok {
				continue
			}
			if p, ok = m["local"].(string); !ok {
				continue
			}
		}
		if strings.ContainsAny(p, "*$") {
			unresolved = true
			continue
		}
		if p = strings.TrimPrefix(path.Clean("/"+strings.TrimSpace(p)), "/"); p != "" {
			paths = append(paths, p)
		}
	}
	return paths, unresolved
}

// AnalyzeWith measures a configuration together with the local files it includes, as
// GitLab merges them: an included file's keys are added, the configuration's own win,
// so a job defined in several files counts once. The include:project targets of every
// file are collected; Includes counts the configuration's own include entries. An
// included file that is not a valid configuration adds nothing. LocalIncludes in the
// result is the number of included files given.
func AnalyzeWith(data []byte, included [][]byte) (inventory.CI, error) {
	top, err := document(data)
	if err != nil || len(included) == 0 {
		return Analyze(data)
	}
	merged := map[string]any{}
	var includes []string
	for _, inc := range included {
		doc, err := document(inc)
		if err != nil {
			continue
		}
		for k, v := range doc {
			if k == "include" {
				includes = append(includes, includeProjects(v)...)
				continue
			}
			merged[k] = v
		}
	}
	for k, v := range top {
		merged[k] = v
	}
	ci := analyze(merged, includes)
	ci.LocalIncludes = len(included)
	return ci, nil
}
