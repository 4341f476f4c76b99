package gitlabsim

import (
	"fmt"
	"math"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// Query complexity and depth, computed before execution as GitLab computes them
// (Types::BaseField, Resolvers::BaseResolver, graphql-ruby's QueryComplexity and
// QueryDepth analyzers):
//
//   - a field without a resolver costs 1, 2 when it calls Gitaly, plus its children;
//   - a field with a constant complexity costs it plus its children;
//   - a field with a resolver costs its children + 1 (+1 with sort, +5 with search,
//     plus what the resolver adds: 10 for Group.projects, one per path for
//     Repository.blobs) + 1 when it calls Gitaly; a connection then grows by
//     limit × 1% of that, limit = min(first, last, 100), and not at all when it
//     selects by iid(s). The result is truncated to an integer.
//
// graph-gophers/graphql-go, which executes the queries, has no public query AST, so
// the analysis reads the document with gqlparser (the parser gqlgen uses).

type fieldKind uint8

const (
	kindPlain    fieldKind = iota // no resolver
	kindConst                     // constant complexity
	kindResolver                  // resolver, proc complexity
)

type fieldCost struct {
	kind       fieldKind
	gitaly     bool
	connection bool
	constant   int
	extra      func(args map[string]any) int // what the resolver adds
}

// fieldCosts lists the fields that are not plain fields of complexity 1.
var fieldCosts = map[string]fieldCost{
	"Query.group":            {kind: kindResolver},
	"Query.project":          {kind: kindResolver},
	"Query.projects":         {kind: kindResolver, connection: true},
	"Query.currentUser":      {kind: kindResolver},
	"Query.metadata":         {kind: kindResolver},
	"Group.projects":         {kind: kindResolver, connection: true, extra: func(map[string]any) int { return 10 }},
	"Group.descendantGroups": {kind: kindConst, constant: 5},
	"Project.isForked":       {kind: kindResolver},
	"Project.forksCount":     {kind: kindPlain, gitaly: true},
	"Project.mergeRequests":  {kind: kindResolver, connection: true},
	"Project.issues":         {kind: kindResolver, connection: true},
	"Project.pipelines":      {kind: kindResolver, connection: true},
	"Project.releases":       {kind: kindResolver, connection: true},
	"Project.packages":       {kind: kindResolver, connection: true},
	"Project.ciVariables":    {kind: kindResolver, connection: true},
	"Project.projectMembers": {kind: kindResolver, connection: true},
	"Project.environments":   {kind: kindResolver, connection: true},
	"Repository.blobs": {kind: kindResolver, connection: true, gitaly: true, extra: func(a map[string]any) int {
		paths, _ := a["paths"].([]any)
		return len(paths)
	}},
	"Repository.branchNames": {kind: kindConst, constant: 170},
	"Repository.empty":       {kind: kindPlain, gitaly: true},
	"Repository.exists":      {kind: kindPlain, gitaly: true},
	"Repository.rootRef":     {kind: kindPlain, gitaly: true},
	"Repository.tree":        {kind: kindResolver, gitaly: true},
	"Tree.blobs":             {kind: kindPlain, gitaly: true},
	"Tree.trees":             {kind: kindPlain, gitaly: true},
}

type analysisSchema struct{ schema *ast.Schema }

func newAnalysisSchema() (*analysisSchema, error) {
	sc, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: graphQLSchema})
	if err != nil {
		return nil, err
	}
	return &analysisSchema{schema: sc}, nil
}

func complexityMessage(score, limit int) string {
	return fmt.Sprintf("Query has complexity of %d, which exceeds max complexity of %d", score, limit)
}

func depthMessage(depth int) string {
	return fmt.Sprintf("Query has depth of %d, which exceeds max depth of %d", depth, graphQLMaxDepth)
}

// analysis is what the simulator reads from a query before running it.
type analysis struct {
	score, depth int
	// environmentsOf is the full path of the project whose environments GitLab
	// resolves first, where the first Project.environments in document order sits
	// under a top-level project(fullPath:) lookup; "" otherwise (the first resolved).
	environmentsOf string
}

// analyze returns the complexity score and the depth of the operation to run.
func (a *analysisSchema) analyze(query, opName string, vars map[string]any) (analysis, error) {
	doc, errs := gqlparser.LoadQuery(a.schema, query)
	if len(errs) > 0 {
		return analysis{}, errs[0]
	}
	op := doc.Operations.ForName(opName)
	if op == nil {
		if opName == "" && len(doc.Operations) == 1 {
			op = doc.Operations[0]
		} else {
			return analysis{}, fmt.Errorf("unknown operation named %q", opName)
		}
	}
	if op.Operation != ast.Query {
		return analysis{}, fmt.Errorf("%s operations are not supported by the simulator", op.Operation)
	}
	w := walker{vars: vars}
	return analysis{score: w.cost(op.SelectionSet), depth: w.depth(op.SelectionSet),
		environmentsOf: w.firstProjectSelecting(op.SelectionSet, "Project.environments")}, nil
}

// firstProjectSelecting is the fullPath argument of the first root field, in
// document order, whose selection holds field (Type.name), when that root field is
// Query.project; "" when none holds it or the first that does is another.
// graphql-ruby resolves root fields in document order, graph-gophers concurrently:
// this keeps GitLab's order for the per-request field limits.
func (w walker) firstProjectSelecting(set ast.SelectionSet, field string) string {
	for _, f := range fields(set, nil) {
		if !selects(f.SelectionSet, field) {
			continue
		}
		if f.ObjectDefinition == nil || f.ObjectDefinition.Name+"."+f.Name != "Query.project" {
			return ""
		}
		path, _ := f.ArgumentMap(w.vars)["fullPath"].(string)
		return path
	}
	return ""
}

// selects reports whether set selects field (Type.name) at any depth.
func selects(set ast.SelectionSet, field string) bool {
	for _, f := range fields(set, nil) {
		if (f.ObjectDefinition != nil && f.ObjectDefinition.Name+"."+f.Name == field) || selects(f.SelectionSet, field) {
			return true
		}
	}
	return false
}

type walker struct{ vars map[string]any }

// fields flattens fragments into the fields they select.
func fields(set ast.SelectionSet, out []*ast.Field) []*ast.Field {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			out = append(out, s)
		case *ast.InlineFragment:
			out = fields(s.SelectionSet, out)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				out = fields(s.Definition.SelectionSet, out)
			}
		}
	}
	return out
}

func (w walker) cost(set ast.SelectionSet) int {
	total := 0
	for _, f := range fields(set, nil) {
		total += w.fieldCost(f)
	}
	return total
}

func (w walker) fieldCost(f *ast.Field) int {
	child := w.cost(f.SelectionSet)
	owner := ""
	if f.ObjectDefinition != nil {
		owner = f.ObjectDefinition.Name
	}
	fc, ok := fieldCosts[owner+"."+f.Name]
	if !ok {
		return 1 + child
	}
	switch fc.kind {
	case kindConst:
		return fc.constant + child
	case kindPlain:
		base := 1
		if fc.gitaly {
			base++
		}
		return base + child
	}
	args := f.ArgumentMap(w.vars)
	c := float64(child + 1)
	if args["sort"] != nil {
		c++
	}
	if args["search"] != nil {
		c += 5
	}
	if fc.extra != nil {
		c += float64(fc.extra(args))
	}
	if fc.gitaly {
		c++
	}
	if fc.connection {
		limit := float64(graphQLPageSize)
		for _, k := range []string{"first", "last"} {
			if n, ok := number(args[k]); ok {
				limit = min(limit, n)
			}
		}
		mult := 0.01
		if args["iid"] != nil || args["iids"] != nil {
			mult = 0 // [args[:iid], args[:iids]].any?
		}
		c += c * limit * mult
	}
	return int(math.Floor(c))
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// depth is the deepest field nesting, a root field being depth 1.
func (w walker) depth(set ast.SelectionSet) int {
	d := 0
	for _, f := range fields(set, nil) {
		if len(f.SelectionSet) == 0 {
			d = max(d, 1)
			continue
		}
		d = max(d, 1+w.depth(f.SelectionSet))
	}
	return d
}
