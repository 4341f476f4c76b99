package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// memSource is a run's records held in slices: test data behind the Source interface.
type memSource struct {
	groups   map[string][]inventory.Group
	projects map[string][]inventory.Project
	calls    map[string]int64
	err      error // returned by Projects when set
}

func (s *memSource) Groups(ctx context.Context, runID string, fn func(inventory.Group) error) error {
	for _, g := range s.groups[runID] {
		if err := fn(g); err != nil {
			return err
		}
	}
	return nil
}

func (s *memSource) Projects(ctx context.Context, runID string, fn func(inventory.Project) error) error {
	if s.err != nil {
		return s.err
	}
	for _, p := range s.projects[runID] {
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

func (s *memSource) APICalls(ctx context.Context, runID string) (int64, error) {
	return s.calls[runID], nil
}

func ptr(n int64) *int64 { return &n }

var (
	t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(90 * time.Minute)
)

func testRun(id string) inventory.Run {
	return inventory.Run{ID: id, GitLabURL: "https://gitlab.example.com", RootGroups: []string{"acme"},
		Status: inventory.RunExporting, StartedAt: t0, FinishedAt: t1}
}

// project returns a fully scanned project with a readiness verdict.
func project(id int64, path string, repoSize int64) inventory.Project {
	p := inventory.Project{
		ID:                id,
		PathWithNamespace: path,
		Name:              filepath.Base(path),
		GroupID:           10,
		GroupFullPath:     filepath.Dir(path),
		Visibility:        "private",
		DefaultBranch:     "main",
		CreatedAt:         t0.Add(-365 * 24 * time.Hour),
		LastActivityAt:    t0.Add(-time.Hour),
		WebURL:            "https://gitlab.example.com/" + path,
		Statistics:        &inventory.Statistics{RepositorySize: repoSize, StorageSize: repoSize, CommitCount: 42},
		Counts: inventory.Counts{Branches: ptr(3), Tags: ptr(1), MergeRequests: ptr(20), OpenMergeRequests: ptr(2),
			Issues: ptr(5), OpenIssues: ptr(1), Pipelines: ptr(100), Releases: ptr(0), Webhooks: ptr(0),
			ProtectedBranches: ptr(0), CIVariables: ptr(0), Environments: ptr(0)},
		Features: inventory.Features{HasCI: new(false), UsesLFS: new(false), HasSubmodules: new(false),
			HasCodeowners: new(false), RegistryInUse: new(false), PackageTypes: []string{}},
		ScanStatus: inventory.StatusComplete,
		Errors:     []inventory.ScanError{},
	}
	r := readiness.Assess(p, gei)
	p.Readiness = &r
	return p
}

// gei is the thresholds of the path with size blockers: a 41 GiB project is blocked.
var gei = func() readiness.Thresholds {
	t, err := readiness.PathThresholds(readiness.PathGEI)
	if err != nil {
		panic(err)
	}
	return t
}()

func newSource(runID string, projects ...inventory.Project) *memSource {
	return &memSource{
		groups: map[string][]inventory.Group{runID: {
			{ID: 10, FullPath: "acme", Projects: len(projects), ScanStatus: inventory.StatusComplete},
		}},
		projects: map[string][]inventory.Project{runID: projects},
		calls:    map[string]int64{runID: 1234},
	}
}

// writeDir runs Write into a temporary DirSink and returns the directory.
func writeDir(t *testing.T, src Source, run inventory.Run, prev *inventory.Run) (string, inventory.Summary) {
	t.Helper()
	dir := t.TempDir()
	sum, err := Write(t.Context(), src, DirSink{Dir: dir}, run, prev)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return dir, sum
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const wantHeader = "project_id,path_with_namespace,name,group_full_path,visibility,archived,fork,mirror,empty_repo,default_branch,created_at,last_activity_at,web_url,repository_size_bytes,lfs_objects_size_bytes,wiki_size_bytes,packages_size_bytes,container_registry_size_bytes,job_artifacts_size_bytes,storage_size_bytes,commit_count,branches,tags,merge_requests,open_merge_requests,issues,open_issues,pipelines,releases,webhooks,protected_branches,ci_variables,has_ci,ci_jobs,uses_lfs,has_submodules,has_codeowners,readiness,complexity_score,size_class,blockers,scan_status,errors"

const wantExtra = "snippets_size_bytes,uploads_size_bytes,ci_complexity,ci_constructs,registry_in_use,package_types,wiki_enabled,lower_bound_counts,findings"

func TestHeaders(t *testing.T) {
	dir, _ := writeDir(t, newSource("r1", project(1, "acme/a", 10)), testRun("r1"), nil)
	line, _, _ := strings.Cut(string(readFile(t, filepath.Join(dir, "runs/r1/projects.csv"))), "\n")
	if !strings.HasPrefix(line, wantHeader+","+wantExtra) {
		t.Errorf("projects.csv header\n got %s\nwant prefix %s,%s", line, wantHeader, wantExtra)
	}
	line, _, _ = strings.Cut(string(readFile(t, filepath.Join(dir, "runs/r1/groups.csv"))), "\n")
	if want := "group_id,full_path,parent_id,projects,subgroups,scan_status," +
		"subtree_projects,subtree_storage_size_bytes,subtree_export_size_bytes,subtree_ready,subtree_needs_attention,subtree_blocked,subtree_unknown_size"; line != want {
		t.Errorf("groups.csv header %q, want %q", line, want)
	}
}

// readCSV parses a CSV file into maps keyed by header.
func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out
}

func TestProjectsCSVValues(t *testing.T) {
	tricky := project(1, "acme/tricky", 10)
	tricky.Name = "a, \"quoted\"\nname;x"
	tricky.PathWithNamespace = "acme/=HYPERLINK(\"x\")"
	tricky.CreatedAt = time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("CEST", 2*3600))
	tricky.Errors = []inventory.ScanError{{Step: "hooks", Status: 403, Message: "403 Forbidden"}, {Step: "statistics", Status: 0, Message: "budget spent"}}
	tricky.ScanStatus = inventory.StatusPartial
	tricky.Features = inventory.Features{HasCI: new(true), CI: &inventory.CI{Jobs: 4, JobsLowerBound: true, Constructs: []string{"needs", "rules"}, Complexity: 20},
		PackageTypes: []string{"maven", "npm"}, RegistryInUse: new(true), WikiEnabled: true,
		HasSubmodules: new(false), HasCodeowners: new(false), UsesLFS: new(false),
		CIConfigPath: "ci.yml@platform/ci", CIConfigExternal: "platform/ci"}
	tricky.Counts.LowerBounds = []string{"pipelines"}
	tricky.Statistics.RepositorySize = 41 << 30
	r := readiness.Assess(tricky, gei)
	tricky.Readiness = &r

	unknown := inventory.Project{ID: 2, PathWithNamespace: "acme/unknown", GroupID: 10, ScanStatus: inventory.StatusForbidden,
		Features: inventory.Features{HasCI: new(true), CI: &inventory.CI{Invalid: true}}}

	dir, _ := writeDir(t, newSource("r1", tricky, unknown), testRun("r1"), nil)
	rows := readCSV(t, filepath.Join(dir, "runs/r1/projects.csv"))
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	want := map[string]string{
		"project_id":            "1",
		"name":                  "a, \"quoted\"\nname;x",
		"path_with_namespace":   "acme/=HYPERLINK(\"x\")", // the formula does not begin the cell: unchanged
		"created_at":            "2024-01-02T01:04:05Z",
		"archived":              "false",
		"has_ci":                "true",
		"ci_jobs":               "4",
		"ci_jobs_lower_bound":   "true",
		"ci_complexity":         "20",
		"ci_constructs":         "needs;rules",
		"package_types":         "maven;npm",
		"registry_in_use":       "true",
		"has_submodules":        "false",
		"has_codeowners":        "false",
		"uses_lfs":              "false",
		"ci_config_path":        "ci.yml@platform/ci",
		"ci_config_external":    "platform/ci",
		"repository_size_bytes": "44023414784",
		"export_size_bytes":     "44023414784",
		"readiness":             "blocked",
		"blockers":              "export_too_large;repo_too_large",
		"errors":                "hooks:403:403 Forbidden;statistics:0:budget spent",
		"scan_status":           "partial",
		"lower_bound_counts":    "pipelines",
		"size_class":            "XL",
		"findings":              findingCodes(r.Findings, ""),
		"tier":                  "blocker",
		"effort_hours":          strconv.FormatInt(r.EffortHours, 10),
		"effort":                "XL",
		"migration_path":        "gei",
	}
	for k, v := range want {
		if rows[0][k] != v {
			t.Errorf("row 1 %s = %q, want %q", k, rows[0][k], v)
		}
	}
	// Unknown values are empty, never 0 or false.
	for _, k := range []string{"has_submodules", "has_codeowners", "uses_lfs", "registry_in_use", "package_types", "repository_size_bytes", "storage_size_bytes", "commit_count", "branches", "merge_requests",
		"webhooks", "ci_variables", "ci_jobs", "ci_jobs_lower_bound", "ci_complexity", "size_class", "created_at", "export_size_bytes"} {
		if rows[1][k] != "" {
			t.Errorf("row 2 %s = %q, want empty", k, rows[1][k])
		}
	}
	if rows[1]["readiness"] == "" || rows[1]["findings"] == "" {
		t.Errorf("row 2 was not assessed: %v", rows[1])
	}
}

func TestProjectsJSONLRoundTrip(t *testing.T) {
	a := project(1, "acme/a", 10)
	a.Name = "<script>&\u2028"
	a.Counts.LowerBounds = []string{"issues"}
	a.Features.CI = &inventory.CI{Jobs: 1, Constructs: []string{}, Complexity: 2}
	a.Features.PackageTypes = []string{"npm"}
	b := project(2, "acme/b", 20)
	b.Statistics = nil
	b.Counts.Issues = nil
	b.Errors = []inventory.ScanError{{Step: "issues", Status: 403, Message: "403 Forbidden"}}
	b.Features.PackageTypes = []string{}
	in := []inventory.Project{a, b}

	dir, _ := writeDir(t, newSource("r1", in...), testRun("r1"), nil)
	in[0].Wave, in[1].Wave = 1, 1 // the export's, not the store's
	f, err := os.Open(filepath.Join(dir, "runs/r1/projects.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []inventory.Project
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p inventory.Project
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("line %d: %v", len(got)+1, err)
		}
		got = append(got, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, in)
	}
}

func TestJSONLShape(t *testing.T) {
	p := inventory.Project{ID: 7, PathWithNamespace: "acme/x", ScanStatus: inventory.StatusComplete}
	dir, _ := writeDir(t, newSource("r1", p), testRun("r1"), nil)
	var m map[string]any
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "runs/r1/projects.jsonl")), &m); err != nil {
		t.Fatal(err)
	}
	if errs, ok := m["errors"].([]any); !ok || len(errs) != 0 {
		t.Errorf("errors = %#v, want []", m["errors"])
	}
	r, _ := m["readiness"].(map[string]any)
	for _, k := range []string{"category", "score", "size_class", "findings"} {
		if _, ok := r[k]; !ok {
			t.Errorf("readiness has no %q: %v", k, r)
		}
	}
	if fs, ok := r["findings"].([]any); !ok || fs == nil {
		t.Errorf("findings = %#v, want a list", r["findings"])
	}
	if m["statistics"] != nil {
		t.Errorf("unknown statistics = %v, want null", m["statistics"])
	}
	// Unknown features are null, never false or []; a known none is false or [].
	f, _ := m["features"].(map[string]any)
	for _, k := range []string{"has_ci", "uses_lfs", "has_submodules", "has_codeowners", "registry_in_use", "package_types"} {
		if v, ok := f[k]; !ok || v != nil {
			t.Errorf("unknown features.%s = %#v (present %v), want null", k, v, ok)
		}
	}
	for _, k := range []string{"ci_config_path", "ci_config_external"} {
		if v, ok := f[k]; ok {
			t.Errorf("features.%s = %#v, want it left out when empty", k, v)
		}
	}
	known := inventory.Project{ID: 8, ScanStatus: inventory.StatusComplete, Features: inventory.Features{
		HasCI: new(false), UsesLFS: new(false), HasSubmodules: new(false), HasCodeowners: new(false),
		RegistryInUse: new(false), PackageTypes: []string{}}}
	dir, _ = writeDir(t, newSource("r2", known), testRun("r2"), nil)
	want := `"has_ci":false,"uses_lfs":false,"has_submodules":false,"has_codeowners":false,"wiki_enabled":false,"registry_in_use":false,"package_types":[]`
	if b := readFile(t, filepath.Join(dir, "runs/r2/projects.jsonl")); !bytes.Contains(b, []byte(want)) {
		t.Errorf("known-false features:\n%s\nwant them as\n%s", b, want)
	}
}

func TestLayout(t *testing.T) {
	src := newSource("r2", project(1, "acme/a", 10))
	src.projects["r1"] = []inventory.Project{project(1, "acme/a", 10)}
	prev := testRun("r1")

	for _, tt := range []struct {
		name     string
		prev     *inventory.Run
		wantDiff bool
	}{{"first run", nil, false}, {"with previous run", &prev, true}} {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := writeDir(t, src, testRun("r2"), tt.prev)
			var got []string
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dir, path)
					got = append(got, filepath.ToSlash(rel))
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, prefix := range []string{"latest/", "runs/r2/"} {
				for _, n := range []string{"dependencies.csv", "groups.csv", "inventory.xlsx", "projects.csv", "projects.jsonl", "report.html", "summary.json"} {
					want = append(want, prefix+n)
				}
				if tt.wantDiff {
					want = append(want, prefix+"diff.json")
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("files\n got %v\nwant %v", got, want)
			}
			for _, n := range want[:len(want)/2] {
				latest := readFile(t, filepath.Join(dir, n))
				run := readFile(t, filepath.Join(dir, strings.Replace(n, "latest/", "runs/r2/", 1)))
				if !bytes.Equal(latest, run) || len(run) == 0 {
					t.Errorf("%s differs from its run copy or is empty", n)
				}
			}
		})
	}
}

// recordingSink keeps the order of Puts and their content types.
type recordingSink struct {
	DirSink
	names, types []string
}

func (s *recordingSink) Put(ctx context.Context, name, contentType string, body io.Reader) error {
	s.names = append(s.names, name)
	s.types = append(s.types, contentType)
	return s.DirSink.Put(ctx, name, contentType, body)
}

func TestPutOrder(t *testing.T) {
	sink := &recordingSink{DirSink: DirSink{Dir: t.TempDir()}}
	if _, err := Write(t.Context(), newSource("r1", project(1, "acme/a", 1)), sink, testRun("r1"), nil); err != nil {
		t.Fatal(err)
	}
	latest := slices.IndexFunc(sink.names, func(n string) bool { return strings.HasPrefix(n, "latest/") })
	if latest != len(sink.names)/2 || slices.ContainsFunc(sink.names[:latest], func(n string) bool { return !strings.HasPrefix(n, "runs/r1/") }) {
		t.Errorf("runs/r1/ must be written completely before latest/: %v", sink.names)
	}
	if last := sink.names[len(sink.names)-1]; last != "latest/summary.json" {
		t.Errorf("last put %s, want latest/summary.json", last)
	}
	for i, n := range sink.names {
		if sink.types[i] == "" {
			t.Errorf("%s put without a content type", n)
		}
	}
}

func TestDirSink(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := DirSink{Dir: dir}

	if err := s.Put(ctx, "a/b/c.txt", "text/plain", strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a/b/c.txt", "text/plain", strings.NewReader("two")); err != nil {
		t.Fatal(err)
	}
	if got := string(readFile(t, filepath.Join(dir, "a/b/c.txt"))); got != "two" {
		t.Errorf("content %q, want two", got)
	}

	// A failing body leaves the old file and no temporary file behind.
	failing := io.MultiReader(strings.NewReader("partial"), iotestErrReader{})
	if err := s.Put(ctx, "a/b/c.txt", "text/plain", failing); err == nil {
		t.Error("Put with a failing body succeeded")
	}
	if got := string(readFile(t, filepath.Join(dir, "a/b/c.txt"))); got != "two" {
		t.Errorf("after a failed put content %q, want two", got)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "a/b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}

	for _, name := range []string{"", "../escape", "/abs/path", "a/../../x", "dir/"} {
		if err := s.Put(ctx, name, "text/plain", strings.NewReader("x")); err == nil {
			t.Errorf("Put(%q) succeeded, want an error", name)
		}
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(cancelled, "x.txt", "text/plain", strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context: %v, want context.Canceled", err)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

var externalRef = regexp.MustCompile(`(?i)(src|href|xlink:href|action)\s*=\s*["']?[^"'>\s]*(https?:|//)`)

func TestReport(t *testing.T) {
	evil := project(1, "acme/<script>alert(1)</script>", 41<<30)
	evil.Name = "<script>alert(1)</script>"
	r := readiness.Assess(evil, gei)
	evil.Readiness = &r
	src := newSource("r1", evil, project(2, "acme/plain", 1<<20))
	src.groups["r1"][0].FullPath = `acme"><img src=x>`

	dir, _ := writeDir(t, src, testRun("r1"), nil)
	html := string(readFile(t, filepath.Join(dir, "runs/r1/report.html")))

	if m := externalRef.FindString(html); m != "" {
		t.Errorf("report references an external resource: %s", m)
	}
	for _, bad := range []string{"<script", "<img", "<link", "@import", "url("} {
		if strings.Contains(html, bad) {
			t.Errorf("report contains %q", bad)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;", // the project path, escaped
		"<svg",                                  // charts
		"repo_too_large",                        // top findings
		"Flagged projects",
		"1234", // API calls
		"Readiness by tier",
		"Migration path: <strong>gei</strong> (GitHub Enterprise Importer)",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report does not contain %q", want)
		}
	}
}

// TestFindingsBlockersFirst: the report's findings table lists blockers first, then
// data, CI, settings and info, by number of projects within a tier.
func TestFindingsBlockersFirst(t *testing.T) {
	a := newAggregate()
	for code, n := range map[string]int{"default_branch_protected": 90, "webhooks": 50, "gitlab_ci": 40, "lfs": 10,
		"repo_too_large": 1, "export_too_large": 2, "packages": 20, "retired_rule": 99} {
		a.findings[code] = n
	}
	var got []string
	for _, f := range a.topFindings() {
		got = append(got, f.Code)
	}
	want := []string{"export_too_large", "repo_too_large", "packages", "lfs", "gitlab_ci", "webhooks", "retired_rule", "default_branch_protected"}
	if !slices.Equal(got, want) {
		t.Errorf("findings order %v, want %v", got, want)
	}
}

func TestGrown(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		prev, cur int64
		want      bool
	}{
		{100, 110, false}, // exactly 10%
		{100, 111, true},
		{1000 * mib, 1100 * mib, false}, // exactly 10% and exactly 100 MiB
		{1000 * mib, 1100*mib + 1, true},
		{5000 * mib, 5100 * mib, false}, // exactly 100 MiB, 2%
		{5000 * mib, 5100*mib + 1, true},
		{0, 1, true},
		{100, 100, false},
		{100, 50, false},
	}
	for _, tt := range tests {
		if got := Grown(tt.prev, tt.cur); got != tt.want {
			t.Errorf("Grown(%d, %d) = %v, want %v", tt.prev, tt.cur, got, tt.want)
		}
	}
}

func TestSummary(t *testing.T) {
	blocked := project(3, "acme/sub/big", 41<<30)
	blocked.GroupID = 11
	partial := project(2, "acme/partial", 1)
	partial.Errors = []inventory.ScanError{{Step: "hooks", Status: 403}}
	partial.ScanStatus = inventory.StatusPartial
	partial.Statistics = nil
	partial.Readiness = nil // assessed by Write
	src := newSource("r1", project(1, "acme/a", 1), partial, blocked)
	src.groups["r1"] = append(src.groups["r1"], inventory.Group{ID: 11, FullPath: "acme/sub", ParentID: 10, Projects: 1, ScanStatus: inventory.StatusComplete})

	run := testRun("r1")
	_, sum := writeDir(t, src, run, nil)
	want := inventory.Summary{
		RunID: "r1", GitLabURL: "https://gitlab.example.com", RootGroups: []string{"acme"},
		StartedAt: t0, FinishedAt: t1, Groups: 2, Projects: 3, APICalls: 1234, Errors: 1,
		// The partial project's only finding is info (incomplete_scan): it stays ready.
		ByReadiness: map[string]int{inventory.Ready: 2, inventory.NeedsAttention: 0, inventory.Blocked: 1},
		ByTier: map[string]int{readiness.TierBlocker: 1, readiness.TierData: 0, readiness.TierCI: 0,
			readiness.TierSettings: 0, readiness.TierNone: 2},
		// Stored verdicts assumed gei; Write assessed the partial one on the default path.
		MigrationPath: "gei,mirror",
		ByStatus:      map[string]int{inventory.StatusComplete: 2, inventory.StatusPartial: 1},
		BySizeClass:   map[string]int{"S": 1, "XL": 1, "unknown": 1},
		Status:        inventory.RunSucceeded,
	}
	if !reflect.DeepEqual(sum, want) {
		t.Errorf("summary\n got %+v\nwant %+v", sum, want)
	}

	dir, _ := writeDir(t, src, run, nil)
	var fromFile inventory.Summary
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "latest/summary.json")), &fromFile); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromFile, want) {
		t.Errorf("summary.json\n got %+v\nwant %+v", fromFile, want)
	}

	run.Status = inventory.RunFailed
	if _, sum := writeDir(t, src, run, nil); sum.Status != inventory.RunFailed {
		t.Errorf("failed run exported with status %q", sum.Status)
	}
}

func TestGroupRollUp(t *testing.T) {
	a := newAggregate()
	a.addGroup(inventory.Group{ID: 1, FullPath: "root"})
	a.addGroup(inventory.Group{ID: 2, FullPath: "root/sub", ParentID: 1})
	a.addGroup(inventory.Group{ID: 3, FullPath: "root/sub/deep", ParentID: 2})
	a.addGroup(inventory.Group{ID: 4, FullPath: "other"})
	add := func(id, group int64, category string, size int64) {
		a.addProject(&inventory.Project{ID: id, GroupID: group, Statistics: &inventory.Statistics{RepositorySize: size},
			Readiness: &inventory.Readiness{Category: category}})
	}
	add(1, 3, inventory.Blocked, 100)
	add(2, 3, inventory.Ready, 1)
	add(3, 2, inventory.NeedsAttention, 10)
	add(4, 4, inventory.Ready, 1)
	add(5, 99, inventory.Ready, 1) // group record missing

	got := map[string][5]int64{}
	for _, g := range a.rollUp(10) {
		got[g.Path] = [5]int64{int64(g.Projects), int64(g.Ready), int64(g.NeedsAttention), int64(g.Blocked), g.ExportSize}
	}
	want := map[string][5]int64{
		"root":          {3, 1, 1, 1, 111},
		"root/sub":      {3, 1, 1, 1, 111},
		"root/sub/deep": {2, 1, 0, 1, 101},
		"other":         {1, 1, 0, 0, 1},
		"":              {1, 1, 0, 0, 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("roll-up\n got %v\nwant %v", got, want)
	}
	if top := a.rollUp(2); len(top) != 2 || top[0].Path != "root" || top[1].Path != "root/sub" {
		t.Errorf("top 2 groups = %v", top)
	}
}

func TestFlaggedBoundedAndOrdered(t *testing.T) {
	a := newAggregate()
	for i := range 1000 {
		cat := inventory.NeedsAttention
		if i%100 == 0 {
			cat = inventory.Blocked
		}
		if i%3 == 0 && cat != inventory.Blocked {
			cat = inventory.Ready
		}
		a.addProject(&inventory.Project{ID: int64(i), Readiness: &inventory.Readiness{Category: cat, Score: i % 97}})
	}
	got := a.flagged.sorted()
	if len(got) != maxFlagged {
		t.Fatalf("%d flagged, want %d", len(got), maxFlagged)
	}
	for i, p := range got {
		if i < 10 && p.Category != inventory.Blocked {
			t.Fatalf("item %d is %s, want the 10 blocked first", i, p.Category)
		}
		if p.Category == inventory.Ready {
			t.Fatalf("ready project %d flagged", p.ID)
		}
		if i > 0 && got[i-1].Category == p.Category && got[i-1].Score < p.Score {
			t.Fatalf("scores out of order at %d: %d then %d", i, got[i-1].Score, p.Score)
		}
	}
	// The cut keeps the highest scores: every needs_attention project left out scores
	// no higher than the lowest kept.
	lowest := got[len(got)-1].Score
	for i := range 1000 {
		if i%100 != 0 && i%3 != 0 && i%97 > lowest && !slices.ContainsFunc(got, func(p projectItem) bool { return p.ID == int64(i) }) {
			t.Fatalf("project %d (score %d) left out while %d kept", i, i%97, lowest)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	sink := DirSink{Dir: dir}
	boom := errors.New("store unavailable")
	src := newSource("r1", project(1, "acme/a", 1))
	src.err = boom
	if _, err := Write(t.Context(), src, sink, testRun("r1"), nil); !errors.Is(err, boom) {
		t.Errorf("source error: %v, want it wrapped", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "latest")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("latest/ written despite the error")
	}

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Write(cancelled, newSource("r1", project(1, "acme/a", 1)), sink, testRun("r1"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}

	for _, id := range []string{"", "..", "a/b", `a\b`} {
		if _, err := Write(t.Context(), newSource(id), sink, testRun(id), nil); err == nil {
			t.Errorf("run id %q accepted", id)
		}
	}
}

func TestWriteDoesNotChangeSource(t *testing.T) {
	p := project(1, "acme/a", 1)
	p.Readiness.Findings = nil
	p.Errors = nil
	src := newSource("r1", p)
	writeDir(t, src, testRun("r1"), nil)
	if got := src.projects["r1"][0]; got.Readiness.Findings != nil || got.Errors != nil {
		t.Errorf("Write changed the source's project: %+v", got)
	}
}

// benchProjects generates n projects of a run, as a store would hold them.
func benchProjects(runID string, n int) []inventory.Project {
	out := make([]inventory.Project, 0, n)
	for i := range n {
		g := i%100 + 1
		p := project(int64(i+1), fmt.Sprintf("acme/team-%02d/service-%05d", g-1, i), int64(i%5000)<<20)
		p.GroupID = int64(g)
		p.Features = inventory.Features{HasCI: new(i%2 == 0), WikiEnabled: true, PackageTypes: []string{}}
		if *p.Features.HasCI {
			p.Features.CI = &inventory.CI{Jobs: i % 30, Stages: 3, Constructs: []string{"needs", "rules"}, Complexity: i % 100}
		}
		if i%7 == 0 {
			p.Errors = []inventory.ScanError{{Step: "hooks", Status: 403, Message: "403 Forbidden"}}
			p.ScanStatus = inventory.StatusPartial
			p.Counts.Webhooks = nil
		}
		if i%500 == 0 {
			p.Statistics.RepositorySize = 41 << 30
		}
		if runID == "prev" && i%10 == 0 {
			p.Statistics.RepositorySize /= 2
		}
		r := readiness.Assess(p, gei)
		p.Readiness = &r
		out = append(out, p)
	}
	return out
}

// countingSink counts the bytes of one copy of the exports (runs/<id>/) written
// through a DirSink.
type countingSink struct {
	DirSink
	bytes int64
}

func (s *countingSink) Put(ctx context.Context, name, contentType string, body io.Reader) error {
	if err := s.DirSink.Put(ctx, name, contentType, body); err != nil || !strings.HasPrefix(name, "runs/") {
		return err
	}
	st, err := os.Stat(filepath.Join(s.Dir, filepath.FromSlash(name)))
	if err != nil {
		return err
	}
	s.bytes += st.Size()
	return nil
}

// BenchmarkWrite exports 10,000 projects against a previous run of 10,000.
func BenchmarkWrite(b *testing.B) {
	const n = 10000
	src := newSource("bench", benchProjects("bench", n)...)
	src.projects["prev"] = benchProjects("prev", n)
	src.groups["bench"] = nil
	for i := range 100 {
		src.groups["bench"] = append(src.groups["bench"], inventory.Group{ID: int64(i + 1), FullPath: fmt.Sprintf("acme/team-%02d", i), Projects: n / 100})
	}
	prev := testRun("prev")
	sink := &countingSink{DirSink: DirSink{Dir: b.TempDir()}}
	b.ReportAllocs()
	for b.Loop() {
		sink.bytes = 0
		if _, err := Write(b.Context(), src, sink, testRun("bench"), &prev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(sink.bytes)/n, "bytes/project")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/project")
}

// TestFlaggedByTier: among needs_attention projects the report lists data before CI
// before settings, whatever the score; blocked projects come first.
func TestFlaggedByTier(t *testing.T) {
	top := newTopN(10, flaggedLess)
	for _, it := range []projectItem{
		{ID: 1, Category: inventory.NeedsAttention, Tier: readiness.TierSettings, Score: 90},
		{ID: 2, Category: inventory.NeedsAttention, Tier: readiness.TierCI, Score: 50},
		{ID: 3, Category: inventory.NeedsAttention, Tier: readiness.TierData, Score: 10},
		{ID: 4, Category: inventory.Blocked, Tier: readiness.TierBlocker, Score: 1},
		{ID: 5, Category: inventory.NeedsAttention, Tier: readiness.TierCI, Score: 70},
	} {
		top.offer(it)
	}
	var got []int64
	for _, it := range top.sorted() {
		got = append(got, it.ID)
	}
	if want := []int64{4, 3, 5, 2, 1}; !slices.Equal(got, want) {
		t.Errorf("flagged order %v, want %v", got, want)
	}
}
