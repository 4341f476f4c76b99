// Package scancheck compares a scan's records with the GitLab simulator's ground truth.
// Tests and benchmarks of every runtime (local, Lambda under RIE) use it, so "the scan
// equals the truth" means one thing everywhere.
package scancheck

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gl2gh/discovery-agent/internal/facts"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// stepsOf maps an endpoint class the simulator can forbid to the profile steps it fails.
var stepsOf = facts.StepsOf()

// Diff lists every difference between scanned records and the truth; empty means equal.
// Readiness and the CI complexity score are the scanner's own judgement and are not
// compared. Projects the simulator forbids or deletes must carry the matching errors
// and status; their other facts must still be equal.
func Diff(truth gitlabsim.Truth, groups []inventory.Group, projects []inventory.Project) []string {
	var diffs []string
	add := func(format string, args ...any) {
		if len(diffs) < 50 {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}

	gotG := map[int64]inventory.Group{}
	for _, g := range groups {
		if _, dup := gotG[g.ID]; dup {
			add("group %d appears twice", g.ID)
		}
		gotG[g.ID] = g
	}
	for _, want := range truth.Groups {
		got, ok := gotG[want.ID]
		if !ok {
			add("group %d %s missing", want.ID, want.FullPath)
			continue
		}
		delete(gotG, want.ID)
		if got != want {
			add("group %d: got %+v, want %+v", want.ID, got, want)
		}
	}
	for id := range gotG {
		add("group %d is not in the truth", id)
	}

	deleted := map[int64]bool{}
	for _, id := range truth.Faults.Deleted {
		deleted[id] = true
	}
	// Owners are compared when the scan asked for members (INCLUDE_MEMBERS): then every
	// project must have them, or the error of a failed members step.
	owners := membersAsked(projects)
	gotP := map[int64]inventory.Project{}
	for _, p := range projects {
		if _, dup := gotP[p.ID]; dup {
			add("project %d appears twice", p.ID)
		}
		gotP[p.ID] = p
	}
	for _, want := range truth.Projects {
		got, ok := gotP[want.ID]
		if !ok {
			add("project %d %s missing", want.ID, want.PathWithNamespace)
			continue
		}
		delete(gotP, want.ID)
		if !owners {
			want.Owners = nil
		}
		for _, d := range diffProject(want, got, deleted[want.ID], truth.Faults.Forbidden[want.ID]) {
			add("project %d %s: %s", want.ID, want.PathWithNamespace, d)
		}
	}
	for id := range gotP {
		add("project %d is not in the truth", id)
	}
	return diffs
}

// membersAsked reports whether a scan read members: some project has owners, or a
// members step failed. A scan without INCLUDE_MEMBERS has neither.
func membersAsked(projects []inventory.Project) bool {
	for _, p := range projects {
		if p.Owners != nil || slices.ContainsFunc(p.Errors, func(e inventory.ScanError) bool { return e.Step == facts.Members.Name }) {
			return true
		}
	}
	return false
}

func diffProject(want, got inventory.Project, deleted bool, forbidden []string) []string {
	if deleted {
		if got.ScanStatus != inventory.StatusNotFound {
			return []string{fmt.Sprintf("deleted project has scan_status %q, want not_found", got.ScanStatus)}
		}
		return nil
	}
	var out []string
	allowed := map[string]bool{}
	// Forbidden on every project endpoint (the simulator's "*", expanded): nothing
	// about the project can be read beyond the listing.
	everything := slices.Contains(forbidden, "*")
	if !everything {
		everything = true
		for e := range stepsOf {
			everything = everything && slices.Contains(forbidden, e)
		}
	}
	for _, e := range forbidden {
		for _, s := range stepsOf[e] {
			allowed[s] = true
		}
	}
	failed := map[string]bool{}
	for _, e := range got.Errors {
		failed[e.Step] = true
		if e.Status != 403 || !(everything || allowed[e.Step]) {
			out = append(out, fmt.Sprintf("unexpected error %+v", e))
		}
	}
	switch {
	case everything && got.ScanStatus != inventory.StatusForbidden:
		out = append(out, fmt.Sprintf("scan_status %q, want forbidden", got.ScanStatus))
	case len(forbidden) > 0 && !everything:
		// Counts never skipped are always asked for, so their 403s must show.
		for _, f := range facts.Counts {
			if f.Skip == nil && !f.Listed() && slices.Contains(forbidden, f.Endpoint) && !failed[f.Name] {
				out = append(out, fmt.Sprintf("403 on %s not recorded", f.Endpoint))
			}
		}
		if got.ScanStatus != inventory.StatusPartial && len(got.Errors) > 0 {
			out = append(out, fmt.Sprintf("scan_status %q, want partial", got.ScanStatus))
		}
	case len(forbidden) == 0 && got.ScanStatus != inventory.StatusComplete:
		out = append(out, fmt.Sprintf("scan_status %q, want complete", got.ScanStatus))
	}
	w, g := expect(verdictless(want), failed, got), verdictless(got)
	out = append(out, fieldDiffs(w, g)...)
	return out
}

// verdictless blanks what is not compared: the verdict, the scan status and errors
// (checked apart), and the CI complexity score.
func verdictless(p inventory.Project) inventory.Project {
	p.Readiness = nil
	p.ScanStatus = ""
	p.LastProfiledAt = time.Time{} // when, not what: the truth has no such fact
	// Stale judges last_activity_at (compared) against the run's start and
	// STALE_AFTER, which the truth does not know: DiffSummary checks the count.
	p.Stale = nil
	p.Wave = 0 // the export's plan (DiffDependencies checks it)
	p.Errors = nil
	if p.Features.CI != nil {
		ci := *p.Features.CI
		ci.Complexity = 0
		p.Features.CI = &ci
	}
	if len(p.Counts.LowerBounds) == 0 {
		p.Counts.LowerBounds = nil
	}
	p.CreatedAt = p.CreatedAt.UTC()
	p.LastActivityAt = p.LastActivityAt.UTC()
	return p
}

// expect is what a scan whose steps in failed failed must report: the facts those
// steps find out are unknown (nil), never false or 0. got settles the one fact two
// steps find out (CODEOWNERS in docs/ or .gitlab/): found by the other, it is known.
func expect(p inventory.Project, failed map[string]bool, got inventory.Project) inventory.Project {
	c := &p.Counts
	for _, f := range facts.Counts {
		if failed[f.Name] {
			*f.Field(c) = nil
			c.LowerBounds = slices.DeleteFunc(c.LowerBounds, func(s string) bool { return s == f.Name })
		}
	}
	if len(c.LowerBounds) == 0 {
		c.LowerBounds = nil
	}
	if failed[facts.Statistics.Name] {
		p.Statistics = nil
	}
	f := &p.Features
	lfs := func() *bool { // statistics settle LFS whatever the files say
		if p.Statistics != nil && p.Statistics.LFSObjectsSize > 0 {
			return new(true)
		}
		return nil
	}
	if failed[facts.Tree.Name] {
		f.CI, f.HasSubmodules, f.HasCodeowners, f.UsesLFS, f.Submodules = nil, nil, nil, lfs(), nil
		if f.CIConfigExternal == "" {
			f.HasCI = nil
		}
	}
	if (failed[facts.TreeDocs.Name] || failed[facts.TreeGitlab.Name]) && got.Features.HasCodeowners == nil {
		f.HasCodeowners = nil
	}
	if failed[facts.TreeCIConfig.Name] {
		f.HasCI, f.CI = nil, nil
	}
	if failed[facts.CIFile.Name] || failed[facts.CIIncludeFile.Name] {
		f.CI = nil
	}
	if failed[facts.SubmodulesFile.Name] {
		f.Submodules = nil
	}
	if failed[facts.AttributesFile.Name] {
		f.UsesLFS = lfs()
	}
	if failed[facts.Packages.Name] {
		f.PackageTypes = nil
	}
	if failed[facts.Registry.Name] {
		f.RegistryInUse = nil
	}
	if failed[facts.Members.Name] {
		p.Owners = nil
	}
	return p
}

// fieldDiffs names the differing fields by their JSON form, which is what exports hold.
func fieldDiffs(want, got inventory.Project) []string {
	if reflect.DeepEqual(want, got) {
		return nil
	}
	var w, g map[string]any
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	_ = json.Unmarshal(wb, &w)
	_ = json.Unmarshal(gb, &g)
	var out []string
	for k, wv := range w {
		if !reflect.DeepEqual(wv, g[k]) {
			out = append(out, fmt.Sprintf("%s: got %v, want %v", k, g[k], wv))
		}
	}
	for k, gv := range g { // fields left out of the truth when empty
		if _, ok := w[k]; !ok {
			out = append(out, fmt.Sprintf("%s: got %v, want none", k, gv))
		}
	}
	if len(out) == 0 { // equal as JSON but not as Go values (e.g. time zones)
		out = append(out, fmt.Sprintf("got %+v, want %+v", got, want))
	}
	slices.Sort(out)
	return out
}

// DiffSummary compares summary.json with the truth and the projects exported with
// it: the instance, and the stale count against each project's last_activity_at.
func DiffSummary(truth gitlabsim.Truth, sum inventory.Summary, projects []inventory.Project, staleAfter time.Duration) []string {
	var out []string
	if !reflect.DeepEqual(sum.Instance, truth.Instance) {
		out = append(out, fmt.Sprintf("instance: got %s, want %s", jsonOf(sum.Instance), jsonOf(truth.Instance)))
	}
	stale := 0
	for _, p := range projects {
		var want *bool // unknown without STALE_AFTER or a last activity
		if staleAfter > 0 && !p.LastActivityAt.IsZero() {
			want = new(p.LastActivityAt.Before(sum.StartedAt.Add(-staleAfter)))
		}
		if !reflect.DeepEqual(p.Stale, want) {
			out = append(out, fmt.Sprintf("project %d: stale %s, want %s", p.ID, jsonOf(p.Stale), jsonOf(want)))
		}
		if inventory.Is(want) {
			stale++
		}
	}
	if sum.Stale != stale {
		out = append(out, fmt.Sprintf("summary stale %d, want %d", sum.Stale, stale))
	}
	return out
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// ReadSummary reads summary.json.
func ReadSummary(dir string) (inventory.Summary, error) {
	var s inventory.Summary
	b, err := os.ReadFile(dir + "/summary.json")
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("summary.json: %w", err)
	}
	return s, nil
}

// ReadJSONL reads projects.jsonl.
func ReadJSONL(r io.Reader) ([]inventory.Project, error) {
	var ps []inventory.Project
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var p inventory.Project
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("projects.jsonl line %d: %w", len(ps)+1, err)
		}
		ps = append(ps, p)
	}
	return ps, sc.Err()
}

// ReadGroupsCSV reads groups.csv.
func ReadGroupsCSV(r io.Reader) ([]inventory.Group, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("groups.csv is empty")
	}
	var gs []inventory.Group
	for i, row := range rows[1:] {
		if len(row) < 6 {
			return nil, fmt.Errorf("groups.csv row %d: %d columns", i+2, len(row))
		}
		var g inventory.Group
		_, err := fmt.Sscan(row[0]+" "+row[2]+" "+row[3]+" "+row[4], &g.ID, &g.ParentID, &g.Projects, &g.Subgroups)
		if err != nil {
			return nil, fmt.Errorf("groups.csv row %d: %w", i+2, err)
		}
		g.FullPath, g.ScanStatus = row[1], row[5]
		gs = append(gs, g)
	}
	return gs, nil
}

// ReadExportDir reads the groups and projects of an export directory (runs/<id> or latest).
func ReadExportDir(dir string) ([]inventory.Group, []inventory.Project, error) {
	gf, err := os.Open(dir + "/groups.csv")
	if err != nil {
		return nil, nil, err
	}
	defer gf.Close()
	groups, err := ReadGroupsCSV(gf)
	if err != nil {
		return nil, nil, err
	}
	pf, err := os.Open(dir + "/projects.jsonl")
	if err != nil {
		return nil, nil, err
	}
	defer pf.Close()
	projects, err := ReadJSONL(pf)
	return groups, projects, err
}

// Logs collects output written from many goroutines (a logger's, a process's) so a test
// can read it afterwards, e.g. to check that the token appears in no log line.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
