package discovery

import (
	"context"
	"errors"

	"github.com/gl2gh/discovery-agent/internal/ciconfig"
	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// ciAnalysis analyses the CI file data together with the local files it includes,
// read breadth first (nested includes too) up to facts.MaxCIIncludes files, so that
// their jobs count. A file over the bound, a wildcard or variable path, or a missing
// file (GitLab would reject the pipeline) makes the job count a lower bound. A read
// that fails otherwise (403, 5xx) leaves the CI analysis unknown (nil), as a failed
// CI file does.
func (pr *profiler) ciAnalysis(ctx context.Context, data []byte) (*inventory.CI, error) {
	queue, partial := ciconfig.LocalIncludes(data)
	var files [][]byte
	seen := map[string]bool{}
	for len(queue) > 0 {
		file := queue[0]
		queue = queue[1:]
		if seen[file] {
			continue
		}
		seen[file] = true
		if len(files) == facts.MaxCIIncludes {
			partial = true
			break
		}
		b, err := pr.w.GitLab.RawFile(ctx, pr.gp.ID, file, pr.gp.DefaultBranch)
		if errors.Is(err, gitlab.ErrNotFound) {
			// Not "the project is gone": the file named is not there.
			partial = true
			continue
		}
		if err := pr.check(ctx, facts.CIIncludeFile.Name, err); err != nil {
			return nil, err
		}
		if err != nil {
			return nil, nil
		}
		files = append(files, b)
		more, unresolved := ciconfig.LocalIncludes(b)
		queue, partial = append(queue, more...), partial || unresolved
	}
	ci, _ := ciconfig.AnalyzeWith(data, files) // an invalid file is recorded as such
	ci.JobsLowerBound = partial && !ci.Invalid
	return &ci, nil
}
