package gitlabsim

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"

	graphql "github.com/graph-gophers/graphql-go"
)

// pageArgs are a connection's pagination arguments.
type pageArgs struct {
	First  *int32
	Last   *int32
	After  *string
	Before *string
}

// span is the part of a list a connection returns.
type span struct {
	start, end       int
	hasNext, hasPrev bool
}

// paginate picks the part of an n-item list a connection returns, as graphql-ruby
// does: after/before narrow the list, first/last take from its start/end, and a
// page holds at most 100 nodes (GitLab's max_page_size) whatever first or last
// asks, without an error; with neither, a page is 100 nodes.
func paginate(n int, a pageArgs) (span, error) {
	lo, hi := 0, n
	if a.After != nil {
		k, err := decodeCursor(*a.After)
		if err != nil {
			return span{}, err
		}
		lo = min(k+1, n)
	}
	if a.Before != nil {
		k, err := decodeCursor(*a.Before)
		if err != nil {
			return span{}, err
		}
		hi = max(min(k, n), lo)
	}
	start, end := lo, hi
	switch {
	case a.First != nil:
		end = min(hi, lo+clampPage(*a.First))
		if a.Last != nil {
			start = max(start, end-clampPage(*a.Last))
		}
	case a.Last != nil:
		start = max(lo, hi-clampPage(*a.Last))
	default:
		end = min(hi, lo+graphQLPageSize)
	}
	return span{start: start, end: end, hasNext: end < n, hasPrev: start > 0}, nil
}

func clampPage(n int32) int { return min(max(int(n), 0), graphQLPageSize) }

// Cursors are opaque to clients, as GitLab's are: base64 of a small JSON object.
func encodeCursor(pos int) string {
	return base64.StdEncoding.EncodeToString([]byte(`{"offset":"` + strconv.Itoa(pos) + `"}`))
}

var errCursor = errors.New("Invalid cursor provided") //nolint:staticcheck // GitLab's wording, capitalised

func decodeCursor(c string) (int, error) {
	raw, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, errCursor
	}
	var v struct {
		Offset string `json:"offset"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return 0, errCursor
	}
	k, err := strconv.Atoi(v.Offset)
	if err != nil || k < 0 {
		return 0, errCursor
	}
	return k, nil
}

// conn is any connection: its nodes are made on demand from their positions.
type conn[T any] struct {
	total int
	sp    span
	node  func(pos int) *T
}

func newConn[T any](total int, a pageArgs, node func(pos int) *T) (*conn[T], error) {
	sp, err := paginate(total, a)
	if err != nil {
		return nil, err
	}
	return &conn[T]{total: total, sp: sp, node: node}, nil
}

func (c *conn[T]) Count() int32 { return int32(min(c.total, 1<<31-1)) }

func (c *conn[T]) Nodes() *[]*T {
	out := make([]*T, 0, c.sp.end-c.sp.start)
	for k := c.sp.start; k < c.sp.end; k++ {
		out = append(out, c.node(k))
	}
	return &out
}

func (c *conn[T]) Edges() *[]*edge[T] {
	out := make([]*edge[T], 0, c.sp.end-c.sp.start)
	for k := c.sp.start; k < c.sp.end; k++ {
		out = append(out, &edge[T]{cursor: encodeCursor(k), node: c.node(k)})
	}
	return &out
}

func (c *conn[T]) PageInfo() *pageInfo {
	pi := &pageInfo{hasNext: c.sp.hasNext, hasPrev: c.sp.hasPrev}
	if c.sp.end > c.sp.start {
		s, e := encodeCursor(c.sp.start), encodeCursor(c.sp.end-1)
		pi.start, pi.end = &s, &e
	}
	return pi
}

type edge[T any] struct {
	cursor string
	node   *T
}

func (e *edge[T]) Cursor() string { return e.cursor }
func (e *edge[T]) Node() *T       { return e.node }

type pageInfo struct {
	hasNext, hasPrev bool
	start, end       *string
}

func (p *pageInfo) HasNextPage() bool     { return p.hasNext }
func (p *pageInfo) HasPreviousPage() bool { return p.hasPrev }
func (p *pageInfo) StartCursor() *string  { return p.start }
func (p *pageInfo) EndCursor() *string    { return p.end }

// gid is GitLab's global ID of a record.
func gid(model string, id int64) graphql.ID {
	return graphql.ID("gid://gitlab/" + model + "/" + strconv.FormatInt(id, 10))
}

// BigInt is GitLab's BigInt scalar: a whole number encoded as a string.
type BigInt int64

func (BigInt) ImplementsGraphQLType(name string) bool { return name == "BigInt" }

func (b *BigInt) UnmarshalGraphQL(input any) error {
	switch v := input.(type) {
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		*b = BigInt(n)
		return err
	case int32:
		*b = BigInt(v)
		return nil
	}
	return errors.New("BigInt: wrong type")
}

func (b BigInt) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(b), 10) + `"`), nil
}
