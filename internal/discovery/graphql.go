package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"golang.org/x/sync/errgroup"
)

// The values of GITLAB_API: which API profiles a project.
const (
	APIAuto    = "auto"    // GraphQL where the instance answers it, REST otherwise
	APIGraphQL = "graphql" // GraphQL, REST only for what it lacks or failed
	APIREST    = "rest"    // REST only, as before GraphQL
)

// APIs lists GITLAB_API's values.
var APIs = []string{APIAuto, APIGraphQL, APIREST}

// Batch sizes of the per-project GraphQL query, in projects. GitLab bounds a query by
// its complexity (250 on GitLab.com) and its size (10,000 characters): the size adapts
// to the complexity GitLab reports, within these bounds.
const (
	gqlFirstBatch = 6
	gqlMaxBatch   = 50
	// gqlMaxPaths bounds the file paths one query asks for: blobs(paths:) is a
	// connection of at most 100 nodes.
	gqlMaxPaths = 90
	// gqlPackageTypes is the page of packages read for their types.
	gqlPackageTypes = 20
)

// codeownersPaths are where GitLab reads CODEOWNERS, in its order.
var codeownersPaths = []string{"CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS"}

// gqlState is a worker's GraphQL state, shared by its messages: whether the instance
// answers GraphQL, and the batch size learned from the complexity it reports.
type gqlState struct {
	off     atomic.Bool
	offOnce sync.Once
	size    atomic.Int64 // projects per query; 0 = gqlFirstBatch
	// known: GitLab has answered whether it serves GraphQL. Until then queries go one
	// at a time (probe), so that a GitLab without it is asked once, not by every page
	// in flight.
	known     atomic.Bool
	probe     chan struct{} // held by the query in flight while !known
	probeOnce sync.Once
	// noOwners: GitLab refused the members selection (before 16.0); owners come from
	// REST's members/all.
	noOwners     atomic.Bool
	noOwnersOnce sync.Once
	// uncarried: one-per-query counts GitLab's complexity limit left no room for,
	// read from REST from then on.
	uncarried sync.Map // count name → true
}

// lockProbe waits for the probe's turn, or for ctx: a page whose deadline passes does
// not wait on a query that may take its retries' time.
func (s *gqlState) lockProbe(ctx context.Context) error {
	s.probeOnce.Do(func() { s.probe = make(chan struct{}, 1) })
	select {
	case s.probe <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *gqlState) unlockProbe() { <-s.probe }

func (s *gqlState) batch() int {
	if n := s.size.Load(); n > 0 {
		return int(n)
	}
	return gqlFirstBatch
}

// learn sizes the next batches from a query of n projects that scored score against
// limit: as many projects as fit, at most gqlMaxBatch. Every alias has the same
// selection, so a query's score grows with its projects; the query's own overhead,
// counted in each project's share, leaves the estimate on the safe side.
func (s *gqlState) learn(n, score, limit int) int {
	if n <= 0 || score <= 0 || limit <= 0 {
		return s.batch()
	}
	per := float64(score) / float64(n)
	next := min(max(int(float64(limit)/per), 1), gqlMaxBatch)
	s.size.Store(int64(next))
	return next
}

// useGraphQL reports whether the worker profiles through GraphQL now.
// GraphQL is off in auto mode on a GitLab without it, in any mode on one whose limit
// no single project's query fits.
func (w *Worker) useGraphQL() bool {
	return w.API != APIREST && !w.gql.off.Load()
}

// prefetched is what one GraphQL query said about one project. A fact it does not
// hold (the query failed, the field was null or answered with an error) is read from
// REST as before: GraphQL never makes a fact known that REST would leave unknown,
// nor the reverse.
type prefetched struct {
	counts       map[string]int64 // by facts.Count name
	lower        map[string]bool  // counts that are lower bounds (facts.TotalCap)
	registry     *int64           // container repositories
	packageTypes []string         // nil: unknown
	files        map[string]*string
	filesKnown   bool     // files lists every present one of the paths asked for
	owners       []string // nil: unknown or not asked (INCLUDE_MEMBERS off)
}

func (pf *prefetched) count(name string) (n int64, lower, ok bool) {
	if pf == nil {
		return 0, false, false
	}
	n, ok = pf.counts[name]
	return n, pf.lower[name], ok
}

// gqlProjectFields is the selection on Project the query asks of every project:
// the declared GraphQL counts (facts.Count.GraphQL) under their names, the registry,
// the package types and the files that shape a migration.
func gqlProjectFields(paths int, members bool) string {
	var b strings.Builder
	b.WriteString("id ")
	for _, c := range facts.Counts {
		if c.GraphQL != "" && !c.GraphQLOnePerQuery {
			fmt.Fprintf(&b, "%s: %s ", c.Name, c.GraphQLSelection())
		}
	}
	if members {
		b.WriteString(gqlOwnersField + " ")
	}
	b.WriteString("containerRepositoriesCount ")
	// A connection's complexity grows with its page: the package types of a few
	// packages here, REST's walk for a project with more; blobs no more than asked.
	fmt.Fprintf(&b, "packages(first: %d) { pageInfo { hasNextPage } nodes { packageType } } ", gqlPackageTypes)
	fmt.Fprintf(&b, "repository { blobs(paths: $paths, first: %d) { pageInfo { hasNextPage } nodes { path rawTextBlob } } }", max(paths, 1))
	return b.String()
}

// gqlOnePerQueryFields is the selection of counts only one project of a query may
// ask for, and the abilities that decide whether their numbers are counts.
func gqlOnePerQueryFields(counts []facts.Count) string {
	var b strings.Builder
	var abilities []string
	for _, c := range counts {
		fmt.Fprintf(&b, "%s: %s ", c.Name, c.GraphQLSelection())
		if c.GraphQLAbility != "" && !slices.Contains(abilities, c.GraphQLAbility) {
			abilities = append(abilities, c.GraphQLAbility)
		}
	}
	if len(abilities) > 0 {
		fmt.Fprintf(&b, "userPermissions { %s } ", strings.Join(abilities, " "))
	}
	return b.String()
}

// gqlQuery is the query for n projects, aliased p0…p(n-1), their full paths in the
// variables $p0…, the files (paths of them) in $paths, and their members when
// members (INCLUDE_MEMBERS). Project p0 also gets the one-per-query counts carried.
func gqlQuery(n, paths int, members bool, carried []facts.Count) string {
	var b strings.Builder
	b.WriteString("query profile($paths: [String!]!")
	for i := range n {
		fmt.Fprintf(&b, ", $p%d: ID!", i)
	}
	b.WriteString(") { queryComplexity { score limit } ")
	for i := range n {
		extra := ""
		if i == 0 && len(carried) > 0 {
			extra = gqlOnePerQueryFields(carried)
		}
		fmt.Fprintf(&b, "p%d: project(fullPath: $p%d) { ...profile %s} ", i, i, extra)
	}
	b.WriteString("} fragment profile on Project { ")
	b.WriteString(gqlProjectFields(paths, members))
	b.WriteString(" }")
	return b.String()
}

// gqlPaths are the repository files a project's profile reads: .gitmodules,
// .gitattributes, CODEOWNERS in its three places and the CI file of its own.
func gqlPaths(gp gitlab.Project) []string {
	ps := append([]string{".gitmodules", ".gitattributes"}, codeownersPaths...)
	if cfg := parseCIConfigPath(gp.CIConfigPath); cfg.external == "" && cfg.path != "." {
		ps = append(ps, cfg.path)
	}
	return ps
}

type gqlAnswer struct {
	QueryComplexity *struct {
		Score int `json:"score"`
		Limit int `json:"limit"`
	} `json:"queryComplexity"`
	Projects map[string]json.RawMessage `json:"-"`
}

func (a *gqlAnswer) UnmarshalJSON(data []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	if qc, ok := all["queryComplexity"]; ok {
		if err := json.Unmarshal(qc, &a.QueryComplexity); err != nil {
			return err
		}
		delete(all, "queryComplexity")
	}
	a.Projects = all
	return nil
}

// gqlProject is one project of the answer.
type gqlProject struct {
	ID                         string           `json:"id"`
	ContainerRepositoriesCount *int64           `json:"containerRepositoriesCount"`
	Packages                   *gqlPackages     `json:"packages"`
	Repository                 *gqlRepository   `json:"repository"`
	Counts                     map[string]int64 `json:"-"`
}

type gqlPackages struct {
	PageInfo struct {
		HasNextPage bool `json:"hasNextPage"`
	} `json:"pageInfo"`
	Nodes []struct {
		PackageType string `json:"packageType"`
	} `json:"nodes"`
}

type gqlRepository struct {
	Blobs *struct {
		PageInfo struct {
			HasNextPage bool `json:"hasNextPage"`
		} `json:"pageInfo"`
		Nodes []struct {
			Path        string  `json:"path"`
			RawTextBlob *string `json:"rawTextBlob"`
		} `json:"nodes"`
	} `json:"blobs"`
}

// decodeGQLProject reads one alias's answer for project id; failed names the facts
// an error or a null made unknown ("" for the whole project).
func decodeGQLProject(raw json.RawMessage, id int64, failed map[string]bool) (*prefetched, error) {
	if failed[""] || len(raw) == 0 || string(raw) == "null" {
		return nil, nil // not visible, gone or refused: REST tells which
	}
	var gp gqlProject
	if err := json.Unmarshal(raw, &gp); err != nil {
		return nil, err
	}
	got, err := gitlab.ParseGID(gp.ID)
	if err != nil {
		return nil, err
	}
	if got != id {
		// The path names another project now (renamed, moved, its path reused since
		// the listing): its facts are not this one's.
		return nil, fmt.Errorf("its path is project %d's now", got)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	pf := &prefetched{counts: map[string]int64{}, lower: map[string]bool{}}
	for _, c := range facts.Counts {
		if c.GraphQL == "" || failed[c.Name] {
			continue
		}
		if c.GraphQLAbility != "" && (failed["userPermissions"] || !gqlAbility(fields["userPermissions"], c.GraphQLAbility)) {
			continue
		}
		if n, ok := gqlCount(fields[c.Name], c); ok {
			// GraphQL counts past REST's cap; the exports say what REST says, one
			// meaning for a count whichever API read it.
			pf.counts[c.Name] = min(n, facts.TotalCap)
			pf.lower[c.Name] = n > facts.TotalCap
		}
	}
	if n := gp.ContainerRepositoriesCount; n != nil && *n >= 0 && !failed["containerRepositoriesCount"] {
		pf.registry = n
	}
	if p := gp.Packages; p != nil && !p.PageInfo.HasNextPage && !failed["packages"] {
		types := []string{}
		for _, n := range p.Nodes {
			if t := strings.ToLower(n.PackageType); t != "" && !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
		slices.Sort(types)
		pf.packageTypes = types
	}
	if !failed["owners"] {
		pf.owners = gqlOwners(fields["owners"])
	}
	if r := gp.Repository; r != nil && r.Blobs != nil && !r.Blobs.PageInfo.HasNextPage && !failed["repository"] {
		pf.filesKnown = true
		pf.files = map[string]*string{}
		for _, n := range r.Blobs.Nodes {
			pf.files[n.Path] = n.RawTextBlob
		}
	}
	return pf, nil
}

// gqlAbility reads one ability of a ProjectPermissions answer: true only when
// GitLab said true.
func gqlAbility(raw json.RawMessage, ability string) bool {
	var perms map[string]*bool
	if json.Unmarshal(raw, &perms) != nil {
		return false
	}
	v := perms[ability]
	return v != nil && *v
}

// gqlCount reads count c from its answer: a connection's count, or the number of
// its nodes when the page holds them all, or a list's length. A null (no
// permission, an error) or a page with more after it gives none: REST counts then.
func gqlCount(raw json.RawMessage, c facts.Count) (int64, bool) {
	var v *struct {
		Count    *int64 `json:"count"`
		PageInfo *struct {
			HasNextPage bool `json:"hasNextPage"`
		} `json:"pageInfo"`
		Nodes []json.RawMessage `json:"nodes"`
		List  []json.RawMessage `json:"list"`
	}
	if json.Unmarshal(raw, &v) != nil || v == nil {
		return 0, false
	}
	if c.GraphQLList != "" {
		if v.List == nil {
			return 0, false
		}
		return int64(len(v.List)), true
	}
	if c.GraphQLNodes {
		if v.PageInfo == nil || v.PageInfo.HasNextPage || v.Nodes == nil {
			return 0, false
		}
		return int64(len(v.Nodes)), true
	}
	if v.Count == nil || *v.Count < 0 || *v.Count > gitlab.MaxCount {
		return 0, false
	}
	return *v.Count, true
}

// errorsByAlias groups a partial answer's errors: alias → the failed top fields of
// its project ("" when the project itself failed).
func errorsByAlias(errs []gitlab.GraphQLError) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, e := range errs {
		alias := e.Alias()
		if alias == "" {
			continue
		}
		if out[alias] == nil {
			out[alias] = map[string]bool{}
		}
		field, _, _ := strings.Cut(e.Field(), ".")
		out[alias][field] = true
	}
	return out
}

// prefetch asks GraphQL for the facts of the projects about to be profiled, in
// batches sized to GitLab's complexity limit. A project missing from the result is
// profiled through REST alone; an error here is only the context's.
func (w *Worker) prefetch(ctx context.Context, projects []gitlab.Project) (map[int64]*prefetched, error) {
	out := map[int64]*prefetched{}
	var mu sync.Mutex
	err := w.profileEach(ctx, projects, func(_ context.Context, i int, pre *prefetched) error {
		if pre != nil {
			mu.Lock()
			out[projects[i].ID] = pre
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

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
	rest := projects
	for len(rest) > 0 && w.useGraphQL() {
		batch := w.nextBatch(rest)
		rest = rest[len(batch):]
		var carried []facts.Count
		if len(batch) == 1 {
			carried = w.carried(batch[0])
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
				w.uncarry(carried[0])
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

// uncarry drops c, a count a query carried that GitLab refused as too complex, from
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
