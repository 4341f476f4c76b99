package runner

import (
	"strings"
	"testing"
	"time"
)

// The ETA is the time left at the pace so far, from the projects done against those in
// scope; without a total or before the first project there is none.
func TestSnapshotETA(t *testing.T) {
	tests := []struct {
		name     string
		s        Snapshot
		want     time.Duration
		ok       bool
		contains string
	}{
		{"a quarter done", Snapshot{Projects: 500, Total: 2000, Elapsed: time.Minute}, 3 * time.Minute, true, "500/2000 (25%)  8.3/s"},
		{"nothing done yet", Snapshot{Projects: 0, Total: 2000, Elapsed: time.Minute}, 0, false, "eta ?"},
		{"total unknown", Snapshot{Projects: 10, Elapsed: time.Minute}, 0, false, "projects 10  "},
		{"more done than counted (projects added since)", Snapshot{Projects: 2100, Total: 2000, Elapsed: time.Minute}, 0, true, "2100/2000 (105%)"},
		{"calls per project by API", Snapshot{Projects: 200, Total: 2000, Elapsed: time.Minute, APICalls: 1230, GraphQLCalls: 30}, 9 * time.Minute, true,
			"api calls 1230 (rest 6.00, graphql 0.15 per project)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.s.ETA()
			if got != tt.want || ok != tt.ok {
				t.Errorf("ETA = %v, %v, want %v, %v", got, ok, tt.want, tt.ok)
			}
			if line := tt.s.String(); !strings.Contains(line, tt.contains) {
				t.Errorf("progress line %q lacks %q", line, tt.contains)
			}
		})
	}
}

// The recent rate ignores the time before this process's first project and what an
// earlier process did, and forgets what is older than its window.
func TestRateWindow(t *testing.T) {
	var w rateWindow
	if r := w.observe(10*time.Second, 0); r != 0 {
		t.Errorf("before the first project: %v, want 0", r)
	}
	// Start-up took 10 s; then 10 projects a second.
	for s := 11; s <= 20; s++ {
		if r := w.observe(time.Duration(s)*time.Second, int64(10*(s-10))); r != 0 {
			t.Errorf("at %ds, with less than rateWindowMin measured: %v, want 0 (the average)", s, r)
		}
	}
	if r := w.observe(21*time.Second, 110); r != 10 {
		t.Errorf("steady 10/s after a slow start: %v", r)
	}
	// 100 s later at 2 a second: the window holds only the recent pace.
	done := int64(110)
	var r float64
	for s := 22; s <= 121; s++ {
		done += 2
		r = w.observe(time.Duration(s)*time.Second, done)
	}
	if r < 1.99 || r > 2.01 {
		t.Errorf("after the pace fell to 2/s: %v", r)
	}
}

// A resumed run's ETA counts only this process's projects for the rate; a paced run's
// ETA follows the pace when the burst at the start went faster.
func TestSnapshotETAResumedAndPaced(t *testing.T) {
	tests := []struct {
		name string
		s    Snapshot
		want time.Duration
	}{
		{"resumed", Snapshot{Projects: 1100, Resumed: 1000, Total: 2000, Elapsed: 10 * time.Second}, 90 * time.Second},
		{"paced below the rate", Snapshot{Projects: 100, Total: 1100, RecentRate: 20, APICalls: 1000, EffectiveRPM: 600}, 1000 * time.Second},
		{"the rate below the pace", Snapshot{Projects: 100, Total: 1100, RecentRate: 0.5, APICalls: 1000, EffectiveRPM: 600}, 2000 * time.Second},
	}
	for _, tt := range tests {
		if got, ok := tt.s.ETA(); !ok || got != tt.want {
			t.Errorf("%s: ETA %v, %v; want %v", tt.name, got, ok, tt.want)
		}
	}
}
