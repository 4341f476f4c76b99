package metrics

import (
	"fmt"
	"testing"
)

func TestEndpointLabel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"projects/:id/merge_requests", "projects/:id/merge_requests"},
		{"projects/:id/repository/files/:path/raw", "projects/:id/repository/files/:path/raw"},
		{"version", "version"},
		{"other", "other"},
		{"", "other"},
		{"/api/v4/projects/123", "other"},             // raw path with an ID
		{"projects/:id?private_token=x", "other"},     // query string
		{"projects/my%2Fgroup", "other"},              // encoded path
		{"Projects/:id", "other"},                     // not a class name
		{"groups/:id/projects/" + long(100), "other"}, // too long
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := newLabels().endpoint(tc.in); got != tc.want {
				t.Errorf("endpoint(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestStepLabel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"hooks", "hooks"},
		{"statistics", "statistics"},
		{"counts:merge_requests", "counts:merge_requests"},
		{"file:.gitlab-ci.yml", "file:.gitlab-ci.yml"},
		{"file:.gitlab/CODEOWNERS", "file:.gitlab/CODEOWNERS"},
		{"file:ci/templates/build.yml", "file:other"},
		{"file:", "file:other"},
		{"/etc/passwd", "other"},
		{"sub/dir", "other"},
		{"Hooks", "other"},
		{"", "other"},
		{long(41), "other"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := newLabels().step(tc.in); got != tc.want {
				t.Errorf("step(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestStepLabelCapped(t *testing.T) {
	l := newLabels()
	for i := range maxSteps {
		if got := l.step(fmt.Sprintf("step%d", i)); got != fmt.Sprintf("step%d", i) {
			t.Fatalf("step %d refused below the cap: %q", i, got)
		}
	}
	if got := l.step("one_too_many"); got != other {
		t.Errorf("step over the cap = %q, want other", got)
	}
	if got := l.step("step3"); got != "step3" {
		t.Errorf("known step after the cap = %q, want step3", got)
	}
}

func TestSmallLabels(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"status 200", statusLabel(200), "200"},
		{"status 0", statusLabel(0), "0"},
		{"status 599", statusLabel(599), "599"},
		{"status 42", statusLabel(42), other},
		{"status 600", statusLabel(600), other},
		{"status -1", statusLabel(-1), other},
		{"readiness empty", readinessLabel(""), "none"},
		{"readiness blocked", readinessLabel("blocked"), "blocked"},
		{"readiness unknown", readinessLabel("maybe"), other},
		{"retry 5xx", allowed(retryReasons, "5xx"), "5xx"},
		{"retry unknown", allowed(retryReasons, "503"), other},
		{"kind budget", allowed(errorKinds, "budget"), "budget"},
		{"kind unknown", allowed(errorKinds, "oops"), other},
		{"status not_found", allowed(scanStatuses, "not_found"), "not_found"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func long(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}
