package gitlabsim

import (
	"net/url"
	"slices"
	"strings"
)

// submodule is one entry of a project's .gitmodules: its path, the URL as written
// and what a scan resolves it to (a project path, or the URL when it is outside).
type submodule struct {
	path, url, target string
}

// externalSubmoduleShare of the projects with submodules also vendor one from GitHub.
const externalSubmoduleShare = 0.25

// submodules are the project's submodules, decided from the seed and the id: one in
// another project of the instance, written as a relative URL, an https URL or
// git@host:path, and for a share of them one on GitHub.
func (in *instance) submodules(p *project) []submodule {
	if !p.has(fGitmodules) || p.has(fEmpty) {
		return nil
	}
	h := hash3(uint64(in.seed), uint64(p.id), saltSubmodules)
	var target string
	if len(in.projects) < 2 {
		target = "platform/common" // nothing else to point at; not in the instance
	} else {
		k := int(mix(h) % uint64(len(in.projects)))
		if in.projects[k].id == p.id {
			k = (k + 1) % len(in.projects)
		}
		target = in.pathWithNamespace(&in.projects[k])
	}
	var u string
	switch h % 3 {
	case 0: // relative to the superproject's path, as Git resolves it
		u = strings.Repeat("../", strings.Count(in.pathWithNamespace(p), "/")+1) + target + ".git"
	case 1:
		u = in.externalURL + "/" + target + ".git"
	default:
		host := in.externalURL
		if eu, err := url.Parse(in.externalURL); err == nil && eu.Host != "" {
			host = eu.Hostname()
		}
		u = "git@" + host + ":" + target + ".git"
	}
	subs := []submodule{{path: "vendor/common", url: u, target: target}}
	if unit(mix(mix(h))) < externalSubmoduleShare {
		ext := "https://github.com/example/third-party-lib.git"
		subs = append(subs, submodule{path: "third_party/lib", url: ext, target: ext})
	}
	return subs
}

// gitmodules renders a .gitmodules.
func gitmodules(subs []submodule) string {
	var b strings.Builder
	for _, s := range subs {
		b.WriteString("[submodule \"" + s.path + "\"]\n\tpath = " + s.path + "\n\turl = " + s.url + "\n\tbranch = main\n")
	}
	return b.String()
}

// submoduleTargets are the truth of inventory.Features.Submodules: sorted, unique.
func submoduleTargets(subs []submodule) []string {
	var out []string
	for _, s := range subs {
		out = append(out, s.target)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// forkParent is the truth of inventory.Project.ForkedFrom.
func (in *instance) forkParent(p *project) string {
	if p.forkOf < 0 {
		return ""
	}
	return in.pathWithNamespace(&in.projects[p.forkOf])
}
