package stack

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stack-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	// Best effort: without it the stack's processes are reparented to init and the test
	// falls back to /proc to see that they exited.
	_ = becomeSubreaper()
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// stackPorts are the local stack's ports, by the variable that sets each.
var stackPorts = []string{
	"LOCAL_SIM_PORT", "LOCAL_HEALTH_PORT", "LOCAL_METRICS_PORT",
	"LOCAL_PROMETHEUS_PORT", "LOCAL_ALERTMANAGER_PORT", "LOCAL_WEBHOOK_PORT",
}

var components = []string{"alert-webhook", "alertmanager", "gitlab-sim", "discovery-agent", "prometheus"}

// freePorts returns n distinct ports nothing listens on, held until all are chosen.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// script runs local/stack/NAME with env added to this process's environment.
func script(t *testing.T, env []string, name string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "bash", name)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = time.Minute
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func pids(t *testing.T, state string) map[string]int {
	t.Helper()
	ps := map[string]int{}
	for _, c := range components {
		b, err := os.ReadFile(filepath.Join(state, c+".pid"))
		if err != nil {
			continue
		}
		p, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s.pid: %v", c, err)
		}
		ps[c] = p
	}
	return ps
}

// exited reports whether pid has exited, reaping it when it is this process's child.
func exited(pid int) bool {
	if gone, err := reap(pid); err == nil {
		return gone
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: comm may hold spaces, the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// eventually polls check until it returns "" or the deadline passes, and returns its
// last complaint.
func eventually(d time.Duration, check func() string) string {
	deadline := time.Now().Add(d)
	for {
		msg := check()
		if msg == "" || time.Now().After(deadline) {
			return msg
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// make local-up and make local-down on free ports: every component answers, Prometheus
// scrapes the agent with the alert rules loaded, an alert reaches the webhook, a second
// up changes nothing, a taken port is refused, and down leaves nothing running.
func TestLocalStack(t *testing.T) {
	for _, p := range [][2]string{{"prometheus", "prometheus"}, {"promtool", "prometheus"}, {"amtool", "prometheus-alertmanager"}, {"curl", "curl"}} {
		tool(t, p[0], p[1])
	}
	if _, err := exec.LookPath("prometheus-alertmanager"); err != nil {
		tool(t, "alertmanager", "prometheus-alertmanager")
	}
	bin := binaries(t)
	state := t.TempDir()
	ports := map[string]int{}
	env := []string{"BIN=" + bin, "LOCAL_DIR=" + state, "LOCAL_SIM_GROUPS=6", "LOCAL_SIM_PROJECTS=40", "LOCAL_WAIT_SECONDS=30"}
	for i, p := range freePorts(t, len(stackPorts)) {
		ports[stackPorts[i]] = p
		env = append(env, fmt.Sprintf("%s=%d", stackPorts[i], p))
	}
	url := func(v, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", ports[v], path) }

	started := map[string]int{}
	t.Cleanup(func() {
		if len(pids(t, state)) > 0 {
			if out, err := script(t, env, "down.sh"); err != nil {
				t.Errorf("cleanup: down.sh: %v\n%s", err, out)
			}
		}
		for c, p := range started { // only what this test started, by pid
			if !exited(p) {
				t.Errorf("cleanup: %s (pid %d) still running: killing it", c, p)
				_ = syscall.Kill(p, syscall.SIGKILL)
				time.Sleep(100 * time.Millisecond)
				exited(p)
			}
		}
	})

	out, err := script(t, env, "up.sh")
	for c, p := range pids(t, state) {
		started[c] = p
	}
	if err != nil {
		t.Fatalf("up.sh: %v\n%s", err, out)
	}
	if len(started) != len(components) {
		t.Fatalf("pid files for %v, want %v\n%s", started, components, out)
	}
	for _, want := range []string{url("LOCAL_HEALTH_PORT", "/health"), url("LOCAL_METRICS_PORT", "/metrics"),
		url("LOCAL_PROMETHEUS_PORT", ""), url("LOCAL_ALERTMANAGER_PORT", ""), `"started":true`, "grafana"} {
		if !strings.Contains(out, want) {
			t.Errorf("up.sh output does not mention %s:\n%s", want, out)
		}
	}

	t.Run("agent", func(t *testing.T) {
		code, body := get(t, url("LOCAL_HEALTH_PORT", "/health"))
		var h struct{ Status, Version string }
		if err := json.Unmarshal([]byte(body), &h); code != 200 || err != nil || h.Status != "ok" || h.Version != testVersion {
			t.Errorf("/health %d %s", code, body)
		}
		if code, body := get(t, url("LOCAL_HEALTH_PORT", "/health/ready")); code != 200 {
			t.Errorf("/health/ready %d %s: the simulator should make it ready", code, body)
		}
		if code, body := get(t, url("LOCAL_METRICS_PORT", "/metrics")); code != 200 ||
			!strings.Contains(body, `discovery_build_info{version="`+testVersion+`"} 1`) {
			t.Errorf("/metrics %d without discovery_build_info", code)
		}
		// The compose health check's command, against this agent and against nothing.
		for _, tc := range []struct {
			port int
			ok   bool
		}{{ports["LOCAL_HEALTH_PORT"], true}, {freePorts(t, 1)[0], false}} {
			cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "discovery-agent"), "healthcheck")
			cmd.Env = []string{fmt.Sprintf("HEALTH_ADDR=127.0.0.1:%d", tc.port)}
			out, err := cmd.CombinedOutput()
			if (err == nil) != tc.ok {
				t.Errorf("discovery-agent healthcheck on :%d: %v %s, want success %v", tc.port, err, out, tc.ok)
			}
		}
	})

	t.Run("monitoring", func(t *testing.T) {
		if code, _ := get(t, url("LOCAL_ALERTMANAGER_PORT", "/-/ready")); code != 200 {
			t.Errorf("Alertmanager /-/ready %d", code)
		}
		// What Alertmanager sends must reach the webhook: a critical alert goes out after
		// the critical route's group_wait.
		alert := `[{"labels":{"alertname":"StackTestAlert","severity":"critical"},"annotations":{"summary":"local stack test"}}]`
		resp, err := http.Post(url("LOCAL_ALERTMANAGER_PORT", "/api/v2/alerts"), "application/json", strings.NewReader(alert))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST /api/v2/alerts: %d", resp.StatusCode)
		}

		var alertNames []string
		var ruleFile struct {
			Groups []struct {
				Rules []struct {
					Alert string `yaml:"alert"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		b, err := os.ReadFile(filepath.Join(root, "monitoring/alerts.yml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &ruleFile); err != nil {
			t.Fatal(err)
		}
		for _, g := range ruleFile.Groups {
			for _, r := range g.Rules {
				alertNames = append(alertNames, r.Alert)
			}
		}

		msg := eventually(40*time.Second, func() string {
			var targets struct {
				Data struct {
					ActiveTargets []struct {
						Labels struct{ Job string }
						Health string
					}
				}
			}
			_, body := get(t, url("LOCAL_PROMETHEUS_PORT", "/api/v1/targets"))
			if err := json.Unmarshal([]byte(body), &targets); err != nil {
				return "targets: " + err.Error()
			}
			health := map[string]string{}
			for _, tg := range targets.Data.ActiveTargets {
				health[tg.Labels.Job] = tg.Health
			}
			if health["discovery-agent"] != "up" || health["prometheus"] != "up" {
				return fmt.Sprintf("Prometheus targets %v, want discovery-agent and prometheus up", health)
			}
			_, rules := get(t, url("LOCAL_PROMETHEUS_PORT", "/api/v1/rules"))
			for _, a := range alertNames {
				if !strings.Contains(rules, `"name":"`+a+`"`) {
					return "Prometheus has not loaded alert " + a
				}
			}
			log, err := os.ReadFile(filepath.Join(state, "alert-webhook.log"))
			if err != nil {
				return err.Error()
			}
			if !strings.Contains(string(log), `"receiver":"critical","status":"firing","alertname":"StackTestAlert"`) {
				return "the test alert has not reached the webhook:\n" + string(log)
			}
			return ""
		})
		if msg != "" {
			t.Error(msg)
		}
	})

	t.Run("runbook URLs answer", func(t *testing.T) {
		byPort := map[int]string{8080: "LOCAL_HEALTH_PORT", 9090: "LOCAL_METRICS_PORT", 9091: "LOCAL_PROMETHEUS_PORT", 9093: "LOCAL_ALERTMANAGER_PORT"}
		n := 0
		for _, u := range runbookURLs(t) {
			v, ok := byPort[u.Port]
			if !ok {
				continue // Grafana: not in the local stack
			}
			n++
			req, err := http.NewRequestWithContext(t.Context(), u.Method, url(v, u.Path), strings.NewReader(u.Body))
			if err != nil {
				t.Fatal(err)
			}
			if u.Body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s %s: %v", u.Method, u.Raw, err)
				continue
			}
			resp.Body.Close()
			// POST /runs answers 409 while the first run is active.
			if resp.StatusCode/100 != 2 && !(u.Path == "/runs" && resp.StatusCode == http.StatusConflict) {
				t.Errorf("%s %s (line %d): %d", u.Method, u.Raw, u.Line, resp.StatusCode)
			}
		}
		if n < 5 {
			t.Errorf("only %d runbook URLs checked: the extraction is broken", n)
		}
	})

	t.Run("up again changes nothing", func(t *testing.T) {
		out, err := script(t, env, "up.sh")
		if err != nil {
			t.Fatalf("up.sh: %v\n%s", err, out)
		}
		if n := strings.Count(out, "already running"); n != len(components) {
			t.Errorf("%d components already running, want %d:\n%s", n, len(components), out)
		}
		if got := pids(t, state); fmt.Sprint(got) != fmt.Sprint(started) {
			t.Errorf("pids %v, want %v", got, started)
		}
	})

	t.Run("taken port", func(t *testing.T) {
		other := t.TempDir()
		out, err := script(t, append(env, "LOCAL_DIR="+other), "up.sh")
		if err == nil {
			t.Fatalf("a second stack on the same ports started:\n%s", out)
		}
		if !strings.Contains(out, strconv.Itoa(ports["LOCAL_WEBHOOK_PORT"])) || !strings.Contains(out, "LOCAL_WEBHOOK_PORT=") {
			t.Errorf("the error does not name the port and its variable:\n%s", out)
		}
		if ps := pids(t, other); len(ps) != 0 {
			t.Errorf("a refused up left %v", ps)
		}
	})

	out, err = script(t, env, "down.sh")
	if err != nil {
		t.Fatalf("down.sh: %v\n%s", err, out)
	}
	if n := strings.Count(out, ": stopped"); n != len(components) {
		t.Errorf("%d stopped, want %d:\n%s", n, len(components), out)
	}
	if ps := pids(t, state); len(ps) != 0 {
		t.Errorf("pid files left: %v", ps)
	}
	for c, p := range started {
		if !exited(p) {
			t.Errorf("%s (pid %d) still running after down.sh", c, p)
		}
	}
	for v, p := range ports {
		if listening(p) {
			t.Errorf("%s %d still answers after down.sh", v, p)
		}
	}
	agentLog, err := os.ReadFile(filepath.Join(state, "discovery-agent.log"))
	if err != nil || !strings.Contains(string(agentLog), `"msg":"stopped"`) {
		t.Errorf("the agent did not shut down gracefully:\n%s", agentLog)
	}
	if out, err := script(t, env, "down.sh"); err != nil {
		t.Errorf("a second down.sh: %v\n%s", err, out)
	}
}

// The scripts pass shellcheck, run from the repository root as make runs them.
func TestScriptsShellcheck(t *testing.T) {
	sc := tool(t, "shellcheck", "shellcheck")
	cmd := exec.CommandContext(t.Context(), sc, "-x", "local/stack/up.sh", "local/stack/down.sh")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
