package readiness

import (
	"fmt"
	"slices"
	"strings"
)

// EnvPath names the environment variable that chooses the migration path.
const EnvPath = "MIGRATION_PATH"

// A Path is a way to move a GitLab project to GitHub. Its limits differ, so the size
// thresholds' defaults do: a verdict says which path it assumes.
type Path struct {
	Name   string // MIGRATION_PATH's value
	Title  string
	Limits string // the path's documented limits, one sentence for the report
	// defaults sets the thresholds the path's limits decide over the declared defaults.
	defaults func(*Thresholds)
}

// Path names.
const (
	PathGEI    = "gei"
	PathGHES   = "ghes"
	PathMirror = "mirror"
)

// DefaultPath is git push --mirror: GitHub Enterprise Importer does not list GitLab as
// a source, gl-exporter/ghe-migrator only reach GitHub Enterprise Server, and a mirror
// push (plus an LFS push and API scripts) reaches every GitHub.
const DefaultPath = PathMirror

// Paths are the migration paths MIGRATION_PATH may name. docs/EXPORTS.md documents each
// (a test checks).
var Paths = []Path{
	{Name: PathMirror, Title: "git push --mirror + git lfs push",
		Limits: "2 GiB per push (larger repositories are pushed in pieces), files over 100 MiB rejected, ref names up to 255 bytes, no fixed repository maximum (GitHub strongly recommends under 5 GB); no export archive, so no archive limit.",
		defaults: func(t *Thresholds) {
			t.MaxRepositorySize, t.MaxExportSize = 0, 0 // no documented maximum: no size blocker
			t.LargeRepositorySize = 2 * GiB
		}},
	{Name: PathGHES, Title: "gl-exporter + ghe-migrator (GitHub Enterprise Server)",
		Limits:   "40 GiB archive (GitLab's export limit), files over 100 MiB rejected, 2 GiB per push, repositories strongly recommended under 5 GB.",
		defaults: func(*Thresholds) {}},
	{Name: PathGEI, Title: "GitHub Enterprise Importer",
		Limits:   "40 GiB repository and archive limit, files over 100 MiB rejected, 2 GiB per push; GEI does not list GitLab as a source (github/gh-gei#1157).",
		defaults: func(*Thresholds) {}},
}

// PathFor returns the path of a MIGRATION_PATH value.
func PathFor(name string) (Path, error) {
	i := slices.IndexFunc(Paths, func(p Path) bool { return p.Name == name })
	if i < 0 {
		names := make([]string, len(Paths))
		for j, p := range Paths {
			names[j] = p.Name
		}
		return Path{}, fmt.Errorf("unknown migration path %q (want %s)", name, strings.Join(names, ", "))
	}
	return Paths[i], nil
}
