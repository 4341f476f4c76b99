package gitlabsim

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"
)

// treeNode is one entry of a repository tree.
type treeNode struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"` // tree, blob or commit (a submodule)
	Path string `json:"path"`
	Mode string `json:"mode"`
}

var langFiles = [...][]string{
	langGo:     {"go.mod", "go.sum", "Makefile", "cmd/server/main.go", "internal/app/app.go", "internal/app/app_test.go"},
	langNode:   {"package.json", "package-lock.json", "tsconfig.json", "src/index.ts", "src/routes.ts", "test/index.test.ts"},
	langJava:   {"pom.xml", "mvnw", "src/main/java/com/example/App.java", "src/test/java/com/example/AppTest.java"},
	langPython: {"pyproject.toml", "requirements.txt", "src/app/__init__.py", "src/app/main.py", "tests/test_main.py"},
	langDotnet: {"App.sln", "src/App/App.csproj", "src/App/Program.cs", "tests/App.Tests/App.Tests.csproj"},
	langDocs:   {"mkdocs.yml", "docs/index.md", "docs/guide.md"},
}

// blobs lists the project's files (full paths); submodules are returned apart.
func (in *instance) blobs(p *project) (files, submodules []string) {
	if p.has(fEmpty) {
		return nil, nil
	}
	files = append(files, "README.md", ".gitignore")
	files = append(files, langFiles[p.lang]...)
	add := func(f uint32, names ...string) {
		if p.has(f) {
			files = append(files, names...)
		}
	}
	add(fLicense, "LICENSE")
	add(fDockerfile, "Dockerfile")
	if file, _ := in.ciFile(p); file != "" {
		files = append(files, file)
		files = append(files, in.ciIncludeFiles(p)...)
	}
	add(fGitattributes, ".gitattributes")
	add(fGitmodules, ".gitmodules")
	add(fCodeownersRoot, "CODEOWNERS")
	add(fCodeownersGitlab, ".gitlab/CODEOWNERS")
	add(fGitlabDir, ".gitlab/issue_templates/Bug.md", ".gitlab/issue_templates/Feature.md", ".gitlab/merge_request_templates/Default.md")
	if p.has(fCodeownersDocs) {
		files = append(files, "docs/CODEOWNERS")
		if p.lang != langDocs {
			files = append(files, "docs/index.md")
		}
	}
	for _, s := range in.submodules(p) {
		submodules = append(submodules, s.path)
	}
	return files, submodules
}

// tree lists the entries directly under dir ("" for the root), or all entries below
// it when recursive, in GitLab's order: trees, then blobs, then submodules, by name.
func (in *instance) tree(p *project, dir string, recursive bool) ([]treeNode, bool) {
	files, subs := in.blobs(p)
	if files == nil {
		return nil, false
	}
	dir = strings.Trim(dir, "/")
	seen := map[string]bool{}
	var out []treeNode
	found := dir == ""
	addEntry := func(full, typ, mode string) {
		parent := path.Dir(full)
		if parent == "." {
			parent = ""
		}
		inDir := parent == dir || (recursive && (dir == "" || strings.HasPrefix(parent, dir+"/")))
		if !inDir || seen[full] {
			return
		}
		seen[full] = true
		out = append(out, treeNode{ID: in.objectID(p, full), Name: path.Base(full), Type: typ, Path: full, Mode: mode})
	}
	visit := func(full, typ, mode string) {
		// Every ancestor directory is a tree entry.
		for d := path.Dir(full); d != "."; d = path.Dir(d) {
			if d == dir {
				found = true
			}
			addEntry(d, "tree", "040000")
		}
		addEntry(full, typ, mode)
	}
	for _, f := range files {
		visit(f, "blob", "100644")
	}
	for _, s := range subs {
		visit(s, "commit", "160000")
	}
	if !found {
		return nil, false
	}
	rank := map[string]int{"tree": 0, "blob": 1, "commit": 2}
	slices.SortFunc(out, func(a, b treeNode) int {
		if recursive {
			return strings.Compare(a.Path, b.Path)
		}
		if d := rank[a.Type] - rank[b.Type]; d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, true
}

// objectID is a stable, realistic-looking git object id.
func (in *instance) objectID(p *project, name string) string {
	var b [24]byte
	h := hashString(hash2(uint64(in.seed), uint64(p.id)), name)
	for i := range 3 {
		binary.BigEndian.PutUint64(b[i*8:], h)
		h = mix(h)
	}
	return hex.EncodeToString(b[:20])
}

// file returns a file's content, false when the project has no such file.
func (in *instance) file(p *project, name string) (string, bool) {
	name = strings.TrimPrefix(name, "/")
	files, _ := in.blobs(p)
	if !slices.Contains(files, name) {
		return "", false
	}
	r := newRNG(in.seed, hashString(uint64(p.id), name), saltFiles)
	pwn := in.pathWithNamespace(p)
	if file, _ := in.ciFile(p); name == file {
		ci, _ := in.ciConfig(p)
		return ci, true
	}
	if slices.Contains(in.ciIncludeFiles(p), name) {
		src, _, _ := ciInclude(in.seed, p, name)
		return src, true
	}
	switch name {
	case ".gitattributes":
		if p.has(fLFSFilter) {
			return "# Large binaries live in Git LFS.\n*.psd filter=lfs diff=lfs merge=lfs -text\n*.zip filter=lfs diff=lfs merge=lfs -text\nassets/** filter=lfs diff=lfs merge=lfs -text\n*.sh text eol=lf\n", true
		}
		return "* text=auto\n*.sh text eol=lf\n*.bat text eol=crlf\n*.png binary\n", true
	case ".gitmodules":
		return gitmodules(in.submodules(p)), true
	case "CODEOWNERS", ".gitlab/CODEOWNERS", "docs/CODEOWNERS":
		return fmt.Sprintf("# Code owners for %s\n* @%s-maintainers\n/docs/ @tech-writers\n[Security][2] @appsec\n*.tf @platform-infra\n", pwn, p.path), true
	case "README.md":
		owner := "the " + in.nsName(p) + " group"
		if p.owner >= 0 {
			owner = in.nsName(p)
		}
		return fmt.Sprintf("# %s\n\n%s of %s.\n\n## Getting started\n\nSee `docs/` and the CI configuration.\n", p.name, []string{"Service", "Library", "Tooling"}[r.intn(3)], owner), true
	case ".gitignore":
		return "/bin/\n/dist/\n/node_modules/\n*.log\n.env\n", true
	case "LICENSE":
		return "MIT License\n\nCopyright (c) 2024 Example Corp\n\nPermission is hereby granted, free of charge, to any person obtaining a copy...\n", true
	case "Dockerfile":
		return fmt.Sprintf("FROM %s AS build\nWORKDIR /src\nCOPY . .\nRUN make build\n\nFROM gcr.io/distroless/base\nCOPY --from=build /src/bin/app /app\nENTRYPOINT [\"/app\"]\n", ciLangs[p.lang].image), true
	case "go.mod":
		return fmt.Sprintf("module gitlab.example.com/%s\n\ngo 1.22\n", pwn), true
	case "package.json":
		return fmt.Sprintf("{\n  \"name\": \"@example/%s\",\n  \"version\": \"1.%d.0\",\n  \"scripts\": {\"build\": \"tsc\", \"test\": \"jest\", \"lint\": \"eslint .\"}\n}\n", p.path, r.intn(20)), true
	case "pom.xml":
		return fmt.Sprintf("<project>\n  <modelVersion>4.0.0</modelVersion>\n  <groupId>com.example</groupId>\n  <artifactId>%s</artifactId>\n  <version>1.%d.0</version>\n</project>\n", p.path, r.intn(20)), true
	}
	if strings.HasPrefix(name, ".gitlab/") {
		return fmt.Sprintf("## Summary\n\n(%s)\n\n## Steps to reproduce\n\n/label ~needs-triage\n", path.Base(name)), true
	}
	return fmt.Sprintf("// %s\n// Part of %s.\n", name, pwn), true
}

// Custom CI configuration paths (GitLab's ci_config_path), decided from the seed and
// the id so that the instance drawn from a seed stays the same: a share of the
// projects with CI keep it at customCIFile, another share in another project.
const (
	customCIShare   = 0.03
	externalCIShare = 0.02
	customCIFile    = "ci/pipeline.yml"
)

// ciConfigPath is the project's ci_config_path: "" for .gitlab-ci.yml, customCIFile,
// or ".gitlab-ci.yml@group/project" (half of them with a ":main" ref) naming another
// project of the instance.
func (in *instance) ciConfigPath(p *project) string {
	if !p.has(fCI) || p.has(fEmpty) || len(in.projects) < 2 {
		return ""
	}
	h := hash3(uint64(in.seed), uint64(p.id), saltCIConfigPath)
	switch u := unit(h); {
	case u < customCIShare:
		return customCIFile
	case u < customCIShare+externalCIShare:
		k := int(mix(h) % uint64(len(in.projects)))
		if in.projects[k].id == p.id {
			k = (k + 1) % len(in.projects)
		}
		ref := ""
		if h&1 == 1 {
			ref = ":main"
		}
		return ".gitlab-ci.yml@" + in.pathWithNamespace(&in.projects[k]) + ref
	}
	return ""
}

// ciFile returns the repository path of the project's CI file, "" when it has none
// in its repository, and the project path of a configuration kept in another one.
func (in *instance) ciFile(p *project) (file, external string) {
	if !p.has(fCI) || p.has(fEmpty) {
		return "", ""
	}
	switch cp := in.ciConfigPath(p); {
	case cp == "":
		return ".gitlab-ci.yml", ""
	case strings.Contains(cp, "@"):
		_, target, _ := strings.Cut(cp, "@")
		target, _, _ = strings.Cut(target, ":")
		return "", target
	default:
		return cp, ""
	}
}
