// Package config reads the agent's configuration from the environment. The local CLI,
// the service mode and every Lambda function share it, so one variable means one thing
// everywhere. The GitLab token is only ever read from GITLAB_TOKEN (or, in Lambda, a
// secret) and is never printed: Config's String method redacts it.
//
// Each variable is declared once, with its name, default, parser and help (declare);
// parsing (FromEnv) and the documentation (Vars, README.md's table) derive from that.
// What each role requires is one table of rules (Validate).
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gl2gh/discovery-agent/internal/readiness"
)

// Config is the agent's configuration.
type Config struct {
	GitLabURL          string         // GITLAB_URL
	API                string         // GITLAB_API: auto, graphql or rest
	Token              string         // GITLAB_TOKEN, or the content of GITLAB_TOKEN_FILE (never logged)
	tokenFile          string         // GITLAB_TOKEN_FILE
	RootGroups         []string       // ROOT_GROUPS, comma-separated paths or IDs; empty = every top-level group
	IncludePersonal    bool           // INCLUDE_PERSONAL_PROJECTS
	IncludeMembers     bool           // INCLUDE_MEMBERS: read each project's members for its owners
	cacheTTL           *time.Duration // CACHE_TTL, the older name of FULL_SCAN_EVERY
	RateLimitRPM       int            // RATE_LIMIT_RPM: a ceiling in requests per minute; 0 = none
	RateLimitAuto      bool           // RATE_LIMIT_RPM is auto or a number: adapt when GitLab announces no limit
	RateLimitTarget    float64        // RATE_LIMIT_TARGET: share of every limit the pace aims at
	EndpointRPM        map[string]int // RATE_LIMIT_ENDPOINTS: per endpoint class, requests per minute
	MaxAPICalls        int64          // MAX_API_CALLS, per run; 0 = unlimited
	MaxPerProjectCalls int            // MAX_PER_PROJECT_CALLS
	Concurrency        int            // CONCURRENT_REQUESTS
	RequestTimeout     time.Duration  // REQUEST_TIMEOUT
	FullScanEvery      time.Duration  // FULL_SCAN_EVERY: a project is profiled again at least this often
	StaleAfter         time.Duration  // STALE_AFTER: a project without activity this long is stale
	DataDir            string         // DATA_DIR
	ExportDir          string         // EXPORT_DIR
	Thresholds         string         // READINESS_THRESHOLDS: file overriding readiness thresholds
	MigrationPath      string         // MIGRATION_PATH: the path readiness assumes (readiness.Paths)
	HealthAddr         string         // HEALTH_ADDR
	MetricsAddr        string         // METRICS_ADDR
	AdminToken         string         // ADMIN_TOKEN: bearer token of serve's state-changing endpoints (never logged)
	Schedule           string         // SCAN_SCHEDULE
	Backend            string         // BACKEND: service mode's local or aws (checked by the service)
	LogLevel           string         // LOG_LEVEL
	LogFormat          string         // LOG_FORMAT: auto, json or text (engine.NewLogger)
}

// declare declares every shared variable, stored into c; README.md's configuration
// table shows them in this order.
func (c *Config) declare() *Set {
	s := new(Set)
	s.Func("GITLAB_URL", "", "Base URL of the GitLab instance, e.g. https://gitlab.example.com (required)",
		func(v string) error { c.GitLabURL = strings.TrimRight(v, "/"); return nil })
	s.String(&c.Token, "GITLAB_TOKEN", "", "Personal/group access token with read_api scope (required; never logged; Lambda reads it from Secrets Manager)")
	s.String(&c.tokenFile, "GITLAB_TOKEN_FILE", "", "File holding the token instead of `GITLAB_TOKEN` (a Docker or Kubernetes secret mount, e.g. `/run/secrets/gitlab_token`); surrounding whitespace is ignored; setting both is an error. Every mode reads it; on Lambda, where `GITLAB_TOKEN` is refused, prefer `GITLAB_TOKEN_SECRET_ARN` to a file in the package")
	s.EnvOnly("GITLAB_TOKEN", "GITLAB_TOKEN_FILE")
	s.Func("GITLAB_API", "auto", "API a project is profiled through: `auto` uses GraphQL (`/api/graphql`: one request for a project's counts, branch names, environments, packages and files) where the instance answers it and REST otherwise, saying so once in the log; `graphql` always tries GraphQL first; `rest` never uses it. Facts GraphQL lacks (tags, webhooks, protected branches) come from REST in every mode, and so do counts a GraphQL answer does not hold ([docs/EXPORTS.md](docs/EXPORTS.md#which-api-gives-each-fact))",
		func(v string) error {
			switch v = strings.ToLower(v); v {
			case "auto", "graphql", "rest":
				c.API = v
				return nil
			}
			return errors.New("want auto, graphql or rest")
		})
	s.Func("ROOT_GROUPS", "", "Comma-separated group paths or IDs to scan; empty = every top-level group the token can see",
		func(v string) error { c.RootGroups = rootGroups(v); return nil })
	s.Bool(&c.IncludePersonal, "INCLUDE_PERSONAL_PROJECTS", false, "`true`: also scan projects in personal (user) namespaces, which no group holds, by walking the project list (keyset); an admin token sees every user's")
	s.Bool(&c.IncludeMembers, "INCLUDE_MEMBERS", false, "`true`: record each project's `owners` (usernames of active members with Maintainer or Owner access, inherited included) from `GET /projects/:id/members/all`: one more request per project and per 100 members ([docs/EXPORTS.md](docs/EXPORTS.md#owners)); `false` leaves `owners` empty (unknown)")
	s.Func("RATE_LIMIT_RPM", "auto", "`auto`: all workers together pace at `RATE_LIMIT_TARGET` of the `RateLimit-Limit` GitLab announces (starting at 300/min until the first answer); without an announcement the pace adapts (AIMD on 429s, 5xx and latency, within `CONCURRENT_REQUESTS`; [docs/RUNBOOK.md](docs/RUNBOOK.md#pacing)). A number is a ceiling on that pace; `0` paces only by what GitLab announces",
		c.rateLimit)
	s.Func("RATE_LIMIT_TARGET", "0.95", "Share of every limit the pace aims at: GitLab's announced one, `RATE_LIMIT_RPM`, an endpoint class's (0 < share ≤ 1)",
		func(v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f > 0 && f <= 1) {
				return errors.New("want a share above 0 and at most 1, e.g. 0.95")
			}
			c.RateLimitTarget = f
			return nil
		})
	s.Func("RATE_LIMIT_ENDPOINTS", "", "Per-endpoint-class limits in requests per minute, e.g. `groups/:id/projects=600,projects/:id=400,groups=50`, paced at `RATE_LIMIT_TARGET` of each; they override or add to GitLab.com's documented ones, which apply by default when `GITLAB_URL` is gitlab.com. A 429 on a limited class pauses that class only. Shared by every process: in Lambda through `BUDGET_TABLE`",
		func(v string) (err error) { c.EndpointRPM, err = endpointRPM(v); return err })
	s.Int64(&c.MaxAPICalls, "MAX_API_CALLS", 0, 0, "API calls per run; 0 = unlimited. When spent, remaining steps are recorded as errors")
	s.Int(&c.MaxPerProjectCalls, "MAX_PER_PROJECT_CALLS", 200, 0, "API calls one project's profile may use")
	s.Int(&c.Concurrency, "CONCURRENT_REQUESTS", 8, 1, "In-flight API requests per process")
	s.Duration(&c.RequestTimeout, "REQUEST_TIMEOUT", 30*time.Second, "Timeout of one API request attempt")
	s.Duration(&c.FullScanEvery, "FULL_SCAN_EVERY", 7*24*time.Hour, "Runs are incremental: a project whose `last_activity_at` is unchanged since the previous successful run keeps its profile without profiling calls until that profile is this old (`168h` = 7 days; settings and storage change without activity); 0 = profile every project every run. `scan --full` forces a full run ([docs/RUNBOOK.md](docs/RUNBOOK.md#incremental-runs)). Replaces `CACHE_TTL`")
	s.Func("CACHE_TTL", "", "Older name of `FULL_SCAN_EVERY` (e.g. `3600`, as the operations runbook's tuning section sets it), when set it takes the place of `FULL_SCAN_EVERY`",
		func(v string) error {
			if v == "" {
				return nil
			}
			var d time.Duration
			t := new(Set)
			t.Duration(&d, "CACHE_TTL", 0, "")
			if err := t.Parse(func(string) string { return v }); err != nil {
				return errors.New("want a duration like 24h or a number of seconds")
			}
			c.cacheTTL = &d
			return nil
		})
	s.Duration(&c.StaleAfter, "STALE_AFTER", 365*24*time.Hour, "A project whose `last_activity_at` is older than this when the run starts is `stale` in the exports (`8760h` = 365 days)")
	s.String(&c.DataDir, "DATA_DIR", "./data", "Local mode: directory of the embedded store (the discovery-data volume)")
	s.String(&c.ExportDir, "EXPORT_DIR", "./exports", "Local mode: directory the exports are written to")
	s.String(&c.Thresholds, "READINESS_THRESHOLDS", "", "JSON or YAML file overriding readiness thresholds (docs/EXPORTS.md)")
	s.Func("MIGRATION_PATH", readiness.DefaultPath, "How projects will move, which decides the size limits readiness judges by: `mirror` (git push --mirror + git lfs push), `ghes` (gl-exporter + ghe-migrator to GitHub Enterprise Server) or `gei` (GitHub Enterprise Importer, which does not list GitLab as a source); see docs/EXPORTS.md",
		func(v string) error { _, err := readiness.PathFor(v); c.MigrationPath = v; return err })
	s.String(&c.HealthAddr, "HEALTH_ADDR", ":8080", "Service mode: /health, /health/ready, /health/live, POST /runs")
	s.String(&c.MetricsAddr, "METRICS_ADDR", ":9090", "Service mode: Prometheus /metrics")
	s.String(&c.AdminToken, "ADMIN_TOKEN", "", "Service mode: bearer token (16 characters or more, e.g. `openssl rand -hex 32`) that `POST /runs`, `POST /dead-letters/redrive` and `DELETE /dead-letters` require; unset = they answer loopback clients only ([docs/RUNBOOK.md](docs/RUNBOOK.md#trust-model)); never logged")
	s.String(&c.Schedule, "SCAN_SCHEDULE", "", "Service mode: cron expression (5 fields) or interval (e.g. 24h); empty = on demand only")
	s.String(&c.Backend, "BACKEND", "local", "Service mode: `local` (embedded store, queue and export directory) or `aws` (SQS, DynamoDB and S3 named by the Lambda variables of [docs/DEPLOY.md](docs/DEPLOY.md); `AWS_ENDPOINT_URL` for an emulator such as moto)")
	s.String(&c.LogLevel, "LOG_LEVEL", "info", "debug, info, warn or error")
	s.Func("LOG_FORMAT", "auto", "`auto`: readable text lines when stderr is a terminal, JSON lines otherwise (containers, Lambda, files); `json` or `text` to choose",
		func(v string) error {
			switch v = strings.ToLower(v); v {
			case "auto", "json", "text":
				c.LogFormat = v
				return nil
			}
			return errors.New("want auto, json or text")
		})
	s.EnvOnly("ADMIN_TOKEN", "CACHE_TTL")
	s.List("ROOT_GROUPS", "RATE_LIMIT_ENDPOINTS")
	return s
}

// Vars returns every shared variable with its default and meaning, in the order of
// README.md's configuration table.
func Vars() []Var { return new(Config).declare().Vars() }

// FromEnv reads the configuration from the environment and validates its values;
// Validate checks what a role requires.
func FromEnv() (Config, error) {
	return Parse(os.Getenv)
}

// Parse reads the configuration through get, which returns a variable's value by name
// ("" unset): the environment, or command-line flags over it.
func Parse(get func(string) string) (Config, error) {
	var c Config
	err := c.declare().Parse(get)
	if c.cacheTTL != nil {
		// Set by hand on top of a copied .env that holds FULL_SCAN_EVERY's default.
		c.FullScanEvery = *c.cacheTTL
	}
	return c, errors.Join(err, c.readTokenFile())
}

// TokenFromFile says whether Token came from GITLAB_TOKEN_FILE rather than the
// environment (Lambda refuses a token in its environment, not one in a file).
func (c Config) TokenFromFile() bool { return c.tokenFile != "" }

// readTokenFile reads GITLAB_TOKEN_FILE into Token. The error names the file, never
// its content.
func (c *Config) readTokenFile() error {
	if c.tokenFile == "" {
		return nil
	}
	if c.Token != "" {
		return errors.New("GITLAB_TOKEN and GITLAB_TOKEN_FILE are both set: set one")
	}
	b, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return fmt.Errorf("GITLAB_TOKEN_FILE: %w", err)
	}
	if c.Token = strings.TrimSpace(string(b)); c.Token == "" {
		return fmt.Errorf("GITLAB_TOKEN_FILE %s is empty", c.tokenFile)
	}
	return nil
}

// String describes the configuration with the token redacted.
func (c Config) String() string {
	t := "unset"
	if c.Token != "" {
		t = "set"
	}
	return fmt.Sprintf("gitlab_url=%s token=%s root_groups=%v rate_limit_rpm=%s max_api_calls=%d max_per_project_calls=%d concurrency=%d",
		c.GitLabURL, t, c.RootGroups, c.rateLimitString(), c.MaxAPICalls, c.MaxPerProjectCalls, c.Concurrency)
}

// rateLimitString writes RATE_LIMIT_RPM as it was given.
func (c Config) rateLimitString() string {
	if c.RateLimitAuto && c.RateLimitRPM == 0 {
		return "auto"
	}
	return strconv.Itoa(c.RateLimitRPM)
}

// GoString keeps %#v from printing the token.
func (c Config) GoString() string { return c.String() }

// rootGroups parses "path, path/, 42" into paths without surrounding slashes.
func rootGroups(s string) []string {
	var groups []string
	for _, g := range strings.Split(s, ",") {
		if g = strings.Trim(strings.TrimSpace(g), "/"); g != "" {
			groups = append(groups, g)
		}
	}
	return groups
}

// rateLimit parses RATE_LIMIT_RPM: auto, a ceiling, or 0 (no pace of our own).
func (c *Config) rateLimit(v string) error {
	if strings.EqualFold(v, "auto") {
		c.RateLimitRPM, c.RateLimitAuto = 0, true
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return errors.New("want auto or a number of requests per minute (0: only what GitLab announces)")
	}
	c.RateLimitRPM, c.RateLimitAuto = n, n > 0
	return nil
}

// endpointRPM parses "class=rpm,class=rpm".
func endpointRPM(s string) (map[string]int, error) {
	var m map[string]int
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		class, n, ok := strings.Cut(part, "=")
		class = strings.Trim(strings.TrimSpace(class), "/")
		rpm, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || err != nil || rpm <= 0 || class == "" {
			return nil, fmt.Errorf("%q: want endpoint-class=requests-per-minute", part)
		}
		if m == nil {
			m = map[string]int{}
		}
		m[class] = rpm
	}
	return m, nil
}
