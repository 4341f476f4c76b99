package stack

import (
	"fmt"
	"maps"
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
)

// root is the repository root, relative to this package.
const root = "../.."

// tool finds an external program. Without it the test is skipped, unless
// REQUIRE_INTEGRATION=1 makes a missing tool a failure (.ci/run installs them).
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not installed (Debian package %s)", name, pkg)
	if os.Getenv("REQUIRE_INTEGRATION") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// composeFile is what the tests read of `docker-compose config`. Debian's docker-compose
// (1.29) writes ports and volumes in the short syntax, the Compose plugin in the long one:
// both are accepted.
type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]struct {
		Name string `yaml:"name"`
	} `yaml:"volumes"`
}

type service struct {
	Image         string `yaml:"image"`
	ContainerName string `yaml:"container_name"`
	Build         *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
		Target     string `yaml:"target"`
	} `yaml:"build"`
	Command     any               `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []any             `yaml:"ports"`
	Volumes     []any             `yaml:"volumes"`
	Restart     string            `yaml:"restart"`
	MemLimit    any               `yaml:"mem_limit"`
	NetworkMode string            `yaml:"network_mode"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Deploy *struct {
		Resources struct {
			Limits struct {
				Memory string `yaml:"memory"`
			} `yaml:"limits"`
		} `yaml:"resources"`
	} `yaml:"deploy"`
}

type port struct {
	HostIP            string
	Published, Target int
}

// ports returns a service's published ports in either syntax.
func (s service) ports(t *testing.T) []port {
	t.Helper()
	var ps []port
	for _, p := range s.Ports {
		switch v := p.(type) {
		case string: // [host_ip:]published:target[/proto]
			v, _, _ = strings.Cut(v, "/")
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Fatalf("port %q publishes nothing", v)
			}
			pub, err1 := strconv.Atoi(parts[len(parts)-2])
			tgt, err2 := strconv.Atoi(parts[len(parts)-1])
			if err1 != nil || err2 != nil {
				t.Fatalf("port %q: not numbers", v)
			}
			ps = append(ps, port{strings.Join(parts[:len(parts)-2], ":"), pub, tgt})
		case map[string]any:
			pub, _ := strconv.Atoi(fmt.Sprint(v["published"]))
			tgt, _ := strconv.Atoi(fmt.Sprint(v["target"]))
			ip, _ := v["host_ip"].(string)
			ps = append(ps, port{ip, pub, tgt})
		default:
			t.Fatalf("port %v: unknown syntax", p)
		}
	}
	return ps
}

type mount struct{ Source, Target string }

// mounts returns a service's volumes and bind mounts in either syntax.
func (s service) mounts() []mount {
	var ms []mount
	for _, v := range s.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) >= 2 {
				ms = append(ms, mount{parts[0], parts[1]})
			}
		case map[string]any:
			src, _ := v["source"].(string)
			tgt, _ := v["target"].(string)
			ms = append(ms, mount{src, tgt})
		}
	}
	return ms
}

func (s service) mountAt(target string) (mount, bool) {
	for _, m := range s.mounts() {
		if m.Target == target {
			return m, true
		}
	}
	return mount{}, false
}

// composeConfig runs `docker-compose -f file config` with only the environment given and
// an env file (never the developer's .env) and returns its output and error.
func composeConfig(t *testing.T, file, envFile string, env ...string) (string, error) {
	t.Helper()
	dc := tool(t, "docker-compose", "docker-compose")
	if envFile == "" {
		envFile = filepath.Join(t.TempDir(), "empty.env")
		if err := os.WriteFile(envFile, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(t.Context(), dc, "-f", file, "--env-file", envFile, "config")
	cmd.Dir = root
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func readCompose(t *testing.T, file, envFile string) composeFile {
	t.Helper()
	out, err := composeConfig(t, file, envFile)
	if err != nil {
		t.Fatalf("docker-compose -f %s config: %v\n%s", file, err, out)
	}
	var c composeFile
	if err := yaml.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("docker-compose config output: %v\n%s", err, out)
	}
	return c
}

var monitoringServices = []string{"prometheus", "alertmanager", "alert-webhook", "grafana"}

func TestComposeFiles(t *testing.T) {
	stages := dockerfileStages(t)
	for _, tc := range []struct {
		file, envFile string
		services      []string
		dataVolume    string
		production    bool
	}{
		{"docker-compose.yml", "", append([]string{"discovery-agent", "gitlab-sim"}, monitoringServices...), "gl2gh-dev_discovery-data", false},
		{"docker-compose.production.yml", ".env.example", append([]string{"discovery-agent"}, monitoringServices...), "gl2gh_discovery-data", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c := readCompose(t, tc.file, tc.envFile)
			if got := slices.Sorted(maps.Keys(c.Services)); !slices.Equal(got, slices.Sorted(slices.Values(tc.services))) {
				t.Errorf("services %v, want %v", got, tc.services)
			}

			// The runbook's ports, on the host's loopback unless BIND_ADDR opens them.
			for _, p := range []struct {
				service           string
				published, target int
			}{
				{"discovery-agent", 8080, 8080}, {"discovery-agent", 9090, 9090},
				{"prometheus", 9091, 9090}, {"alertmanager", 9093, 9093}, {"grafana", 3000, 3000},
			} {
				ps := c.Services[p.service].ports(t)
				if !slices.Contains(ps, port{"127.0.0.1", p.published, p.target}) {
					t.Errorf("%s publishes %+v, want 127.0.0.1:%d:%d", p.service, ps, p.published, p.target)
				}
			}

			agent := c.Services["discovery-agent"]
			if m, ok := agent.mountAt("/data"); !ok || m.Source != "discovery-data" {
				t.Errorf("agent /data mount %+v, want the discovery-data volume", m)
			} else if got := c.Volumes["discovery-data"].Name; got != tc.dataVolume {
				t.Errorf("discovery-data volume is named %q, want %q", got, tc.dataVolume)
			}
			if hc := agent.Healthcheck; hc == nil || !slices.Equal(hc.Test, []string{"CMD", "/discovery-agent", "healthcheck"}) {
				t.Errorf("agent healthcheck %+v, want [CMD /discovery-agent healthcheck]", hc)
			}
			if got := agent.Environment["GITLAB_URL"]; got == "" {
				t.Error("agent has no GITLAB_URL")
			}

			// Every image built here is a stage of local/Dockerfile.
			for name, s := range c.Services {
				if s.Build == nil {
					continue
				}
				if filepath.Base(s.Build.Context) != filepath.Base(absRoot(t)) || s.Build.Dockerfile != "local/Dockerfile" {
					t.Errorf("%s builds %s in %s, want local/Dockerfile in the repository root", name, s.Build.Dockerfile, s.Build.Context)
				}
				if !slices.Contains(stages, s.Build.Target) {
					t.Errorf("%s builds target %q; local/Dockerfile has %v", name, s.Build.Target, stages)
				}
			}

			// Bind mounts exist, with the files the containers load from them.
			for name, s := range c.Services {
				for _, m := range s.mounts() {
					if filepath.IsAbs(m.Source) {
						if _, err := os.Stat(m.Source); err != nil {
							t.Errorf("%s mounts %s: %v", name, m.Source, err)
						}
					}
				}
			}
			for _, f := range []struct{ service, target, file string }{
				{"prometheus", "/etc/prometheus", "prometheus.yml"},
				{"prometheus", "/etc/prometheus", "alerts.yml"},
				{"alertmanager", "/etc/alertmanager", "alertmanager.yml"},
				{"grafana", "/var/lib/grafana/dashboards", "discovery-agent-overview.json"},
				{"grafana", "/etc/grafana/provisioning", "datasources/prometheus.yml"},
			} {
				m, ok := c.Services[f.service].mountAt(f.target)
				if !ok {
					t.Errorf("%s mounts nothing at %s", f.service, f.target)
					continue
				}
				if _, err := os.Stat(filepath.Join(m.Source, f.file)); err != nil {
					t.Errorf("%s: %s/%s: %v", f.service, f.target, f.file, err)
				}
			}
			if got := c.Services["grafana"].Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; got != "/var/lib/grafana/dashboards/discovery-agent-overview.json" {
				t.Errorf("Grafana's home dashboard %q", got)
			}
			if c.Services["grafana"].Environment["GF_SECURITY_ADMIN_PASSWORD"] == "" {
				t.Error("Grafana has no admin password")
			}
			// monitoring/alertmanager.yml sends to 127.0.0.1:5001: the webhook must share
			// Alertmanager's network namespace for that to reach it.
			if got := c.Services["alert-webhook"].NetworkMode; got != "service:alertmanager" {
				t.Errorf("alert-webhook network_mode %q, want service:alertmanager", got)
			}

			if tc.production {
				if agent.ContainerName != "discovery-agent" {
					t.Errorf("agent container_name %q, want discovery-agent (docker stats discovery-agent)", agent.ContainerName)
				}
				for name, s := range c.Services {
					if s.Restart != "unless-stopped" && s.Restart != "always" {
						t.Errorf("%s restart %q, want a restart policy", name, s.Restart)
					}
					if s.MemLimit == nil && (s.Deploy == nil || s.Deploy.Resources.Limits.Memory == "") {
						t.Errorf("%s has no memory limit", name)
					}
				}
				if agent.Environment["GOMEMLIMIT"] == "" {
					t.Error("agent has no GOMEMLIMIT under its memory limit")
				}
				// Every setting of the agent reaches it from .env, but those the image
				// fixes and file paths that would need a mount.
				fixed := map[string]bool{"DATA_DIR": true, "EXPORT_DIR": true, "HEALTH_ADDR": true,
					"METRICS_ADDR": true, "READINESS_THRESHOLDS": true, "GITLAB_TOKEN_FILE": true}
				for _, v := range config.Vars() {
					if _, ok := agent.Environment[v.Name]; !ok && !fixed[v.Name] {
						t.Errorf("the production agent does not get %s from .env", v.Name)
					}
				}
			}
		})
	}
}

// The production file's monitoring stack is the development one: same images, same
// configuration mounts.
func TestComposeMonitoringStacksMatch(t *testing.T) {
	dev := readCompose(t, "docker-compose.yml", "")
	prod := readCompose(t, "docker-compose.production.yml", ".env.example")
	for _, name := range monitoringServices {
		d, p := dev.Services[name], prod.Services[name]
		if d.Build == nil && d.Image != p.Image {
			t.Errorf("%s: image %q in development, %q in production", name, d.Image, p.Image)
		}
		if !slices.Equal(d.mounts(), p.mounts()) {
			t.Errorf("%s: mounts %v in development, %v in production", name, d.mounts(), p.mounts())
		}
	}
}

// Production refuses to start without its secrets, and names what is missing.
func TestComposeProductionRequiresSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"nothing set", nil, "GITLAB_"},
		{"no token", []string{"GITLAB_URL=https://gitlab.example.com", "GF_SECURITY_ADMIN_PASSWORD=x"}, "GITLAB_TOKEN"},
		{"no Grafana password", []string{"GITLAB_URL=https://gitlab.example.com", "GITLAB_TOKEN=t"}, "GF_SECURITY_ADMIN_PASSWORD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := composeConfig(t, "docker-compose.production.yml", "", tc.env...)
			if err == nil {
				t.Fatalf("config succeeded without %s:\n%s", tc.want, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("error does not name %s:\n%s", tc.want, out)
			}
		})
	}
	out, err := composeConfig(t, "docker-compose.production.yml", "",
		"GITLAB_URL=https://gitlab.example.com", "GITLAB_TOKEN=t", "GF_SECURITY_ADMIN_PASSWORD=x")
	if err != nil {
		t.Fatalf("the three required settings are enough: %v\n%s", err, out)
	}
}

var composeVar = regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?`)

// runtimeVars are what the agent's environment may set besides its declared variables:
// the Go runtime reads them.
var runtimeVars = map[string]bool{"GOMEMLIMIT": true}

// declaredVars are the agent's variables by name.
func declaredVars() map[string]config.Var {
	vars := map[string]config.Var{}
	for _, v := range config.Vars() {
		vars[v.Name] = v
	}
	return vars
}

// The agent's environment in both compose files sets only declared variables, and the
// production file passes each from the .env variable of the same name: a misspelt
// name would otherwise be passed on and silently ignored.
func TestComposeAgentEnvironment(t *testing.T) {
	declared := declaredVars()
	for _, file := range []string{"docker-compose.yml", "docker-compose.production.yml"} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(root, file))
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Services map[string]struct {
					Environment map[string]string `yaml:"environment"`
				} `yaml:"services"`
			}
			if err := yaml.Unmarshal(b, &c); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			env := c.Services["discovery-agent"].Environment
			if len(env) == 0 {
				t.Fatal("the discovery-agent service has no environment")
			}
			for k, v := range env {
				if _, ok := declared[k]; !ok && !runtimeVars[k] {
					t.Errorf("the agent's environment sets %s, which the agent does not declare (config.Vars)", k)
				}
				if m := composeVar.FindStringSubmatch(v); m != nil && m[1] != k && !runtimeVars[k] {
					t.Errorf("the agent's %s comes from ${%s}: name it %s in .env too", k, m[1], k)
				}
			}
		})
	}
}

// .env.example sets every variable the production file reads, and nothing else; the
// agent variables it sets are declared ones at their defaults, and it has an example
// value for every variable the service requires. Every variable name it mentions, in
// a comment too, is one it sets or a declared one.
func TestEnvExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf(".env.example: %q is not NAME=value", line)
			continue
		}
		set[k] = v
	}
	prod, err := os.ReadFile(filepath.Join(root, "docker-compose.production.yml"))
	if err != nil {
		t.Fatal(err)
	}
	agentVars := declaredVars()
	used := map[string]bool{}
	for _, m := range composeVar.FindAllStringSubmatch(string(prod), -1) {
		used[m[1]] = true
		if _, ok := set[m[1]]; !ok {
			t.Errorf("docker-compose.production.yml reads %s, which .env.example does not set", m[1])
		}
		if av, ok := agentVars[m[1]]; ok && m[2] != "" && m[2] != av.Default && m[1] != "SCAN_SCHEDULE" {
			t.Errorf("docker-compose.production.yml defaults %s to %s; the agent's default is %s", m[1], m[2], av.Default)
		}
	}
	composeOnly := map[string]bool{"COMPOSE_PROJECT_NAME": true}
	for k, v := range set {
		if av, ok := agentVars[k]; ok && av.Default != "" && v != av.Default && k != "SCAN_SCHEDULE" {
			t.Errorf(".env.example sets %s=%s; the agent's default is %s: keep the example at the defaults", k, v, av.Default)
		}
		if !used[k] && !composeOnly[k] {
			t.Errorf(".env.example sets %s, which docker-compose.production.yml does not read", k)
		}
	}
	for _, k := range append(config.Required(config.RoleServe), "GF_SECURITY_ADMIN_PASSWORD") {
		if set[k] == "" {
			t.Errorf(".env.example has no example value for %s", k)
		}
	}
	for _, name := range regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`).FindAllString(string(b), -1) {
		if _, ok := set[name]; !ok {
			if _, ok := agentVars[name]; !ok {
				t.Errorf(".env.example mentions %s, which it does not set and the agent does not declare", name)
			}
		}
	}
}

func absRoot(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
