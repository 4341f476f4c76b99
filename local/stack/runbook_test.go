package stack

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/metrics"
)

// The runbook's promise is that every command in it works with this project. These tests
// hold it to that where a machine can: shell syntax, compose files and services, volume
// and container names, make targets, local stack files, configuration and metric names;
// TestLocalStack calls its URLs.

type codeLine struct {
	Line int    // in docs/RUNBOOK.md, of the command's first line
	Text string // continuation lines joined
}

type runbook struct {
	text   string
	blocks [][]codeLine // fenced bash blocks, by command
}

func readRunbook(t *testing.T) runbook {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs/RUNBOOK.md"))
	if err != nil {
		t.Fatal(err)
	}
	rb := runbook{text: string(b)}
	var block []codeLine
	in := false
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(rb.text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && strings.HasPrefix(trimmed, "```bash"):
			in, block = true, nil
		case in && trimmed == "```":
			in = false
			rb.blocks = append(rb.blocks, block)
		case in:
			if cur.Len() == 0 {
				start = i + 1
			}
			if l, ok := strings.CutSuffix(trimmed, `\`); ok {
				cur.WriteString(l + " ")
				continue
			}
			cur.WriteString(trimmed)
			if s := cur.String(); strings.TrimSpace(s) != "" {
				block = append(block, codeLine{start, s})
			}
			cur.Reset()
		}
	}
	if in {
		t.Fatal("docs/RUNBOOK.md: a code block is not closed")
	}
	if len(rb.blocks) < 10 {
		t.Fatalf("docs/RUNBOOK.md: %d bash blocks found: the parser is broken", len(rb.blocks))
	}
	return rb
}

func (rb runbook) commands() []codeLine {
	var all []codeLine
	for _, b := range rb.blocks {
		all = append(all, b...)
	}
	return all
}

// placeholder is the runbook's <value to fill in>; the shell would read it as a
// redirection.
var placeholder = regexp.MustCompile(`<[a-zA-Z][a-zA-Z0-9_-]*>`)

func TestRunbookShellSyntax(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for i, b := range readRunbook(t).blocks {
		var src strings.Builder
		for _, l := range b {
			src.WriteString(placeholder.ReplaceAllString(l.Text, "PLACEHOLDER") + "\n")
		}
		cmd := exec.CommandContext(t.Context(), bash, "-n")
		cmd.Stdin = strings.NewReader(src.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("block %d (line %d) is not valid bash: %v\n%s\n%s", i, b[0].Line, err, out, src.String())
		}
	}
}

// composeSource is a compose file as written, before docker-compose resolves it.
type composeSource struct {
	Services map[string]struct {
		ContainerName string `yaml:"container_name"`
	} `yaml:"services"`
	Volumes map[string]struct {
		Name string `yaml:"name"`
	} `yaml:"volumes"`
}

func readComposeSource(t *testing.T, file string) composeSource {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		t.Fatal(err)
	}
	var c composeSource
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return c
}

// words splits a command at the first shell operator into its words, quotes removed
// roughly (enough for names and flags).
func words(cmd string) []string {
	if i := strings.IndexAny(cmd, "|;#>"); i >= 0 {
		cmd = cmd[:i]
	}
	cmd, _, _ = strings.Cut(cmd, "&&")
	var ws []string
	for _, w := range strings.Fields(cmd) {
		ws = append(ws, strings.Trim(w, `"'`))
	}
	return ws
}

// docker-compose subcommands whose arguments are services, and the flags of theirs that
// take a separate value.
var composeServiceArgs = map[string]map[string]bool{
	"ps": {}, "logs": {}, "restart": {"-t": true}, "stop": {"-t": true}, "start": {},
	"up": {"-t": true, "--scale": true}, "kill": {"-s": true}, "exec": {"-u": true, "-e": true, "-w": true},
	"down": {}, "pull": {}, "build": {}, "config": {}, "top": {}, "rm": {},
}

func TestRunbookComposeCommands(t *testing.T) {
	files := map[string]composeSource{}
	n := 0
	for _, c := range readRunbook(t).commands() {
		ws := words(c.Text)
		i := slices.Index(ws, "docker-compose")
		if i < 0 {
			continue
		}
		n++
		file := "docker-compose.yml"
		ws = ws[i+1:]
		for len(ws) > 1 && strings.HasPrefix(ws[0], "-") {
			if ws[0] == "-f" {
				file = ws[1]
			}
			ws = ws[2:]
		}
		if _, ok := files[file]; !ok {
			files[file] = readComposeSource(t, file)
		}
		if len(ws) == 0 {
			t.Errorf("line %d: docker-compose without a command: %s", c.Line, c.Text)
			continue
		}
		flags, ok := composeServiceArgs[ws[0]]
		if !ok {
			t.Errorf("line %d: docker-compose %s is not a command this runbook should use: %s", c.Line, ws[0], c.Text)
			continue
		}
		var services []string
		for j := 1; j < len(ws); j++ {
			switch {
			case flags[ws[j]]:
				j++ // its value
			case strings.HasPrefix(ws[j], "-"):
			default:
				services = append(services, ws[j])
			}
			if ws[0] == "exec" && len(services) == 1 {
				break // the rest is the command run in the container
			}
		}
		for _, s := range services {
			if _, ok := files[file].Services[s]; !ok {
				t.Errorf("line %d: %s has no service %q: %s", c.Line, file, s, c.Text)
			}
		}
	}
	if n < 10 {
		t.Errorf("%d docker-compose commands found: the parser is broken", n)
	}
}

// docker (not compose) commands name the production volume and container.
func TestRunbookDockerNames(t *testing.T) {
	prod := readComposeSource(t, "docker-compose.production.yml")
	volumes := map[string]bool{}
	for _, v := range prod.Volumes {
		volumes[v.Name] = true
	}
	containers := map[string]bool{}
	for _, s := range prod.Services {
		if s.ContainerName != "" {
			containers[s.ContainerName] = true
		}
	}
	n := 0
	for _, c := range readRunbook(t).commands() {
		ws := words(c.Text)
		if len(ws) < 3 || ws[0] != "docker" {
			continue
		}
		n++
		switch ws[1] {
		case "run":
			for j := 2; j < len(ws)-1; j++ {
				if ws[j] != "-v" {
					continue
				}
				src, _, _ := strings.Cut(ws[j+1], ":")
				if !strings.ContainsAny(src, "/$.") && !volumes[src] {
					t.Errorf("line %d: volume %q is not one of docker-compose.production.yml's %v", c.Line, src, volumes)
				}
			}
		case "cp":
			name, _, _ := strings.Cut(ws[2], ":")
			if !containers[name] {
				t.Errorf("line %d: no container %q in docker-compose.production.yml", c.Line, name)
			}
		case "stats", "inspect", "exec":
			if last := ws[len(ws)-1]; !containers[last] {
				t.Errorf("line %d: no container %q in docker-compose.production.yml", c.Line, last)
			}
		}
	}
	if n < 3 {
		t.Errorf("%d docker commands found: the parser is broken", n)
	}
}

// Make targets the integrator adds with this package (see the report of local/stack):
// the runbook documents them already.
var makeTarget = regexp.MustCompile("`make ([a-z][a-z-]*)`|^make ([a-z][a-z-]*)")

func TestRunbookLocalStackReferences(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	rb := readRunbook(t)
	var texts []string
	for _, c := range rb.commands() {
		texts = append(texts, c.Text)
	}
	texts = append(texts, strings.Split(rb.text, "\n")...)
	targets := 0
	for _, s := range texts {
		for _, m := range makeTarget.FindAllStringSubmatch(s, -1) {
			target := m[1] + m[2]
			targets++
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`).Match(mk) {
				t.Errorf("the runbook runs make %s, which the Makefile does not have", target)
			}
		}
	}
	if targets == 0 {
		t.Error("no make targets found: the parser is broken")
	}
	for _, s := range []string{"up.sh", "down.sh"} {
		if _, err := os.Stat(s); err != nil {
			t.Error(err)
		}
	}
	// .local/<component>.pid and .log are the files up.sh writes.
	for _, m := range regexp.MustCompile(`\.local/([a-z-]+)\.(pid|log)`).FindAllStringSubmatch(rb.text, -1) {
		if !slices.Contains(components, m[1]) {
			t.Errorf("the runbook names %s, but the local stack has no component %s", m[0], m[1])
		}
	}
}

type runbookURL struct {
	Raw, Method, Path, Body string
	Header                  []string // the -H values, as written
	Port, Line              int
}

var (
	urlPattern    = regexp.MustCompile(`(?:https?://)?(?:localhost|127\.0\.0\.1):(\d+)([^\s'"|)\x60]*)`)
	bodyPattern   = regexp.MustCompile(`-d '([^']*)'`)
	methodPattern = regexp.MustCompile(`-X ([A-Z]+)`)
	headerPattern = regexp.MustCompile(`-H (?:'([^']*)'|"([^"]*)")`)
)

// runbookURLs returns the local URLs the runbook's commands call, once each.
func runbookURLs(t *testing.T) []runbookURL {
	t.Helper()
	seen := map[string]bool{}
	var urls []runbookURL
	for _, c := range readRunbook(t).commands() {
		if !strings.Contains(c.Text, "curl") {
			continue
		}
		for _, m := range urlPattern.FindAllStringSubmatch(c.Text, -1) {
			u := runbookURL{Raw: m[0], Method: http.MethodGet, Path: m[2], Line: c.Line}
			u.Port, _ = strconv.Atoi(m[1])
			if x := methodPattern.FindStringSubmatch(c.Text); x != nil {
				u.Method = x[1]
			}
			if b := bodyPattern.FindStringSubmatch(c.Text); b != nil {
				u.Body = b[1]
			}
			for _, h := range headerPattern.FindAllStringSubmatch(c.Text, -1) {
				u.Header = append(u.Header, h[1]+h[2])
			}
			if key := u.Method + " " + m[1] + u.Path; !seen[key] {
				seen[key] = true
				urls = append(urls, u)
			}
		}
	}
	return urls
}

// The agent's own URLs are routes it serves; the other ports are the stack's.
func TestRunbookURLs(t *testing.T) {
	agent := map[int][]string{
		8080: {"GET /health", "GET /health/ready", "GET /health/live", "POST /runs", "GET /dead-letters", "POST /dead-letters/redrive", "DELETE /dead-letters"},
		9090: {"GET /metrics"},
	}
	n := 0
	for _, u := range runbookURLs(t) {
		n++
		switch u.Port {
		case 8080, 9090:
			if !slices.Contains(agent[u.Port], u.Method+" "+u.Path) {
				t.Errorf("line %d: %s %s: the agent serves %v there", u.Line, u.Method, u.Raw, agent[u.Port])
			}
		case 9091, 9093, 3000:
		default:
			t.Errorf("line %d: %s: port %d is none of the stack's", u.Line, u.Raw, u.Port)
		}
	}
	if n < 8 {
		t.Errorf("%d URLs found: the parser is broken", n)
	}
}

// The runbook's calls of the agent's state-changing endpoints work against a compose
// agent, which takes them only with its ADMIN_TOKEN, and send a body only as JSON
// (docs/RUNBOOK.md, Trust model).
func TestRunbookAdminCalls(t *testing.T) {
	n := 0
	for _, u := range runbookURLs(t) {
		if u.Port != 8080 || u.Method == http.MethodGet {
			continue
		}
		n++
		if !slices.Contains(u.Header, "Authorization: Bearer $ADMIN_TOKEN") {
			t.Errorf(`line %d: %s %s sends no -H "Authorization: Bearer $ADMIN_TOKEN" (headers %q)`, u.Line, u.Method, u.Raw, u.Header)
		}
		if u.Body != "" && !slices.Contains(u.Header, "Content-Type: application/json") {
			t.Errorf("line %d: %s %s sends a body that is not application/json", u.Line, u.Method, u.Raw)
		}
	}
	if n < 3 {
		t.Errorf("%d state-changing calls of the agent found (POST /runs, redrive, purge): the parser is broken", n)
	}
}

// The configuration table lists every variable the agent reads, with its real default.
func TestRunbookConfiguration(t *testing.T) {
	rb := readRunbook(t)
	_, section, ok := strings.Cut(rb.text, "\n## Configuration\n")
	if !ok {
		t.Fatal("no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{}
	row := regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\| (`([^`]*)`)? *\\|")
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		rows[m[1]] = m[3]
	}
	for _, v := range config.Vars() {
		def, ok := rows[v.Name]
		if !ok {
			t.Errorf("the Configuration table has no %s", v.Name)
			continue
		}
		if def != v.Default {
			t.Errorf("the Configuration table says %s defaults to %q; the agent's default is %q", v.Name, def, v.Default)
		}
		delete(rows, v.Name)
	}
	for name := range rows {
		t.Errorf("the Configuration table lists %s, which the agent does not read", name)
	}
}

// Every metric the runbook names or greps for is one the agent exports, and the metrics
// table lists every discovery_ and gitlab_ metric.
func TestRunbookMetrics(t *testing.T) {
	exported := scrapeMetrics(t)
	rb := readRunbook(t)
	_, section, ok := strings.Cut(rb.text, "\n## Metrics\n")
	if !ok {
		t.Fatal("no Metrics section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(section, -1) {
		listed[m[1]] = true
		if !exported[m[1]] {
			t.Errorf("the Metrics table lists %s, which the agent does not export", m[1])
		}
	}
	for name := range exported {
		if (strings.HasPrefix(name, "discovery_") || strings.HasPrefix(name, "gitlab_")) && !listed[name] {
			t.Errorf("the agent exports %s, which the Metrics table does not list", name)
		}
	}
	// grep '^name' and grep -E '^a|^b' in the commands.
	grepped := regexp.MustCompile(`\^([a-z_]+)`)
	n := 0
	for _, c := range rb.commands() {
		if !strings.Contains(c.Text, "grep") || !strings.Contains(c.Text, "/metrics") {
			continue
		}
		for _, m := range grepped.FindAllStringSubmatch(c.Text, -1) {
			n++
			name := m[1]
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if !exported[name] && !exported[base] && !strings.HasSuffix(name, "_") {
				t.Errorf("line %d greps for %s, which the agent does not export", c.Line, name)
			}
			if strings.HasSuffix(name, "_") && !hasPrefix(exported, name) {
				t.Errorf("line %d greps for %s*, which matches no exported metric", c.Line, name)
			}
		}
	}
	if n < 10 {
		t.Errorf("%d metric greps found: the parser is broken", n)
	}
}

func hasPrefix(m map[string]bool, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// scrapeMetrics returns the metric families a metrics.New() exports after one of each
// event, as the agent's /metrics shows them.
func scrapeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New()
	metrics.ExerciseAll(m)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
		}
	}
	if !names["discovery_build_info"] {
		t.Fatalf("scrape has no discovery_build_info:\n%s", body)
	}
	return names
}
