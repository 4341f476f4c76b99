package lambdaapp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// The scheduler's payload {"full":true} starts a full run; any other an incremental
// one. Either records the projects it counted in scope.
func TestScheduleFull(t *testing.T) {
	tests := []struct {
		payload string
		full    bool
	}{
		{`{"trigger":"manual","full":true}`, true},
		{`{"trigger":"schedule"}`, false},
		{`{"full":"yes"}`, false}, // not a boolean: an ordinary run, as any payload starts one
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			f := newFixture(t, gitlabsim.Options{Seed: 3, Groups: 1, Projects: 3})
			ctx := context.Background()
			a := f.app(t)
			res, err := a.Schedule(ctx, json.RawMessage(tt.payload))
			if err != nil || !res.Started {
				t.Fatalf("Schedule(%s) = %+v, %v", tt.payload, res, err)
			}
			run, err := a.Store().GetRun(ctx, res.RunID)
			if err != nil {
				t.Fatal(err)
			}
			n := int64(len(f.sim.Truth().Projects))
			if run.Full != tt.full || run.ProjectsInScope != n {
				t.Errorf("run full=%v, %d projects in scope; want full=%v, %d", run.Full, run.ProjectsInScope, tt.full, n)
			}
			if want := fmt.Sprintf("%d projects in scope", n); !strings.Contains(res.Message, want) || strings.Contains(res.Message, "full run") != tt.full {
				t.Errorf("message %q: want %q and full=%v", res.Message, want, tt.full)
			}
		})
	}
}
