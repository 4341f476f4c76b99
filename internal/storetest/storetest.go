// Package storetest checks implementations of discovery.Store against the contract the
// worker and the exporter rely on, in the spirit of testing/fstest.TestFS: a backend's
// tests call Run with a constructor and keep only their backend-specific cases.
package storetest

import (
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/discovery"
	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// check is one property of the contract, run against a fresh, empty store.
type check struct {
	name string
	fn   func(t *testing.T, s discovery.Store)
}

// checks is the whole contract, one subtest each.
var checks = concat(runChecks, progressChecks, recordChecks)

// Run runs every check as a subtest, each on a new store from newStore. newStore
// returns an empty store and arranges its cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) discovery.Store) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

func concat(lists ...[]check) []check {
	var all []check
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

// t0 is the start of the first run the checks create: on a whole second, so that a
// later run half a second on catches an order by text that trims fractions.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newRun(id string, started time.Time) inventory.Run {
	return inventory.Run{ID: id, GitLabURL: "https://gitlab.example", RootGroups: []string{"acme", "beta"}, StartedAt: started}
}

// createRuns creates a run for each ID, a minute apart, and marks every one but the last
// succeeded: only one run may be active, and some backends keep counters on the run.
func createRuns(t *testing.T, s discovery.Store, ids ...string) {
	t.Helper()
	for i, id := range ids {
		run := newRun(id, t0.Add(time.Duration(i)*time.Minute))
		if err := s.CreateRun(t.Context(), run); err != nil {
			t.Fatalf("CreateRun(%s): %v", id, err)
		}
		if i < len(ids)-1 {
			finish(t, s, run, inventory.RunSucceeded)
		}
	}
}

// finish sets the run's status and, for a finished status, its finish time.
func finish(t *testing.T, s discovery.Store, run inventory.Run, status string) inventory.Run {
	t.Helper()
	run.Status = status
	if status == inventory.RunSucceeded || status == inventory.RunFailed {
		run.FinishedAt = run.StartedAt.Add(time.Hour)
	}
	if err := s.UpdateRun(t.Context(), run); err != nil {
		t.Fatalf("UpdateRun(%s, %s): %v", run.ID, status, err)
	}
	return run
}
