package discovery

import (
	"context"
	"errors"
	"slices"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/facts"
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
	pre      *prefetched // what GraphQL said; nil: everything from REST
}

func (w *Worker) profile(ctx context.Context, gp gitlab.Project, pre *prefetched) (inventory.Project, error) {
	ctx, _ = gitlab.WithCallCounter(ctx, w.MaxPerProjectCalls)
	pr := &profiler{w: w, gp: gp, p: identity(gp), pre: pre}
	var err error
	if verr := gp.Validate(); verr != nil {
		// GitLab's record is wrong (a field's type, an impossible number): the project
		// is recorded with the error, and none of its numbers as facts.
		pr.p.Statistics = nil
		pr.check(ctx, "listing", verr)
	} else {
		err = pr.run(ctx)
	}
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
		ForkedFrom:        gp.ForkParent(),
		Mirror:            gp.Mirror,
		NamespaceKind:     gp.Namespace.Kind,
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
		stop = step == facts.Statistics.Name // the project itself refused us
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
		if err := pr.check(ctx, facts.Statistics.Name, err); err != nil {
			return err
		}
		if err == nil {
			pr.p.Statistics = d.Statistics
			if d.Statistics == nil {
				pr.p.Errors = append(pr.p.Errors, inventory.ScanError{Step: facts.Statistics.Name, Message: "GitLab returned no statistics (needs Reporter role or higher)"})
			}
		}
	}
	stats := pr.p.Statistics

	if err := pr.counts(ctx); err != nil {
		return err
	}

	if err := pr.registryAndPackages(ctx, stats); err != nil {
		return err
	}
	if stats != nil && stats.LFSObjectsSize > 0 {
		feat.UsesLFS = new(true) // LFS bytes settle it: .gitattributes is not read
	}
	if err := pr.files(ctx); err != nil {
		return err
	}
	return pr.members(ctx)
}

// counts fills the declared counts (facts.Counts) in order: each from X-Total of its
// list, or from the project as listed, or 0 without a request when skipped.
func (pr *profiler) counts(ctx context.Context) error {
	cnt := &pr.p.Counts
	// Listed counts come after the requests, as they always have: a profile that
	// stops early leaves them unknown too.
	for _, listed := range []bool{false, true} {
		for _, f := range facts.Counts {
			if f.Listed() != listed {
				continue
			}
			dst := f.Field(cnt)
			if f.Skip != nil && f.Skip(&pr.p) {
				*dst = new(int64)
				continue
			}
			if listed {
				n := listedCount(pr.gp, f.Name)
				*dst = &n
				continue
			}
			if n, lower, ok := pr.pre.count(f.Name); ok {
				pr.ok++
				*dst = &n
				if lower {
					cnt.LowerBounds = append(cnt.LowerBounds, f.Name)
				}
				continue
			}
			n, lower, err := pr.w.GitLab.Count(ctx, pr.gp.ID, f.Resource(), f.Values())
			if err := pr.check(ctx, f.Name, err); err != nil {
				return err
			}
			if err == nil {
				*dst = &n
				if lower {
					cnt.LowerBounds = append(cnt.LowerBounds, f.Name)
				}
			}
		}
	}
	slices.Sort(cnt.LowerBounds)
	return nil
}

// listedCount is a count the project carries as listed (facts.Count.Listed).
func listedCount(gp gitlab.Project, name string) int64 {
	switch name {
	case "open_issues":
		return gp.OpenIssuesCount
	}
	panic("discovery: no listed count " + name) // a declaration without its source: a test catches it
}

// registryAndPackages learns what the project publishes, from statistics when it can.
func (pr *profiler) registryAndPackages(ctx context.Context, stats *inventory.Statistics) error {
	c, id, feat := pr.w.GitLab, pr.gp.ID, &pr.p.Features
	switch {
	case stats != nil:
		feat.RegistryInUse = new(stats.ContainerRegistrySize > 0)
	case feat.RegistryEnabled && pr.pre != nil && pr.pre.registry != nil:
		pr.ok++
		feat.RegistryInUse = new(*pr.pre.registry > 0)
	case feat.RegistryEnabled:
		n, _, err := c.Count(ctx, id, "registry/repositories", nil)
		if err := pr.check(ctx, facts.Registry.Name, err); err != nil {
			return err
		}
		if err == nil {
			feat.RegistryInUse = new(n > 0)
		}
	default:
		feat.RegistryInUse = new(false)
	}
	if !pr.gp.PackagesOn() || (stats != nil && stats.PackagesSize == 0) {
		feat.PackageTypes = []string{}
		return nil
	}
	if pr.pre != nil && pr.pre.packageTypes != nil {
		pr.ok++
		feat.PackageTypes = append([]string{}, pr.pre.packageTypes...)
		return nil
	}
	types, err := c.PackageTypes(ctx, id)
	if err := pr.check(ctx, facts.Packages.Name, err); err != nil {
		return err
	}
	if err == nil {
		feat.PackageTypes = append([]string{}, types...)
	}
	return nil
}
