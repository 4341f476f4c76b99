package gitlabsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	graphql "github.com/graph-gophers/graphql-go"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// GitLab's GraphQL limits (app/graphql/gitlab_schema.rb, graphql_controller.rb).
const (
	// DefaultGraphQLComplexity is GitLab's AUTHENTICATED_MAX_COMPLEXITY, the
	// limit for a token's user (GitLab gives administrators 300, anonymous 200).
	DefaultGraphQLComplexity = 250
	graphQLMaxDepth          = 20     // AUTHENTICATED_MAX_DEPTH
	graphQLMaxQuerySize      = 10_000 // GraphqlController::MAX_QUERY_SIZE, in characters
	graphQLPageSize          = 100    // default_max_page_size
	graphQLMaxFullPaths      = 50     // ProjectsResolver: fullPaths at most 50
	graphQLMaxBody           = 1 << 20
	graphQLMaxOperations     = 1000 // distinct operation names kept in the stats
)

// graphQLServer is the parsed schema, built once per Server.
type graphQLServer struct {
	exec     *graphql.Schema
	analysis *analysisSchema
	limit    int
}

func newGraphQLServer(s *Server, limit int) (*graphQLServer, error) {
	exec, err := graphql.ParseSchema(graphQLSchema, &gqlQuery{s: s}, graphql.UseStringDescriptions(), graphql.MaxParallelism(1))
	if err != nil {
		return nil, err
	}
	an, err := newAnalysisSchema()
	if err != nil {
		return nil, err
	}
	return &graphQLServer{exec: exec, analysis: an, limit: limit}, nil
}

// gqlRequest is one GraphQL request: GitLab takes it as a JSON body on POST or as
// URL parameters on GET.
type gqlRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

// readGraphQL reads the request before any fault or limit applies, so that every
// request is accounted to its operation and a retried request draws its next fault.
func readGraphQL(r *http.Request) (gqlRequest, []byte, error) {
	var req gqlRequest
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		q := r.URL.Query()
		req.Query, req.OperationName = q.Get("query"), q.Get("operationName")
		if v := q.Get("variables"); v != "" {
			if err := json.Unmarshal([]byte(v), &req.Variables); err != nil {
				return req, nil, errors.New("variables are not a JSON object")
			}
		}
		return req, []byte(r.URL.RawQuery), nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, graphQLMaxBody+1))
	if err != nil {
		return req, nil, err
	}
	if len(body) > graphQLMaxBody {
		return req, body, errors.New("request body too large")
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, body, errors.New("body is not a JSON GraphQL request")
	}
	return req, body, nil
}

// operationName is the name the stats account a request to: the operationName
// given, else the document's only operation's name, else "anonymous".
func operationName(req gqlRequest) string {
	name := req.OperationName
	if name == "" {
		doc, err := parser.ParseQuery(&ast.Source{Input: req.Query})
		if err != nil || len(doc.Operations) != 1 {
			return "anonymous"
		}
		name = doc.Operations[0].Name
	}
	if name == "" {
		return "anonymous"
	}
	if len(name) > 100 {
		name = name[:100]
	}
	return name
}

// gqlError writes GitLab's controller-level error: {"errors":[{"message":...}]}.
func (c *call) gqlError(status int, msg string) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"message": msg}}})
	c.write(status, "application/json", body)
}

// rawJSON writes a rendered JSON body; a malformed-body fault garbles a 200.
func (c *call) rawJSON(status int, body []byte) {
	if c.malformed && status == http.StatusOK {
		c.fault = true
		body = garble(body, hash2(c.key, uint64(c.n)))
	}
	c.write(status, "application/json", body)
}

// gqlCtxKey carries the request's state to the resolvers.
type gqlCtxKey struct{}

type gqlState struct {
	fs      *faultState
	score   int
	limit   int
	faulted atomic.Bool // a project fault nulled some field: the request counts as a fault
	// environments counts Project.environments resolved in this request, which GitLab
	// limits (Gitlab::Graphql::Limit::FieldCallCount).
	environments   atomic.Int32
	environmentsOf string // the project whose environments come first (analysis)
}

func stateOf(ctx context.Context) *gqlState {
	st, _ := ctx.Value(gqlCtxKey{}).(*gqlState)
	if st == nil {
		return &gqlState{fs: newFaultState(Faults{})}
	}
	return st
}

// serveGraphQL answers POST (or GET) /api/graphql once the request passed the
// token, the rate limit and the faults: size limit, validation, complexity and
// depth as GitLab checks them, then execution.
func (s *Server) serveGraphQL(c *call, req gqlRequest, readErr error) {
	if readErr != nil {
		c.gqlError(http.StatusBadRequest, readErr.Error())
		return
	}
	if strings.TrimSpace(req.Query) == "" {
		c.rawJSON(http.StatusOK, mustJSON(map[string]any{"errors": []map[string]string{{"message": "No query string was present"}}}))
		return
	}
	if len([]rune(req.Query)) > graphQLMaxQuerySize {
		c.gqlError(http.StatusUnprocessableEntity, "Query too large")
		return
	}
	g := s.gql
	if errs := g.exec.ValidateWithVariables(req.Query, req.Variables); len(errs) > 0 {
		c.rawJSON(http.StatusOK, mustJSON(map[string]any{"errors": errs}))
		return
	}
	an, err := g.analysis.analyze(req.Query, req.OperationName, req.Variables)
	if err != nil {
		c.rawJSON(http.StatusOK, mustJSON(map[string]any{"errors": []map[string]string{{"message": err.Error()}}}))
		return
	}
	if an.depth > graphQLMaxDepth {
		c.rawJSON(http.StatusOK, mustJSON(map[string]any{"errors": []map[string]string{{"message": depthMessage(an.depth)}}}))
		return
	}
	if an.score > g.limit {
		c.rawJSON(http.StatusOK, mustJSON(map[string]any{"errors": []map[string]string{{"message": complexityMessage(an.score, g.limit)}}}))
		return
	}
	ctx := context.WithValue(c.r.Context(), gqlCtxKey{}, &gqlState{fs: c.fs, score: an.score, limit: g.limit, environmentsOf: an.environmentsOf})
	st := ctx.Value(gqlCtxKey{}).(*gqlState)
	resp := g.exec.Exec(ctx, req.Query, req.OperationName, req.Variables)
	if st.faulted.Load() {
		c.fault = true
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(resp); err != nil {
		c.gqlError(http.StatusInternalServerError, "Internal server error")
		return
	}
	c.rawJSON(http.StatusOK, bytes.TrimRight(buf.Bytes(), "\n"))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"errors":[{"message":"Internal server error"}]}`)
	}
	return b
}
