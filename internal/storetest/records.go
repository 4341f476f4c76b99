package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

var recordChecks = []check{
	{"Records/StreamInAscendingIDOrder", streamOrder},
	{"Records/PutUpserts", upsert},
	{"Records/RewriteLeavesTheSameRecords", rewrite},
	{"Records/RoundTripEveryField", roundTrip},
	{"Records/RunsKeptApart", runsApart},
	{"Records/StreamStopsAtCallbackError", streamStops},
	{"Records/CallbackMayWrite", callbackWrites},
	{"GetProject/PresentAndAbsent", getProject},
}

// orderIDs break any order by string or by low byte.
var orderIDs = []int64{1, 2, 9, 10, 100, 255, 256, 65535, 65536, 1 << 40}

func groupIDs(t *testing.T, s discovery.Store, runID string) []int64 {
	t.Helper()
	var ids []int64
	if err := s.Groups(t.Context(), runID, func(g inventory.Group) error { ids = append(ids, g.ID); return nil }); err != nil {
		t.Fatalf("Groups(%s): %v", runID, err)
	}
	return ids
}

func projectIDs(t *testing.T, s discovery.Store, runID string) []int64 {
	t.Helper()
	var ids []int64
	if err := s.Projects(t.Context(), runID, func(p inventory.Project) error { ids = append(ids, p.ID); return nil }); err != nil {
		t.Fatalf("Projects(%s): %v", runID, err)
	}
	return ids
}

// snapshot is the run's records as JSON, in streaming order.
func snapshot(t *testing.T, s discovery.Store, runID string) []string {
	t.Helper()
	var recs []string
	add := func(kind string, v any) error {
		b, err := json.Marshal(v)
		recs = append(recs, kind+string(b))
		return err
	}
	if err := s.Groups(t.Context(), runID, func(g inventory.Group) error { return add("group", g) }); err != nil {
		t.Fatalf("Groups(%s): %v", runID, err)
	}
	if err := s.Projects(t.Context(), runID, func(p inventory.Project) error { return add("project", p) }); err != nil {
		t.Fatalf("Projects(%s): %v", runID, err)
	}
	return recs
}

func putBoth(t *testing.T, s discovery.Store, runID string, g inventory.Group, p inventory.Project) {
	t.Helper()
	if err := s.PutGroup(t.Context(), runID, g); err != nil {
		t.Fatalf("PutGroup(%s, %d): %v", runID, g.ID, err)
	}
	if err := s.PutProject(t.Context(), runID, p); err != nil {
		t.Fatalf("PutProject(%s, %d): %v", runID, p.ID, err)
	}
}

func streamOrder(t *testing.T, s discovery.Store) {
	createRuns(t, s, "r")
	if ids := slices.Concat(groupIDs(t, s, "r"), projectIDs(t, s, "r")); len(ids) != 0 {
		t.Errorf("a new run streamed records %v", ids)
	}
	shuffled := slices.Clone(orderIDs)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, id := range shuffled {
		putBoth(t, s, "r", inventory.Group{ID: id}, inventory.Project{ID: id})
	}
	if got := groupIDs(t, s, "r"); !slices.Equal(got, orderIDs) {
		t.Errorf("Groups streamed %v, want %v (written as %v)", got, orderIDs, shuffled)
	}
	if got := projectIDs(t, s, "r"); !slices.Equal(got, orderIDs) {
		t.Errorf("Projects streamed %v, want %v (written as %v)", got, orderIDs, shuffled)
	}
}

func upsert(t *testing.T, s discovery.Store) {
	createRuns(t, s, "r")
	for _, id := range orderIDs {
		putBoth(t, s, "r", inventory.Group{ID: id, FullPath: "old", ScanStatus: inventory.StatusPartial},
			inventory.Project{ID: id, Name: "old", ScanStatus: inventory.StatusPartial})
	}
	// A redelivered message writes the same keys again: the records are replaced.
	for _, id := range orderIDs {
		putBoth(t, s, "r", inventory.Group{ID: id, FullPath: fmt.Sprint("g", id), ScanStatus: inventory.StatusComplete},
			inventory.Project{ID: id, Name: fmt.Sprint("p", id), ScanStatus: inventory.StatusComplete})
	}
	var groups, projects []int64
	err := s.Groups(t.Context(), "r", func(g inventory.Group) error {
		if g.FullPath != fmt.Sprint("g", g.ID) || g.ScanStatus != inventory.StatusComplete {
			t.Errorf("group %d = %+v: the upsert kept the old record", g.ID, g)
		}
		groups = append(groups, g.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("Groups: %v", err)
	}
	err = s.Projects(t.Context(), "r", func(p inventory.Project) error {
		if p.Name != fmt.Sprint("p", p.ID) || p.ScanStatus != inventory.StatusComplete {
			t.Errorf("project %d = %s/%s: the upsert kept the old record", p.ID, p.Name, p.ScanStatus)
		}
		projects = append(projects, p.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("Projects: %v", err)
	}
	if !slices.Equal(groups, orderIDs) || !slices.Equal(projects, orderIDs) {
		t.Errorf("streamed groups %v and projects %v, want each of %v once", groups, projects, orderIDs)
	}
}

func rewrite(t *testing.T, s discovery.Store) {
	createRuns(t, s, "r")
	write := func() {
		for _, id := range []int64{3, 1, 2} {
			putBoth(t, s, "r", sampleGroup(id), sampleProject(id))
		}
	}
	write()
	once := snapshot(t, s, "r")
	if len(once) != 6 {
		t.Fatalf("streamed %d records after writing 3 groups and 3 projects", len(once))
	}
	write()
	if twice := snapshot(t, s, "r"); !slices.Equal(twice, once) {
		t.Errorf("writing the same records again changed the run:\n got %q\nwant %q", twice, once)
	}
}

func sampleGroup(id int64) inventory.Group {
	return inventory.Group{ID: id, FullPath: fmt.Sprint("acme/g", id), ParentID: 1, Projects: 4, Subgroups: 2, ScanStatus: inventory.StatusComplete}
}

func sampleProject(id int64) inventory.Project {
	return inventory.Project{
		ID: id, PathWithNamespace: fmt.Sprint("acme/p", id), Name: fmt.Sprint("p", id), GroupID: 1, GroupFullPath: "acme",
		Visibility: "private", Archived: true, DefaultBranch: "main",
		CreatedAt: t0.AddDate(-1, 0, 0), LastActivityAt: t0, WebURL: fmt.Sprint("https://gitlab.example/acme/p", id),
		Statistics: &inventory.Statistics{RepositorySize: 1 << 33},
		Readiness:  &inventory.Readiness{Category: "blocked", Score: 70, SizeClass: "L", Findings: []inventory.Finding{{Code: "LFS"}}},
		ScanStatus: inventory.StatusPartial,
		Errors:     []inventory.ScanError{{Step: "hooks", Status: 403, Message: "403 Forbidden"}},
	}
}

func roundTrip(t *testing.T, s discovery.Store) {
	createRuns(t, s, "r")
	g, p := sampleGroup(7), sampleProject(7)
	putBoth(t, s, "r", g, p)
	want := []string{"group" + mustJSON(t, g), "project" + mustJSON(t, p)}
	if got := snapshot(t, s, "r"); !slices.Equal(got, want) {
		t.Errorf("records came back changed:\n got %q\nwant %q", got, want)
	}
	got, ok, err := s.GetProject(t.Context(), "r", 7)
	if err != nil || !ok {
		t.Fatalf("GetProject(7) = %v, %v", ok, err)
	}
	if j := mustJSON(t, got); j != mustJSON(t, p) {
		t.Errorf("GetProject(7) = %s, want %s", j, mustJSON(t, p))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func runsApart(t *testing.T, s discovery.Store) {
	// IDs that share a prefix must not see each other's records.
	runs := []string{"r", "r1", "rr"}
	createRuns(t, s, runs...)
	for i, run := range runs {
		id := int64(10 + i)
		putBoth(t, s, run, inventory.Group{ID: id}, inventory.Project{ID: id})
		putBoth(t, s, run, inventory.Group{ID: 5, FullPath: run}, inventory.Project{ID: 5, Name: run})
	}
	for i, run := range runs {
		want := []int64{5, int64(10 + i)}
		if got := groupIDs(t, s, run); !slices.Equal(got, want) {
			t.Errorf("Groups(%s) = %v, want %v", run, got, want)
		}
		if got := projectIDs(t, s, run); !slices.Equal(got, want) {
			t.Errorf("Projects(%s) = %v, want %v", run, got, want)
		}
		if p, ok, err := s.GetProject(t.Context(), run, 5); err != nil || !ok || p.Name != run {
			t.Errorf("GetProject(%s, 5) = %q, %v, %v; want its own", run, p.Name, ok, err)
		}
	}
}

func streamStops(t *testing.T, s discovery.Store) {
	createRuns(t, s, "r")
	for _, id := range orderIDs {
		putBoth(t, s, "r", inventory.Group{ID: id}, inventory.Project{ID: id})
	}
	stop := errors.New("stop")
	for name, stream := range map[string]func(fn func() error) error{
		"Groups": func(fn func() error) error {
			return s.Groups(t.Context(), "r", func(inventory.Group) error { return fn() })
		},
		"Projects": func(fn func() error) error {
			return s.Projects(t.Context(), "r", func(inventory.Project) error { return fn() })
		},
	} {
		calls := 0
		err := stream(func() error {
			if calls++; calls == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 3 {
			t.Errorf("%s with a callback failing on the 3rd record = %v after %d calls, want stop after 3", name, err, calls)
		}
	}
}

// callbackWrites: the exporter's callbacks may use the store while a stream is open.
func callbackWrites(t *testing.T, s discovery.Store) {
	createRuns(t, s, "r")
	for _, id := range orderIDs {
		putBoth(t, s, "r", inventory.Group{ID: id}, inventory.Project{ID: id})
	}
	err := s.Groups(t.Context(), "r", func(g inventory.Group) error {
		return s.AddAPICalls(t.Context(), "r", 1)
	})
	if err != nil {
		t.Fatalf("Groups with a writing callback: %v", err)
	}
	if n, err := s.APICalls(t.Context(), "r"); err != nil || n != int64(len(orderIDs)) {
		t.Errorf("APICalls = %d, %v; want %d, one per streamed group", n, err, len(orderIDs))
	}
}

func getProject(t *testing.T, s discovery.Store) {
	createRuns(t, s, "other", "r")
	if err := s.PutProject(t.Context(), "r", inventory.Project{ID: 42, Name: "answer"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGroup(t.Context(), "r", inventory.Group{ID: 43}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		run    string
		id     int64
		wantOK bool
	}{
		{"r", 42, true},
		{"r", 41, false},
		{"r", 43, false}, // a group's ID is not a project
		{"other", 42, false},
		{"never-created", 42, false},
	}
	for _, tt := range tests {
		p, ok, err := s.GetProject(t.Context(), tt.run, tt.id)
		if err != nil || ok != tt.wantOK || (ok && p.Name != "answer") {
			t.Errorf("GetProject(%s, %d) = %q, %v, %v; want present %v", tt.run, tt.id, p.Name, ok, err, tt.wantOK)
		}
	}
}
