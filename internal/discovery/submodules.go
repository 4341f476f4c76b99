package discovery

import (
	"bufio"
	"bytes"
	"context"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/facts"
)

// submodules reads .gitmodules and records its targets (see submoduleTargets).
func (pr *profiler) submodules(ctx context.Context) error {
	data, err := pr.w.GitLab.RawFile(ctx, pr.gp.ID, ".gitmodules", pr.gp.DefaultBranch)
	if err := pr.check(ctx, facts.SubmodulesFile.Name, err); err != nil {
		return err
	}
	if err == nil {
		pr.p.Features.Submodules = submoduleTargets(data, pr.gp.WebURL, pr.gp.PathWithNamespace)
	}
	return nil
}

// submoduleTargets lists the url values of a .gitmodules, sorted and unique, each
// resolved by resolveSubmodule.
func submoduleTargets(data []byte, webURL, project string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(key), "url") {
			continue
		}
		val = strings.Trim(strings.TrimSpace(val), `"`)
		if t := resolveSubmodule(val, webURL, project); t != "" {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// resolveSubmodule turns a submodule URL into a project path when it points into the
// GitLab that serves the project (webURL is the project's page there): an http(s) or
// ssh URL on the same host, git@host:group/project.git, or a URL relative to the
// project ("../lib.git"). Any other URL is kept as written, without user information
// (a password in a URL is not for an export); "" for what names nothing.
func resolveSubmodule(raw, webURL, project string) string {
	if raw == "" {
		return ""
	}
	home, _ := url.Parse(webURL)
	host := ""
	if home != nil {
		host = home.Hostname()
	}
	if strings.HasPrefix(raw, "./") || strings.HasPrefix(raw, "../") {
		// Git resolves it against the superproject's remote, group/project.git.
		p := path.Join(project, raw)
		if p == "." || strings.HasPrefix(p, "../") || p == ".." {
			return ""
		}
		return trimGit(p)
	}
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Host != "" {
		if host != "" && strings.EqualFold(u.Hostname(), host) {
			p := strings.Trim(u.Path, "/")
			// An instance under a relative URL root (https://host/gitlab/...) serves
			// its projects below that root.
			if root := strings.Trim(home.Path, "/"); root != "" && strings.HasSuffix(root, project) {
				prefix := strings.Trim(strings.TrimSuffix(root, project), "/")
				p = strings.TrimPrefix(strings.TrimPrefix(p, prefix), "/")
			}
			if p != "" {
				return trimGit(p)
			}
		}
		u.User = nil
		return u.String()
	}
	// scp-like: [user@]host:path; a user with a password (user:password@) is dropped.
	head := raw
	if i := strings.Index(raw, "/"); i >= 0 {
		head = raw[:i]
	}
	hostPath := raw
	if i := strings.LastIndex(head, "@"); i >= 0 {
		hostPath = raw[i+1:]
		if strings.Contains(raw[:i], ":") {
			raw = hostPath
		}
	}
	if h, rest, ok := strings.Cut(hostPath, ":"); ok && h != "" && !strings.Contains(h, "/") {
		if host != "" && strings.EqualFold(h, host) {
			if p := strings.Trim(rest, "/"); p != "" {
				return trimGit(p)
			}
		}
	}
	// A scheme-relative URL (//user:password@host/path) still carries user information.
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = nil
		return u.String() // "" when nothing else is left
	}
	return raw
}

func trimGit(p string) string { return strings.TrimSuffix(p, ".git") }
