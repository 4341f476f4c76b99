package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/spf13/pflag"
)

// A setting's flag is derived from its declaration in internal/config: GITLAB_URL is
// --gitlab-url, with the declaration's help and default. A flag given on the command
// line sets the variable of the same name for this process, so everything that reads
// the configuration (config.FromEnv, the aws backend's settings) sees flag > env >
// default the same way. Secrets and what points at them are never flags
// (config.Var.EnvOnly).

// settingFlag is the flag of one declared variable.
type settingFlag struct {
	v      config.Var
	values []string
	isBool bool
}

func (f *settingFlag) String() string { return strings.Join(f.values, ",") }
func (f *settingFlag) Type() string {
	if f.isBool {
		return "bool"
	}
	return "string"
}

// Set keeps the value: a list variable's flag (ROOT_GROUPS) adds to the list, any other
// flag given twice keeps the last.
func (f *settingFlag) Set(s string) error {
	if !f.v.List {
		f.values = f.values[:0]
	}
	f.values = append(f.values, s)
	return nil
}

// flagAliases are the older or shorter names of derived flags.
var flagAliases = map[string]string{"out": "export-dir", "root-group": "root-groups"}

// flagName is the flag of a variable: GITLAB_URL -> gitlab-url.
func flagName(v string) string { return strings.ToLower(strings.ReplaceAll(v, "_", "-")) }

// serviceOnly says whether a variable is only the service's (its help says so).
func serviceOnly(v config.Var) bool { return strings.HasPrefix(v.Meaning, "Service mode:") }

// addSettingFlags adds the flags of the declared variables that keep returns true for,
// and returns the function that applies the ones given (after parsing).
func addSettingFlags(fs *pflag.FlagSet, keep func(config.Var) bool) (apply func() error) {
	var flags []*settingFlag
	for _, v := range config.Vars() {
		if v.EnvOnly || !keep(v) {
			continue
		}
		f := &settingFlag{v: v, isBool: v.Default == "true" || v.Default == "false"}
		name := flagName(v.Name)
		fl := fs.VarPF(f, name, "", flagHelp(v, name))
		fl.DefValue = v.Default
		if f.isBool {
			fl.NoOptDefVal = "true" // --include-personal-projects alone stands for =true
		}
		flags = append(flags, f)
	}
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := flagAliases[name]; ok {
			name = to
		}
		return pflag.NormalizedName(name)
	})
	return func() error {
		for _, f := range flags {
			if f.values == nil {
				continue
			}
			val := f.String()
			// Checked alone, so the error names the flag rather than the variable.
			if _, err := config.Parse(func(n string) string {
				if n == f.v.Name {
					return val
				}
				return ""
			}); err != nil {
				_, reason, _ := strings.Cut(err.Error(), ": ")
				return usageError(fmt.Errorf("--%s %q: %s", flagName(f.v.Name), val, reason))
			}
			if err := os.Setenv(f.v.Name, val); err != nil {
				return err
			}
		}
		return nil
	}
}

var mdLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)

// flagHelp is a declaration's Markdown help as plain text, naming its variable.
func flagHelp(v config.Var, name string) string {
	h := mdLink.ReplaceAllString(v.Meaning, "$1")
	h = strings.ReplaceAll(h, "`", "")
	for alias, to := range flagAliases {
		if to == name {
			h += "; also --" + alias
		}
	}
	return h + " (env " + v.Name + ")"
}
