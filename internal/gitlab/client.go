// Package gitlab is the discovery agent's GitLab REST client. It is built on
// gitlab.com/gitlab-org/api/client-go (request building, authentication, error decoding)
// with that library's own limiter and retries turned off: every request goes through our
// transport, which waits on a shared Limiter, feeds rate-limit headers back to it and
// retries transient failures with bounded, jittered backoff.
//
// The client assumes the server may be hostile or broken. The token goes to the
// configured origin only (no redirect elsewhere is followed); every error it returns is
// redacted of the token and cut to MaxErrorLen; bodies are read through per-class caps
// (MaxBodySize, MaxFileSize, MaxErrorBodySize); page walks end (ErrPageLoop); pauses
// GitLab asks for last at most MaxPause; a panic in the library becomes the request's
// error; and one malformed project record marks that project (Project.Validate), not
// its page.
package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	gogitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/facts"
)

// Classified failures; an *APIError matches the first three with errors.Is.
var (
	ErrUnauthorized = errors.New("GitLab rejected the token (401)")
	ErrForbidden    = errors.New("forbidden (403)")
	ErrNotFound     = errors.New("not found (404)")
	ErrMalformed    = errors.New("malformed JSON")
	// ErrRedirect is a redirect to another scheme, host or port: not followed, so
	// that the token never leaves the configured origin.
	ErrRedirect = errors.New("redirect to another origin refused")
	// ErrPanic is a panic in the request's handling (the client library), caught.
	ErrPanic = errors.New("GitLab client panicked")
)

// MaxPause is the longest pause a GitLab answer can cause (Retry-After,
// RateLimit-Reset); budget.MaxPause, which every limiter applies as well.
const MaxPause = budget.MaxPause

// IsTimeout reports whether err is a request that timed out (after its retries).
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// APIError is a final non-2xx answer (after retries).
type APIError struct {
	Endpoint string // endpoint class, e.g. "projects/:id/hooks"
	Status   int
	Message  string // GitLab's message, redacted of the token and cut to MaxErrorLen
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("GET %s: %d %s", e.Endpoint, e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("GET %s: %d %s", e.Endpoint, e.Status, e.Message)
}

func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	}
	return false
}

// Status returns the HTTP status carried by err, 0 when there is none.
func Status(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// Options configure a Client. Zero values get the defaults noted.
type Options struct {
	Limiter Limiter // required
	// EndpointLimiters pace single endpoint classes (e.g. "groups/:id/projects") in
	// addition to Limiter, for GitLab's per-endpoint limits.
	EndpointLimiters map[string]Limiter
	Observer         Observer      // optional
	Concurrency      int           // in-flight requests; default 8
	Timeout          time.Duration // per attempt; default 30s
	MaxRetries       int           // default 5; negative = none
	BaseBackoff      time.Duration // default 500ms
	MaxBackoff       time.Duration // default 30s
	// Transport is the underlying HTTP transport; default a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Secrets, when set, returns further tokens to redact from every error the client
	// returns: those a Transport that swaps the token (a rotation) sends now.
	Secrets func() []string
}

// Client talks to one GitLab instance with one token.
type Client struct {
	gl         *gogitlab.Client
	t          *transport
	maxRetries int
	redact     redactor
}

// New returns a client for the GitLab at baseURL (e.g. https://gitlab.example.com).
func New(baseURL, token string, opts Options) (*Client, error) {
	if opts.Limiter == nil {
		return nil, errors.New("gitlab: a Limiter is required")
	}
	if token == "" {
		return nil, errors.New("gitlab: no token (set GITLAB_TOKEN)")
	}
	u, err := url.Parse(strings.TrimSpace(baseURL))
	switch {
	case err == nil && u.User != nil, strings.Contains(authority(baseURL), "@"):
		// Never echoed: it would carry the credentials.
		return nil, errors.New("gitlab: the GitLab URL must not contain credentials (user:token@host); the token goes in GITLAB_TOKEN")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("gitlab: invalid GitLab URL %q: want http(s)://host", baseURL)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 5
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Transport == nil {
		dt := http.DefaultTransport.(*http.Transport).Clone()
		dt.MaxIdleConnsPerHost = opts.Concurrency
		opts.Transport = dt
	}
	t := &transport{
		origin:      originOf(u),
		next:        opts.Transport,
		limiter:     opts.Limiter,
		perEndpoint: opts.EndpointLimiters,
		observer:    opts.Observer,
		sem:         make(chan struct{}, opts.Concurrency),
		maxRetries:  max(opts.MaxRetries, 0),
		baseBackoff: opts.BaseBackoff,
		maxBackoff:  opts.MaxBackoff,
		timeout:     opts.Timeout,
	}
	gl, err := gogitlab.NewClient(token,
		gogitlab.WithBaseURL(strings.TrimRight(u.String(), "/")+"/api/v4"),
		gogitlab.WithHTTPClient(&http.Client{Transport: t, CheckRedirect: t.checkRedirect}),
		gogitlab.WithoutRetries(),
		gogitlab.WithCustomLimiter(noLimit{}),
		gogitlab.WithUserAgent("gl2gh-discovery-agent"),
	)
	if err != nil {
		return nil, fmt.Errorf("gitlab: %w", err)
	}
	return &Client{gl: gl, t: t, maxRetries: t.maxRetries, redact: newRedactor(token, opts.Secrets)}, nil
}

// authority is the user-info-and-host part of a URL string, parsed or not.
func authority(s string) string {
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	return s
}

type noLimit struct{}

func (noLimit) Wait(context.Context) error { return nil }

// Settings are what a client was built with, as the transport uses them.
type Settings struct {
	Concurrency      int
	Timeout          time.Duration
	EndpointLimiters map[string]Limiter
}

// Settings returns the client's effective settings.
func (c *Client) Settings() Settings {
	return Settings{Concurrency: cap(c.t.sem), Timeout: c.t.timeout, EndpointLimiters: c.t.perEndpoint}
}

// Calls returns how many HTTP requests the client has sent, retries included.
func (c *Client) Calls() int64 { return c.t.calls.Load() }

// Group is the part of a GitLab group the scanner uses.
type Group struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	FullPath string `json:"full_path"`
	ParentID int64  `json:"parent_id"`
}

// CurrentUser checks the token: it returns the username or ErrUnauthorized.
func (c *Client) CurrentUser(ctx context.Context) (string, error) {
	var u struct {
		Username string `json:"username"`
	}
	if _, err := c.get(ctx, "user", nil, &u); err != nil {
		return "", err
	}
	return u.Username, nil
}

// Group returns a group by numeric ID or full path.
func (c *Client) Group(ctx context.Context, idOrPath string) (Group, error) {
	var g Group
	q := url.Values{"with_projects": {"false"}}
	_, err := c.get(ctx, "groups/"+gogitlab.PathEscape(idOrPath), q, &g)
	return g, err
}

// TopLevelGroups lists every top-level group the token can see.
func (c *Client) TopLevelGroups(ctx context.Context) ([]Group, error) {
	q := url.Values{"top_level_only": {"true"}, "order_by": {"id"}, "sort": {"asc"}}
	return listAll[Group](ctx, c, "groups", q, 0)
}

// Subgroups lists a group's direct subgroups.
func (c *Client) Subgroups(ctx context.Context, groupID int64) ([]Group, error) {
	q := url.Values{"order_by": {"id"}, "sort": {"asc"}}
	return listAll[Group](ctx, c, "groups/"+strconv.FormatInt(groupID, 10)+"/subgroups", q, 0)
}

// PerPage is the page size the client asks for (GitLab's maximum).
const PerPage = 100

// listAll walks every offset page of a list, up to maxPages (0: MaxPages).
func listAll[T any](ctx context.Context, c *Client, path string, q url.Values, maxPages int) ([]T, error) {
	if maxPages <= 0 {
		maxPages = MaxPages
	}
	var all []T
	q.Set("per_page", strconv.Itoa(PerPage))
	for page := 1; page != 0 && page <= maxPages; {
		q.Set("page", strconv.Itoa(page))
		var items []T
		resp, err := c.get(ctx, path, q, &items)
		if err != nil {
			return all, err
		}
		all = append(all, items...)
		if page, err = nextPage(EndpointClass("/api/v4/"+path), page, resp.NextPage); err != nil {
			return all, err
		}
	}
	return all, nil
}

// GroupProjects returns one page of a group's direct projects, in ID order, with
// statistics when GitLab includes them, and the next page (0 at the end). A record that
// did not decode is in the page, as far as it could be read: see Project.Validate. A
// next page not after this one is an error wrapping ErrPageLoop.
func (c *Client) GroupProjects(ctx context.Context, groupID int64, page int) ([]Project, int, error) {
	q := url.Values{
		"per_page": {strconv.Itoa(PerPage)}, "page": {strconv.Itoa(max(page, 1))},
		"order_by": {"id"}, "sort": {"asc"}, "statistics": {"true"},
		"include_subgroups": {"false"}, "with_shared": {"false"},
	}
	var ps projectPage
	resp, err := c.get(ctx, "groups/"+strconv.FormatInt(groupID, 10)+"/projects", q, &ps)
	if err != nil {
		return nil, 0, err
	}
	next, err := nextPage("groups/:id/projects", max(page, 1), resp.NextPage)
	if err != nil {
		return nil, 0, err
	}
	return ps, next, nil
}

// Projects returns one keyset page of every project the token sees, in ID order after
// the given ID, with statistics when GitLab includes them, and the ID to continue after
// (0 at the end). Keyset pagination has no offset cap, so it walks 100k+ projects.
// Records are as for GroupProjects; a cursor that does not move wraps ErrPageLoop.
func (c *Client) Projects(ctx context.Context, after int64) ([]Project, int64, error) {
	q := url.Values{
		"pagination": {"keyset"}, "order_by": {"id"}, "sort": {"asc"},
		"per_page": {strconv.Itoa(PerPage)}, "statistics": {"true"},
	}
	if after > 0 {
		q.Set("id_after", strconv.FormatInt(after, 10))
	}
	var ps projectPage
	resp, err := c.get(ctx, "projects", q, &ps)
	if err != nil {
		return nil, 0, err
	}
	if len(ps) == 0 || (resp.NextLink == "" && len(ps) < PerPage) {
		return ps, 0, nil
	}
	next, err := nextCursor("projects", after, highestID(ps))
	if err != nil {
		return nil, 0, err
	}
	return ps, next, nil
}

// Project returns one project with statistics. A record that fails Project.Validate
// is returned with that error (wrapping ErrMalformed): its numbers are not facts.
func (c *Client) Project(ctx context.Context, id int64) (Project, error) {
	var p projectRecord
	if _, err := c.get(ctx, "projects/"+strconv.FormatInt(id, 10), url.Values{"statistics": {"true"}}, &p); err != nil {
		return Project{}, err
	}
	gp := Project(p)
	if err := gp.Validate(); err != nil {
		return gp, c.clean(fmt.Errorf("GET projects/:id: %w", err))
	}
	return gp, nil
}

// projectRecord decodes one project as a list element is decoded: a field of the
// wrong type marks the record instead of failing (and retrying) the request.
type projectRecord Project

func (p *projectRecord) decodeJSON(data []byte, r redactor) error {
	if err := json.Unmarshal(data, new(json.RawMessage)); err != nil {
		return err // not JSON at all: perhaps truncated, retried
	}
	*p = projectRecord(decodeProject(data, r))
	return nil
}

// TotalCap is where GitLab stops counting: above it X-Total is omitted.
const TotalCap = facts.TotalCap

// Count returns how many items a project list resource holds, from X-Total of a
// one-item page. Above 10,000 GitLab omits X-Total: the count is then the lower bound
// 10000 and lowerBound is true. resource is e.g. "repository/branches".
func (c *Client) Count(ctx context.Context, projectID int64, resource string, q url.Values) (n int64, lowerBound bool, err error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("per_page", "1")
	var items []json.RawMessage
	resp, err := c.get(ctx, "projects/"+strconv.FormatInt(projectID, 10)+"/"+resource, q, &items)
	if err != nil {
		return 0, false, err
	}
	if s := resp.Header.Get("X-Total"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > MaxCount {
			return 0, false, c.clean(fmt.Errorf("count %s: %w: bad X-Total %q", resource, ErrMalformed, s))
		}
		return n, false, nil
	}
	if resp.NextPage != 0 {
		return TotalCap, true, nil
	}
	return int64(len(items)), false, nil
}

// TreeEntry is one entry of a repository tree.
type TreeEntry struct {
	Name string `json:"name"`
	Type string `json:"type"` // blob or tree
	Path string `json:"path"`
}

// maxTreePages bounds a tree listing: the scanner only looks for a few well-known names.
const maxTreePages = 10

// Tree lists a directory of the repository at ref ("" = default branch).
func (c *Client) Tree(ctx context.Context, projectID int64, path, ref string) ([]TreeEntry, error) {
	q := url.Values{"per_page": {strconv.Itoa(PerPage)}}
	if path != "" {
		q.Set("path", path)
	}
	if ref != "" {
		q.Set("ref", ref)
	}
	var all []TreeEntry
	for page := 1; page != 0 && page <= maxTreePages; {
		q.Set("page", strconv.Itoa(page))
		var items []TreeEntry
		resp, err := c.get(ctx, "projects/"+strconv.FormatInt(projectID, 10)+"/repository/tree", q, &items)
		if err != nil {
			return all, err
		}
		all = append(all, items...)
		if page, err = nextPage("projects/:id/repository/tree", page, resp.NextPage); err != nil {
			return all, err
		}
	}
	return all, nil
}

// RawFile returns a repository file's content at ref ("" = default branch), truncated
// to MaxFileSize; no more than one byte past it is read.
func (c *Client) RawFile(ctx context.Context, projectID int64, path, ref string) ([]byte, error) {
	q := url.Values{}
	if ref != "" {
		q.Set("ref", ref)
	}
	var b []byte
	_, err := c.get(ctx, "projects/"+strconv.FormatInt(projectID, 10)+"/repository/files/"+gogitlab.PathEscape(path)+"/raw", q, &b)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		b = b[:MaxFileSize]
	}
	return b, nil
}

// maxPackagePages bounds the package listing: types repeat, a few pages tell them.
const maxPackagePages = 5

// PackageTypes returns the sorted, unique package types a project publishes.
func (c *Client) PackageTypes(ctx context.Context, projectID int64) ([]string, error) {
	q := url.Values{"per_page": {strconv.Itoa(PerPage)}}
	seen := map[string]bool{}
	for page := 1; page != 0 && page <= maxPackagePages; {
		q.Set("page", strconv.Itoa(page))
		var items []struct {
			PackageType string `json:"package_type"`
		}
		resp, err := c.get(ctx, "projects/"+strconv.FormatInt(projectID, 10)+"/packages", q, &items)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if it.PackageType != "" {
				seen[it.PackageType] = true
			}
		}
		if page, err = nextPage("projects/:id/packages", page, resp.NextPage); err != nil {
			return nil, err
		}
	}
	types := make([]string, 0, len(seen))
	for t := range seen {
		types = append(types, t)
	}
	slices.Sort(types)
	return types, nil
}
