package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gl2gh/discovery-agent/internal/gitlabsim"
	"github.com/gl2gh/discovery-agent/internal/scancheck"
)

// start runs the command in the background and returns its address and a stop
// function that cancels it and returns run's error.
func start(t *testing.T, args ...string) (string, *scancheck.Logs, func() error) {
	t.Helper()
	logs := &scancheck.Logs{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), slog.New(slog.NewJSONHandler(logs, nil)), ready)
	}()
	select {
	case addr := <-ready:
		return addr, logs, func() error {
			cancel()
			select {
			case err := <-done:
				return err
			case <-time.After(15 * time.Second):
				t.Fatal("gitlab-sim did not stop")
				return nil
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("gitlab-sim did not start")
	}
	return "", nil, nil
}

func TestServeAndShutdown(t *testing.T) {
	addr, logs, stop := start(t, "--seed", "3", "--groups", "7", "--projects", "40", "--token", "t0ps3cret", "--rate-limit-rpm", "1000")
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v4/groups?top_level_only=true", nil)
	req.Header.Set("Authorization", "Bearer t0ps3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var groups []map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &groups) != nil || len(groups) == 0 || resp.Header.Get("RateLimit-Limit") != "1000" {
		t.Fatalf("groups: %d %s (RateLimit-Limit %q)", resp.StatusCode, body, resp.Header.Get("RateLimit-Limit"))
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	var first map[string]any
	line, _, _ := strings.Cut(logs.String(), "\n")
	if err := json.Unmarshal([]byte(line), &first); err != nil {
		t.Fatalf("first log line is not JSON: %q", line)
	}
	if first["addr"] != addr || first["groups"] != float64(7) || first["projects"] != float64(40) {
		t.Errorf("start line %v", first)
	}
	if strings.Contains(logs.String(), "t0ps3cret") {
		t.Error("the token appears in the logs")
	}
}

// TestShutdownReleasesHangingRequests: a request hanging in a timeout fault does not
// hold the shutdown for the full hang.
func TestShutdownReleasesHangingRequests(t *testing.T) {
	addr, _, stop := start(t, "--groups", "2", "--projects", "5", "--timeout-rate", "1", "--hang", "10m")
	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v4/version", nil)
		req.Header.Set("PRIVATE-TOKEN", "sim-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	time.Sleep(200 * time.Millisecond) // let the request reach the handler
	begin := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("shutdown took %v with a hanging request", d)
	}
	if st := <-got; st != http.StatusGatewayTimeout {
		t.Errorf("the hanging request got %d, want 504", st)
	}
}

func TestBadFlags(t *testing.T) {
	tests := [][]string{
		{"--groups", "0"},
		{"--error-rate", "2"},
		{"--forbidden-endpoints", "projects/:id/nope", "--forbidden-rate", "0.1"},
		{"--no-such-flag"},
		{"--addr", "256.0.0.1:99999"},
		{"--users", "-1"},
		{"--personal-projects", "5"}, // without --users
		{"--endpoint-limits", "projects/:id/nope=5"},
		{"--gitlab-com-limits", "--endpoint-limits", "groups=0"},
	}
	for _, args := range tests {
		if err := run(context.Background(), args, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil); err == nil {
			t.Errorf("run(%v) succeeded", args)
		}
	}
}

// TestPersonalProjectsFlags: --users and --personal-projects add user namespaces whose
// projects /projects lists with namespace kind "user".
func TestPersonalProjectsFlags(t *testing.T) {
	addr, logs, stop := start(t, "--groups", "2", "--projects", "10", "--users", "3", "--personal-projects", "12")
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v4/projects?per_page=100", nil)
	req.Header.Set("PRIVATE-TOKEN", "sim-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var projects []struct {
		Namespace struct {
			Kind string `json:"kind"`
		} `json:"namespace"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &projects) != nil {
		t.Fatalf("projects: %d %s", resp.StatusCode, body)
	}
	kinds := map[string]int{}
	for _, p := range projects {
		kinds[p.Namespace.Kind]++
	}
	if kinds["group"] != 10 || kinds["user"] != 12 || len(kinds) != 2 {
		t.Errorf("namespace kinds %v, want 10 group and 12 user", kinds)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	var first map[string]any
	line, _, _ := strings.Cut(logs.String(), "\n")
	if err := json.Unmarshal([]byte(line), &first); err != nil || first["users"] != float64(3) || first["personal_projects"] != float64(12) {
		t.Errorf("start line %q", line)
	}
}

// TestLimitFlags: --gitlab-com-limits sets GitLab.com's documented limits, quiet,
// and yields to the flags given beside it.
func TestLimitFlags(t *testing.T) {
	com := gitlabsim.GitLabComEndpointLimits()
	tests := []struct {
		args   []string
		rpm    int
		limits []gitlabsim.EndpointLimit
		quiet  bool
		hide   bool
	}{
		{[]string{}, 0, nil, false, false},
		{[]string{"--endpoint-limits", "projects/:id=5,projects=20/2m"}, 0, []gitlabsim.EndpointLimit{{Class: "projects/:id", Limit: 5}, {Class: "projects", Limit: 20, Window: 2 * time.Minute}}, false, false},
		{[]string{"--gitlab-com-limits"}, gitlabsim.GitLabComRPM, com, true, false},
		{
			[]string{"--gitlab-com-limits", "--rate-limit-rpm", "600", "--endpoint-limits-quiet=false", "--endpoint-limits", "groups=200", "--no-ratelimit-headers"},
			600, gitlabsim.MergeEndpointLimits(com, []gitlabsim.EndpointLimit{{Class: "groups", Limit: 200}}), false, true,
		},
	}
	for _, tt := range tests {
		o, _, err := parseFlags(tt.args)
		if err != nil {
			t.Errorf("parseFlags(%v): %v", tt.args, err)
			continue
		}
		if o.RateLimitRPM != tt.rpm || !slices.Equal(o.EndpointLimits, tt.limits) || o.QuietEndpointLimits != tt.quiet || o.HideRateLimitHeaders != tt.hide {
			t.Errorf("parseFlags(%v): rpm %d, limits %v, quiet %v, hide %v; want %d, %v, %v, %v",
				tt.args, o.RateLimitRPM, o.EndpointLimits, o.QuietEndpointLimits, o.HideRateLimitHeaders, tt.rpm, tt.limits, tt.quiet, tt.hide)
		}
	}
}

// TestEndpointLimitsFlag: a class limited by --endpoint-limits announces its own limit.
func TestEndpointLimitsFlag(t *testing.T) {
	addr, _, stop := start(t, "--groups", "2", "--projects", "5", "--rate-limit-rpm", "1000", "--endpoint-limits", "groups=40")
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v4/groups", nil)
	req.Header.Set("PRIVATE-TOKEN", "sim-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("RateLimit-Name") != "groups_api" || resp.Header.Get("RateLimit-Limit") != "40" {
		t.Errorf("groups: %d, RateLimit-Name %q, Limit %q", resp.StatusCode, resp.Header.Get("RateLimit-Name"), resp.Header.Get("RateLimit-Limit"))
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestGraphQLFlags(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		limit int
		off   bool
	}{
		{nil, gitlabsim.DefaultGraphQLComplexity, false},
		{[]string{"--graphql-complexity", "100"}, 100, false},
		{[]string{"--no-graphql"}, gitlabsim.DefaultGraphQLComplexity, true},
	} {
		o, _, err := parseFlags(tt.args)
		if err != nil || o.GraphQLComplexity != tt.limit || o.NoGraphQL != tt.off {
			t.Errorf("parseFlags(%v): limit %d, off %v, %v; want %d, %v", tt.args, o.GraphQLComplexity, o.NoGraphQL, err, tt.limit, tt.off)
		}
	}
	if _, err := gitlabsim.New(gitlabsim.Options{Groups: 1, GraphQLComplexity: -1}); err == nil {
		t.Error("a negative complexity limit is accepted")
	}
}
