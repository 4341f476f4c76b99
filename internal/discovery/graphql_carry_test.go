package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
)

// carryingWorker is gqlWorker with the one-per-query counts carried, as by default.
func carryingWorker(t *testing.T, f *fakeGQL, log *bytes.Buffer) *Worker {
	w := gqlWorker(t, f, APIAuto, log)
	w.gql.uncarried.Clear()
	return w
}

// uncarriedREST are the REST resources of the counts GraphQL does not give and of
// those carried one project a query, as read for a project of a batch.
func uncarriedREST() []string {
	out := restOnly()
	for _, c := range facts.Counts {
		if c.GraphQLOnePerQuery {
			out = append(out, c.Resource())
		}
	}
	return out
}

// TestGQLCount: a count comes from a connection's count, or from its nodes when the
// connection has no count and the page holds them all; anything else leaves the
// count to REST.
func TestGQLCount(t *testing.T) {
	count := facts.Count{GraphQL: "issues(first: 1)"}
	nodes := facts.Count{GraphQL: "ciVariables(first: 20)", GraphQLNodes: true}
	list := facts.Count{GraphQL: "repository", GraphQLList: "branchNames(searchPattern: \"*\", offset: 0, limit: 3)"}
	for _, tt := range []struct {
		name string
		raw  string
		c    facts.Count
		want int64
		ok   bool
	}{
		{"count", `{"count": 12}`, count, 12, true},
		{"count zero", `{"count": 0}`, count, 0, true},
		{"null connection", `null`, count, 0, false},
		{"no count", `{}`, count, 0, false},
		{"negative count", `{"count": -1}`, count, 0, false},
		{"all nodes", `{"pageInfo": {"hasNextPage": false}, "nodes": [{"id": "a"}, {"id": "b"}]}`, nodes, 2, true},
		{"no nodes", `{"pageInfo": {"hasNextPage": false}, "nodes": []}`, nodes, 0, true},
		{"more after the page", `{"pageInfo": {"hasNextPage": true}, "nodes": [{"id": "a"}]}`, nodes, 0, false},
		{"null without permission", `null`, nodes, 0, false},
		{"nodes not given", `{"pageInfo": {"hasNextPage": false}}`, nodes, 0, false},
		{"no pageInfo", `{"nodes": [{"id": "a"}]}`, nodes, 0, false},
		{"list", `{"list": ["main", "dev"]}`, list, 2, true},
		{"empty list", `{"list": []}`, list, 0, true},
		{"null list", `{"list": null}`, list, 0, false},
		{"null parent", `null`, list, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := gqlCount(json.RawMessage(tt.raw), tt.c)
			if n != tt.want || ok != tt.ok {
				t.Errorf("gqlCount(%s) = %d, %v; want %d, %v", tt.raw, n, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestGraphQLProbeWaitWatchesContext: while one query probes whether GitLab serves
// GraphQL, a page whose context ends stops waiting for its turn, without asking GitLab.
func TestGraphQLProbeWaitWatchesContext(t *testing.T) {
	w := &Worker{API: APIAuto} // no client: asking GitLab would panic
	if err := w.gql.lockProbe(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	got, err := w.prefetch(ctx, []gitlab.Project{{ID: 1, PathWithNamespace: "g/p"}})
	if !errors.Is(err, context.DeadlineExceeded) || got != nil {
		t.Fatalf("prefetch while another query probes = %v, %v; want the context's error", got, err)
	}
	w.gql.unlockProbe()
	if err := w.gql.lockProbe(context.Background()); err != nil {
		t.Errorf("the probe's turn after it was released: %v", err)
	}
}

// TestGraphQLOnePerQueryNeedsAbility: GitLab redacts environments the user may not
// read to an empty page, so GraphQL's number is taken only with readEnvironment;
// without it REST decides, and its 403 leaves the count unknown, not 0.
func TestGraphQLOnePerQueryNeedsAbility(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ability bool
		want    *int64
	}{
		{"readEnvironment", true, new(int64(7))},
		{"no readEnvironment, REST 403", false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeGQL{limit: 250, perProject: 30, noAbility: map[string]bool{"g/p1": !tt.ability},
				restDenied: map[string]bool{"environments": true}}
			w := carryingWorker(t, f, nil)
			ps := gqlProjects(3)
			pre, err := w.prefetch(context.Background(), ps)
			if err != nil {
				t.Fatal(err)
			}
			p, err := w.profile(context.Background(), ps[0], pre[ps[0].ID])
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Counts.Environments; (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Errorf("environments = %v, want %v", got, tt.want)
			}
			if asked := slices.Contains(f.restOf(ps[0].ID), "environments"); asked == tt.ability {
				t.Errorf("REST asked for environments: %v", asked)
			}
		})
	}
}

// TestGraphQLCarried: a project that needs a one-per-query count (branches,
// environments) is profiled alone with them, a project needing none in a batch
// with others; a carried project asks REST only for the counts GraphQL lacks. A
// query GitLab refuses as too complex is asked again without a carried count, which
// REST then reads for that project; after a few such refusals the count is dropped
// from every query (said once).
func TestGraphQLCarried(t *testing.T) {
	plain := func(gp gitlab.Project) gitlab.Project {
		gp.EmptyRepo, gp.BuildsAccessLevel = true, "disabled"
		return gp
	}
	for _, tt := range []struct {
		name       string
		carryCost  int
		tooComplex map[string]bool // paths refused whatever the cost
		refused    [2]int          // queries refused, at least and at most
		said       int
		restBranch map[int]bool // projects (index) whose branches REST counts
	}{
		{"room", 170, nil, [2]int{0, 0}, 0, nil},
		{"one project without room", 170, map[string]bool{"g/p3": true}, [2]int{1, 1}, 0, map[int]bool{2: true}},
		{"no room for branchNames", 250, nil, [2]int{gqlUncarryAfter, 4}, 1, map[int]bool{2: true, 3: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeGQL{limit: 250, perProject: 30, carryCost: tt.carryCost, tooComplex: tt.tooComplex}
			var log bytes.Buffer
			w := carryingWorker(t, f, &log)
			ps := gqlProjects(7)
			ps[0], ps[1], ps[6] = plain(ps[0]), plain(ps[1]), plain(ps[6])
			pre, err := w.prefetch(context.Background(), ps)
			if err != nil {
				t.Fatal(err)
			}
			// Two plain projects first, alone; then the four carriers (concurrently:
			// without room, all four may be refused before the count is dropped) and
			// the last plain one.
			refused := f.gqlCalls - len(f.batches)
			if len(f.batches) == 0 || f.batches[0] != 2 || !slices.Equal(slices.Sorted(slices.Values(f.batches)), []int{1, 1, 1, 1, 1, 2}) ||
				f.overLimit != 0 || refused < tt.refused[0] || refused > tt.refused[1] {
				t.Errorf("batches %v in %d calls (%d past the limit), want [2 1 1 1 1 1] and %v refused", f.batches, f.gqlCalls, f.overLimit, tt.refused)
			}
			for _, k := range []int{2, 3} {
				p, err := w.profile(context.Background(), ps[k], pre[ps[k].ID])
				if err != nil {
					t.Fatal(err)
				}
				want := restOnly()
				for _, c := range facts.Counts {
					n := c.Field(&p.Counts)
					switch {
					case c.GraphQL == "":
					case c.Name == "branches" && tt.restBranch[k]:
						want = append(want, c.Resource())
						if *n == nil || **n != 5 {
							t.Errorf("project %d: %s = %v, want REST's 5", k+1, c.Name, *n)
						}
					case *n == nil || **n != 7:
						t.Errorf("project %d: %s = %v, want GraphQL's 7", k+1, c.Name, *n)
					}
				}
				if got := f.restOf(ps[k].ID); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
					t.Errorf("project %d: REST requests %v, want only %v", k+1, got, want)
				}
			}
			if said := strings.Count(log.String(), "leaves no room for a count"); said != tt.said {
				t.Errorf("said %d times, want %d:\n%s", said, tt.said, log.String())
			}
		})
	}
}
