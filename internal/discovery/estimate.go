package discovery

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/work"
)

// Estimate is what a run is expected to cost, counted before it starts: the projects in
// scope from X-Total (one request per root group), the limit GitLab announces, and the
// calls per project the declared facts make (package facts).
type Estimate struct {
	Roots    int
	Projects int64 // in scope: the root groups' projects, subgroups included
	// PersonalUncounted: INCLUDE_PERSONAL_PROJECTS with ROOT_GROUPS set; the personal
	// projects are in scope but not in Projects.
	PersonalUncounted bool
	RateLimit         int   // RateLimit-Limit GitLab announced, per minute; 0 when none
	Ceiling           int   // RATE_LIMIT_RPM; 0 when none
	Requests          int64 // requests the count made
	// API is the API that will profile: APIGraphQL where GITLAB_API allows it and
	// GitLab answers it (asked once), else APIREST.
	API string
	// CallsPerProject is what profiling one project asks: every count that is not
	// listed and the tree listing, always; MaxCallsPerProject adds the steps that run
	// only where a file or a statistic says so (CI file, .gitattributes, packages, …).
	CallsPerProject, MaxCallsPerProject float64
}

// callsPerProject derives the requests of one profile from the declared facts: the
// counts read from lists and the probing steps, with the project's share of the
// listing pages. The statistics step is not counted: the listing carries them; an
// optional step (members) is counted when asked for, as always made, one page.
// Through GraphQL a profile is one query (a project alone with its carried counts,
// the most it costs) and REST for the counts GraphQL lacks; where a project has CI
// includes or many packages, REST reads them.
func callsPerProject(members, graphql bool) (always, most float64) {
	listing := 1.0 / gitlab.PerPage
	if graphql {
		n := 1
		for _, c := range facts.Counts {
			if !c.Listed() && c.GraphQL == "" {
				n++
			}
		}
		return float64(n) + listing, float64(n+facts.CIIncludeFile.MaxCalls()+facts.Packages.MaxCalls()) + listing
	}
	n := 0
	for _, c := range facts.Counts {
		if !c.Listed() {
			n++
		}
	}
	n++ // the root tree
	for _, s := range facts.Steps {
		if s.Optional() && members {
			n++
		}
	}
	always = float64(n) + listing
	for _, s := range facts.Steps {
		if s != facts.Statistics && !s.Optional() {
			n += s.MaxCalls()
		}
	}
	return always, float64(n) + listing
}

// Pace is the requests per minute the run is expected to reach: what GitLab announces,
// within RATE_LIMIT_RPM; 0 when neither is known.
func (e Estimate) Pace() int {
	switch {
	case e.RateLimit > 0 && e.Ceiling > 0:
		return min(e.RateLimit, e.Ceiling)
	case e.RateLimit > 0:
		return e.RateLimit
	}
	return e.Ceiling
}

// Calls is the expected API calls of a full run.
func (e Estimate) Calls() int64 { return int64(float64(e.Projects)*e.CallsPerProject + 0.5) }

// Duration is the expected length of a full run at Pace; 0 when no pace is known.
func (e Estimate) Duration() time.Duration {
	pace := e.Pace()
	if pace <= 0 {
		return 0
	}
	return time.Duration(float64(e.Calls()) / float64(pace) * float64(time.Minute)).Round(time.Second)
}

// ListingCalls is what a run costs at least, every project unchanged: the listing
// pages, one a PerPage projects (each group's last page and its subgroups' listing
// come on top).
func (e Estimate) ListingCalls() int64 { return (e.Projects + gitlab.PerPage - 1) / gitlab.PerPage }

// LogAttrs are the estimate's fields for a log line; the duration only when known.
func (e Estimate) LogAttrs() []any {
	attrs := []any{"projects_in_scope", e.Projects, "rate_limit_announced", e.RateLimit,
		"expected_calls_full", e.Calls(), "calls_per_project", strconv.FormatFloat(e.CallsPerProject, 'f', 2, 64)}
	if d := e.Duration(); d > 0 {
		attrs = append(attrs, "expected_duration_full", d.String())
	}
	return attrs
}

// String describes the estimate for a person (scan --dry-run).
func (e Estimate) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "projects in scope:    %d in %d root group(s)\n", e.Projects, e.Roots)
	if e.PersonalUncounted {
		b.WriteString("                      (personal projects not counted: ROOT_GROUPS is set)\n")
	}
	limit := "none announced"
	if e.RateLimit > 0 {
		limit = fmt.Sprintf("%d requests/min", e.RateLimit)
	}
	fmt.Fprintf(&b, "GitLab rate limit:    %s\n", limit)
	fmt.Fprintf(&b, "profiled through:     %s\n", e.API)
	fmt.Fprintf(&b, "full run:             %d API calls (%.2f per project; up to %.2f where every project has CI, LFS attributes and packages)\n",
		e.Calls(), e.CallsPerProject, e.MaxCallsPerProject)
	if d := e.Duration(); d > 0 {
		fmt.Fprintf(&b, "full run duration:    %s at %d requests/min\n", d, e.Pace())
	} else {
		b.WriteString("full run duration:    unknown (GitLab announces no limit and RATE_LIMIT_RPM sets none)\n")
	}
	fmt.Fprintf(&b, "incremental run:      from %d API calls (listing) plus a full profile of each changed project\n", e.ListingCalls())
	fmt.Fprintf(&b, "counting cost:        %d API calls\n", e.Requests)
	return b.String()
}

// Estimate counts the projects in scope without starting a run or profiling anything:
// it resolves the root groups as Start does and asks each for its project total.
func (s *Scheduler) Estimate(ctx context.Context) (Estimate, error) {
	ctx, calls := gitlab.WithCallCounter(ctx, 0)
	msgs, _, err := s.roots(ctx)
	if err != nil {
		return Estimate{Requests: calls()}, fmt.Errorf("estimate: %w", err)
	}
	e, err := s.estimate(ctx, msgs, true)
	e.Requests = calls()
	return e, err
}

// estimate counts the projects of the root group messages msgs. In auto mode it asks
// GitLab whether it serves GraphQL when probe, and assumes it does otherwise (every
// GitLab since 12.1), so that a run's start spends no request on it: the workers ask.
func (s *Scheduler) estimate(ctx context.Context, msgs []work.Message, probe bool) (Estimate, error) {
	e := Estimate{Roots: len(msgs), Ceiling: s.RPM, API: APIREST}
	if s.API == APIGraphQL || (s.API != APIREST && (!probe || s.answersGraphQL(ctx))) {
		e.API = APIGraphQL
	}
	e.CallsPerProject, e.MaxCallsPerProject = callsPerProject(s.IncludeMembers, e.API == APIGraphQL)
	see := func(t gitlab.Total) {
		e.Projects += t.Projects
		e.RateLimit = max(e.RateLimit, t.RateLimit)
	}
	if s.IncludePersonal && len(s.RootGroups) == 0 {
		// Every top-level group and every personal namespace: all the token sees.
		t, err := s.GitLab.ProjectTotal(ctx)
		if err != nil {
			return e, fmt.Errorf("count projects: %w", err)
		}
		see(t)
		return e, nil
	}
	e.PersonalUncounted = s.IncludePersonal
	for _, m := range msgs {
		if m.Kind != work.KindGroup {
			continue
		}
		group := m.GroupPath
		if m.GroupID != 0 {
			group = strconv.FormatInt(m.GroupID, 10)
		}
		t, err := s.GitLab.GroupProjectTotal(ctx, group)
		if err != nil {
			return e, fmt.Errorf("count projects of group %s: %w", group, err)
		}
		see(t)
	}
	return e, nil
}

// answersGraphQL asks GitLab the smallest GraphQL query there is, as GITLAB_API=auto
// will: a GitLab that answers it is profiled through GraphQL.
func (s *Scheduler) answersGraphQL(ctx context.Context) bool {
	var a struct {
		QueryComplexity *struct {
			Limit int `json:"limit"`
		} `json:"queryComplexity"`
	}
	_, err := s.GitLab.GraphQL(ctx, "query estimate { queryComplexity { limit } }", nil, &a)
	return err == nil && a.QueryComplexity != nil
}
