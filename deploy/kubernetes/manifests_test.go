package kubernetes_test

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/gl2gh/discovery-agent/internal/config"
	"github.com/gl2gh/discovery-agent/internal/lambdaapp"
)

// The names docs/RUNBOOK.md's commands use.
const (
	agent     = "discovery-agent"        // Deployment, container, Service, PDB, NetworkPolicy
	configMap = "discovery-agent-config" // the settings
	dataClaim = "discovery-data"         // the store's volume and claim
	simToken  = "sim-token"              // the simulator's fixed token (docker-compose.yml)
)

// check is one property every overlay's rendering must have.
type check struct {
	name string
	run  func(t *testing.T, r rendering)
}

var checks = []check{
	{"agent workload", checkWorkload},
	{"probes", checkProbes},
	{"service", checkService},
	{"security context", checkSecurity},
	{"resources", checkResources},
	{"no secret inlined", checkSecrets},
	{"settings", checkSettings},
	{"egress", checkEgress},
	{"disruption budget", checkPDB},
	{"data volume", checkData},
	{"prometheus annotations", checkScrape},
}

func TestOverlays(t *testing.T) {
	for _, dir := range overlays {
		r := render(t, dir)
		for _, c := range checks {
			t.Run(dir+"/"+c.name, func(t *testing.T) { c.run(t, r) })
		}
	}
}

// agentContainer returns the agent's Deployment and its container.
func agentContainer(t *testing.T, r rendering) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	d := r.deployment(t, agent)
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == agent {
			return d, c
		}
	}
	t.Fatalf("%s: Deployment %s has no container %s", r.Dir, agent, agent)
	return nil, corev1.Container{}
}

// settings are the agent's environment from its ConfigMap.
func settings(t *testing.T, r rendering) map[string]string {
	t.Helper()
	return r.configMap(t, configMap).Data
}

func checkWorkload(t *testing.T, r rendering) {
	if r.get("Namespace", namespace) == nil {
		t.Errorf("no Namespace %s", namespace)
	}
	d, c := agentContainer(t, r)
	if n := d.Spec.Replicas; n == nil || *n != 1 {
		t.Errorf("replicas is not 1: the store has one writer")
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q, want Recreate: two pods must never open the bbolt file", d.Spec.Strategy.Type)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Errorf("%d containers: kubectl logs/exec deployment/%s without -c need one", len(d.Spec.Template.Spec.Containers), agent)
	}
	sel, err := metav1LabelSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the selector %v does not select the pod template's labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
	}
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("args %q, want [serve]", c.Args)
	}
	if !strings.Contains(c.Image, "discovery-agent") {
		t.Errorf("image %q is not the agent's", c.Image)
	}
}

// port returns the port of a listen address such as ":8080".
func port(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("listen address %q has no port", addr)
	}
	return int32(n)
}

// containerPort resolves a probe's or Service's target port against the container's.
func containerPort(c corev1.Container, name string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func checkProbes(t *testing.T, r rendering) {
	_, c := agentContainer(t, r)
	health := port(t, settings(t, r)["HEALTH_ADDR"])
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", c.LivenessProbe, "/health/live"},
		{"readiness", c.ReadinessProbe, "/health/ready"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe path %q, want %s", p.name, p.probe.HTTPGet.Path, p.path)
		}
		n, ok := containerPort(c, p.probe.HTTPGet.Port.StrVal)
		if p.probe.HTTPGet.Port.IntVal != 0 {
			n, ok = p.probe.HTTPGet.Port.IntVal, true
		}
		if !ok || n != health {
			t.Errorf("%s probe port %s is %d, HEALTH_ADDR's is %d", p.name, p.probe.HTTPGet.Port.String(), n, health)
		}
	}
}

func checkService(t *testing.T, r rendering) {
	d, c := agentContainer(t, r)
	svc, _ := r.get("Service", agent).(*corev1.Service)
	if svc == nil {
		t.Fatalf("no Service %s", agent)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service selector %v does not select the agent's pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	env := settings(t, r)
	want := map[string]int32{"health": port(t, env["HEALTH_ADDR"]), "metrics": port(t, env["METRICS_ADDR"])}
	for _, p := range svc.Spec.Ports {
		target, ok := containerPort(c, p.TargetPort.StrVal)
		if w, named := want[p.Name]; named && ok && p.Port == w && target == w {
			delete(want, p.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("Service %s lacks the ports %v (port = container port = the *_ADDR setting's)", agent, want)
	}
}

func checkSecurity(t *testing.T, r rendering) {
	for name, pod := range r.podSpecs() {
		securityContext(t, name, pod.Spec)
	}
}

// securityContext checks what the restricted Pod Security Standard requires, and the
// read-only root filesystem.
func securityContext(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil {
		t.Errorf("%s: no pod securityContext", name)
		return
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot is not true", name)
	}
	// The images name their user (USER nonroot): runAsNonRoot needs the number.
	if psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: runAsUser %v, want the image's non-root uid", name, psc.RunAsUser)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile is not RuntimeDefault", name)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("%s: shares a host namespace", name)
	}
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s/%s: no securityContext", name, c.Name)
			continue
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s/%s: allowPrivilegeEscalation is not false", name, c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s/%s: readOnlyRootFilesystem is not true", name, c.Name)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("%s/%s: privileged", name, c.Name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s/%s: capabilities %v, want drop [ALL] and none added", name, c.Name, sc.Capabilities)
		}
	}
}

func checkResources(t *testing.T, r rendering) {
	for name, pod := range r.podSpecs() {
		for _, c := range pod.Spec.Containers {
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, okReq := c.Resources.Requests[res]
				lim, okLim := c.Resources.Limits[res]
				if !okReq || !okLim || req.Cmp(lim) > 0 {
					t.Errorf("%s/%s: %s request %v and limit %v: want both, request ≤ limit", name, c.Name, res, req.String(), lim.String())
				}
			}
		}
	}
	_, c := agentContainer(t, r)
	limit := c.Resources.Limits[corev1.ResourceMemory]
	var gomem string
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			gomem = e.Value
		}
	}
	// GOMEMLIMIT's units (MiB, GiB) are Kubernetes quantities' (Mi, Gi) plus "B".
	q, err := resource.ParseQuantity(strings.TrimSuffix(gomem, "B"))
	if err != nil {
		t.Fatalf("GOMEMLIMIT %q: %v", gomem, err)
	}
	// About 90% of the limit: the collector works harder before the kernel kills.
	if share := float64(q.Value()) / float64(limit.Value()); share < 0.8 || share > 0.95 {
		t.Errorf("GOMEMLIMIT %s is %.0f%% of limits.memory %s, want 80-95%%", gomem, 100*share, limit.String())
	}
}

// tokenVars are the variables that hold secrets: from a Secret only.
var tokenVars = []string{"GITLAB_TOKEN", "ADMIN_TOKEN"}

func checkSecrets(t *testing.T, r rendering) {
	for _, o := range r.Objects {
		s, ok := o.Value.(*corev1.Secret)
		if !ok {
			continue
		}
		// Only the local overlay carries a Secret: the simulator's fixed token.
		if r.Dir != "overlays/local" || len(s.StringData) > 0 || len(s.Data) != 1 || string(s.Data["GITLAB_TOKEN"]) != simToken {
			t.Errorf("Secret %s carries values in the manifests (keys %v): create it by hand (docs/RUNBOOK.md)", o.Name, keys(s.Data))
		}
	}
	for name, v := range settings(t, r) {
		if slices.Contains(tokenVars, name) || strings.Contains(v, simToken) {
			t.Errorf("the ConfigMap holds %s: tokens come from a Secret", name)
		}
	}
	for name, pod := range r.podSpecs() {
		for _, c := range pod.Spec.Containers {
			for _, e := range c.Env {
				if !slices.Contains(tokenVars, e.Name) {
					continue
				}
				if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Key != e.Name {
					t.Errorf("%s/%s: %s is not a secretKeyRef to a key of its name", name, c.Name, e.Name)
				}
			}
		}
	}
	_, c := agentContainer(t, r)
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GITLAB_TOKEN" }) {
		t.Error("the agent does not read GITLAB_TOKEN from a Secret")
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// runtimeVars are variables the agent's container sets that are not the agent's: each
// read by its runtime or a library.
var runtimeVars = map[string]string{
	"GOMEMLIMIT": "the Go runtime's soft memory limit",
	"AWS_REGION": "the AWS SDK's region (BACKEND=aws)",
}

// checkSettings: the ConfigMap holds declared variables only (a misspelt one would be
// silently ignored), and the agent accepts their values in the role it runs.
func checkSettings(t *testing.T, r rendering) {
	data := settings(t, r)
	aws := data["BACKEND"] == "aws"
	declared := map[string]bool{}
	for _, v := range config.Vars() {
		declared[v.Name] = true
	}
	if aws {
		for _, v := range lambdaapp.Vars() {
			declared[v.Name] = true
		}
	}
	for name := range data {
		if !declared[name] {
			t.Errorf("the ConfigMap sets %s, which the agent does not read (with BACKEND=%s)", name, data["BACKEND"])
		}
	}
	_, c := agentContainer(t, r)
	for _, e := range c.Env {
		if !declared[e.Name] && runtimeVars[e.Name] == "" {
			t.Errorf("the container sets %s, which neither the agent nor its runtime reads", e.Name)
		}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != configMap {
		t.Errorf("envFrom %v, want the ConfigMap %s", c.EnvFrom, configMap)
	}

	// Parse them as the agent does, with a token standing in for the Secret's.
	for name := range declared {
		t.Setenv(name, "")
	}
	for name, v := range data {
		t.Setenv(name, v)
	}
	t.Setenv("GITLAB_TOKEN", "placeholder-token")
	if aws {
		s, err := lambdaapp.ServeSettingsFromEnv()
		if err == nil {
			err = s.Validate(lambdaapp.RoleServeAWS)
		}
		if err != nil {
			t.Errorf("serve with BACKEND=aws refuses the ConfigMap: %v", err)
		}
		return
	}
	cfg, err := config.FromEnv()
	if err == nil {
		err = cfg.Validate(config.RoleServe)
	}
	if err != nil {
		t.Errorf("serve refuses the ConfigMap: %v", err)
	}
}

// checkEgress: the policy allows DNS and a way to GITLAB_URL's port, nothing else, and
// in the local overlay that way leads to the simulator.
func checkEgress(t *testing.T, r rendering) {
	d, _ := agentContainer(t, r)
	np, _ := r.get("NetworkPolicy", agent).(*networkingv1.NetworkPolicy)
	if np == nil {
		t.Fatalf("no NetworkPolicy %s", agent)
	}
	sel, err := metav1LabelSelector(&np.Spec.PodSelector)
	if err != nil || len(np.Spec.PodSelector.MatchLabels) == 0 || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the policy's podSelector %v does not select the agent", np.Spec.PodSelector)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("policyTypes %v lack Egress", np.Spec.PolicyTypes)
	}
	u, err := url.Parse(settings(t, r)["GITLAB_URL"])
	if err != nil || u.Host == "" {
		t.Fatalf("GITLAB_URL %q: %v", settings(t, r)["GITLAB_URL"], err)
	}
	gitlabPort := map[string]int32{"https": 443, "http": 80}[u.Scheme]
	if p := u.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		gitlabPort = int32(n)
	}
	var dns, gitlab int
	for i, rule := range np.Spec.Egress {
		switch ports := rulePorts(rule); {
		case slices.Equal(ports, []string{"UDP/53", "TCP/53"}):
			dns++
		case slices.Equal(ports, []string{fmt.Sprintf("TCP/%d", gitlabPort)}):
			gitlab++
			if r.Dir == "overlays/local" {
				checkSimRule(t, r, rule, u.Hostname(), gitlabPort)
			} else if len(rule.To) > 0 && rule.To[0].IPBlock == nil {
				t.Errorf("egress rule %d: GitLab outside the cluster is an ipBlock, not %v", i, rule.To)
			}
		default:
			t.Errorf("egress rule %d allows %v: only DNS and GitLab (%s, port %d)", i, ports, u.Host, gitlabPort)
		}
	}
	if dns != 1 || gitlab != 1 {
		t.Errorf("%d DNS and %d GitLab egress rules, want one each", dns, gitlab)
	}
}

func rulePorts(rule networkingv1.NetworkPolicyEgressRule) []string {
	var ps []string
	for _, p := range rule.Ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		ps = append(ps, fmt.Sprintf("%s/%s", proto, p.Port.String()))
	}
	return ps
}

// checkSimRule: the local overlay's GitLab is the gitlab-sim Service, whose pods the
// rule selects on the port they listen on.
func checkSimRule(t *testing.T, r rendering, rule networkingv1.NetworkPolicyEgressRule, host string, p int32) {
	t.Helper()
	svc, _ := r.get("Service", host).(*corev1.Service)
	sim := r.deployment(t, "gitlab-sim")
	if svc == nil || len(rule.To) != 1 || rule.To[0].PodSelector == nil {
		t.Fatalf("GITLAB_URL's host %s is no Service, or the rule %v does not name pods", host, rule.To)
	}
	podLabels := labels.Set(sim.Spec.Template.Labels)
	sel, err := metav1LabelSelector(rule.To[0].PodSelector)
	if err != nil || !sel.Matches(podLabels) || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("the rule %v and Service %s do not both select the simulator's pods %v", rule.To[0].PodSelector, host, podLabels)
	}
	target, ok := containerPort(sim.Spec.Template.Spec.Containers[0], svc.Spec.Ports[0].TargetPort.StrVal)
	if svc.Spec.Ports[0].Port != p || !ok || target != p || !slices.Contains(sim.Spec.Template.Spec.Containers[0].Args, fmt.Sprintf("0.0.0.0:%d", p)) {
		t.Errorf("GITLAB_URL's port %d is not the Service's, the container's and the simulator's --addr", p)
	}
}

func checkPDB(t *testing.T, r rendering) {
	d, _ := agentContainer(t, r)
	pdb, _ := r.get("PodDisruptionBudget", agent).(*policyv1.PodDisruptionBudget)
	if pdb == nil {
		t.Fatalf("no PodDisruptionBudget %s", agent)
	}
	sel, err := metav1LabelSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the budget's selector does not select the agent (%v)", err)
	}
	// One replica: the budget must let a drain evict it.
	allows := (pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.IntValue() >= 1) ||
		(pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() == 0 && pdb.Spec.MinAvailable.StrVal == "")
	if !allows {
		t.Errorf("maxUnavailable %v, minAvailable %v: with one replica every eviction would be refused", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
	}
}

// checkData: DATA_DIR, EXPORT_DIR and /tmp are on writable volumes (the root
// filesystem is read-only), DATA_DIR on the discovery-data claim with the local backend.
func checkData(t *testing.T, r rendering) {
	d, c := agentContainer(t, r)
	env := settings(t, r)
	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	mountOf := func(path string) (corev1.VolumeMount, bool) {
		var best corev1.VolumeMount
		for _, m := range c.VolumeMounts {
			if under(path, m.MountPath) && len(m.MountPath) > len(best.MountPath) {
				best = m
			}
		}
		return best, best.Name != "" && !best.ReadOnly
	}
	for _, path := range []string{env["DATA_DIR"], env["EXPORT_DIR"], "/tmp"} {
		if _, ok := mountOf(path); !ok {
			t.Errorf("%q is on no writable volume; the root filesystem is read-only", path)
		}
	}
	m, _ := mountOf(env["DATA_DIR"])
	if m.Name != dataClaim {
		t.Errorf("DATA_DIR %s is on volume %q, want %s", env["DATA_DIR"], m.Name, dataClaim)
	}
	if env["BACKEND"] == "aws" {
		return // the store is DynamoDB: no claim to keep
	}
	v := volumes[dataClaim]
	pvc, _ := r.get("PersistentVolumeClaim", dataClaim).(*corev1.PersistentVolumeClaim)
	if v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != dataClaim || pvc == nil {
		t.Fatalf("volume %s is not the PersistentVolumeClaim %s", dataClaim, dataClaim)
	}
	if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("access modes %v, want ReadWriteOnce: one writer", pvc.Spec.AccessModes)
	}
}

func checkScrape(t *testing.T, r rendering) {
	d, c := agentContainer(t, r)
	metrics := port(t, settings(t, r)["METRICS_ADDR"])
	a := d.Spec.Template.Annotations
	n, ok := containerPort(c, "metrics")
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" ||
		a["prometheus.io/port"] != strconv.Itoa(int(metrics)) || !ok || n != metrics {
		t.Errorf("scrape annotations %v and container port metrics (%d) do not point at METRICS_ADDR's port %d", a, n, metrics)
	}
}
