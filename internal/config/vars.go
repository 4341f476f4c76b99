package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Set declares environment variables the way a flag.FlagSet declares flags: each
// with its name, default, help and the parser that stores its value. Parsing and the
// documentation (Vars, MarkdownTable) both come from the declarations, so a variable
// is named and defaulted in one place.
type Set struct {
	vars []Var
}

// Var is one declared environment variable.
type Var struct {
	Name string
	// Default is the value an unset (or blank) variable takes, as the docs show it;
	// "" is no value.
	Default string
	// Meaning is the help, in Markdown: README.md and docs/DEPLOY.md show it as written.
	Meaning string
	// EnvOnly is a variable no command-line flag may set: a secret (a flag would show
	// in the process list and the shell history), what points at one, a legacy name.
	EnvOnly bool
	// List is a comma-separated list: its flag may be given more than once.
	List bool

	parse func(string) error // stores a trimmed value; the default when unset
}

// Vars returns the declared variables in declaration order.
func (s *Set) Vars() []Var { return append([]Var(nil), s.vars...) }

// Parse reads every declared variable through get. A bad value is reported with the
// variable's name and its destination keeps the default; all bad values are reported.
func (s *Set) Parse(get func(string) string) error {
	var errs []error
	for _, v := range s.vars {
		val := strings.TrimSpace(get(v.Name))
		if val == "" {
			val = v.Default
		}
		if err := v.parse(val); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", v.Name, val, err))
		}
	}
	return errors.Join(errs...)
}

// Func declares a variable parsed by fn, which receives the trimmed value, or def when
// the variable is unset.
func (s *Set) Func(name, def, help string, fn func(string) error) {
	for _, v := range s.vars {
		if v.Name == name {
			panic("config: " + name + " declared twice")
		}
	}
	s.vars = append(s.vars, Var{Name: name, Default: def, Meaning: help, parse: fn})
}

// EnvOnly marks declared variables as never set by a flag (Var.EnvOnly).
func (s *Set) EnvOnly(names ...string) { s.mark(func(v *Var) { v.EnvOnly = true }, names) }

// List marks declared variables as comma-separated lists (Var.List).
func (s *Set) List(names ...string) { s.mark(func(v *Var) { v.List = true }, names) }

func (s *Set) mark(fn func(*Var), names []string) {
	for _, name := range names {
		i := slices.IndexFunc(s.vars, func(v Var) bool { return v.Name == name })
		if i < 0 {
			panic("config: " + name + " is not declared")
		}
		fn(&s.vars[i])
	}
}

// String declares a string variable stored in *p.
func (s *Set) String(p *string, name, def, help string) {
	*p = def
	s.Func(name, def, help, func(v string) error { *p = v; return nil })
}

// Int declares an integer variable of at least least, stored in *p.
func (s *Set) Int(p *int, name string, def, least int, help string) {
	*p = def
	s.Func(name, strconv.Itoa(def), help, func(v string) error {
		n, err := ParseInt(v, least)
		if err == nil {
			*p = n
		}
		return err
	})
}

// Int64 declares an integer variable of at least least, stored in *p.
func (s *Set) Int64(p *int64, name string, def, least int64, help string) {
	*p = def
	s.Func(name, strconv.FormatInt(def, 10), help, func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < least {
			return fmt.Errorf("want an integer of at least %d", least)
		}
		*p = n
		return nil
	})
}

// Bool declares a boolean variable (true, false, 1, 0, …) stored in *p.
func (s *Set) Bool(p *bool, name string, def bool, help string) {
	*p = def
	s.Func(name, strconv.FormatBool(def), help, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*p = b
		return nil
	})
}

// Duration declares a duration variable stored in *p. It takes Go durations ("90s",
// "24h") or plain seconds ("3600").
func (s *Set) Duration(p *time.Duration, name string, def time.Duration, help string) {
	*p = def
	s.Func(name, formatDuration(def), help, func(v string) error {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			*p = time.Duration(n) * time.Second
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errors.New("want a duration like 30s or a number of seconds")
		}
		*p = d
		return nil
	})
}

// ParseInt parses an integer of at least least, for variables declared with Func.
func ParseInt(v string, least int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		return 0, fmt.Errorf("want an integer of at least %d", least)
	}
	return n, nil
}

// formatDuration writes d as the docs do: "0", "30s", "24h" rather than "24h0m0s".
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarkdownTable renders vars as the docs' configuration tables: a header and one row
// per variable, "—" for no default.
func MarkdownTable(vars []Var) string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, v := range vars {
		def := "—"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, v.Meaning)
	}
	return b.String()
}

// DiffTable compares a document's Markdown table of variables (the lines of doc that
// start with "| `") with the declarations and describes every difference: a declared
// variable the table lacks, a row for an undeclared one, a row whose default or
// meaning differs, rows out of order. Tests keep README.md and docs/DEPLOY.md equal to
// the declarations with it.
func DiffTable(doc string, vars []Var) []string {
	want := map[string]string{}
	var order []string
	for _, line := range strings.Split(MarkdownTable(vars), "\n") {
		if name, ok := rowName(line); ok {
			want[name] = line
			order = append(order, name)
		}
	}
	var diffs, got []string
	for _, line := range strings.Split(doc, "\n") {
		name, ok := rowName(line)
		if !ok {
			continue
		}
		got = append(got, name)
		switch w, declared := want[name]; {
		case !declared:
			diffs = append(diffs, fmt.Sprintf("the table lists %s, which is not declared", name))
		case strings.TrimSpace(line) != w:
			diffs = append(diffs, fmt.Sprintf("the row of %s is\n\t%s\nwant\n\t%s", name, line, w))
		}
	}
	for _, name := range order {
		if !slices.Contains(got, name) {
			diffs = append(diffs, fmt.Sprintf("the table lacks %s:\n\t%s", name, want[name]))
		}
	}
	if diffs == nil && !slices.Equal(got, order) {
		diffs = append(diffs, fmt.Sprintf("the rows are in the order %v; declared: %v", got, order))
	}
	return diffs
}

// rowName returns the variable a table row is about.
func rowName(line string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "| `")
	if !ok {
		return "", false
	}
	name, _, ok := strings.Cut(rest, "`")
	return name, ok
}
