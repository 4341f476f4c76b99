// Package gitlabsim is a GitLab simulator: it serves a subset of the GitLab REST API v4
// over net/http for a deterministic synthetic instance built from a seed and a size,
// with GitLab's pagination and rate-limit headers (GitLab.com's per-endpoint limits
// on request), faults on demand, request accounting, changes to a share of the
// projects for checking incremental scans, and the instance's ground truth for
// comparing a scan against. The control endpoints are under /-/sim/ (stats, truth,
// faults, change; see Server.ServeHTTP).
//
// Only compact per-project metadata is kept in memory; lists (merge requests, issues,
// pipelines, ...), files and CI configurations are generated on demand from the seed,
// so an instance of 100,000 projects fits in a few tens of megabytes.
package gitlabsim

import (
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a simulated instance.
type Options struct {
	Seed     int64
	Groups   int // top-level and subgroups in total, at least 1
	Projects int // projects in groups, in total

	// Users is the number of user namespaces (usernames such as "alice.smith", ids
	// from 1,000,000) and PersonalProjects the projects spread over them, with ids
	// after every group project's; they are in /projects and /users/:id/projects,
	// never in a group's listing. PersonalProjects needs Users > 0.
	Users            int
	PersonalProjects int

	Token        string        // accepted token; default "sim-token"
	RateLimitRPM int           // requests per minute per token; 0 = unlimited (no rate-limit headers)
	RateWindow   time.Duration // fixed window, default 60s; the limit per window is RPM*window/60s, at least 1
	Faults       Faults

	// EndpointLimits give endpoint classes limits of their own, such as
	// GitLabComEndpointLimits. By default a limited class's answers announce its
	// own limit (RateLimit-Name, RateLimit-Limit per minute, Observed, Remaining,
	// Reset of its window) instead of the authenticated-API one.
	EndpointLimits []EndpointLimit
	// QuietEndpointLimits answers as GitLab.com documents for its Projects, Groups
	// and Users API limits: a limited class's answers carry the authenticated-API
	// headers only, and its 429s no rate-limit header, just Retry-After.
	QuietEndpointLimits bool
	// HideRateLimitHeaders sends no RateLimit-* header on any answer while every
	// limit still throttles, like a GitLab behind a proxy that strips them. 429s
	// keep Retry-After unless Faults.NoHeaders429 drops it too.
	HideRateLimitHeaders bool

	// ExternalURL is the instance's external URL used in web_url fields (not in
	// pagination links, which use the request's host). Default "https://gitlab.example.com".
	ExternalURL string

	// NotAdmin makes the token a regular user's: GET /user says is_admin false and
	// GET /application/statistics answers 403.
	NotAdmin bool

	// Now is the instance's "now": every generated timestamp moves by Now minus the
	// default (2025-06-01), so that activity ages relative to Now are as generated.
	// Zero keeps the default, whose output the recorded digests pin.
	Now time.Time
	// GraphQLComplexity is the GraphQL query complexity limit; 0 means
	// DefaultGraphQLComplexity, GitLab's for an authenticated user.
	GraphQLComplexity int
	// NoGraphQL serves no /api/graphql (404), like a GitLab older than 12.1.
	NoGraphQL bool
}

// Faults are injected on demand. Request-level faults are decided from
// hash(seed, method, path+query, n), n being how often this exact request was seen
// before, so runs replay exactly and a retry can succeed; project-level faults
// (forbidden, deleted) from hash(seed, project id).
type Faults struct {
	Latency, Jitter time.Duration // added to every API answer: Latency + [0, Jitter)
	ErrorRate       float64       // fraction answered 500, 502 or 503
	TimeoutRate     float64       // fraction that hang for Hang, then answer 504
	Hang            time.Duration // default 30s; a cancelled request stops hanging
	MalformedRate   float64       // fraction of 200 JSON bodies truncated or garbled
	ForbiddenRate   float64       // fraction of projects answering 403 on ForbiddenEndpoints
	// ForbiddenEndpoints are endpoint classes such as "projects/:id/hooks"; "*" means
	// every projects/:id endpoint, the detail included.
	ForbiddenEndpoints []string
	DeletedRate        float64 // fraction of projects listed but answering 404 on projects/:id and below
	Burst429Rate       float64 // fraction answered 429 whatever the counter says (Retry-After 1)
	NoHeaders429       bool    // 429s carry neither rate-limit headers nor Retry-After
}

// Validate reports a rate outside [0, 1], a negative duration or an unknown endpoint class.
func (f Faults) Validate() error {
	var errs []error
	rates := []struct {
		name string
		r    float64
	}{
		{"error_rate", f.ErrorRate}, {"timeout_rate", f.TimeoutRate}, {"malformed_rate", f.MalformedRate},
		{"forbidden_rate", f.ForbiddenRate}, {"deleted_rate", f.DeletedRate}, {"burst429_rate", f.Burst429Rate},
	}
	for _, x := range rates {
		if x.r < 0 || x.r > 1 || math.IsNaN(x.r) {
			errs = append(errs, fmt.Errorf("%s %v is not in [0, 1]", x.name, x.r))
		}
	}
	if f.Latency < 0 || f.Jitter < 0 || f.Hang < 0 {
		errs = append(errs, errors.New("latency, jitter and hang must not be negative"))
	}
	for _, e := range f.ForbiddenEndpoints {
		if c, ok := classByName(e); e != "*" && (!ok || !c.projectScoped()) {
			errs = append(errs, fmt.Errorf("forbidden endpoint %q is not a projects/:id endpoint class", e))
		}
	}
	return errors.Join(errs...)
}

// faultState is Faults prepared for the hot path.
type faultState struct {
	Faults
	forbidden  [nClasses]bool
	perRequest bool // some fault needs the per-request draw
}

func newFaultState(f Faults) *faultState {
	clamp := func(r *float64) { *r = min(max(*r, 0), 1) }
	for _, r := range []*float64{&f.ErrorRate, &f.TimeoutRate, &f.MalformedRate, &f.ForbiddenRate, &f.DeletedRate, &f.Burst429Rate} {
		clamp(r)
	}
	if f.Hang <= 0 {
		f.Hang = 30 * time.Second
	}
	f.Latency, f.Jitter = max(f.Latency, 0), max(f.Jitter, 0)
	f.ForbiddenEndpoints = append([]string(nil), f.ForbiddenEndpoints...)
	fs := &faultState{Faults: f}
	for _, e := range f.ForbiddenEndpoints {
		if e == "*" {
			for c := clsProject; c < nClasses; c++ {
				fs.forbidden[c] = true
			}
		} else if c, ok := classByName(e); ok && c.projectScoped() {
			fs.forbidden[c] = true
		}
	}
	fs.perRequest = f.ErrorRate > 0 || f.TimeoutRate > 0 || f.MalformedRate > 0 || f.Burst429Rate > 0 || f.Jitter > 0
	return fs
}

// Server serves the simulated instance; it is an http.Handler safe for concurrent use.
type Server struct {
	in     *instance
	seed   int64
	token  string
	lim    *limiter // the authenticated-API throttle; nil when unlimited
	faults atomic.Pointer[faultState]
	seen   seenTable
	stats  counters

	classLim         [nClasses]*limiter // endpoint classes' own limits
	quietClassLimits bool
	hideHeaders      bool
	notAdmin         bool
	gql              *graphQLServer // nil when GraphQL is off

	// mu guards the projects' changing fields and the project indexes (allProjects,
	// the groups' and users' lists): API answers and the truth read under RLock,
	// Change, Rename and Delete write under Lock.
	mu      sync.RWMutex
	changes int // Change calls so far

	allProjects []int32 // the projects not deleted (Delete), ascending index and id
	allGroups   []int32

	done      chan struct{}
	closeOnce sync.Once
}

// New builds the instance described by opts.
func New(opts Options) (*Server, error) {
	if opts.Token == "" {
		opts.Token = "sim-token"
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = time.Minute
	}
	if opts.ExternalURL == "" {
		opts.ExternalURL = "https://gitlab.example.com"
	}
	if opts.RateLimitRPM < 0 {
		return nil, fmt.Errorf("gitlabsim: negative rate limit %d", opts.RateLimitRPM)
	}
	if u, err := url.Parse(opts.ExternalURL); err != nil || u.Host == "" {
		return nil, fmt.Errorf("gitlabsim: external URL %q is not an absolute URL", opts.ExternalURL)
	}
	if err := validateEndpointLimits(opts.EndpointLimits); err != nil {
		return nil, fmt.Errorf("gitlabsim: %w", err)
	}
	if err := opts.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("gitlabsim: faults: %w", err)
	}
	if opts.GraphQLComplexity < 0 {
		return nil, fmt.Errorf("gitlabsim: negative GraphQL complexity limit %d", opts.GraphQLComplexity)
	}
	in, err := build(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{
		in: in, seed: opts.Seed, token: opts.Token, done: make(chan struct{}),
		quietClassLimits: opts.QuietEndpointLimits, hideHeaders: opts.HideRateLimitHeaders,
		notAdmin: opts.NotAdmin,
	}
	if opts.RateLimitRPM > 0 {
		s.lim = newLimiter(opts.RateLimitRPM, opts.RateWindow)
	}
	for _, l := range opts.EndpointLimits {
		c, _ := classByName(l.Class)
		s.classLim[c] = newEndpointLimiter(l)
	}
	s.faults.Store(newFaultState(opts.Faults))
	if !opts.NoGraphQL {
		if s.gql, err = newGraphQLServer(s, cmp.Or(opts.GraphQLComplexity, DefaultGraphQLComplexity)); err != nil {
			return nil, fmt.Errorf("gitlabsim: graphql: %w", err)
		}
	}
	s.allProjects = make([]int32, len(in.projects))
	for i := range s.allProjects {
		s.allProjects[i] = int32(i)
	}
	s.allGroups = make([]int32, len(in.groups))
	for i := range s.allGroups {
		s.allGroups[i] = int32(i)
	}
	s.stats.reset()
	return s, nil
}

// SetFaults replaces the faults at run time (rates are clamped to [0, 1], unknown
// endpoint classes ignored; use Faults.Validate to reject them instead). The
// per-request replay counters restart, so a fault sequence replays from here.
func (s *Server) SetFaults(f Faults) {
	s.faults.Store(newFaultState(f))
	s.seen.reset()
}

// CurrentFaults returns the faults in force.
func (s *Server) CurrentFaults() Faults {
	f := s.faults.Load().Faults
	f.ForbiddenEndpoints = append([]string(nil), f.ForbiddenEndpoints...)
	return f
}

// Close releases requests hanging in a timeout fault; the server still answers
// afterwards, without hanging.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.done) }) }

// ServeHTTP serves the API under /api/v4 and the simulator's own endpoints under
// /-/sim/, which need no token and are not counted in the stats:
//
//	GET  /-/sim/stats        Stats
//	POST /-/sim/stats/reset  ResetStats
//	GET  /-/sim/truth        Truth, streamed
//	GET  /-/sim/faults       CurrentFaults; PUT with a Faults body: SetFaults
//	POST /-/sim/change       {"share":0.1,"seed":7}: Change; answers its ChangeResult;
//	                         "rename":0.01 also renames that share (Rename, "renamed"),
//	                         "delete":0.01 deletes that share first (Delete, "deleted")
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	if strings.HasPrefix(p, "/-/sim/") {
		s.serveControl(w, r, strings.TrimPrefix(p, "/-/sim/"))
		return
	}
	rt := parseRoute(p)
	c := &call{s: s, w: w, r: r, route: rt}
	s.serveAPI(c)
	s.stats.record(rt.cls, c.status, c.throttled, c.fault, time.Now())
	if c.op != "" {
		s.stats.recordOperation(c.op)
	}
}

func (s *Server) authorized(r *http.Request) bool {
	tok := r.Header.Get("Private-Token")
	if tok == "" {
		if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			tok = strings.TrimSpace(a)
		}
	}
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) == 1
}

func (s *Server) serveAPI(c *call) {
	isGQL := c.route.cls == clsGraphQL
	if c.route.cls == clsOther || isGQL && s.gql == nil {
		c.error(http.StatusNotFound, "error", "404 Not Found")
		return
	}
	var gq gqlRequest
	var gqBody []byte
	var gqErr error
	if isGQL {
		gq, gqBody, gqErr = readGraphQL(c.r)
		c.op = operationName(gq)
	}
	if !s.authorized(c.r) {
		if isGQL {
			c.gqlError(http.StatusUnauthorized, "Invalid token")
			return
		}
		c.error(http.StatusUnauthorized, "message", "401 Unauthorized")
		return
	}
	fs := s.faults.Load()
	c.fs = fs
	if !s.admit(c) {
		return
	}
	if c.r.Method != http.MethodGet && c.r.Method != http.MethodHead && !(isGQL && c.r.Method == http.MethodPost) {
		c.error(http.StatusMethodNotAllowed, "message", "405 Method Not Allowed")
		return
	}
	if fs.perRequest {
		// A GraphQL request is told apart by its body: a retry of the same query
		// draws its next fault, as a retried GET does.
		id := c.r.Method + " " + c.r.URL.RequestURI()
		if isGQL {
			id += "\n" + string(gqBody)
		}
		c.key = hashString(uint64(s.seed), id)
		c.n = s.seen.next(c.key)
	}
	if d := fs.Latency + time.Duration(float64(fs.Jitter)*c.draw(saltFaultLatency)); d > 0 {
		if !c.wait(d) {
			return
		}
	}
	if fs.Burst429Rate > 0 && c.draw(saltFault429) < fs.Burst429Rate {
		c.fault = true
		c.throttle(time.Second, time.Now().Add(time.Second))
		return
	}
	if fs.ErrorRate > 0 && c.draw(saltFaultError) < fs.ErrorRate {
		c.fault = true
		switch hash2(c.key, uint64(c.n)) % 3 {
		case 0:
			c.error(http.StatusInternalServerError, "message", "500 Internal Server Error")
		case 1:
			c.html(http.StatusBadGateway, "502 Bad Gateway")
		default:
			c.html(http.StatusServiceUnavailable, "503 Service Unavailable")
		}
		return
	}
	if fs.TimeoutRate > 0 && c.draw(saltFaultTimeout) < fs.TimeoutRate {
		c.fault = true
		if c.wait(fs.Hang) {
			c.html(http.StatusGatewayTimeout, "504 Gateway Time-out")
		}
		return
	}
	c.malformed = fs.MalformedRate > 0 && c.draw(saltFaultMalformed) < fs.MalformedRate
	s.mu.RLock()
	defer s.mu.RUnlock()
	if isGQL {
		s.serveGraphQL(c, gq, gqErr)
		return
	}
	s.dispatch(c)
}

// wait sleeps d unless the request is cancelled or the server closed; false when the
// client went away (status 499, as nginx logs it).
func (c *call) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.s.done:
		return true
	case <-c.r.Context().Done():
		c.status = 499
		return false
	}
}

// draw is the request's deterministic uniform variate for one kind of fault.
func (c *call) draw(salt uint64) float64 {
	return unit(hash3(hash2(uint64(c.s.seed), salt), c.key, uint64(c.n)))
}

// projectForbidden and projectDeleted are the project-level faults.
func (s *Server) projectForbidden(fs *faultState, id int64, cls class) bool {
	return fs.ForbiddenRate > 0 && fs.forbidden[cls] && unit(hash3(uint64(s.seed), uint64(id), saltForbidden)) < fs.ForbiddenRate
}

func (s *Server) projectDeleted(fs *faultState, id int64) bool {
	return fs.DeletedRate > 0 && unit(hash3(uint64(s.seed), uint64(id), saltDeleted)) < fs.DeletedRate
}

// seenTable counts how often each request key was seen, in a fixed table of
// counters indexed by the key's hash: memory stays bounded (16 MiB, touched lazily)
// however many distinct requests a 100k-project scan makes. Keys sharing a slot
// share a counter; that only shifts which draw a request gets, and a replay of the
// same request sequence still gets the same draws.
type seenTable struct {
	slots atomic.Pointer[[seenSlots]atomic.Uint32]
}

const seenSlots = 1 << 22

func (t *seenTable) next(key uint64) uint32 {
	tab := t.slots.Load()
	if tab == nil {
		t.slots.CompareAndSwap(nil, new([seenSlots]atomic.Uint32))
		tab = t.slots.Load()
	}
	return tab[key&(seenSlots-1)].Add(1) - 1
}

// reset drops the counters; the next fault draw starts a fresh table.
func (t *seenTable) reset() { t.slots.Store(nil) }
