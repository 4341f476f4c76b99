package facts

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// jsonFields returns v's JSON object as a map.
func jsonFields(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCountsMatchInventory: every count's Field is the inventory.Counts field whose
// JSON name is the count's Name, and every count field is declared exactly once.
func TestCountsMatchInventory(t *testing.T) {
	var all inventory.Counts
	seen := map[string]bool{}
	for i, c := range Counts {
		if seen[c.Name] {
			t.Errorf("count %q declared twice", c.Name)
		}
		seen[c.Name] = true
		var one inventory.Counts
		n := int64(1000 + i)
		*c.Field(&one) = &n
		*c.Field(&all) = &n
		for k, v := range jsonFields(t, one) {
			switch {
			case k == c.Name && v != float64(n):
				t.Errorf("count %q: Field sets JSON %q to %v", c.Name, k, v)
			case k != c.Name && v != nil:
				t.Errorf("count %q: Field sets JSON %q, not %q", c.Name, k, c.Name)
			}
		}
	}
	for k, v := range jsonFields(t, all) {
		if v == nil && k != "lower_bounds" {
			t.Errorf("inventory.Counts field %q has no declared Count", k)
		}
	}
}

func TestCountsAreRequestable(t *testing.T) {
	for _, c := range Counts {
		if c.Endpoint != Project && !strings.HasPrefix(c.Endpoint, Project+"/") {
			t.Errorf("count %q: endpoint %q is not below %s", c.Name, c.Endpoint, Project)
		}
		if c.Listed() && (c.Query != "" || c.Resource() != "") {
			t.Errorf("count %q is listed but has a query %q or resource %q", c.Name, c.Query, c.Resource())
		}
		if !c.Listed() && "projects/:id/"+c.Resource() != c.Endpoint {
			t.Errorf("count %q: resource %q does not name endpoint %q", c.Name, c.Resource(), c.Endpoint)
		}
		if _, err := url.ParseQuery(c.Query); err != nil {
			t.Errorf("count %q: query %q: %v", c.Name, c.Query, err)
		}
		// Values must be a new map each time: the client sets per_page on it.
		q := c.Values()
		q.Set("per_page", "1")
		if c.Values().Has("per_page") {
			t.Errorf("count %q: Values shares its map", c.Name)
		}
	}
}

func TestStatsMatchInventory(t *testing.T) {
	var all inventory.Statistics
	v := reflect.ValueOf(&all).Elem()
	for i := range v.NumField() {
		v.Field(i).SetInt(int64(100 + i))
	}
	m := jsonFields(t, all)
	seen := map[string]bool{}
	for _, s := range Stats {
		if seen[s.Name] {
			t.Errorf("stat %q declared twice", s.Name)
		}
		seen[s.Name] = true
		if got := s.Field(&all); m[s.Name] != float64(got) {
			t.Errorf("stat %q: Field gives %d, JSON %q holds %v", s.Name, got, s.Name, m[s.Name])
		}
		if s.Column == "" {
			t.Errorf("stat %q has no CSV column", s.Name)
		}
	}
	for k := range m {
		if !seen[k] {
			t.Errorf("inventory.Statistics field %q has no declared Stat", k)
		}
	}
}

func TestStepsOf(t *testing.T) {
	names := map[string]bool{}
	for _, s := range Steps {
		if names[s.Name] {
			t.Errorf("step %q declared twice", s.Name)
		}
		names[s.Name] = true
	}
	for _, c := range Counts {
		if names[c.Name] {
			t.Errorf("count %q has a step's name", c.Name)
		}
	}
	m := StepsOf()
	want := map[string][]string{
		"projects/:id":                     {"statistics"},
		"projects/:id/merge_requests":      {"merge_requests", "open_merge_requests"},
		"projects/:id/repository/tree":     {"tree", "tree:docs", "tree:.gitlab", "tree:ci_config_path"},
		"projects/:id/repository/branches": {"branches"},
	}
	for e, steps := range want {
		if !reflect.DeepEqual(m[e], steps) {
			t.Errorf("StepsOf()[%q] = %v, want %v", e, m[e], steps)
		}
	}
	eps := Endpoints()
	if len(eps) != len(m) {
		t.Errorf("Endpoints() has %d classes, StepsOf() %d: %v", len(eps), len(m), eps)
	}
	for _, e := range eps {
		if _, ok := m[e]; !ok {
			t.Errorf("endpoint %q requested by no step", e)
		}
	}
}

// TestFlagsMatchInventory: each declared flag is the Features field its JSON name
// says, every *bool of Features is declared, and a nil flag is JSON null.
func TestFlagsMatchInventory(t *testing.T) {
	var f inventory.Features
	seen := map[string]bool{}
	for _, fl := range Flags {
		if seen[fl.Name] {
			t.Errorf("flag %q declared twice", fl.Name)
		}
		seen[fl.Name] = true
		if v, ok := jsonFields(t, f)[fl.Name]; !ok || v != nil {
			t.Errorf("flag %q unknown: JSON holds %v (present %v), want null", fl.Name, v, ok)
		}
		*fl.Field(&f) = new(true)
		if m := jsonFields(t, f); m[fl.Name] != true {
			t.Errorf("flag %q: Field sets JSON %q to %v, want true", fl.Name, fl.Name, m[fl.Name])
		}
		if FlagNamed(fl.Name).Name != fl.Name {
			t.Errorf("FlagNamed(%q) differs", fl.Name)
		}
	}
	v := reflect.TypeOf(f)
	for i := range v.NumField() {
		sf := v.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if sf.Type == reflect.TypeOf((*bool)(nil)) && !seen[name] {
			t.Errorf("Features.%s (%q) is a flag with no declaration", sf.Name, name)
		}
	}
}

// TestGraphQLListsPassTheCap: a count read as a list's length asks for one item more
// than TotalCap, so that a list past REST's cap is known to be a lower bound.
func TestGraphQLListsPassTheCap(t *testing.T) {
	for _, c := range Counts {
		if c.GraphQLList == "" {
			continue
		}
		if want := "limit: " + strconv.Itoa(TotalCap+1) + ")"; !strings.Contains(c.GraphQLList, want) {
			t.Errorf("%s: %s does not ask for %s", c.Name, c.GraphQLList, want)
		}
	}
}
