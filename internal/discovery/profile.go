package discovery

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/ciconfig"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// errStop ends a project's profile early: it is gone, forbidden, or out of budget.
var errStop = errors.New("stop profiling")

// profiler builds one project's profile step by step. A failed step is recorded on the
// project and the next step runs; only "the project is gone", "forbidden everywhere"
// and "budget spent" stop it.
type profiler struct {
	w        *Worker
	gp       gitlab.Project
	p        inventory.Project
	ok       int // steps that succeeded
	gone     bool
	deniedAt string // first step that answered 403 on the project itself
	budget   bool
}

func (w *Worker) profile(ctx context.Context, gp gitlab.Project) (inventory.Project, error) {
	ctx, _ = gitlab.WithCallCounter(ctx, w.MaxPerProjectCalls)
	pr := &profiler{w: w, gp: gp, p: identity(gp)}
	err := pr.run(ctx)
	if err != nil && !errors.Is(err, errStop) {
		return inventory.Project{}, err // context ended: the message is retried
	}
	p := pr.p
	p.ScanStatus = pr.status()
	r := readiness.Assess(p, w.Thresholds)
	p.Readiness = &r
	return p, nil
}

func identity(gp gitlab.Project) inventory.Project {
	p := inventory.Project{
		ID:                gp.ID,
		PathWithNamespace: gp.PathWithNamespace,
		Name:              gp.Name,
		GroupID:           gp.Namespace.ID,
		GroupFullPath:     gp.Namespace.FullPath,
		Visibility:        gp.Visibility,
		Archived:          gp.Archived,
		Fork:              gp.Fork(),
		Mirror:            gp.Mirror,
		EmptyRepo:         gp.EmptyRepo,
		DefaultBranch:     gp.DefaultBranch,
		CreatedAt:         gp.CreatedAt.UTC(),
		LastActivityAt:    gp.LastActivityAt.UTC(),
		WebURL:            gp.WebURL,
		Statistics:        gp.Statistics,
		Errors:            []inventory.ScanError{},
	}
	p.Features = inventory.Features{
		WikiEnabled:     gp.WikiOn(),
		IssuesEnabled:   gp.IssuesOn(),
		MREnabled:       gp.MROn(),
		JobsEnabled:     gp.JobsOn(),
		RegistryEnabled: gp.RegistryOn(),
		PackageTypes:    []string{},
	}
	return p
}

func (pr *profiler) status() string {
	switch {
	case pr.gone:
		return inventory.StatusNotFound
	case pr.deniedAt != "" && pr.ok == 0:
		return inventory.StatusForbidden
	case len(pr.p.Errors) == 0:
		return inventory.StatusComplete
	case pr.ok > 0:
		return inventory.StatusPartial
	}
	return inventory.StatusError
}

// check records a step's outcome. It returns errStop when the profile cannot go on and
// the context's error when the work must be retried later.
func (pr *profiler) check(ctx context.Context, step string, err error) error {
	if err == nil {
		pr.ok++
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	status := gitlab.Status(err)
	kind := "other"
	stop := false
	switch {
	case errors.Is(err, budget.ErrExhausted):
		kind, stop = "budget", true
		pr.budget = true
	case errors.Is(err, gitlab.ErrProjectBudget):
		kind, stop = "budget", true
	case errors.Is(err, gitlab.ErrNotFound):
		// Lists under a project that vanished answer 404; the project is gone.
		kind, stop = "not_found", true
		pr.gone = true
	case errors.Is(err, gitlab.ErrForbidden):
		kind = "forbidden"
		if pr.deniedAt == "" {
			pr.deniedAt = step
		}
		stop = step == "statistics" // the project itself refused us
	case errors.Is(err, gitlab.ErrUnauthorized):
		return err // fatal for the run
	case status >= 500:
		kind = "server"
	case gitlab.IsTimeout(err):
		kind = "timeout"
	case errors.Is(err, gitlab.ErrMalformed):
		kind = "malformed"
	}
	pr.p.Errors = append(pr.p.Errors, inventory.ScanError{Step: step, Status: status, Message: err.Error()})
	if pr.w.Recorder != nil {
		pr.w.Recorder.ScanError(kind, step)
	}
	if stop {
		return errStop
	}
	return nil
}

func (pr *profiler) run(ctx context.Context) error {
	c := pr.w.GitLab
	id := pr.gp.ID
	feat := &pr.p.Features

	// Statistics come with the group listing on most GitLab versions; fetch the detail
	// only when they are missing.
	if pr.p.Statistics == nil {
		d, err := c.Project(ctx, id)
		if err := pr.check(ctx, "statistics", err); err != nil {
			return err
		}
		if err == nil {
			pr.p.Statistics = d.Statistics
			if d.Statistics == nil {
				pr.p.Errors = append(pr.p.Errors, inventory.ScanError{Step: "statistics", Message: "GitLab returned no statistics (needs Reporter role or higher)"})
			}
		}
	}
	stats := pr.p.Statistics

	zero := func() *int64 { var n int64; return &n }
	cnt := &pr.p.Counts
	type countStep struct {
		name     string
		field    **int64
		resource string
		query    url.Values
		skip     bool // feature off or nothing to count: zero without a request
	}
	steps := []countStep{
		{"branches", &cnt.Branches, "repository/branches", nil, pr.gp.EmptyRepo},
		{"tags", &cnt.Tags, "repository/tags", nil, pr.gp.EmptyRepo},
		{"merge_requests", &cnt.MergeRequests, "merge_requests", url.Values{"state": {"all"}}, !feat.MREnabled},
		{"open_merge_requests", &cnt.OpenMergeRequests, "merge_requests", url.Values{"state": {"opened"}}, !feat.MREnabled},
		{"issues", &cnt.Issues, "issues", url.Values{"state": {"all"}}, !feat.IssuesEnabled},
		{"pipelines", &cnt.Pipelines, "pipelines", nil, !feat.JobsEnabled},
		{"releases", &cnt.Releases, "releases", nil, false},
		{"webhooks", &cnt.Webhooks, "hooks", nil, false},
		{"protected_branches", &cnt.ProtectedBranches, "protected_branches", nil, pr.gp.EmptyRepo},
		{"ci_variables", &cnt.CIVariables, "variables", nil, false},
	}
	for _, s := range steps {
		if s.skip {
			*s.field = zero()
			continue
		}
		n, lower, err := c.Count(ctx, id, s.resource, s.query)
		if err := pr.check(ctx, s.name, err); err != nil {
			return err
		}
		if err == nil {
			*s.field = &n
			if lower {
				cnt.LowerBounds = append(cnt.LowerBounds, s.name)
			}
		}
	}
	// open_issues_count on the project is exact; no request needed.
	if feat.IssuesEnabled {
		n := pr.gp.OpenIssuesCount
		cnt.OpenIssues = &n
	} else {
		cnt.OpenIssues = zero()
	}
	slices.Sort(cnt.LowerBounds)

	if err := pr.registryAndPackages(ctx, stats); err != nil {
		return err
	}
	if !pr.gp.EmptyRepo {
		if err := pr.files(ctx); err != nil {
			return err
		}
	}
	if stats != nil && stats.LFSObjectsSize > 0 {
		feat.UsesLFS = true
	}
	return nil
}

// registryAndPackages learns what the project publishes, from statistics when it can.
func (pr *profiler) registryAndPackages(ctx context.Context, stats *inventory.Statistics) error {
	c, id, feat := pr.w.GitLab, pr.gp.ID, &pr.p.Features
	switch {
	case stats != nil:
		feat.RegistryInUse = stats.ContainerRegistrySize > 0
	case feat.RegistryEnabled:
		n, _, err := c.Count(ctx, id, "registry/repositories", nil)
		if err := pr.check(ctx, "registry", err); err != nil {
			return err
		}
		feat.RegistryInUse = n > 0
	}
	if !pr.gp.PackagesOn() || (stats != nil && stats.PackagesSize == 0) {
		return nil
	}
	types, err := c.PackageTypes(ctx, id)
	if err := pr.check(ctx, "packages", err); err != nil {
		return err
	}
	if types != nil {
		feat.PackageTypes = types
	}
	return nil
}

// files looks for the files that shape a migration in one root tree listing, and reads
// only those present.
func (pr *profiler) files(ctx context.Context) error {
	c, id, feat := pr.w.GitLab, pr.gp.ID, &pr.p.Features
	ref := pr.gp.DefaultBranch
	tree, err := c.Tree(ctx, id, "", ref)
	if err := pr.check(ctx, "tree", err); err != nil {
		return err
	}
	if err != nil {
		return nil
	}
	has := map[string]string{}
	for _, e := range tree {
		has[e.Name] = e.Type
	}
	feat.HasSubmodules = has[".gitmodules"] == "blob"
	feat.HasCodeowners = has["CODEOWNERS"] == "blob"
	if !feat.HasCodeowners && has[".gitlab"] == "tree" {
		sub, err := c.Tree(ctx, id, ".gitlab", ref)
		if err := pr.check(ctx, "tree:.gitlab", err); err != nil {
			return err
		}
		for _, e := range sub {
			if e.Name == "CODEOWNERS" && e.Type == "blob" {
				feat.HasCodeowners = true
			}
		}
	}
	if has[".gitlab-ci.yml"] == "blob" {
		feat.HasCI = true
		data, err := c.RawFile(ctx, id, ".gitlab-ci.yml", ref)
		if err := pr.check(ctx, "file:.gitlab-ci.yml", err); err != nil {
			return err
		}
		if err == nil {
			ci := ciconfig.Parse(data)
			feat.CI = &ci
		}
	}
	if has[".gitattributes"] == "blob" {
		data, err := c.RawFile(ctx, id, ".gitattributes", ref)
		if err := pr.check(ctx, "file:.gitattributes", err); err != nil {
			return err
		}
		if err == nil && strings.Contains(string(data), "filter=lfs") {
			feat.UsesLFS = true
		}
	}
	return nil
}
