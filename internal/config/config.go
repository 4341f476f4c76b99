// Package config reads the agent's configuration from the environment. The local CLI,
// the service mode and every Lambda function share it, so one variable means one thing
// everywhere. The GitLab token is only ever read from GITLAB_TOKEN (or, in Lambda, a
// secret) and is never printed: Config's String method redacts it.
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the agent's configuration.
type Config struct {
	GitLabURL          string         // GITLAB_URL
	Token              string         // GITLAB_TOKEN (never logged)
	RootGroups         []string       // ROOT_GROUPS, comma-separated paths or IDs; empty = every top-level group
	IncludePersonal    bool           // INCLUDE_PERSONAL_PROJECTS
	RateLimitRPM       int            // RATE_LIMIT_RPM
	EndpointRPM        map[string]int // RATE_LIMIT_ENDPOINTS: per endpoint class, requests per minute
	MaxAPICalls        int64          // MAX_API_CALLS, per run; 0 = unlimited
	MaxPerProjectCalls int            // MAX_PER_PROJECT_CALLS
	Concurrency        int            // CONCURRENT_REQUESTS
	RequestTimeout     time.Duration  // REQUEST_TIMEOUT
	CacheTTL           time.Duration  // CACHE_TTL
	DataDir            string         // DATA_DIR
	ExportDir          string         // EXPORT_DIR
	Thresholds         string         // READINESS_THRESHOLDS: file overriding readiness thresholds
	HealthAddr         string         // HEALTH_ADDR
	MetricsAddr        string         // METRICS_ADDR
	Schedule           string         // SCAN_SCHEDULE
	LogLevel           string         // LOG_LEVEL
}

// Var documents one environment variable; README's configuration table lists them.
type Var struct{ Name, Default, Meaning string }

// Vars are every variable the agent reads, with its default and meaning.
var Vars = []Var{
	{"GITLAB_URL", "", "Base URL of the GitLab instance, e.g. https://gitlab.example.com (required)"},
	{"GITLAB_TOKEN", "", "Personal/group access token with read_api scope (required; never logged; Lambda reads it from Secrets Manager)"},
	{"ROOT_GROUPS", "", "Comma-separated group paths or IDs to scan; empty = every top-level group the token can see"},
	{"INCLUDE_PERSONAL_PROJECTS", "false", "true: also scan projects in personal (user) namespaces, which no group holds, by walking the project list (keyset); an admin token sees every user's"},
	{"RATE_LIMIT_RPM", "600", "Requests per minute shared by all workers; never faster than GitLab's announced RateLimit-Limit"},
	{"RATE_LIMIT_ENDPOINTS", "", "Extra per-endpoint-class limits in requests per minute, e.g. groups/:id/projects=600,projects/:id=400,groups=50 (GitLab.com's); within RATE_LIMIT_RPM. In Lambda they apply per worker"},
	{"MAX_API_CALLS", "0", "API calls per run; 0 = unlimited. When spent, remaining steps are recorded as errors"},
	{"MAX_PER_PROJECT_CALLS", "200", "API calls one project's profile may use"},
	{"CONCURRENT_REQUESTS", "8", "In-flight API requests per process"},
	{"REQUEST_TIMEOUT", "30s", "Timeout of one API request attempt"},
	{"CACHE_TTL", "0", "Reuse a project's profile from the previous successful run when its last_activity_at is unchanged and that run is younger than this (e.g. 24h); 0 = off"},
	{"DATA_DIR", "./data", "Local mode: directory of the embedded store (the discovery-data volume)"},
	{"EXPORT_DIR", "./exports", "Local mode: directory the exports are written to"},
	{"READINESS_THRESHOLDS", "", "JSON or YAML file overriding readiness thresholds (docs/EXPORTS.md)"},
	{"BACKEND", "local", "Service mode: local (embedded store, queue and export directory) or aws (SQS, DynamoDB and S3 named by the Lambda variables of docs/DEPLOY.md; AWS_ENDPOINT_URL for an emulator such as moto)"},
	{"HEALTH_ADDR", ":8080", "Service mode: /health, /health/ready, /health/live, POST /runs"},
	{"METRICS_ADDR", ":9090", "Service mode: Prometheus /metrics"},
	{"SCAN_SCHEDULE", "", "Service mode: cron expression (5 fields) or interval (e.g. 24h); empty = on demand only"},
	{"LOG_LEVEL", "info", "debug, info, warn or error"},
}

// FromEnv reads the configuration from the environment and validates it.
func FromEnv() (Config, error) {
	return parse(os.Getenv)
}

func parse(get func(string) string) (Config, error) {
	c := Config{
		GitLabURL:   strings.TrimRight(strings.TrimSpace(get("GITLAB_URL")), "/"),
		Token:       strings.TrimSpace(get("GITLAB_TOKEN")),
		DataDir:     or(get("DATA_DIR"), "./data"),
		ExportDir:   or(get("EXPORT_DIR"), "./exports"),
		Thresholds:  get("READINESS_THRESHOLDS"),
		HealthAddr:  or(get("HEALTH_ADDR"), ":8080"),
		MetricsAddr: or(get("METRICS_ADDR"), ":9090"),
		Schedule:    strings.TrimSpace(get("SCAN_SCHEDULE")),
		LogLevel:    or(get("LOG_LEVEL"), "info"),
	}
	for _, g := range strings.Split(get("ROOT_GROUPS"), ",") {
		if g = strings.Trim(strings.TrimSpace(g), "/"); g != "" {
			c.RootGroups = append(c.RootGroups, g)
		}
	}
	var errs []error
	c.IncludePersonal = boolVar(get, "INCLUDE_PERSONAL_PROJECTS", &errs)
	c.RateLimitRPM = Int(get, "RATE_LIMIT_RPM", 600, 0, &errs)
	c.EndpointRPM = endpointRPM(get("RATE_LIMIT_ENDPOINTS"), &errs)
	c.MaxAPICalls = int64(Int(get, "MAX_API_CALLS", 0, 0, &errs))
	c.MaxPerProjectCalls = Int(get, "MAX_PER_PROJECT_CALLS", 200, 0, &errs)
	c.Concurrency = Int(get, "CONCURRENT_REQUESTS", 8, 0, &errs)
	c.RequestTimeout = Duration(get, "REQUEST_TIMEOUT", 30*time.Second, &errs)
	c.CacheTTL = Duration(get, "CACHE_TTL", 0, &errs)
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("CONCURRENT_REQUESTS must be at least 1"))
	}
	return c, errors.Join(errs...)
}

// Validate checks what a scan needs: a GitLab URL and a token.
func (c Config) Validate() error {
	var errs []error
	if c.GitLabURL == "" {
		errs = append(errs, errors.New("GITLAB_URL is not set"))
	} else if !strings.HasPrefix(c.GitLabURL, "http://") && !strings.HasPrefix(c.GitLabURL, "https://") {
		errs = append(errs, fmt.Errorf("GITLAB_URL %q must start with http:// or https://", c.GitLabURL))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("GITLAB_TOKEN is not set"))
	}
	return errors.Join(errs...)
}

// String describes the configuration with the token redacted.
func (c Config) String() string {
	t := "unset"
	if c.Token != "" {
		t = "set"
	}
	return fmt.Sprintf("gitlab_url=%s token=%s root_groups=%v rate_limit_rpm=%d max_api_calls=%d max_per_project_calls=%d concurrency=%d",
		c.GitLabURL, t, c.RootGroups, c.RateLimitRPM, c.MaxAPICalls, c.MaxPerProjectCalls, c.Concurrency)
}

// GoString keeps %#v from printing the token.
func (c Config) GoString() string { return c.String() }

func or(v, def string) string {
	if v = strings.TrimSpace(v); v == "" {
		return def
	}
	return v
}

// Int reads an integer variable of at least least; a bad value is reported in errs and
// def is used. The Lambda settings read their own variables with it too.
func Int(get func(string) string, name string, def, least int, errs *[]error) int {
	s := strings.TrimSpace(get(name))
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < least {
		*errs = append(*errs, fmt.Errorf("%s=%q: want an integer of at least %d", name, s, least))
		return def
	}
	return n
}

// Duration reads a duration variable: Go durations ("90s", "24h") or plain seconds
// ("3600", as the runbook writes CACHE_TTL).
func Duration(get func(string) string, name string, def time.Duration, errs *[]error) time.Duration {
	s := strings.TrimSpace(get(name))
	if s == "" {
		return def
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		*errs = append(*errs, fmt.Errorf("%s=%q: want a duration like 30s or a number of seconds", name, s))
		return def
	}
	return d
}

// endpointRPM parses "class=rpm,class=rpm".
func endpointRPM(s string, errs *[]error) map[string]int {
	var m map[string]int
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		class, n, ok := strings.Cut(part, "=")
		rpm, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || err != nil || rpm <= 0 || strings.TrimSpace(class) == "" {
			*errs = append(*errs, fmt.Errorf("RATE_LIMIT_ENDPOINTS: %q: want endpoint-class=requests-per-minute", part))
			continue
		}
		if m == nil {
			m = map[string]int{}
		}
		m[strings.Trim(strings.TrimSpace(class), "/")] = rpm
	}
	return m
}

func boolVar(get func(string) string, name string, errs *[]error) bool {
	s := strings.TrimSpace(get(name))
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s=%q: want true or false", name, s))
	}
	return b
}
