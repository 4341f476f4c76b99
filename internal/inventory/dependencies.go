package inventory

import (
	"slices"
	"strings"
)

// Dependency kinds: why From needs To migrated first (or alongside).
const (
	DepFork      = "fork"       // From is a fork of To
	DepSubmodule = "submodule"  // From's .gitmodules names To
	DepCIInclude = "ci_include" // From's CI file has include: project: To
	DepCITrigger = "ci_trigger" // From's CI file triggers a pipeline in To
	DepCIConfig  = "ci_config"  // From's ci_config_path is a file in To (or a URL)
)

// Dependency is one edge of dependencies.csv.
type Dependency struct {
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"`
}

// External reports whether To is outside the GitLab: a URL rather than a project
// path (project paths never contain ":").
func (d Dependency) External() bool { return strings.Contains(d.To, ":") }

// Dependencies lists the project's edges, by kind in the order of the constants and
// each kind's targets sorted; a target repeated within a kind is listed once, and an
// edge to the project itself is left out.
func Dependencies(p *Project) []Dependency {
	var deps []Dependency
	add := func(kind string, targets ...string) {
		targets = slices.Clone(targets)
		slices.Sort(targets)
		for _, t := range slices.Compact(targets) {
			if t != "" && t != p.PathWithNamespace {
				deps = append(deps, Dependency{From: p.PathWithNamespace, To: t, Kind: kind})
			}
		}
	}
	add(DepFork, p.ForkedFrom)
	add(DepSubmodule, p.Features.Submodules...)
	if ci := p.Features.CI; ci != nil {
		add(DepCIInclude, ci.IncludeProjects...)
		add(DepCITrigger, ci.TriggerProjects...)
	}
	add(DepCIConfig, p.Features.CIConfigExternal)
	return deps
}
