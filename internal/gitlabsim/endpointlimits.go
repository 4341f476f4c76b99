package gitlabsim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EndpointLimit is a limit of an endpoint class's own, like the Projects, Groups and
// Users API limits GitLab enforces with its application rate limiter: the class's
// requests count against a fixed window of their own, besides the authenticated-API
// limit, and only that class is answered 429 when the window is full.
type EndpointLimit struct {
	Class  string        // endpoint class, such as "projects/:id"
	Limit  int           // requests per window, at least 1
	Window time.Duration // default one minute
	// Name is the RateLimit-Name the class announces; default GitLab's application
	// rate limiter key for the class (such as "project_api"), or one derived from
	// the class for classes GitLab does not limit on their own.
	Name string
}

// GitLabComRPM is GitLab.com's authenticated API limit: 2,000 requests each minute
// per user ("GitLab.com rate limits", https://docs.gitlab.com/user/gitlab_com/rate_limits/).
const GitLabComRPM = 2000

// GitLabComEndpointLimits returns the per-endpoint limits of "GitLab.com rate
// limits" for the endpoints the simulator serves. Left out: the repository files
// API's 500 a minute, which counts per IP address and file path (a scan reads each
// path once), and the plan-based hourly limits, which are proposed, not in effect.
func GitLabComEndpointLimits() []EndpointLimit {
	return []EndpointLimit{
		{Class: "projects", Limit: 2000, Window: 10 * time.Minute},
		{Class: "projects/:id", Limit: 400},
		{Class: "groups", Limit: 50},
		{Class: "groups/:id", Limit: 400},
		{Class: "groups/:id/projects", Limit: 600},
		{Class: "users/:id/projects", Limit: 300},
		// GitLab 18.6 limits GET /projects/:id/members/all per user (60 a minute
		// at first, raised to 200: gitlab-org/gitlab merge requests 211239, 213372).
		{Class: "projects/:id/members/all", Limit: 200},
	}
}

// limiterKeys are the keys of Gitlab::ApplicationRateLimiter for the classes it limits.
var limiterKeys = map[class]string{
	clsProjects:       "projects_api",
	clsProject:        "project_api",
	clsGroups:         "groups_api",
	clsGroup:          "group_api",
	clsGroupProjects:  "group_projects_api",
	clsUserProjects:   "user_projects_api",
	clsProjectMembers: "project_members_api",
}

// withDefaults fills in the window and the name.
func (l EndpointLimit) withDefaults() EndpointLimit {
	if l.Window <= 0 {
		l.Window = time.Minute
	}
	if l.Name == "" {
		c, _ := classByName(l.Class)
		if l.Name = limiterKeys[c]; l.Name == "" {
			l.Name = "throttle_" + strings.NewReplacer("/", "_", ":", "").Replace(l.Class)
		}
	}
	return l
}

// validateEndpointLimits reports unknown or repeated classes, limits under 1 and
// negative windows.
func validateEndpointLimits(ls []EndpointLimit) error {
	var errs []error
	seen := map[string]bool{}
	for _, l := range ls {
		if c, ok := classByName(l.Class); !ok || c == clsOther {
			errs = append(errs, fmt.Errorf("endpoint limit: unknown endpoint class %q", l.Class))
		}
		if seen[l.Class] {
			errs = append(errs, fmt.Errorf("endpoint limit: class %q given twice", l.Class))
		}
		seen[l.Class] = true
		if l.Limit < 1 {
			errs = append(errs, fmt.Errorf("endpoint limit %q: limit %d is not positive", l.Class, l.Limit))
		}
		if l.Window < 0 {
			errs = append(errs, fmt.Errorf("endpoint limit %q: negative window %v", l.Class, l.Window))
		}
	}
	return errors.Join(errs...)
}

// ParseEndpointLimits reads limits written as comma-separated class=limit[/window]
// pairs, such as "projects/:id=400,projects=2000/10m"; the window defaults to one
// minute.
func ParseEndpointLimits(s string) ([]EndpointLimit, error) {
	var out []EndpointLimit
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		cls, spec, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("endpoint limit %q: want class=limit[/window]", part)
		}
		num, win, hasWin := strings.Cut(spec, "/")
		l := EndpointLimit{Class: strings.TrimSpace(cls)}
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if err != nil {
			return nil, fmt.Errorf("endpoint limit %q: limit: %w", part, err)
		}
		l.Limit = n
		if hasWin {
			if l.Window, err = time.ParseDuration(strings.TrimSpace(win)); err != nil {
				return nil, fmt.Errorf("endpoint limit %q: window: %w", part, err)
			}
		}
		out = append(out, l)
	}
	if err := validateEndpointLimits(out); err != nil {
		return nil, err
	}
	return out, nil
}

// MergeEndpointLimits returns base with each of over replacing the limit of its
// class or, for a class base does not limit, added.
func MergeEndpointLimits(base, over []EndpointLimit) []EndpointLimit {
	out := append([]EndpointLimit(nil), base...)
	for _, o := range over {
		replaced := false
		for i := range out {
			if out[i].Class == o.Class {
				out[i], replaced = o, true
			}
		}
		if !replaced {
			out = append(out, o)
		}
	}
	return out
}
