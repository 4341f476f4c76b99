package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Role is what a process is configured to do; each role needs its own variables.
// Config's roles are the local ones; internal/lambdaapp adds the AWS ones.
type Role string

// The local roles.
const (
	RoleScan  Role = "scan"  // discovery-agent scan
	RoleServe Role = "serve" // discovery-agent serve with BACKEND=local
)

// A Rule is one requirement of a configuration T and the roles that have it.
type Rule[T any] struct {
	Var   string // the variable the rule is about
	Roles []Role
	Check func(T) error // nil when met; one line naming Var
}

// Rules are a configuration's requirements, one table for every role.
type Rules[T any] []Rule[T]

// Validate checks v against the rules of role and reports every unmet one.
func (rs Rules[T]) Validate(v T, role Role) error {
	known := false
	var errs []error
	for _, r := range rs {
		if !slices.Contains(r.Roles, role) {
			continue
		}
		known = true
		if err := r.Check(v); err != nil {
			errs = append(errs, err)
		}
	}
	if !known {
		return fmt.Errorf("no configuration rules for role %q", role)
	}
	return errors.Join(errs...)
}

// Required lists the variables role's rules are about, in the table's order.
func (rs Rules[T]) Required(role Role) []string {
	var names []string
	for _, r := range rs {
		if slices.Contains(r.Roles, role) && !slices.Contains(names, r.Var) {
			names = append(names, r.Var)
		}
	}
	return names
}

// NotEmpty is the rule that the variable name, read by value, is set.
func NotEmpty[T any](name string, value func(T) string, roles ...Role) Rule[T] {
	return Rule[T]{Var: name, Roles: roles, Check: func(v T) error {
		if value(v) == "" {
			return fmt.Errorf("%s is not set", name)
		}
		return nil
	}}
}

// CheckURL checks GITLAB_URL: set, an http or https URL, and without credentials
// (user:token@host would carry the token into logs, summaries and reports; the token
// belongs in GITLAB_TOKEN). A URL with credentials is never echoed.
func CheckURL(u string) error {
	rest := u
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+len("://"):]
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	switch {
	case u == "":
		return errors.New("GITLAB_URL is not set")
	case strings.Contains(rest, "@"):
		return errors.New("GITLAB_URL must not contain credentials (user:token@host): set the token in GITLAB_TOKEN")
	case !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://"):
		return fmt.Errorf("GITLAB_URL %q must start with http:// or https://", u)
	}
	return nil
}

var rules = Rules[Config]{
	{Var: "GITLAB_URL", Roles: []Role{RoleScan, RoleServe}, Check: func(c Config) error { return CheckURL(c.GitLabURL) }},
	{Var: "GITLAB_TOKEN", Roles: []Role{RoleScan, RoleServe}, Check: func(c Config) error {
		if c.Token == "" {
			return errors.New("GITLAB_TOKEN is not set (nor GITLAB_TOKEN_FILE)")
		}
		return nil
	}},
}

// Validate checks what role needs: for a scan and the local service, a GitLab URL and
// a token.
func (c Config) Validate(role Role) error { return rules.Validate(c, role) }

// Required lists the variables role must set.
func Required(role Role) []string { return rules.Required(role) }
