package config

import (
	"slices"
	"testing"
)

func TestValidate(t *testing.T) {
	full := map[string]string{"GITLAB_URL": "https://gitlab.example.com", "GITLAB_TOKEN": "glpat-x"}
	tests := []struct {
		name string
		role Role
		env  map[string]string
		want string // the exact error; "" = valid
	}{
		{"scan", RoleScan, full, ""},
		{"serve", RoleServe, full, ""},
		{"scan without anything", RoleScan, nil, "GITLAB_URL is not set\nGITLAB_TOKEN is not set (nor GITLAB_TOKEN_FILE)"},
		{"serve without a token", RoleServe, map[string]string{"GITLAB_URL": "http://gitlab"}, "GITLAB_TOKEN is not set (nor GITLAB_TOKEN_FILE)"},
		{"URL without a scheme", RoleScan, map[string]string{"GITLAB_URL": "gitlab.example.com", "GITLAB_TOKEN": "t"},
			`GITLAB_URL "gitlab.example.com" must start with http:// or https://`},
		{"URL with credentials", RoleScan, map[string]string{"GITLAB_URL": "https://user:glpat-secret@gitlab.example.com", "GITLAB_TOKEN": "t"},
			"GITLAB_URL must not contain credentials (user:token@host): set the token in GITLAB_TOKEN"},
		{"URL with a user only", RoleScan, map[string]string{"GITLAB_URL": "http://glpat-secret@gitlab/path", "GITLAB_TOKEN": "t"},
			"GITLAB_URL must not contain credentials (user:token@host): set the token in GITLAB_TOKEN"},
		{"credentials without a scheme", RoleScan, map[string]string{"GITLAB_URL": "user:glpat-secret@gitlab", "GITLAB_TOKEN": "t"},
			"GITLAB_URL must not contain credentials (user:token@host): set the token in GITLAB_TOKEN"},
		{"@ in the path is no credential", RoleScan, map[string]string{"GITLAB_URL": "https://gitlab.example.com/a@b", "GITLAB_TOKEN": "t"}, ""},
		{"unknown role", Role("worker"), full, `no configuration rules for role "worker"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate(tt.role)
			if got := errString(err); got != tt.want {
				t.Errorf("Validate(%s) = %q, want %q", tt.role, got, tt.want)
			}
		})
	}
}

func TestRequired(t *testing.T) {
	for _, role := range []Role{RoleScan, RoleServe} {
		if got, want := Required(role), []string{"GITLAB_URL", "GITLAB_TOKEN"}; !slices.Equal(got, want) {
			t.Errorf("Required(%s) = %v, want %v", role, got, want)
		}
	}
	// Every rule is about a declared variable.
	declared := map[string]bool{}
	for _, v := range Vars() {
		declared[v.Name] = true
	}
	for _, r := range rules {
		if !declared[r.Var] {
			t.Errorf("a rule is about %s, which is not declared", r.Var)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
