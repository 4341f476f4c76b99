package engine_test

import (
	"maps"
	"math"
	"slices"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/engine"
	"github.com/gl2gh/discovery-agent/internal/gitlab"
	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
)

// The agent's GitLab.com limits are the simulator's (which cite GitLab's docs), per
// minute, for every class the agent calls.
func TestGitLabComLimitsMatchTheSimulator(t *testing.T) {
	want := map[string]int{}
	for _, l := range gitlabsim.GitLabComEndpointLimits() {
		if !slices.Contains(gitlab.EndpointClasses(), l.Class) {
			continue // an endpoint the agent never calls (users/:id/projects)
		}
		perMinute := float64(l.Limit)
		if l.Window > 0 {
			perMinute = float64(l.Limit) * 60 / l.Window.Seconds()
		}
		want[l.Class] = int(math.Floor(perMinute))
	}
	if !maps.Equal(engine.GitLabComEndpointRPM, want) {
		t.Errorf("GitLabComEndpointRPM = %v, want the simulator's %v", engine.GitLabComEndpointRPM, want)
	}
}

func TestEndpointLimits(t *testing.T) {
	tests := []struct {
		name string
		url  string
		own  map[string]int
		want map[string]int
	}{
		{"gitlab.com gets GitLab.com's", "https://gitlab.com", nil, engine.GitLabComEndpointRPM},
		{"any case, any port", "https://GitLab.com:443", nil, engine.GitLabComEndpointRPM},
		{"RATE_LIMIT_ENDPOINTS overrides and adds", "https://gitlab.com", map[string]int{"groups": 10, "projects/:id/hooks": 5},
			func() map[string]int {
				m := maps.Clone(engine.GitLabComEndpointRPM)
				m["groups"], m["projects/:id/hooks"] = 10, 5
				return m
			}()},
		{"self-managed gets only its own", "https://gitlab.example.com", map[string]int{"groups": 10}, map[string]int{"groups": 10}},
		{"a lookalike host is not gitlab.com", "https://gitlab.com.example.net", nil, map[string]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := engine.EndpointLimits(config.Config{GitLabURL: tt.url, EndpointRPM: tt.own})
			if !maps.Equal(got, tt.want) {
				t.Errorf("EndpointLimits = %v, want %v", got, tt.want)
			}
		})
	}
}
