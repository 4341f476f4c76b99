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
