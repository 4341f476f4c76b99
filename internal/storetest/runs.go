package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

var runChecks = []check{
	{"Runs/CreateRunStartsRunning", createRunStartsRunning},
	{"Runs/ErrRunActiveWhileRunningOrExporting", errRunActive},
	{"Runs/CreateRunAfterTheActiveRunFinished", createAfterFinished},
	{"Runs/CreateRunRefusesAnExistingID", createExistingID},
	{"Runs/UpdateRunOverwritesStatusFinishReasonAndFailures", updateRun},
	{"Runs/PreviousRunIsNewestSucceededStartedBefore", previousRun},
	{"Runs/UnknownRunIsErrNotFound", runNotFound},
}

// sameRun describes how got differs from want, "" when it does not. Times compare as
// instants: a backend may store them in another location.
func sameRun(got, want inventory.Run) string {
	if got.ID != want.ID || got.GitLabURL != want.GitLabURL || !slices.Equal(got.RootGroups, want.RootGroups) ||
		got.Status != want.Status || !got.StartedAt.Equal(want.StartedAt) ||
		!got.FinishedAt.Equal(want.FinishedAt) || got.Reason != want.Reason ||
		got.FailedGroups != want.FailedGroups || got.FailedProjects != want.FailedProjects || got.Scope != want.Scope {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

// activeID returns "id:status" of the active run, "" when there is none.
func activeID(t *testing.T, s discovery.Store) string {
	t.Helper()
	run, ok, err := s.ActiveRun(t.Context())
	if err != nil {
		t.Fatalf("ActiveRun: %v", err)
	}
	if !ok {
		return ""
	}
	return run.ID + ":" + run.Status
}

func createRunStartsRunning(t *testing.T, s discovery.Store) {
	if id := activeID(t, s); id != "" {
		t.Fatalf("empty store has active run %s", id)
	}
	run := newRun("r1", t0)
	run.Status = "whatever" // CreateRun sets running
	if err := s.CreateRun(t.Context(), run); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	got, err := s.GetRun(t.Context(), "r1")
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	run.Status = inventory.RunRunning
	if d := sameRun(got, run); d != "" {
		t.Errorf("GetRun after CreateRun: %s", d)
	}
	if id := activeID(t, s); id != "r1:running" {
		t.Errorf("ActiveRun = %q, want r1:running", id)
	}
}

func errRunActive(t *testing.T, s discovery.Store) {
	r1 := newRun("r1", t0)
	if err := s.CreateRun(t.Context(), r1); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	for _, status := range []string{inventory.RunRunning, inventory.RunExporting} {
		finish(t, s, r1, status)
		// The same ID is refused as active too, not as a duplicate.
		for _, id := range []string{"r2", "r1"} {
			err := s.CreateRun(t.Context(), newRun(id, t0.Add(time.Minute)))
			if !errors.Is(err, discovery.ErrRunActive) {
				t.Errorf("CreateRun(%s) while r1 is %s = %v, want ErrRunActive", id, status, err)
			}
		}
		if id := activeID(t, s); id != "r1:"+status {
			t.Errorf("ActiveRun = %q, want r1:%s", id, status)
		}
	}
	if _, err := s.GetRun(t.Context(), "r2"); !errors.Is(err, discovery.ErrNotFound) {
		t.Errorf("a refused CreateRun left run r2 behind: GetRun = %v", err)
	}
}

func createAfterFinished(t *testing.T, s discovery.Store) {
	// Each status ends the active run in turn; the next run may start.
	for i, status := range []string{inventory.RunFailed, inventory.RunSucceeded} {
		run := newRun(fmt.Sprint("r", i), t0.Add(time.Duration(i)*time.Hour))
		if err := s.CreateRun(t.Context(), run); err != nil {
			t.Fatalf("CreateRun(%s) after the previous run finished: %v", run.ID, err)
		}
		finish(t, s, run, status)
		if id := activeID(t, s); id != "" {
			t.Errorf("ActiveRun = %q after %s was %s, want none", id, run.ID, status)
		}
	}
	if err := s.CreateRun(t.Context(), newRun("next", t0.Add(5*time.Hour))); err != nil {
		t.Fatalf("CreateRun after runs finished: %v", err)
	}
	if id := activeID(t, s); id != "next:running" {
		t.Errorf("ActiveRun = %q, want next:running", id)
	}
}

func createExistingID(t *testing.T, s discovery.Store) {
	run := newRun("r1", t0)
	if err := s.CreateRun(t.Context(), run); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	run = finish(t, s, run, inventory.RunSucceeded)
	err := s.CreateRun(t.Context(), newRun("r1", t0.Add(time.Hour)))
	if err == nil || errors.Is(err, discovery.ErrRunActive) {
		t.Errorf("CreateRun of a finished run's ID = %v, want a duplicate-ID error", err)
	}
	got, err := s.GetRun(t.Context(), "r1")
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	if d := sameRun(got, run); d != "" {
		t.Errorf("a refused CreateRun changed the run: %s", d)
	}
	if id := activeID(t, s); id != "" {
		t.Errorf("a refused CreateRun left run %s active", id)
	}
}

func updateRun(t *testing.T, s discovery.Store) {
	run := newRun("r1", t0)
	if err := s.CreateRun(t.Context(), run); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	want := run
	want.Status, want.FinishedAt, want.Reason = inventory.RunFailed, t0.Add(30*time.Minute), "GitLab rejected the token (401)"
	want.FailedGroups, want.FailedProjects = 2, 3
	steps := []struct {
		name   string
		update inventory.Run
		want   inventory.Run
	}{
		// Only status, finish time, reason and failed counts change; the rest comes from
		// CreateRun.
		{"fail with a reason", inventory.Run{ID: "r1", Status: want.Status, FinishedAt: want.FinishedAt, Reason: want.Reason,
			FailedGroups: 2, FailedProjects: 3}, want},
		{"same update again", inventory.Run{ID: "r1", Status: want.Status, FinishedAt: want.FinishedAt, Reason: want.Reason,
			FailedGroups: 2, FailedProjects: 3}, want},
		{"update without a reason clears it", inventory.Run{ID: "r1", Status: want.Status, FinishedAt: want.FinishedAt},
			inventory.Run{ID: "r1", GitLabURL: run.GitLabURL, RootGroups: run.RootGroups, StartedAt: t0, Status: want.Status, FinishedAt: want.FinishedAt}},
	}
	for _, st := range steps {
		if err := s.UpdateRun(t.Context(), st.update); err != nil {
			t.Fatalf("%s: UpdateRun: %v", st.name, err)
		}
		got, err := s.GetRun(t.Context(), "r1")
		if err != nil {
			t.Fatalf("%s: GetRun: %v", st.name, err)
		}
		if d := sameRun(got, st.want); d != "" {
			t.Errorf("%s: %s", st.name, d)
		}
	}
}

func previousRun(t *testing.T, s discovery.Store) {
	// Created in this order. "b" starts half a second after "a": an order by RFC 3339
	// text with trimmed fractions would put "…00.5Z" before "…00Z". "early" is created
	// late but started first.
	runs := []struct {
		id      string
		started time.Duration
		status  string
	}{
		{"a", time.Hour, inventory.RunSucceeded},
		{"b", time.Hour + 500*time.Millisecond, inventory.RunSucceeded},
		{"c", 2 * time.Hour, inventory.RunFailed},
		{"early", 0, inventory.RunSucceeded},
		{"d", 3 * time.Hour, inventory.RunRunning},
	}
	for _, r := range runs {
		run := newRun(r.id, t0.Add(r.started))
		if err := s.CreateRun(t.Context(), run); err != nil {
			t.Fatalf("CreateRun(%s): %v", r.id, err)
		}
		if r.status != inventory.RunRunning {
			finish(t, s, run, r.status)
		}
	}
	tests := []struct{ of, want string }{
		{"d", "b"}, // c failed
		{"c", "b"},
		{"b", "a"},
		{"a", "early"},
		{"early", ""},
	}
	for _, tt := range tests {
		prev, ok, err := s.PreviousRun(t.Context(), tt.of)
		if err != nil {
			t.Fatalf("PreviousRun(%s): %v", tt.of, err)
		}
		if got := map[bool]string{true: prev.ID}[ok]; got != tt.want {
			t.Errorf("PreviousRun(%s) = %q, want %q", tt.of, got, tt.want)
		}
		if ok && prev.Status != inventory.RunSucceeded {
			t.Errorf("PreviousRun(%s) = %s in status %s", tt.of, prev.ID, prev.Status)
		}
	}
}

func runNotFound(t *testing.T, s discovery.Store) {
	ctx := t.Context()
	// Another run exists, so that "not found" is about the ID, not an empty store.
	createRuns(t, s, "known")
	tests := []struct {
		name string
		call func() error
	}{
		{"GetRun", func() error { _, err := s.GetRun(ctx, "nope"); return err }},
		{"UpdateRun", func() error { return s.UpdateRun(ctx, inventory.Run{ID: "nope", Status: inventory.RunFailed}) }},
		{"PreviousRun", func() error { _, _, err := s.PreviousRun(ctx, "nope"); return err }},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, discovery.ErrNotFound) {
			t.Errorf("%s of an unknown run = %v, want an error wrapping ErrNotFound", tt.name, err)
		}
	}
	// UpdateRun must not have created the run as a side effect.
	if _, err := s.GetRun(ctx, "nope"); !errors.Is(err, discovery.ErrNotFound) {
		t.Errorf("GetRun after the calls = %v, want ErrNotFound", err)
	}
	if id := activeID(t, s); id != "known:running" {
		t.Errorf("ActiveRun = %q, want known:running", id)
	}
}
