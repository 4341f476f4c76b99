package monitoring

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "atan2": true}
)

// selector is one vector selector of a PromQL expression: a metric name and its label
// matchers as written ("" when it has none).
type selector struct{ name, matchers string }

// mask replaces each match of re in s by its first and last byte around spaces, so that
// offsets in the result are offsets in s.
func mask(re *regexp.Regexp, s string) string {
	return re.ReplaceAllStringFunc(s, func(m string) string {
		if len(m) < 2 {
			return strings.Repeat(" ", len(m))
		}
		return m[:1] + strings.Repeat(" ", len(m)-2) + m[len(m)-1:]
	})
}

// selectors returns the vector selectors of a PromQL expression: identifiers that are
// not functions, keywords, label names, durations or numbers, with the matchers that
// follow them.
func selectors(expr string) []selector {
	e := mask(promStrings, expr)
	e = mask(promMatchers, e)
	e = mask(promRanges, e)
	e = promGrouping.ReplaceAllStringFunc(e, func(m string) string { return strings.Repeat(" ", len(m)) })
	var sels []selector
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		if promKeywords[strings.ToLower(id)] {
			continue
		}
		if loc[0] > 0 && strings.ContainsRune("0123456789.$", rune(e[loc[0]-1])) {
			continue // 1e3, 5m, $variable
		}
		rest := strings.TrimLeft(e[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		sel := selector{name: id}
		if strings.HasPrefix(rest, "{") {
			from := len(e) - len(rest)
			to := from + strings.IndexByte(rest, '}') + 1
			sel.matchers = expr[from:to]
		}
		sels = append(sels, sel)
	}
	return sels
}

// metricNames returns the metric names a PromQL expression selects, each once.
func metricNames(expr string) []string {
	var names []string
	for _, s := range selectors(expr) {
		if !slices.Contains(names, s.name) {
			names = append(names, s.name)
		}
	}
	return names
}

// rangeCall is a range-vector function applied to a selector: rate(x{...}[5m]).
type rangeCall struct{ fn, rng string }

var promRangeCall = regexp.MustCompile(`\b([a-z_]+)\s*\(\s*[a-zA-Z_:][a-zA-Z0-9_:]*\s*(?:\{[^}]*\})?\s*\[([^\]]*)\]\s*\)`)

// rangeCalls returns the range-vector function calls of expr, and whether every range
// of expr is the argument of one (a subquery or a stray range is not).
func rangeCalls(expr string) (calls []rangeCall, all bool) {
	e := mask(promStrings, expr)
	for _, m := range promRangeCall.FindAllStringSubmatch(e, -1) {
		calls = append(calls, rangeCall{fn: m[1], rng: strings.TrimSpace(m[2])})
	}
	return calls, len(calls) == strings.Count(e, "[")
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (job, instance) (rate(gitlab_api_requests_total{status_code!~"2..|404"}[5m])) / sum by (job, instance) (rate(gitlab_api_requests_total[5m])) > 0.10`,
			[]string{"gitlab_api_requests_total"}},
		{`histogram_quantile(0.95, sum by (endpoint, le) (rate(x_seconds_bucket[$__rate_interval])))`, []string{"x_seconds_bucket"}},
		{"discovery_run_in_progress == 1\n  and on (job, instance)\ntime() - last_progress > 900", []string{"discovery_run_in_progress", "last_progress"}},
		{`max(up{job="discovery-agent"}) * 1e3 + foo offset 5m`, []string{"up", "foo"}},
		{`max by (version) (build_info)`, []string{"build_info"}},
		{`a or on (job) b unless ignoring (x) c`, []string{"a", "b", "c"}},
		{`{__name__="weird"}`, nil},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

func TestSelectors(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []selector
	}{
		{`sum(rate(a{job=~"$job", x="}"}[$__rate_interval])) / b`,
			[]selector{{"a", `{job=~"$job", x="}"}`}, {"b", ""}}},
		{`max by (version) (info{instance=~"$instance"}) or on (job) up {job="x"}`,
			[]selector{{"info", `{instance=~"$instance"}`}, {"up", `{job="x"}`}}},
		{`label_replace(sum(c{a="b"}) * 0, "status_code", "none", "", "")`, []selector{{"c", `{a="b"}`}}},
	} {
		if got := selectors(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("selectors(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestRangeCalls(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []rangeCall
		all  bool
	}{
		{`sum(rate(a{x="[5m]"}[$__rate_interval])) / increase(b[$__range])`,
			[]rangeCall{{"rate", "$__rate_interval"}, {"increase", "$__range"}}, true},
		{`max_over_time(rate(a[1m])[1h:])`, []rangeCall{{"rate", "1m"}}, false},
		{`a / b`, nil, true},
	} {
		got, all := rangeCalls(tc.expr)
		if !slices.Equal(got, tc.want) || all != tc.all {
			t.Errorf("rangeCalls(%q) = %v %v, want %v %v", tc.expr, got, all, tc.want, tc.all)
		}
	}
}
