package discovery

import (
	"context"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
)

// blobs settles the file facts from GraphQL's blobs(paths:) answer, files: every file
// of the paths asked for that exists, by path, with its text (nil when GitLab did not
// give it, e.g. binary: then the file is read through REST). It finds what files (the
// REST tree walk) finds, without a listing: a path that is not a file is not in it.
func (pr *profiler) blobs(ctx context.Context, cfg ciConfig, files map[string]*string) error {
	feat := &pr.p.Features
	pr.ok++
	read := func(path string, step facts.Step) ([]byte, bool, error) {
		if text := files[path]; text != nil {
			b := []byte(*text)
			if len(b) > gitlab.MaxFileSize {
				b = b[:gitlab.MaxFileSize] // as RawFile reads it
			}
			return b, true, nil
		}
		data, err := pr.w.GitLab.RawFile(ctx, pr.gp.ID, path, pr.gp.DefaultBranch)
		if err := pr.check(ctx, step.Name, err); err != nil {
			return nil, false, err
		}
		return data, err == nil, nil
	}
	_, hasModules := files[".gitmodules"]
	feat.HasSubmodules = new(hasModules)
	if hasModules {
		data, ok, err := read(".gitmodules", facts.SubmodulesFile)
		if err != nil {
			return err
		}
		if ok {
			feat.Submodules = submoduleTargets(data, pr.gp.WebURL, pr.gp.PathWithNamespace)
		}
	}
	owners := false
	for _, p := range codeownersPaths {
		_, found := files[p]
		owners = owners || found
	}
	feat.HasCodeowners = new(owners)
	if cfg.external == "" {
		_, hasCI := files[cfg.path]
		feat.HasCI = new(hasCI)
		if hasCI {
			data, ok, err := read(cfg.path, facts.CIFile)
			if err != nil {
				return err
			}
			if ok {
				// Its local includes are read through REST, as the REST path reads them.
				if feat.CI, err = pr.ciAnalysis(ctx, data); err != nil {
					return err
				}
			}
		}
	}
	if feat.UsesLFS != nil {
		return nil
	}
	if _, ok := files[".gitattributes"]; !ok {
		feat.UsesLFS = new(false)
		return nil
	}
	data, ok, err := read(".gitattributes", facts.AttributesFile)
	if err != nil {
		return err
	}
	if ok {
		feat.UsesLFS = new(strings.Contains(string(data), "filter=lfs"))
	}
	return nil
}
