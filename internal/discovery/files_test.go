package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/budget"
	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

func TestParseCIConfigPath(t *testing.T) {
	tests := []struct {
		in   string
		want ciConfig
	}{
		{"", ciConfig{path: ".gitlab-ci.yml"}},
		{"  ", ciConfig{path: ".gitlab-ci.yml"}},
		{"ci/pipeline.yml", ciConfig{path: "ci/pipeline.yml"}},
		{"/ci/./pipeline.yml", ciConfig{path: "ci/pipeline.yml"}},
		{"../../etc/passwd", ciConfig{path: "etc/passwd"}},
		{"/./..", ciConfig{path: "."}},
		{".gitlab-ci.yml@platform/ci-templates", ciConfig{external: "platform/ci-templates"}},
		{"ci/app.yml@group/sub/project:release-1", ciConfig{external: "group/sub/project"}},
		{"file.yml@", ciConfig{external: "file.yml@"}},
		{"https://example.com/ci/gitlab-ci.yml", ciConfig{external: "https://example.com/ci/gitlab-ci.yml"}},
	}
	for _, tt := range tests {
		if got := parseCIConfigPath(tt.in); got != tt.want {
			t.Errorf("parseCIConfigPath(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// fakeRepo answers tree listings and raw files from maps: a directory maps to its
// entries ("name" for a blob, "name/" for a tree), a path to a file's content; a
// directory or file in denied answers 403.
type fakeRepo struct {
	trees  map[string][]string
	files  map[string]string
	denied []string
	calls  []string
}

func (f *fakeRepo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/api/v4/projects/1/repository/")
	switch {
	case path == "tree":
		dir := r.URL.Query().Get("path")
		f.calls = append(f.calls, "tree:"+dir)
		if slices.Contains(f.denied, dir) {
			http.Error(w, `{"message":"403 Forbidden"}`, http.StatusForbidden)
			return
		}
		entries := []gitlab.TreeEntry{}
		for _, e := range f.trees[dir] {
			typ := "blob"
			if strings.HasSuffix(e, "/") {
				e, typ = strings.TrimSuffix(e, "/"), "tree"
			}
			entries = append(entries, gitlab.TreeEntry{Name: e, Type: typ, Path: strings.TrimPrefix(dir+"/"+e, "/")})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(entries)
	case strings.HasPrefix(path, "files/") && strings.HasSuffix(path, "/raw"):
		name, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(path, "files/"), "/raw"))
		f.calls = append(f.calls, "file:"+name)
		content, ok := f.files[name]
		switch {
		case slices.Contains(f.denied, name):
			http.Error(w, `{"message":"403 Forbidden"}`, http.StatusForbidden)
		case !ok:
			http.Error(w, `{"message":"404 File Not Found"}`, http.StatusNotFound)
		default:
			fmt.Fprint(w, content)
		}
	default:
		http.NotFound(w, r)
	}
}

// TestFilesFacts: what the repository probes find, and that a denied listing or file
// leaves its facts unknown (nil), never false.
func TestFilesFacts(t *testing.T) {
	const ci = "build:\n  script: make\ntest:\n  script: make test\n"
	yes, no := new(true), new(false)
	type flags struct{ ci, submodules, codeowners, lfs *bool }
	tests := []struct {
		name       string
		configPath string
		repo       fakeRepo
		want       flags
		external   string
		jobs       int // parsed CI jobs; 0: none parsed
		steps      []string
	}{
		{"nothing", "", fakeRepo{trees: map[string][]string{"": {"README.md"}}}, flags{no, no, no, no}, "", 0, nil},
		{"root files", "", fakeRepo{
			trees: map[string][]string{"": {".gitlab-ci.yml", ".gitmodules", "CODEOWNERS", ".gitattributes"}},
			files: map[string]string{".gitlab-ci.yml": ci, ".gitattributes": "*.psd filter=lfs\n", ".gitmodules": "[submodule \"a\"]\n\turl = ../a.git\n"},
		}, flags{yes, yes, yes, yes}, "", 2, nil},
		{"CODEOWNERS in docs/", "", fakeRepo{trees: map[string][]string{"": {"docs/", ".gitlab/"}, "docs": {"CODEOWNERS"}}},
			flags{no, no, yes, no}, "", 0, nil},
		{"CODEOWNERS in .gitlab/", "", fakeRepo{trees: map[string][]string{"": {"docs/", ".gitlab/"}, "docs": {"index.md"}, ".gitlab": {"CODEOWNERS"}}},
			flags{no, no, yes, no}, "", 0, nil},
		{"docs/ denied, .gitlab/ has it", "", fakeRepo{
			trees:  map[string][]string{"": {"docs/", ".gitlab/"}, ".gitlab": {"CODEOWNERS"}},
			denied: []string{"docs"},
		}, flags{no, no, yes, no}, "", 0, []string{"tree:docs"}},
		{"docs/ denied, nowhere else", "", fakeRepo{
			trees:  map[string][]string{"": {"docs/", ".gitlab/"}, ".gitlab": {"issue_templates/"}},
			denied: []string{"docs"},
		}, flags{no, no, nil, no}, "", 0, []string{"tree:docs"}},
		{"custom path", "ci/pipeline.yml", fakeRepo{
			trees: map[string][]string{"": {"ci/", ".gitlab-ci.yml"}, "ci": {"pipeline.yml"}},
			files: map[string]string{"ci/pipeline.yml": ci},
		}, flags{yes, no, no, no}, "", 2, nil},
		{"custom path missing", "ci/pipeline.yml", fakeRepo{trees: map[string][]string{"": {".gitlab-ci.yml"}}},
			flags{no, no, no, no}, "", 0, nil},
		{"custom path's directory denied", "ci/deep/pipeline.yml", fakeRepo{
			trees:  map[string][]string{"": {"ci/"}, "ci": {"deep/"}},
			denied: []string{"ci/deep"},
		}, flags{nil, no, no, no}, "", 0, []string{"tree:ci_config_path"}},
		{"external config", ".gitlab-ci.yml@platform/ci-templates:main", fakeRepo{trees: map[string][]string{"": {"README.md"}}},
			flags{yes, no, no, no}, "platform/ci-templates", 0, nil},
		{"tree denied", "", fakeRepo{denied: []string{""}}, flags{nil, nil, nil, nil}, "", 0, []string{"tree"}},
		{"tree denied, external config", "x.yml@g/p", fakeRepo{denied: []string{""}}, flags{yes, nil, nil, nil}, "g/p", 0, []string{"tree"}},
		{"files denied", "", fakeRepo{
			trees:  map[string][]string{"": {".gitlab-ci.yml", ".gitattributes"}},
			denied: []string{".gitlab-ci.yml", ".gitattributes"},
		}, flags{yes, no, no, nil}, "", 0, []string{"file:.gitlab-ci.yml", "file:.gitattributes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ts := httptest.NewServer(&tt.repo)
			defer ts.Close()
			gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{}), MaxRetries: -1})
			if err != nil {
				t.Fatal(err)
			}
			gp := gitlab.Project{ID: 1, DefaultBranch: "main", CIConfigPath: tt.configPath}
			pr := &profiler{w: &Worker{GitLab: gl}, gp: gp, p: identity(gp)}
			if err := pr.files(ctx); err != nil {
				t.Fatal(err)
			}
			f := pr.p.Features
			got := flags{f.HasCI, f.HasSubmodules, f.HasCodeowners, f.UsesLFS}
			for i, pair := range [][2]*bool{{got.ci, tt.want.ci}, {got.submodules, tt.want.submodules}, {got.codeowners, tt.want.codeowners}, {got.lfs, tt.want.lfs}} {
				if show(pair[0]) != show(pair[1]) {
					t.Errorf("%s = %s, want %s (calls %v)", []string{"has_ci", "has_submodules", "has_codeowners", "uses_lfs"}[i], show(pair[0]), show(pair[1]), tt.repo.calls)
				}
			}
			if f.CIConfigExternal != tt.external || f.CIConfigPath != tt.configPath {
				t.Errorf("ci_config_external %q, ci_config_path %q; want %q, %q", f.CIConfigExternal, f.CIConfigPath, tt.external, tt.configPath)
			}
			if jobs := 0; f.CI != nil {
				if jobs = f.CI.Jobs; jobs != tt.jobs {
					t.Errorf("CI jobs %d, want %d", jobs, tt.jobs)
				}
			} else if tt.jobs != 0 {
				t.Errorf("CI not parsed, want %d jobs", tt.jobs)
			}
			var steps []string
			for _, e := range pr.p.Errors {
				steps = append(steps, e.Step)
				if e.Status != http.StatusForbidden {
					t.Errorf("error %+v, want a 403", e)
				}
			}
			if !slices.Equal(steps, tt.steps) {
				t.Errorf("failed steps %v, want %v", steps, tt.steps)
			}
		})
	}
}

// TestEmptyRepoFilesKnown: an empty repository is not probed, and its file facts are
// known to be false.
func TestEmptyRepoFilesKnown(t *testing.T) {
	gp := gitlab.Project{ID: 1, EmptyRepo: true}
	pr := &profiler{w: &Worker{}, gp: gp, p: identity(gp)} // no client: a request would panic
	if err := pr.files(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &pr.p.Features
	if u := unknownFlags(f); slices.Contains(u, "has_ci") || slices.Contains(u, "has_codeowners") || inventory.Is(f.HasCI) {
		t.Errorf("empty repository: unknown %v, has_ci %s", u, show(f.HasCI))
	}
}

func show(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return fmt.Sprint(*b)
}

// unknownFlags names the flags a profile left unknown.
func unknownFlags(f *inventory.Features) []string {
	var out []string
	for _, fl := range facts.Flags {
		if *fl.Field(f) == nil {
			out = append(out, fl.Name)
		}
	}
	return out
}

// FuzzParseCIConfigPath: any ci_config_path is either a repository path inside the
// repository (never absolute, never above the root) or an external location.
func FuzzParseCIConfigPath(f *testing.F) {
	for _, s := range []string{"", "ci/x.yml", "../../etc/passwd", "a@b/c:d", "https://h/x.yml", "@", "/./.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := parseCIConfigPath(s)
		if (c.path == "") == (c.external == "") {
			t.Fatalf("parseCIConfigPath(%q) = %+v: want exactly one of path and external", s, c)
		}
		if strings.HasPrefix(c.path, "/") || c.path == ".." || strings.HasPrefix(c.path, "../") {
			t.Fatalf("parseCIConfigPath(%q) = %+v: path leaves the repository", s, c)
		}
	})
}

// TestLFSBytesSkipAttributes: when statistics show LFS bytes, .gitattributes is not
// read (a denied one records no error) and LFS stays known.
func TestLFSBytesSkipAttributes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	repo := &fakeRepo{trees: map[string][]string{"": {".gitattributes"}}, denied: []string{".gitattributes"}}
	ts := httptest.NewServer(repo)
	defer ts.Close()
	gl, err := gitlab.New(ts.URL, "t", gitlab.Options{Limiter: budget.NewMemory(budget.Config{}), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	gp := gitlab.Project{ID: 1, DefaultBranch: "main"}
	pr := &profiler{w: &Worker{GitLab: gl}, gp: gp, p: identity(gp)}
	pr.p.Features.UsesLFS = new(true) // as run sets it from LFS bytes
	if err := pr.files(ctx); err != nil {
		t.Fatal(err)
	}
	if !inventory.Is(pr.p.Features.UsesLFS) || len(pr.p.Errors) != 0 || slices.Contains(repo.calls, "file:.gitattributes") {
		t.Errorf("uses_lfs %s, errors %v, calls %v: want true, none, no .gitattributes read", show(pr.p.Features.UsesLFS), pr.p.Errors, repo.calls)
	}
}
