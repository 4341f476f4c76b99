package discovery

import (
	"cmp"
	"context"
	"path"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
)

// defaultCIConfig is the CI file GitLab reads when ci_config_path is empty.
const defaultCIConfig = ".gitlab-ci.yml"

// codeownersDirs are where GitLab reads CODEOWNERS besides the root, in its order.
var codeownersDirs = []struct {
	dir  string
	step facts.Step
}{{"docs", facts.TreeDocs}, {".gitlab", facts.TreeGitlab}}

// ciConfig is where a project's CI configuration is (GitLab's ci_config_path).
type ciConfig struct {
	path     string // repository path of a configuration in the project itself
	external string // project path or URL of a configuration kept elsewhere
}

// parseCIConfigPath reads a ci_config_path: "" is .gitlab-ci.yml, a URL is a remote
// configuration, "file.yml@group/project[:ref]" is a file in another project, and
// anything else a path in the repository.
func parseCIConfigPath(s string) ciConfig {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return ciConfig{path: defaultCIConfig}
	case strings.HasPrefix(s, "https://"), strings.HasPrefix(s, "http://"):
		return ciConfig{external: s}
	}
	// GitLab splits at the first "@", then the project from its ref at ":".
	if _, project, ok := strings.Cut(s, "@"); ok {
		project, _, _ = strings.Cut(project, ":")
		if project = strings.Trim(project, "/"); project != "" {
			return ciConfig{external: project}
		}
		return ciConfig{external: s}
	}
	// Cleaned under the root, so it can name nothing above it; "." names no file.
	return ciConfig{path: cmp.Or(strings.TrimPrefix(path.Clean("/"+s), "/"), ".")}
}

// entries maps a tree listing's names to their types (blob, tree, commit).
func entries(tree []gitlab.TreeEntry) map[string]string {
	m := make(map[string]string, len(tree))
	for _, e := range tree {
		m[e.Name] = e.Type
	}
	return m
}

// files looks for the files that shape a migration in one root tree listing, and reads
// only those present. A fact whose listing or file could not be read stays unknown.
func (pr *profiler) files(ctx context.Context) error {
	feat := &pr.p.Features
	feat.CIConfigPath = pr.gp.CIConfigPath
	cfg := parseCIConfigPath(pr.gp.CIConfigPath)
	if cfg.external != "" {
		// The pipeline is configured in another project: the project has CI, whose
		// file this profile does not read (another project's access and budget).
		feat.CIConfigExternal = cfg.external
		feat.HasCI = new(true)
	}
	if pr.gp.EmptyRepo {
		for _, f := range []**bool{&feat.HasSubmodules, &feat.HasCodeowners, &feat.UsesLFS, &feat.HasCI} {
			if *f == nil {
				*f = new(false)
			}
		}
		return nil
	}
	if pr.pre != nil && pr.pre.filesKnown {
		return pr.blobs(ctx, cfg, pr.pre.files)
	}
	tree, err := pr.w.GitLab.Tree(ctx, pr.gp.ID, "", pr.gp.DefaultBranch)
	if err := pr.check(ctx, facts.Tree.Name, err); err != nil {
		return err
	}
	if err != nil {
		return nil
	}
	root := entries(tree)
	feat.HasSubmodules = new(root[".gitmodules"] == "blob")
	if *feat.HasSubmodules {
		if err := pr.submodules(ctx); err != nil {
			return err
		}
	}
	if err := pr.codeowners(ctx, root); err != nil {
		return err
	}
	if cfg.external == "" {
		if err := pr.ciFile(ctx, cfg.path, root); err != nil {
			return err
		}
	}
	return pr.lfs(ctx, root)
}

// codeowners looks for CODEOWNERS in the root, docs/ and .gitlab/, listing a directory
// only when the root has it and no CODEOWNERS was found before it.
func (pr *profiler) codeowners(ctx context.Context, root map[string]string) error {
	feat := &pr.p.Features
	if root["CODEOWNERS"] == "blob" {
		feat.HasCodeowners = new(true)
		return nil
	}
	known := true
	for _, d := range codeownersDirs {
		if root[d.dir] != "tree" {
			continue
		}
		sub, err := pr.w.GitLab.Tree(ctx, pr.gp.ID, d.dir, pr.gp.DefaultBranch)
		if err := pr.check(ctx, d.step.Name, err); err != nil {
			return err
		}
		if err != nil {
			known = false // it may be there; the other directory can still say yes
			continue
		}
		if entries(sub)["CODEOWNERS"] == "blob" {
			feat.HasCodeowners = new(true)
			return nil
		}
	}
	if known {
		feat.HasCodeowners = new(false)
	}
	return nil
}

// ciFile finds the CI configuration at file (a repository path), listing each of its
// directories from the root down, and parses it.
func (pr *profiler) ciFile(ctx context.Context, file string, root map[string]string) error {
	feat := &pr.p.Features
	c, id, ref := pr.w.GitLab, pr.gp.ID, pr.gp.DefaultBranch
	dir, name := path.Split(file)
	here, listed := root, ""
	for _, part := range strings.FieldsFunc(dir, func(r rune) bool { return r == '/' }) {
		if here[part] != "tree" {
			feat.HasCI = new(false)
			return nil
		}
		listed = path.Join(listed, part)
		sub, err := c.Tree(ctx, id, listed, ref)
		if err := pr.check(ctx, facts.TreeCIConfig.Name, err); err != nil {
			return err
		}
		if err != nil {
			return nil
		}
		here = entries(sub)
	}
	feat.HasCI = new(here[name] == "blob")
	if !*feat.HasCI {
		return nil
	}
	data, err := c.RawFile(ctx, id, file, ref)
	if err := pr.check(ctx, facts.CIFile.Name, err); err != nil {
		return err
	}
	if err != nil {
		return nil
	}
	feat.CI, err = pr.ciAnalysis(ctx, data) // with its local includes
	return err
}

// lfs reads .gitattributes for an LFS filter, unless statistics already said yes.
func (pr *profiler) lfs(ctx context.Context, root map[string]string) error {
	feat := &pr.p.Features
	if feat.UsesLFS != nil {
		return nil
	}
	if root[".gitattributes"] != "blob" {
		feat.UsesLFS = new(false)
		return nil
	}
	data, err := pr.w.GitLab.RawFile(ctx, pr.gp.ID, ".gitattributes", pr.gp.DefaultBranch)
	if err := pr.check(ctx, facts.AttributesFile.Name, err); err != nil {
		return err
	}
	if err == nil {
		feat.UsesLFS = new(strings.Contains(string(data), "filter=lfs"))
	}
	return nil
}
