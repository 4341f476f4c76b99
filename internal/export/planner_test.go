package export

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

func TestStale(t *testing.T) {
	const year = 365 * 24 * time.Hour
	run := testRun("r1")
	run.StaleAfter = year
	tests := []struct {
		name     string
		activity time.Time
		after    time.Duration
		want     string // the CSV cell
	}{
		{"active", t0.Add(-time.Hour), year, "false"},
		{"just inside", t0.Add(-year), year, "false"},
		{"older", t0.Add(-year - time.Second), year, "true"},
		{"activity unknown", time.Time{}, year, ""},
		{"run without STALE_AFTER", t0.Add(-10 * year), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(1, "acme/a", 1)
			p.LastActivityAt = tt.activity
			p.NamespaceKind = "user"
			run.StaleAfter = tt.after
			dir, sum := writeDir(t, newSource("r1", p), run, nil)
			rows := readCSV(t, filepath.Join(dir, "latest/projects.csv"))
			if got := rows[0]["stale"]; got != tt.want {
				t.Errorf("stale = %q, want %q", got, tt.want)
			}
			if got := rows[0]["namespace_kind"]; got != "user" {
				t.Errorf("namespace_kind = %q, want user", got)
			}
			if want := map[bool]int{true: 1}[tt.want == "true"]; sum.Stale != want {
				t.Errorf("summary stale = %d, want %d", sum.Stale, want)
			}
		})
	}
}

func TestSummaryInstance(t *testing.T) {
	run := testRun("r1")
	_, sum := writeDir(t, newSource("r1", project(1, "acme/a", 1)), run, nil)
	if sum.Instance != nil {
		t.Errorf("instance of a run without one = %+v, want nil", sum.Instance)
	}
	run.Instance = &inventory.Instance{Version: "17.5.1-ee", Revision: "abc", Enterprise: new(true), Users: ptr(12)}
	_, sum = writeDir(t, newSource("r1", project(1, "acme/a", 1)), run, nil)
	if !reflect.DeepEqual(sum.Instance, run.Instance) {
		t.Errorf("instance = %+v, want %+v", sum.Instance, run.Instance)
	}
}
