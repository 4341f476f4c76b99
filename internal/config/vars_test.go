package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The documented defaults are the defaults: setting every variable to its documented
// default changes nothing.
func TestDocumentedDefaults(t *testing.T) {
	got, err := Parse(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, v := range Vars() {
		docs[v.Name] = v.Default
	}
	want, err := Parse(env(docs))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unset: %+v; at the documented defaults: %+v", got, want)
	}
	if got.Backend != "local" || got.DataDir != "./data" || got.ExportDir != "./exports" || got.LogLevel != "info" {
		t.Errorf("defaults %+v", got)
	}
}

func TestSet(t *testing.T) {
	var (
		s   Set
		n   int
		d   time.Duration
		str string
	)
	s.Int(&n, "N", 3, 1, "n")
	s.Duration(&d, "D", 24*time.Hour, "d")
	s.String(&str, "S", "x", "s")
	vars := s.Vars()
	if len(vars) != 3 || vars[0].Default != "3" || vars[1].Default != "24h" || vars[2].Default != "x" {
		t.Errorf("vars %+v", vars)
	}
	err := s.Parse(env(map[string]string{"N": " 0 ", "D": "90m", "S": " y "}))
	if got, want := errString(err), `N="0": want an integer of at least 1`; got != want {
		t.Errorf("Parse = %q, want %q", got, want)
	}
	if n != 3 || d != 90*time.Minute || str != "y" {
		t.Errorf("n=%d d=%v s=%q; want the default 3 kept, 1h30m0s, y", n, d, str)
	}
	defer func() {
		if recover() == nil {
			t.Error("a variable declared twice did not panic")
		}
	}()
	s.Int(&n, "N", 3, 1, "again")
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0", 30 * time.Second: "30s", 90 * time.Minute: "1h30m", 24 * time.Hour: "24h", 1500 * time.Millisecond: "1.5s"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if want != "0" {
			if back, err := time.ParseDuration(want); err != nil || back != d {
				t.Errorf("%q does not parse back to %v", want, d)
			}
		}
	}
}

func TestDiffTable(t *testing.T) {
	vars := []Var{{Name: "A", Default: "1", Meaning: "a"}, {Name: "B", Meaning: "b"}}
	tests := []struct {
		name, doc, want string
	}{
		{"equal", "text\n| `A` | `1` | a |\n| `B` | — | b |\n", ""},
		{"undeclared", "| `A` | `1` | a |\n| `B` | — | b |\n| `C` | — | c |", "the table lists C, which is not declared"},
		{"missing", "| `A` | `1` | a |", "the table lacks B:\n\t| `B` | — | b |"},
		{"default differs", "| `A` | `2` | a |\n| `B` | — | b |", "the row of A is\n\t| `A` | `2` | a |\nwant\n\t| `A` | `1` | a |"},
		{"order", "| `B` | — | b |\n| `A` | `1` | a |", "the rows are in the order [B A]; declared: [A B]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(DiffTable(tt.doc, vars), "\n"); got != tt.want {
				t.Errorf("DiffTable = %q, want %q", got, tt.want)
			}
		})
	}
}

// README.md's configuration table is the declarations: every shared variable, its
// default and its meaning, nothing else.
func TestREADMEConfigurationTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, d := range DiffTable(section, Vars()) {
		t.Errorf("README.md: %s", d)
	}
}
