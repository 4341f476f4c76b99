package discovery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
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
	uncarried       sync.Map // count name → true
	refusedCarrying atomic.Int64
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
