package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	gogitlab "gitlab.com/gitlab-org/api/client-go"
)

// GraphQLClass is the endpoint class of GitLab's GraphQL API (POST /api/graphql): one
// request is one call against the same rate limit as a REST request.
const GraphQLClass = "graphql"

// ErrGraphQLUnavailable is an instance that does not serve /api/graphql (404, 405):
// an old or locked-down GitLab, or a proxy that passes only /api/v4.
var ErrGraphQLUnavailable = errors.New("GitLab's GraphQL API is not available")

// ErrComplexity is a query GitLab refused as too complex ("Query has complexity of
// 300, which exceeds max complexity of 250"); see ComplexityOf.
var ErrComplexity = errors.New("GraphQL query too complex")

// GraphQLError is one entry of a GraphQL answer's errors.
type GraphQLError struct {
	Message string `json:"message"`
	// Path is where in the answer the error belongs, e.g. ["p3", "mergeRequests"];
	// its first element is the top-level field or alias.
	Path []any `json:"path"`
}

// Alias is the top-level field or alias the error belongs to, "" for a query-wide one.
func (e GraphQLError) Alias() string {
	if len(e.Path) == 0 {
		return ""
	}
	s, _ := e.Path[0].(string)
	return s
}

// Field is the error's path below its alias joined with dots ("" for the alias itself).
func (e GraphQLError) Field() string {
	var parts []string
	for _, p := range e.Path[min(1, len(e.Path)):] {
		if s, ok := p.(string); ok {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ".")
}

// QueryError is a GraphQL answer with errors and no data: the query as a whole failed.
type QueryError struct {
	Errors       []GraphQLError
	msg          string // redacted, cut
	score, limit int    // of a refusal for complexity, read before redaction
}

func (e *QueryError) Error() string { return e.msg }

// Is matches ErrComplexity when GitLab refused the query's complexity.
func (e *QueryError) Is(target error) bool {
	if target != ErrComplexity {
		return false
	}
	_, _, ok := e.Complexity()
	return ok
}

var complexityRE = regexp.MustCompile(`complexity of (\d+), which exceeds max complexity of (\d+)`)

// Complexity returns the score and limit GitLab named when it refused the query.
func (e *QueryError) Complexity() (score, limit int, ok bool) {
	return e.score, e.limit, e.limit > 0
}

// complexityIn reads the score and limit of a refusal for complexity from GitLab's
// error messages.
func complexityIn(errs []GraphQLError) (score, limit int) {
	for _, ge := range errs {
		if m := complexityRE.FindStringSubmatch(ge.Message); m != nil {
			s, _ := strconv.Atoi(m[1])
			l, _ := strconv.Atoi(m[2])
			return s, l
		}
	}
	return 0, 0
}

// ComplexityOf returns the score and limit of a query GitLab refused as too complex.
func ComplexityOf(err error) (score, limit int, ok bool) {
	var qe *QueryError
	if errors.As(err, &qe) {
		return qe.Complexity()
	}
	return 0, 0, false
}

// GraphQL sends one query (retried by the transport like any request) and decodes the
// answer's data into data. It returns the answer's errors when there is data too (a
// partial answer: some aliases null); an answer with errors and no data is a
// *QueryError; a 404 or 405 wraps ErrGraphQLUnavailable. A body that is not JSON is
// retried, as for REST. Every error is redacted of the token.
func (c *Client) GraphQL(ctx context.Context, query string, vars map[string]any, data any) ([]GraphQLError, error) {
	var errs []GraphQLError
	err := c.retryMalformed(ctx, "POST "+GraphQLClass, func() (err error) {
		errs, err = c.tryGraphQL(ctx, query, vars, data)
		return err
	})
	return errs, err
}

type graphQLAnswer struct {
	Data   json.RawMessage `json:"data"`
	Errors []GraphQLError  `json:"errors"`
}

func (c *Client) tryGraphQL(ctx context.Context, query string, vars map[string]any, data any) (errs []GraphQLError, err error) {
	defer func() {
		if r := recover(); r != nil {
			errs, err = nil, c.clean(fmt.Errorf("POST %s: %w: %v", GraphQLClass, ErrPanic, r))
		}
	}()
	body := gogitlab.GraphQLQuery{Query: query, Variables: vars}
	req, err := c.gl.NewRequest(http.MethodPost, "", body, []gogitlab.RequestOptionFunc{gogitlab.WithContext(ctx)})
	if err != nil {
		return nil, c.clean(fmt.Errorf("build request %s: %w", GraphQLClass, err))
	}
	// Beside /api/v4 under the same root, so a GitLab under a relative URL keeps it.
	req.URL.Path = strings.TrimSuffix(strings.TrimSuffix(req.URL.Path, "/"), "/api/v4") + "/api/graphql"
	var buf bytes.Buffer
	_, err = c.gl.Do(req, &buf)
	if err != nil {
		var er *gogitlab.ErrorResponse
		status := 0
		msg := ""
		if errors.As(err, &er) && er.Response != nil {
			status, msg = er.Response.StatusCode, c.redact.clean(er.Message)
		} else if errors.Is(err, gogitlab.ErrNotFound) {
			status = http.StatusNotFound
		}
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return nil, &unavailableError{&APIError{Endpoint: GraphQLClass, Status: status, Message: msg}}
		}
		if status != 0 {
			return nil, &APIError{Endpoint: GraphQLClass, Status: status, Message: msg}
		}
		var ue *url.Error
		if errors.As(err, &ue) && errors.Is(ue.Err, ErrRedirect) {
			err = ue.Err
		}
		return nil, c.clean(fmt.Errorf("POST %s: %w", GraphQLClass, err))
	}
	var a graphQLAnswer
	if err := json.Unmarshal(buf.Bytes(), &a); err != nil {
		return nil, &decodeError{err}
	}
	score, limit := complexityIn(a.Errors)
	for i := range a.Errors {
		a.Errors[i].Message = c.redact.clean(a.Errors[i].Message)
	}
	if len(a.Data) == 0 || string(a.Data) == "null" {
		if len(a.Errors) == 0 {
			return nil, &decodeError{errors.New("GraphQL answer without data or errors")}
		}
		msgs := make([]string, len(a.Errors))
		for i, e := range a.Errors {
			msgs[i] = e.Message
		}
		return nil, &QueryError{Errors: a.Errors, msg: c.redact.clean("POST graphql: " + strings.Join(msgs, "; ")), score: score, limit: limit}
	}
	if data != nil {
		if err := json.Unmarshal(a.Data, data); err != nil {
			return nil, &decodeError{err}
		}
	}
	return a.Errors, nil
}

// unavailableError is an answer saying the instance has no GraphQL API: it is both
// the *APIError and ErrGraphQLUnavailable.
type unavailableError struct{ *APIError }

func (e *unavailableError) Unwrap() error { return e.APIError }
func (e *unavailableError) Is(target error) bool {
	return target == ErrGraphQLUnavailable || e.APIError.Is(target)
}

// ParseGID returns the numeric ID of a GitLab global ID such as gid://gitlab/Project/123.
func ParseGID(gid string) (int64, error) {
	rest, ok := strings.CutPrefix(gid, "gid://gitlab/")
	if !ok {
		return 0, fmt.Errorf("%w: %q is not a GitLab global ID", ErrMalformed, cut(gid, 80))
	}
	_, id, ok := strings.Cut(rest, "/")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: %q is not a GitLab global ID", ErrMalformed, cut(gid, 80))
	}
	return n, nil
}
