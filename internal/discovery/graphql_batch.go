package discovery

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"golang.org/x/sync/errgroup"
)

// profileEach runs fn for each project, i its index, Concurrency at a time: in
// GraphQL mode after its batch's query, with what the query said of it (nil: REST
// alone), so that a page stores its projects as the answers come in. The first
// error stops it.
func (w *Worker) profileEach(ctx context.Context, projects []gitlab.Project, fn func(ctx context.Context, i int, pre *prefetched) error) error {
	run := func(ctx context.Context, lo, hi int) error {
		var got map[int64]*prefetched
		if w.useGraphQL() {
			var err error
			if got, err = w.prefetchBatch(ctx, projects[lo:hi]); err != nil {
				return err
			}
		}
		for i := lo; i < hi; i++ {
			if err := fn(ctx, i, got[projects[i].ID]); err != nil {
				return err
			}
		}
		return nil
	}
	next := func(lo int) int {
		if !w.useGraphQL() {
			return lo + 1
		}
		return lo + len(w.nextBatch(projects[lo:]))
	}
	lo := 0
	if len(projects) > 0 && w.useGraphQL() &&
		(!w.gql.known.Load() || (w.gql.size.Load() == 0 && len(w.carried(projects[0])) == 0)) {
		// The first batch alone: its answer says whether GitLab serves GraphQL and,
		// for a batch of several, sizes the others.
		hi := next(0)
		if err := run(ctx, 0, hi); err != nil {
			return err
		}
		lo = hi
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.concurrency())
	for lo < len(projects) && gctx.Err() == nil {
		from, to := lo, next(lo)
		g.Go(func() error { return run(gctx, from, to) })
		lo = to
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// prefetchBatch asks for the facts of projects, one batch of them at first, again in
// smaller batches or with less in them when GitLab refuses the query as too complex.
func (w *Worker) prefetchBatch(ctx context.Context, projects []gitlab.Project) (map[int64]*prefetched, error) {
	out := map[int64]*prefetched{}
	without := map[string]bool{} // carried counts refused with these projects
	rest := projects
	for len(rest) > 0 && w.useGraphQL() {
		batch := w.nextBatch(rest)
		rest = rest[len(batch):]
		var carried []facts.Count
		if len(batch) == 1 {
			carried = slices.DeleteFunc(w.carried(batch[0]), func(c facts.Count) bool { return without[c.Name] })
		}
		got, asked, err := w.queryGated(ctx, batch, carried)
		if !asked {
			break // GraphQL turned off while this page waited
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if w.ownersRefused(err) {
				rest = append(slices.Clone(batch), rest...) // again, without the members
				continue
			}
			score, limit, complex := gitlab.ComplexityOf(err)
			if complex && len(carried) > 0 {
				without[carried[0].Name] = true
				if w.gql.refusedCarrying.Add(1) >= gqlUncarryAfter {
					w.uncarry(carried[0])
				}
				rest = append(slices.Clone(batch), rest...) // again, carrying less
				continue
			}
			if complex && len(batch) > 1 {
				// Too complex: learn the size from GitLab's figures and ask again, with
				// fewer whatever the figures say.
				w.gql.size.Store(int64(min(w.gql.learn(len(batch), score, limit), len(batch)-1)))
				rest = append(slices.Clone(batch), rest...)
				continue
			}
			w.graphQLFailed(err, len(batch))
			if errors.Is(err, budget.ErrExhausted) {
				return out, nil // every further request is refused too
			}
			continue
		}
		maps.Copy(out, got)
	}
	return out, nil
}

func (w *Worker) concurrency() int {
	if w.Concurrency > 0 {
		return w.Concurrency
	}
	return 8
}

// queryGated is queryBatch, one query at a time until GitLab has said whether it
// serves GraphQL; asked is false when it turned out not to, before this batch's turn.
func (w *Worker) queryGated(ctx context.Context, batch []gitlab.Project, carried []facts.Count) (map[int64]*prefetched, bool, error) {
	if w.gql.known.Load() {
		got, err := w.queryBatch(ctx, batch, carried)
		return got, true, err
	}
	if err := w.gql.lockProbe(ctx); err != nil {
		return nil, true, err
	}
	defer w.gql.unlockProbe()
	if !w.useGraphQL() {
		return nil, false, nil
	}
	got, err := w.queryBatch(ctx, batch, carried)
	switch {
	case err == nil:
		w.gql.known.Store(true)
	case errors.Is(err, gitlab.ErrGraphQLUnavailable):
		w.gql.known.Store(true)
		if w.API != APIGraphQL {
			w.graphQLOff(gqlOffMessage, err) // off before the next in line asks
		}
	}
	return got, true, err
}

// nextBatch takes the next batch off projects: a project that carries one-per-query
// counts alone, else the learned size of projects that carry none, fewer when
// their files would pass gqlMaxPaths.
func (w *Worker) nextBatch(projects []gitlab.Project) []gitlab.Project {
	if len(w.carried(projects[0])) > 0 {
		return projects[:1]
	}
	n := min(w.gql.batch(), len(projects))
	paths := map[string]bool{}
	for i, gp := range projects[:n] {
		if i > 0 && len(w.carried(gp)) > 0 {
			return projects[:i]
		}
		for _, p := range gqlPaths(gp) {
			paths[p] = true
		}
		if len(paths) > gqlMaxPaths && i > 0 {
			return projects[:i]
		}
	}
	return projects[:n]
}

// carried are the one-per-query counts a query for gp asks for: those REST would
// be asked for (facts.Count.Skip) and GitLab's limit left room for.
//
// A one-per-query count makes its project's query cost about what a REST request
// for it would (GitLab's complexity leaves room for no other project, or
// FieldCallCount for no other's), while the query also reads every batched fact
// of the project and every other such count: a project alone with them costs one
// call where a place in a batch plus REST for them would cost two or more.
func (w *Worker) carried(gp gitlab.Project) []facts.Count {
	p := identity(gp)
	var out []facts.Count
	for _, c := range facts.Counts {
		if !c.GraphQLOnePerQuery || (c.Skip != nil && c.Skip(&p)) {
			continue
		}
		if _, off := w.gql.uncarried.Load(c.Name); !off {
			out = append(out, c)
		}
	}
	return out
}

// gqlUncarryAfter is how many queries GitLab may refuse as too complex for what they
// carry before a carried count is dropped from every query: one project's odd files
// do not cost every later project a REST request, a GitLab that scores every
// project's query higher drops it soon.
const gqlUncarryAfter = 3

// uncarry drops c, a count queries carried that GitLab refused as too complex, from
// every later query: REST counts it from then on.
func (w *Worker) uncarry(c facts.Count) {
	if _, was := w.gql.uncarried.LoadOrStore(c.Name, true); !was {
		w.log().Warn("GitLab's GraphQL complexity limit leaves no room for a count in the profile query; reading it from REST",
			"count", c.Name, "field", c.GraphQLSelection())
	}
}

// queryBatch sends one query for batch and returns the facts of each project it
// answered, by project ID.
func (w *Worker) queryBatch(ctx context.Context, batch []gitlab.Project, carried []facts.Count) (map[int64]*prefetched, error) {
	vars := map[string]any{}
	var paths []string
	for i, gp := range batch {
		vars["p"+strconv.Itoa(i)] = gp.PathWithNamespace
		for _, p := range gqlPaths(gp) {
			if !slices.Contains(paths, p) {
				paths = append(paths, p)
			}
		}
	}
	vars["paths"] = paths
	var a gqlAnswer
	query := gqlQuery(len(batch), len(paths), w.IncludeMembers && !w.gql.noOwners.Load(), carried)
	errs, err := w.GitLab.GraphQL(ctx, query, vars, &a)
	if err != nil {
		return nil, err
	}
	if qc := a.QueryComplexity; qc != nil && len(carried) == 0 {
		// Only a batch without carried counts says what a batch's project costs.
		w.gql.learn(len(batch), qc.Score, qc.Limit)
	}
	failed := errorsByAlias(errs)
	out := map[int64]*prefetched{}
	for i, gp := range batch {
		alias := "p" + strconv.Itoa(i)
		pf, err := decodeGQLProject(a.Projects[alias], gp.ID, failed[alias])
		if err != nil {
			w.log().Warn("GraphQL answer for a project did not decode; profiling it through REST", "project_id", gp.ID, "err", err)
			continue
		}
		if pf != nil {
			out[gp.ID] = pf
		}
	}
	if len(errs) > 0 {
		w.log().Debug("GraphQL answered in part; failed facts are read from REST", "errors", len(errs))
	}
	return out, nil
}

// graphQLFailed handles a query that failed as a whole: its projects are profiled
// through REST. An instance without GraphQL turns it off in auto mode, said once.
func (w *Worker) graphQLFailed(err error, projects int) {
	_, _, complex := gitlab.ComplexityOf(err)
	switch {
	case errors.Is(err, budget.ErrExhausted), errors.Is(err, gitlab.ErrProjectBudget):
		return // the REST steps record it on each project
	case errors.Is(err, gitlab.ErrGraphQLUnavailable) && w.API != APIGraphQL:
		w.graphQLOff(gqlOffMessage, err)
		return
	case complex && projects == 1:
		w.graphQLOff("GitLab's GraphQL complexity limit admits not even one project's query; profiling through REST", err)
		return
	}
	// Timeouts and failures may come from the size: ask fewer at a time.
	w.gql.size.Store(int64(max(w.gql.batch()/2, 1)))
	w.log().Warn("GraphQL query failed; its projects are profiled through REST", "projects", projects, "err", err)
}

const gqlOffMessage = "GitLab does not answer GraphQL (/api/graphql); profiling through REST"

// graphQLOff turns GraphQL off for the worker, saying why once.
func (w *Worker) graphQLOff(why string, err error) {
	w.gql.offOnce.Do(func() {
		w.gql.off.Store(true)
		w.log().Warn(why, "err", err)
	})
}
