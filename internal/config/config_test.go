package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(Config) error
		wantErr string
	}{
		{"defaults", map[string]string{}, func(c Config) error {
			if c.RateLimitRPM != 0 || !c.RateLimitAuto || c.RateLimitTarget != 0.95 || c.MaxPerProjectCalls != 200 || c.Concurrency != 8 || c.MaxAPICalls != 0 ||
				c.HealthAddr != ":8080" || c.MetricsAddr != ":9090" || c.RequestTimeout != 30*time.Second {
				return fmt.Errorf("defaults wrong: %+v", c)
			}
			return nil
		}, ""},
		{"root groups trimmed", map[string]string{"ROOT_GROUPS": " a/b/ , ,42"}, func(c Config) error {
			if strings.Join(c.RootGroups, "|") != "a/b|42" {
				return fmt.Errorf("roots %q", c.RootGroups)
			}
			return nil
		}, ""},
		{"FULL_SCAN_EVERY defaults to 7 days", nil, func(c Config) error {
			if c.FullScanEvery != 7*24*time.Hour {
				return fmt.Errorf("full scan every %v", c.FullScanEvery)
			}
			return nil
		}, ""},
		{"FULL_SCAN_EVERY in seconds", map[string]string{"FULL_SCAN_EVERY": "3600"}, func(c Config) error {
			if c.FullScanEvery != time.Hour {
				return fmt.Errorf("full scan every %v", c.FullScanEvery)
			}
			return nil
		}, ""},
		{"FULL_SCAN_EVERY 0 turns incremental runs off", map[string]string{"FULL_SCAN_EVERY": "0"}, func(c Config) error {
			if c.FullScanEvery != 0 {
				return fmt.Errorf("full scan every %v", c.FullScanEvery)
			}
			return nil
		}, ""},
		{"bad FULL_SCAN_EVERY", map[string]string{"FULL_SCAN_EVERY": "weekly"}, nil, "FULL_SCAN_EVERY"},
		{"per-endpoint limits", map[string]string{"RATE_LIMIT_ENDPOINTS": "groups/:id/projects=600, projects/:id=400"}, func(c Config) error {
			if c.EndpointRPM["groups/:id/projects"] != 600 || c.EndpointRPM["projects/:id"] != 400 || len(c.EndpointRPM) != 2 {
				return fmt.Errorf("endpoint limits %v", c.EndpointRPM)
			}
			return nil
		}, ""},
		{"MIGRATION_PATH defaults to mirror", map[string]string{}, func(c Config) error {
			if c.MigrationPath != "mirror" {
				return fmt.Errorf("migration path %q", c.MigrationPath)
			}
			return nil
		}, ""},
		{"MIGRATION_PATH gei", map[string]string{"MIGRATION_PATH": " gei "}, func(c Config) error {
			if c.MigrationPath != "gei" {
				return fmt.Errorf("migration path %q", c.MigrationPath)
			}
			return nil
		}, ""},
		{"unknown MIGRATION_PATH", map[string]string{"MIGRATION_PATH": "github-importer"}, nil, `MIGRATION_PATH="github-importer": unknown migration path`},
		{"a number is a ceiling on the auto pace", map[string]string{"RATE_LIMIT_RPM": "3000"}, func(c Config) error {
			if c.RateLimitRPM != 3000 || !c.RateLimitAuto {
				return fmt.Errorf("rpm %d auto %v", c.RateLimitRPM, c.RateLimitAuto)
			}
			return nil
		}, ""},
		{"0 paces only by what GitLab announces", map[string]string{"RATE_LIMIT_RPM": "0", "RATE_LIMIT_TARGET": "1"}, func(c Config) error {
			if c.RateLimitRPM != 0 || c.RateLimitAuto || c.RateLimitTarget != 1 {
				return fmt.Errorf("rpm %d auto %v target %v", c.RateLimitRPM, c.RateLimitAuto, c.RateLimitTarget)
			}
			return nil
		}, ""},
		{"AUTO in capitals", map[string]string{"RATE_LIMIT_RPM": "AUTO"}, func(c Config) error {
			if !c.RateLimitAuto || c.RateLimitRPM != 0 {
				return fmt.Errorf("rpm %d auto %v", c.RateLimitRPM, c.RateLimitAuto)
			}
			return nil
		}, ""},
		{"bad rate", map[string]string{"RATE_LIMIT_RPM": "fast"}, nil, `RATE_LIMIT_RPM="fast": want auto or a number`},
		{"negative rate", map[string]string{"RATE_LIMIT_RPM": "-5"}, nil, `RATE_LIMIT_RPM="-5"`},
		{"target above 1", map[string]string{"RATE_LIMIT_TARGET": "1.2"}, nil, `RATE_LIMIT_TARGET="1.2": want a share above 0`},
		{"target 0", map[string]string{"RATE_LIMIT_TARGET": "0"}, nil, `RATE_LIMIT_TARGET="0"`},
		{"target NaN", map[string]string{"RATE_LIMIT_TARGET": "NaN"}, nil, `RATE_LIMIT_TARGET="NaN"`},
		{"bad endpoint limit", map[string]string{"RATE_LIMIT_ENDPOINTS": "groups=fast"}, nil, "RATE_LIMIT_ENDPOINTS"},
		{"bad numbers are named", map[string]string{"MAX_API_CALLS": "lots", "CONCURRENT_REQUESTS": "-1"}, nil, "MAX_API_CALLS"},
		{"zero concurrency", map[string]string{"CONCURRENT_REQUESTS": "0"}, nil, `CONCURRENT_REQUESTS="0": want an integer of at least 1`},
		{"bad bool", map[string]string{"INCLUDE_PERSONAL_PROJECTS": "yes"}, nil, `INCLUDE_PERSONAL_PROJECTS="yes": want true or false`},
		{"bad duration", map[string]string{"REQUEST_TIMEOUT": "soon"}, nil, `REQUEST_TIMEOUT="soon": want a duration like 30s or a number of seconds`},
		{"URL trimmed", map[string]string{"GITLAB_URL": " https://gitlab.example.com/ "}, func(c Config) error {
			if c.GitLabURL != "https://gitlab.example.com" {
				return fmt.Errorf("url %q", c.GitLabURL)
			}
			return nil
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.want(c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	c, _ := Parse(env(map[string]string{"GITLAB_URL": "https://gitlab.example.com", "GITLAB_TOKEN": "glpat-secret",
		"ADMIN_TOKEN": " admin-secret-0123456789 "}))
	if c.AdminToken != "admin-secret-0123456789" {
		t.Errorf("AdminToken = %q, want the trimmed ADMIN_TOKEN", c.AdminToken)
	}
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, "glpat-secret") || strings.Contains(s, "admin-secret") {
			t.Errorf("token printed: %s", s)
		}
	}
}

// TestCacheTTLIsFullScanEvery: the operations runbook tunes CACHE_TTL; it is read as
// FULL_SCAN_EVERY's older name and, when set, takes its place (a copied .env already
// holds FULL_SCAN_EVERY's default).
func TestCacheTTLIsFullScanEvery(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want time.Duration
	}{
		{map[string]string{}, 7 * 24 * time.Hour},
		{map[string]string{"CACHE_TTL": "3600"}, time.Hour},
		{map[string]string{"CACHE_TTL": "24h"}, 24 * time.Hour},
		{map[string]string{"CACHE_TTL": "3600", "FULL_SCAN_EVERY": "168h"}, time.Hour},
		{map[string]string{"FULL_SCAN_EVERY": "0"}, 0},
	} {
		cfg, err := Parse(func(k string) string { return c.env[k] })
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		if cfg.FullScanEvery != c.want {
			t.Errorf("%v: FullScanEvery = %v, want %v", c.env, cfg.FullScanEvery, c.want)
		}
	}
	if _, err := Parse(func(k string) string { return map[string]string{"CACHE_TTL": "soon"}[k] }); err == nil {
		t.Error("CACHE_TTL=soon accepted")
	}
}

// GITLAB_TOKEN_FILE fills the token from a file (trimmed); an error names the file,
// never its content, and both set is an error rather than a guess.
func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  glpat-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env       map[string]string
		token     string
		wantError string
	}{
		{env: map[string]string{"GITLAB_TOKEN_FILE": file}, token: "glpat-from-file"},
		{env: map[string]string{"GITLAB_TOKEN": "glpat-env"}, token: "glpat-env"},
		{env: map[string]string{"GITLAB_TOKEN_FILE": file, "GITLAB_TOKEN": "glpat-env"}, wantError: "both set"},
		{env: map[string]string{"GITLAB_TOKEN_FILE": filepath.Join(dir, "nope")}, wantError: "GITLAB_TOKEN_FILE: open " + filepath.Join(dir, "nope")},
		{env: map[string]string{"GITLAB_TOKEN_FILE": empty}, wantError: "is empty"},
	}
	for _, tt := range tests {
		c, err := Parse(env(tt.env))
		if tt.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantError) {
				t.Errorf("%v: error %v, want %q", tt.env, err, tt.wantError)
			}
			if err != nil && strings.Contains(err.Error(), "glpat") {
				t.Errorf("%v: the error shows the token: %v", tt.env, err)
			}
			continue
		}
		if err != nil || c.Token != tt.token {
			t.Errorf("%v: token %q, %v; want %q", tt.env, c.Token, err, tt.token)
		}
	}
}

func TestLogFormat(t *testing.T) {
	for v, want := range map[string]string{"": "auto", "JSON": "json", "text": "text", "xml": ""} {
		c, err := Parse(env(map[string]string{"LOG_FORMAT": v}))
		if want == "" {
			if err == nil || !strings.Contains(err.Error(), "LOG_FORMAT") {
				t.Errorf("LOG_FORMAT=%q: error %v, want one naming it", v, err)
			}
			continue
		}
		if err != nil || c.LogFormat != want {
			t.Errorf("LOG_FORMAT=%q: %q, %v; want %q", v, c.LogFormat, err, want)
		}
	}
}
