package monitoring

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gl2gh/discovery-agent/internal/metrics"
	"go.yaml.in/yaml/v3"
)

// The dashboard imports into any Grafana: every panel and query takes its data source
// from the ${datasource} variable, every query selects the $job and $instance
// variables, and the file carries the __inputs and __requires of Grafana's export for
// sharing externally. In the compose stacks, the provisioned Prometheus is Grafana's
// default data source, which the variable selects when it has no value.

const dashboardFile = "grafana/dashboards/discovery-agent-overview.json"

// dsRef is how every panel and query names its data source.
const dsRef = "${datasource}"

type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Requires []struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"__requires"`
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
	Links  []struct {
		Title string `json:"title"`
		URL   string `json:"url"`
	} `json:"links"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type dsRefJSON struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"` // a string, or {"query": ...} for Prometheus
	Datasource *dsRefJSON      `json:"datasource"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// query is the variable's query, whichever of its two forms.
func (v variable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &q)
	return q.Query
}

type panel struct {
	ID          int                      `json:"id"`
	Type        string                   `json:"type"`
	Title       string                   `json:"title"`
	Description string                   `json:"description"`
	Datasource  *dsRefJSON               `json:"datasource"`
	GridPos     struct{ H, W, X, Y int } `json:"gridPos"`
	Targets     []struct {
		Expr       string     `json:"expr"`
		RefID      string     `json:"refId"`
		Datasource *dsRefJSON `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func readDashboard(t *testing.T) (dashboard, []panel) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var all []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, all
}

func TestDashboard(t *testing.T) {
	d, panels := readDashboard(t)
	if d.UID != "discovery-agent-overview" || d.Title != "Discovery Agent - Overview" {
		t.Errorf("uid %q title %q", d.UID, d.Title)
	}
	titles := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range panels {
		titles[p.Title] = true
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" {
				t.Errorf("panel %q: target %+v", p.Title, tg)
			}
		}
	}
	base, _ := runbookBase(t)
	if len(d.Links) != 1 || d.Links[0].URL != base {
		t.Errorf("dashboard links %+v, want one to the runbook base %s", d.Links, base)
	}
	// Titles the runbook names, and one per area the dashboard must cover.
	for _, want := range []string{
		"Error Rate", "API Latency (p95)", "API Latency (p50 / p95 / p99)", "API Request Rate",
		"Rate Limit Remaining", "Budget Tokens Available", "Groups Scanned", "Projects Profiled",
		"Queue Depth", "ETA", "Readiness Breakdown", "Memory", "CPU",
	} {
		if !titles[want] {
			t.Errorf("no panel titled %q", want)
		}
	}
}

// Each check is one property every panel (not rows: Grafana shows no description or
// query for them) must have.
var panelChecks = []struct {
	name  string
	check func(p panel) error
}{
	{"has a description", func(p panel) error {
		if strings.TrimSpace(p.Description) == "" {
			return errors.New("no description")
		}
		return nil
	}},
	{"uses the datasource variable", func(p panel) error {
		if p.Datasource == nil || *p.Datasource != (dsRefJSON{"prometheus", dsRef}) {
			return fmt.Errorf("datasource %+v, want uid %s", p.Datasource, dsRef)
		}
		for _, tg := range p.Targets {
			// A target without a datasource inherits the panel's.
			if tg.Datasource != nil && *tg.Datasource != *p.Datasource {
				return fmt.Errorf("target %s: datasource %+v, want the panel's", tg.RefID, tg.Datasource)
			}
		}
		return nil
	}},
	{"selects $job and $instance", func(p panel) error {
		for _, tg := range p.Targets {
			sels := selectors(tg.Expr)
			if len(sels) == 0 {
				return fmt.Errorf("target %s selects nothing: %s", tg.RefID, tg.Expr)
			}
			for _, s := range sels {
				m := strings.ReplaceAll(s.matchers, " ", "")
				if !strings.Contains(m, `job=~"$job"`) || !strings.Contains(m, `instance=~"$instance"`) {
					return fmt.Errorf("target %s: %s%s does not select job=~\"$job\" and instance=~\"$instance\"", tg.RefID, s.name, s.matchers)
				}
			}
		}
		return nil
	}},
	{"rates over $__rate_interval", func(p panel) error {
		for _, tg := range p.Targets {
			calls, all := rangeCalls(tg.Expr)
			if !all {
				return fmt.Errorf("target %s: a range outside rate() or increase(): %s", tg.RefID, tg.Expr)
			}
			for _, c := range calls {
				// increase() over the whole time range is how the stat panels total.
				ok := c.rng == "$__rate_interval" || (c.fn == "increase" && c.rng == "$__range")
				if !ok || (c.fn != "rate" && c.fn != "increase") {
					return fmt.Errorf("target %s: %s(...[%s]), want rate or increase over $__rate_interval", tg.RefID, c.fn, c.rng)
				}
			}
		}
		return nil
	}},
}

func TestDashboardPanels(t *testing.T) {
	_, panels := readDashboard(t)
	checked := 0
	for _, p := range panels {
		if p.Type == "row" {
			continue
		}
		checked++
		for _, c := range panelChecks {
			if err := c.check(p); err != nil {
				t.Errorf("panel %q %s: %v", p.Title, c.name, err)
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked %d panels, want the dashboard's 20 or more", checked)
	}
}

// Each check fails on a panel that lacks what it checks.
func TestDashboardPanelChecksFail(t *testing.T) {
	ds := &dsRefJSON{"prometheus", dsRef}
	good := func() panel {
		var p panel
		p.Description = "d"
		p.Datasource = ds
		p.Targets = append(p.Targets, struct {
			Expr       string     `json:"expr"`
			RefID      string     `json:"refId"`
			Datasource *dsRefJSON `json:"datasource"`
		}{`sum(rate(x{job=~"$job", instance=~"$instance"}[$__rate_interval]))`, "A", nil})
		return p
	}
	bad := map[string]func(*panel){
		"has a description":            func(p *panel) { p.Description = " " },
		"uses the datasource variable": func(p *panel) { p.Targets[0].Datasource = &dsRefJSON{"prometheus", "prometheus"} },
		"selects $job and $instance":   func(p *panel) { p.Targets[0].Expr = `sum(rate(x{job=~"$job"}[$__rate_interval]))` },
		"rates over $__rate_interval":  func(p *panel) { p.Targets[0].Expr = `sum(rate(x{job=~"$job", instance=~"$instance"}[5m]))` },
	}
	for _, c := range panelChecks {
		p := good()
		if err := c.check(p); err != nil {
			t.Errorf("%s: a good panel fails: %v", c.name, err)
		}
		spoil := bad[c.name]
		if spoil == nil {
			t.Errorf("%s: no failing case", c.name)
			continue
		}
		spoil(&p)
		if c.check(p) == nil {
			t.Errorf("%s: passes a panel without it", c.name)
		}
	}
}

// The variables exist, their queries follow the datasource and job variables, and no
// data source is named by a fixed uid anywhere in the file.
func TestDashboardVariables(t *testing.T) {
	d, _ := readDashboard(t)
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || v.query() != "prometheus" {
		t.Errorf("datasource variable %+v, want type datasource, query prometheus", v)
	}
	for _, tc := range []struct{ name, query string }{
		{"job", `label_values(discovery_build_info, job)`},
		{"instance", `label_values(discovery_build_info{job=~"$job"}, instance)`},
	} {
		v, ok := vars[tc.name]
		if !ok || v.Type != "query" || v.query() != tc.query || v.Datasource == nil || v.Datasource.UID != dsRef {
			t.Errorf("variable %s = %+v, want a query variable %s on %s", tc.name, v, tc.query, dsRef)
		}
	}
	// All instances as .*: the default regex of all values would grow with the fleet.
	if v := vars["instance"]; !v.IncludeAll || v.AllValue != ".*" {
		t.Errorf("instance variable: includeAll %v allValue %q, want true and .*", v.IncludeAll, v.AllValue)
	}

	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	refs := 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "datasource" {
					refs++
					ref, _ := c.(map[string]any)
					if ref == nil || ref["uid"] != dsRef {
						t.Errorf("%s.datasource = %v, want uid %s", path, c, dsRef)
					}
				}
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("", doc)
	if refs == 0 {
		t.Error("no datasource reference found")
	}
}

// The file has the shape of Grafana's "Export for sharing externally": the import UI
// takes it into any Grafana, asking for every input it declares.
func TestDashboardImportable(t *testing.T) {
	d, panels := readDashboard(t)
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"__inputs", "__requires"} {
		if top[k] == nil {
			t.Errorf("no %s", k)
		}
	}
	// Every ${DS_...} placeholder is an input, and every input is used.
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{(DS_[A-Z0-9_]+)\}`).FindAllStringSubmatch(string(b), -1) {
		used[m[1]] = true
	}
	for _, in := range d.Inputs {
		if !used[in.Name] {
			t.Errorf("input %s is not used", in.Name)
		}
		delete(used, in.Name)
	}
	for name := range used {
		t.Errorf("${%s} is not declared in __inputs", name)
	}
	requires := map[string]bool{}
	for _, r := range d.Requires {
		requires[r.Type+"/"+r.ID] = true
	}
	want := map[string]bool{"grafana/grafana": true, "datasource/prometheus": true}
	for _, p := range panels {
		if p.Type != "row" {
			want["panel/"+p.Type] = true
		}
	}
	for w := range want {
		if !requires[w] {
			t.Errorf("__requires lacks %s", w)
		}
	}

	// The compose stacks provision one Prometheus as the default data source, which the
	// datasource variable selects.
	var ds struct {
		Datasources []struct {
			Type      string `yaml:"type"`
			URL       string `yaml:"url"`
			IsDefault bool   `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" ||
		ds.Datasources[0].Type != "prometheus" || !ds.Datasources[0].IsDefault {
		t.Errorf("datasources = %+v, want one default prometheus at http://prometheus:9090", ds.Datasources)
	}
	var prov struct {
		Providers []struct {
			Type    string            `yaml:"type"`
			Options map[string]string `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/dashboards.yml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options["path"] == "" {
		t.Errorf("dashboard providers = %+v, want one file provider with a path", prov.Providers)
	}
}

// grafanaVars replaces Grafana's interval variables with durations Prometheus accepts.
// $job and $instance take the values Prometheus runs the queries with in the tests.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h",
	"$job", "discovery-agent", "$instance", ".*")

func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	_, panels := readDashboard(t)
	exprs := map[string]string{}
	for _, p := range panels {
		for _, tg := range p.Targets {
			exprs[p.Title+"/"+tg.RefID] = tg.Expr
		}
	}
	return exprs
}

// The dashboard's queries are valid PromQL: promtool checks them as recording rules.
func TestDashboardQueriesParse(t *testing.T) {
	promtool := tool(t, "promtool")
	type recording struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []recording
	for _, expr := range dashboardExprs(t) {
		rules = append(rules, recording{Record: fmt.Sprintf("dashboard:query_%d", len(rules)), Expr: grafanaVars.Replace(expr)})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, promtool, "check", "rules", file)
	if !strings.Contains(out, fmt.Sprintf("%d rules found", len(rules))) {
		t.Errorf("promtool did not check all %d queries:\n%s", len(rules), out)
	}
}

// firstRequestMetrics appear with a run's first GitLab request (the rate-limit gauges
// from its headers, the pace when the run starts pacing): every run begins with one, and
// their series are per endpoint and status, an open set not worth starting at zero.
var firstRequestMetrics = map[string]bool{
	"gitlab_api_requests_total":                  true,
	"gitlab_api_request_duration_seconds_bucket": true,
	"gitlab_api_rate_limit_remaining":            true,
	"discovery_rate_limit_effective_rpm":         true,
}

// A fresh agent, before any run, exports every other series the dashboard queries,
// so that no panel reads "No data" for want of a first retry or error.
func TestDashboardSeriesExistBeforeTraffic(t *testing.T) {
	exported := exports(t, metrics.New())
	used := map[string]bool{}
	for where, expr := range dashboardExprs(t) {
		for _, s := range selectors(expr) {
			used[s.name] = true
			if firstRequestMetrics[s.name] {
				continue
			}
			if !exported(s.name) {
				t.Errorf("%s: %s is not exported before any traffic", where, s.name)
			}
		}
	}
	for name := range firstRequestMetrics {
		if !used[name] {
			t.Errorf("%s is not queried by the dashboard: drop it from firstRequestMetrics", name)
		}
	}
	for _, name := range []string{"gitlab_api_retries_total", "discovery_errors_total", "discovery_groups_total"} {
		if !used[name] {
			t.Errorf("%s not found in any query: selector extraction is broken", name)
		}
	}
}
