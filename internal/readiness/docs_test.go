package readiness

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readinessDoc returns the "## Readiness" section of docs/EXPORTS.md.
func readinessDoc(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "EXPORTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "\n## Readiness\n")
	if !ok {
		t.Fatal("docs/EXPORTS.md has no Readiness section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	return sec
}

var (
	// A row of the rule table: | `code` | tier | matches when |
	ruleRow = regexp.MustCompile("(?m)^\\| `([^`]+)` \\|([^|]*)\\|(.*)\\|\\s*$")
	// A code or threshold key: lower-case words joined by underscores.
	snakeName = regexp.MustCompile("`([a-z]+(?:_[a-z]+)+)`")
	// The thresholds example and its keys.
	yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")
	yamlKey   = regexp.MustCompile(`(?m)^([a-z_]+):`)
)

// TestRulesDocumented: the rule table in docs/EXPORTS.md has a row for every rule,
// with its tier, and no row for a code that is not a rule; the names it cites are
// codes or threshold keys.
func TestRulesDocumented(t *testing.T) {
	rows := ruleRow.FindAllStringSubmatch(readinessDoc(t), -1)
	keys := map[string]bool{}
	for _, d := range thresholds {
		keys[d.key] = true
	}
	documented := map[string]bool{}
	for _, row := range rows {
		code, tier, matches := row[1], strings.TrimSpace(row[2]), row[3]
		if _, err := PathFor(code); err == nil {
			continue // a row of the migration path table
		}
		documented[code] = true
		r, ok := RuleFor(code)
		if !ok {
			t.Errorf("docs/EXPORTS.md documents %s, which is not a rule", code)
			continue
		}
		if tier != r.Tier {
			t.Errorf("docs/EXPORTS.md gives %s tier %s, the rule %s", code, tier, r.Tier)
		}
		for _, m := range snakeName.FindAllStringSubmatch(matches, -1) {
			if _, isRule := RuleFor(m[1]); !isRule && !keys[m[1]] {
				t.Errorf("docs/EXPORTS.md: %s cites %s, neither a rule nor a threshold", code, m[1])
			}
		}
	}
	for _, r := range Rules {
		if !documented[r.Code] {
			t.Errorf("docs/EXPORTS.md has no row for rule %s", r.Code)
		}
	}
}

// TestThresholdsDocumented: the thresholds example in docs/EXPORTS.md lists every key
// with its default, and nothing else.
func TestThresholdsDocumented(t *testing.T) {
	doc := readinessDoc(t)
	if !strings.Contains(doc, EnvThresholds) {
		t.Errorf("docs/EXPORTS.md does not document %s", EnvThresholds)
	}
	block := yamlBlock.FindStringSubmatch(doc)
	if block == nil {
		t.Fatal("docs/EXPORTS.md has no thresholds example")
	}
	var documented []string
	for _, m := range yamlKey.FindAllStringSubmatch(block[1], -1) {
		documented = append(documented, m[1])
	}
	declared := map[string]bool{}
	for _, d := range thresholds {
		declared[d.key] = true
	}
	slices.Sort(documented)
	if want := slices.Sorted(maps.Keys(declared)); !slices.Equal(documented, want) {
		t.Errorf("docs/EXPORTS.md thresholds example has keys\n%v\nwant\n%v", documented, want)
	}
	// The example is a valid thresholds file that sets the defaults.
	path := filepath.Join(t.TempDir(), "thresholds.yaml")
	if err := os.WriteFile(path, []byte(block[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadThresholds(path)
	if err != nil {
		t.Fatalf("docs/EXPORTS.md thresholds example: %v", err)
	}
	if got != DefaultThresholds() {
		t.Errorf("docs/EXPORTS.md thresholds example gives\n%+v\nthe defaults are\n%+v", got, DefaultThresholds())
	}
}

// TestPathsDocumented: the migration path table in docs/EXPORTS.md has a row per path
// and the thresholds its limits set, as PathThresholds gives them.
func TestPathsDocumented(t *testing.T) {
	doc := readinessDoc(t)
	if !strings.Contains(doc, EnvPath) {
		t.Errorf("docs/EXPORTS.md does not document %s", EnvPath)
	}
	for _, p := range Paths {
		row := regexp.MustCompile("(?m)^\\| `" + p.Name + "`[^|]*\\|(.*)\\|\\s*$").FindStringSubmatch(doc)
		if row == nil {
			t.Errorf("docs/EXPORTS.md has no row for migration path %s", p.Name)
			continue
		}
		th, err := PathThresholds(p.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range []Bytes{th.MaxRepositorySize, th.MaxExportSize, th.LargeRepositorySize} {
			want := "none"
			if b > 0 {
				want = strings.ReplaceAll(b.String(), " ", "")
			}
			if !strings.Contains(row[1], want) {
				t.Errorf("docs/EXPORTS.md row of path %s does not give %s", p.Name, want)
			}
		}
	}
}
