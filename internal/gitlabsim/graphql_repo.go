package gitlabsim

import (
	"context"
	"path"
	"regexp"
	"strings"

	graphql "github.com/graph-gophers/graphql-go"
)

// gqlRepository is a project's repository: the same files, tree and branches the
// REST repository endpoints serve.
type gqlRepository struct {
	r *gqlProject
}

func (r *gqlProject) Repository() *gqlRepository { return &gqlRepository{r: r} }

func (g *gqlRepository) Empty() bool  { return g.r.p.has(fEmpty) }
func (g *gqlRepository) Exists() bool { return true }

// RootRef is the default branch, null for an empty repository (as default_branch).
func (g *gqlRepository) RootRef() *string { return g.r.rest().DefaultBranch }

type blobsArgs struct {
	Paths   []string
	Ref     *string
	RefType *string
	pageArgs
}

// Blobs are the files found among the paths asked for, in the order asked; a path
// the repository lacks is left out, and an empty repository has none.
func (g *gqlRepository) Blobs(ctx context.Context, args blobsArgs) (*conn[gqlBlob], error) {
	if g.r.denied(ctx, clsFileRaw) {
		return nil, nil
	}
	p, in := g.r.p, g.r.s.in
	ref := p.defaultBranch()
	if args.Ref != nil && *args.Ref != "" {
		ref = *args.Ref
	}
	var found []gqlBlob
	seen := map[string]bool{}
	for _, name := range args.Paths {
		name = strings.TrimPrefix(name, "/")
		if seen[name] {
			continue
		}
		seen[name] = true
		if body, ok := in.file(p, name); ok {
			found = append(found, gqlBlob{in: in, p: p, path: name, ref: ref, body: body})
		}
	}
	return newConn(len(found), args.pageArgs, func(k int) *gqlBlob { return &found[k] })
}

type gqlBlob struct {
	in        *instance
	p         *project
	path, ref string
	body      string
}

func (b *gqlBlob) ID() graphql.ID {
	return graphql.ID("gid://gitlab/Gitlab::Graphql::Representation::TreeEntry/" + b.Oid())
}
func (b *gqlBlob) Oid() string             { return b.in.objectID(b.p, b.path) }
func (b *gqlBlob) Path() string            { return b.path }
func (b *gqlBlob) Name() *string           { n := path.Base(b.path); return &n }
func (b *gqlBlob) Size() *BigInt           { n := BigInt(len(b.body)); return &n }
func (b *gqlBlob) RawSize() *BigInt        { return b.Size() }
func (b *gqlBlob) RawBlob() *string        { return &b.body }
func (b *gqlBlob) RawTextBlob() *string    { return &b.body }
func (b *gqlBlob) StoredExternally() *bool { return boolPtr(false) }
func (b *gqlBlob) WebPath() *string {
	w := "/" + b.in.pathWithNamespace(b.p) + "/-/blob/" + b.ref + "/" + b.path
	return &w
}

type branchNamesArgs struct {
	SearchPattern string
	Offset        int32
	Limit         int32
}

// BranchNames are the branch names matching the pattern (* matches any run of
// characters), in the REST listing's order, from offset, at most limit of them.
func (g *gqlRepository) BranchNames(ctx context.Context, args branchNamesArgs) (*[]string, error) {
	if g.r.denied(ctx, clsBranches) {
		return nil, nil
	}
	p, in := g.r.p, g.r.s.in
	re, err := regexp.Compile("^" + strings.ReplaceAll(regexp.QuoteMeta(args.SearchPattern), `\*`, ".*") + "$")
	if err != nil {
		return nil, err
	}
	out := []string{}
	skip := int(max(args.Offset, 0))
	for pos := range p.count(cBranches) {
		if len(out) >= int(max(args.Limit, 0)) {
			break
		}
		name := in.branchName(p, pos)
		if !re.MatchString(name) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		out = append(out, name)
	}
	return &out, nil
}

type treeArgs struct {
	Path      string
	Ref       *string
	RefType   *string
	Recursive bool
}

// Tree is the directory at path, null when the repository has no such directory.
func (g *gqlRepository) Tree(ctx context.Context, args treeArgs) *gqlTree {
	if g.r.denied(ctx, clsTree) {
		return nil
	}
	nodes, ok := g.r.s.in.tree(g.r.p, args.Path, args.Recursive)
	if !ok {
		return nil
	}
	return &gqlTree{nodes: nodes}
}

type gqlTree struct{ nodes []treeNode }

func (t *gqlTree) entries(typ string) []treeNode {
	var out []treeNode
	for _, n := range t.nodes {
		if n.Type == typ {
			out = append(out, n)
		}
	}
	return out
}

func (t *gqlTree) Blobs(args pageArgs) (*conn[gqlEntry], error) {
	e := t.entries("blob")
	return newConn(len(e), args, func(k int) *gqlEntry { return &gqlEntry{e[k]} })
}

func (t *gqlTree) Trees(args pageArgs) (*conn[gqlEntry], error) {
	e := t.entries("tree")
	return newConn(len(e), args, func(k int) *gqlEntry { return &gqlEntry{e[k]} })
}

type gqlEntry struct{ n treeNode }

func (e *gqlEntry) ID() graphql.ID {
	return graphql.ID("gid://gitlab/Gitlab::Graphql::Representation::TreeEntry/" + e.n.ID)
}
func (e *gqlEntry) Name() string  { return e.n.Name }
func (e *gqlEntry) Path() string  { return e.n.Path }
func (e *gqlEntry) Type() string  { return e.n.Type }
func (e *gqlEntry) Mode() *string { return &e.n.Mode }
