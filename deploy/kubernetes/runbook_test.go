package kubernetes_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The runbooks whose kubectl commands must work against the manifests. Ours are
// strict: every namespaced command says -n discovery-agent, and exec runs what the
// image has. The seed (the operators' runbook this project honours, copied into
// testdata) is taken as written: its commands must name objects the manifests define.
var runbooks = []struct {
	file   string // relative to the repository's root
	strict bool
	min    int // kubectl commands at least: fewer means the parser broke
}{
	{"docs/RUNBOOK.md", true, 40},
	{"README.md", true, 2},
	{"deploy/kubernetes/testdata/operations-runbook-seed.md", false, 12},
}

// The seed's original, next to the repository.
const seedOriginal = "../shared/reference/operations-runbook-seed.md"

// world is everything the rendered manifests define, across every kustomization.
type world struct {
	objects map[ref]map[string]string      // → the object's labels
	pods    map[ref]corev1.PodTemplateSpec // Deployment/x and Pod/x → the pod they run
	secrets map[string][]string            // Secrets the pods read → their keys
	dirs    map[string]bool                // kustomizations, relative to deploy/kubernetes
}

// imageTools are the commands a container's image has: the agent's image is distroless
// (its binary only), the backup pod's is Debian.
func imageTools(c corev1.Container) []string {
	switch {
	case strings.Contains(c.Image, "discovery-agent"):
		return []string{"/discovery-agent"}
	case strings.HasPrefix(c.Image, "debian:"):
		return []string{"tar", "find", "rm", "ls", "du", "cat", "sh", "sleep"}
	}
	return nil
}

func newWorld(t *testing.T) world {
	t.Helper()
	w := world{objects: map[ref]map[string]string{}, pods: map[ref]corev1.PodTemplateSpec{},
		secrets: map[string][]string{}, dirs: map[string]bool{}}
	for _, dir := range kustomizations {
		r := render(t, dir)
		w.dirs[dir] = true
		for _, o := range r.Objects {
			w.objects[ref{o.Kind, o.Name}] = o.Labels
		}
		for key, pod := range r.podSpecs() {
			kind, name, _ := strings.Cut(key, "/")
			w.pods[ref{kind, name}] = pod
			for _, c := range pod.Spec.Containers {
				for _, e := range c.Env {
					if s := e.ValueFrom; s != nil && s.SecretKeyRef != nil && !slices.Contains(w.secrets[s.SecretKeyRef.Name], s.SecretKeyRef.Key) {
						w.secrets[s.SecretKeyRef.Name] = append(w.secrets[s.SecretKeyRef.Name], s.SecretKeyRef.Key)
						w.objects[ref{"Secret", s.SecretKeyRef.Name}] = nil
					}
				}
			}
		}
	}
	return w
}

// targets returns the pods a command acts on: those of the workloads it names, or
// those its selector picks.
func (w world) targets(inv invocation) []corev1.PodTemplateSpec {
	var pods []corev1.PodTemplateSpec
	sel, _ := labels.Parse(inv.Selector)
	for _, r := range inv.Refs {
		if p, ok := w.pods[r]; ok {
			pods = append(pods, p)
		} else if r.Kind == "Pod" && (r.Name == "" || r.Name == subst) && inv.Selector != "" {
			for _, p := range w.pods {
				if sel.Matches(labels.Set(p.Labels)) {
					pods = append(pods, p)
				}
			}
		}
	}
	return pods
}

// check returns what is wrong with a command against the manifests.
func (w world) check(inv invocation, strict bool) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if inv.Namespace != "" && w.objects[ref{"Namespace", inv.Namespace}] == nil {
		bad("namespace %q is not the manifests' %s", inv.Namespace, namespace)
	}
	if strict && inv.needsNamespace() && inv.Namespace == "" {
		bad("no -n %s: it would act on the context's namespace", namespace)
	}
	for _, r := range inv.Refs {
		switch {
		case r.Kind == "Event":
		case r.Name == "" || r.Name == subst:
			if !w.hasKind(r.Kind) {
				bad("the manifests define no %s", r.Kind)
			}
		default:
			if _, ok := w.objects[r]; !ok {
				bad("the manifests define no %s %q", r.Kind, r.Name)
			}
		}
	}
	named := inv.Namespace != "" || inv.Kustomize != "" || slices.Equal(inv.Files, []string{"-"}) ||
		slices.ContainsFunc(inv.Refs, func(r ref) bool { return r.Name != "" })
	if !named && inv.Verb != "config" && inv.Verb != "version" {
		bad("it names nothing the manifests define (object, namespace or kustomization)")
	}
	if inv.Selector != "" {
		errs = append(errs, w.checkSelector(inv)...)
	}
	errs = append(errs, w.checkPods(inv, strict)...)
	if inv.Kustomize != "" && !w.dirs[inv.kustomizationDir()] {
		bad("-k %s is none of deploy/kubernetes' kustomizations", inv.Kustomize)
	}
	for _, f := range inv.Files {
		if _, err := os.Stat(filepath.Join(root, f)); f != "-" && err != nil {
			bad("-f %s: %v", f, err)
		}
	}
	if strings.HasPrefix(inv.Verb, "create secret") {
		for _, k := range inv.Keys {
			if !slices.Contains(w.secrets[inv.Refs[0].Name], k) {
				bad("the agent reads no key %s of Secret %s (it reads %v)", k, inv.Refs[0].Name, w.secrets[inv.Refs[0].Name])
			}
		}
	}
	return errs
}

func (w world) hasKind(kind string) bool {
	for r := range w.objects {
		if r.Kind == kind {
			return true
		}
	}
	return kind == "Pod" && len(w.pods) > 0
}

// checkSelector: -l picks pods (or objects of the kinds named) the manifests define.
func (w world) checkSelector(inv invocation) []string {
	sel, err := labels.Parse(inv.Selector)
	if err != nil {
		return []string{fmt.Sprintf("-l %s: %v", inv.Selector, err)}
	}
	for _, r := range inv.Refs {
		if r.Kind == "Pod" || len(inv.Refs) == 0 {
			for _, p := range w.pods {
				if sel.Matches(labels.Set(p.Labels)) {
					return nil
				}
			}
		}
		for o, l := range w.objects {
			if o.Kind == r.Kind && sel.Matches(labels.Set(l)) {
				return nil
			}
		}
	}
	return []string{fmt.Sprintf("-l %s selects nothing the manifests define", inv.Selector)}
}

// checkPods: the container, ports and command a command names are the pod's.
func (w world) checkPods(inv invocation, strict bool) []string {
	var errs []string
	pods := w.targets(inv)
	podVerb := slices.Contains([]string{"logs", "exec", "port-forward", "attach"}, inv.Verb)
	if podVerb && len(pods) == 0 {
		return []string{"it names no pod the manifests run"}
	}
	for _, p := range pods {
		cs := p.Spec.Containers
		names := func() (ns []string) {
			for _, c := range cs {
				ns = append(ns, c.Name)
			}
			return ns
		}()
		if inv.Container != "" && inv.Verb != "debug" && !slices.Contains(names, inv.Container) {
			errs = append(errs, fmt.Sprintf("-c %s is not a container of the pod (%v)", inv.Container, names))
		}
		if podVerb && inv.Container == "" && len(cs) != 1 {
			errs = append(errs, fmt.Sprintf("no -c and the pod has containers %v", names))
		}
		for _, fwd := range inv.Ports {
			_, remote, _ := strings.Cut(fwd, ":")
			if remote == "" {
				remote = fwd
			}
			if !hasPort(cs, remote) {
				errs = append(errs, fmt.Sprintf("port %s is none of the pod's", remote))
			}
		}
		if inv.Verb == "exec" && strict && len(inv.Remote) > 0 && len(cs) == 1 && !slices.Contains(imageTools(cs[0]), inv.Remote[0]) {
			errs = append(errs, fmt.Sprintf("exec runs %s, which image %s lacks (it has %v)", inv.Remote[0], cs[0].Image, imageTools(cs[0])))
		}
	}
	return errs
}

func hasPort(cs []corev1.Container, port string) bool {
	for _, c := range cs {
		for _, p := range c.Ports {
			if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
				return true
			}
		}
	}
	return false
}

func readDoc(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every kubectl command of the runbooks acts on objects the manifests define: names,
// namespace, labels, containers, ports, kustomizations, Secret keys.
func TestRunbookKubectlNames(t *testing.T) {
	w := newWorld(t)
	for _, rb := range runbooks {
		t.Run(rb.file, func(t *testing.T) {
			cmds := kubectlCommands(readDoc(t, rb.file))
			if len(cmds) < rb.min {
				t.Fatalf("%d kubectl commands found, want at least %d: the parser is broken", len(cmds), rb.min)
			}
			for _, c := range cmds {
				inv, err := parse(c.Args)
				errs := w.check(inv, rb.strict)
				if err != nil {
					errs = append([]string{err.Error()}, errs...)
				}
				for _, e := range errs {
					t.Errorf("line %d: %s\n\tkubectl %s", c.Line, e, strings.Join(c.Args, " "))
				}
			}
		})
	}
}

// The checks above must be able to fail: commands that name what the manifests do not.
func TestRunbookKubectlChecksFail(t *testing.T) {
	w := newWorld(t)
	bad := []string{
		"kubectl logs deployment/discovery -n discovery-agent",
		"kubectl get pods -n discovery",
		"kubectl rollout restart deployment/discovery-agent",
		"kubectl edit configmap discovery-agent-settings -n discovery-agent",
		"kubectl logs deployment/discovery-agent -c agent -n discovery-agent",
		"kubectl get pods -l app=discovery-agent -n discovery-agent",
		"kubectl exec deployment/discovery-agent -n discovery-agent -- curl -s localhost:8080/health",
		"kubectl port-forward deployment/discovery-agent -n discovery-agent 8080:8081",
		"kubectl create secret generic discovery-agent-secrets -n discovery-agent --from-literal=TOKEN=x",
		"kubectl create secret generic gitlab-token -n discovery-agent --from-literal=GITLAB_TOKEN=x",
		"kubectl apply -k deploy/kubernetes/overlays/staging",
		"kubectl exec discovery-data-backup -n discovery-agent -- rsync -a /data /backup",
		"kubectl frobnicate deployment/discovery-agent -n discovery-agent",
		"kubectl get pods",
	}
	for _, line := range bad {
		cmds := kubectlCommands("```bash\n" + line + "\n```\n")
		if len(cmds) != 1 {
			t.Fatalf("%s: %d commands parsed", line, len(cmds))
		}
		inv, err := parse(cmds[0].Args)
		if err == nil && len(w.check(inv, true)) == 0 {
			t.Errorf("%s: passes the checks", line)
		}
	}
}

// The command lines split as a shell would split them.
func TestShellCommands(t *testing.T) {
	for line, want := range map[string]string{
		`kubectl logs deployment/x -n ns | grep '"level":"ERROR"'`:                    `[kubectl logs deployment/x -n ns] [grep "level":"ERROR"]`,
		`export T="$(kubectl get secret s -o jsonpath='{.data.T}' | base64 -d)"`:      `[kubectl get secret s -o jsonpath={.data.T}] [base64 -d] [export T=SUBST]`,
		`kubectl exec p -- tar czf - . > backup/x-$(date +%Y).tar.gz  # keep`:         `[date +%Y] [kubectl exec p -- tar czf - .]`,
		`kubectl exec -i p -- tar xzf - < backup/<file>.tar.gz && echo done`:          `[kubectl exec -i p -- tar xzf -] [echo done]`,
		`kubectl create secret generic s --from-literal=K="$V" --dry-run=client 2>&1`: `[kubectl create secret generic s --from-literal=K=$V --dry-run=client]`,
	} {
		var got []string
		for _, c := range shellCommands(line) {
			got = append(got, fmt.Sprint(c))
		}
		if s := strings.Join(got, " "); s != want {
			t.Errorf("%s\n\tgot  %s\n\twant %s", line, s, want)
		}
	}
}

// The seed in testdata is the shared reference's copy, where that is at hand.
func TestSeedIsCurrent(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(root, seedOriginal))
	if err != nil {
		t.Skipf("%s: %v (the copy in testdata is used)", seedOriginal, err)
	}
	if copy := readDoc(t, runbooks[2].file); copy != string(orig) {
		t.Errorf("%s differs from %s: copy it again and rerun", runbooks[2].file, seedOriginal)
	}
}

// kubectl itself accepts every command: subcommands, flags and their values parse, and
// the command gets as far as calling the API server, which here is an address where
// nothing listens.
func TestRunbookKubectlAccepted(t *testing.T) {
	bin := kubectl(t)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KUBE") && !strings.HasPrefix(e, "HOME=") {
			env = append(env, e)
		}
	}
	env = append(env, "KUBECONFIG="+kubeconfig, "HOME="+dir, "KUBECACHEDIR="+filepath.Join(dir, "cache"),
		"KUBE_EDITOR=false", "EDITOR=false")
	seen := map[string]bool{}
	for _, rb := range runbooks {
		for _, c := range kubectlCommands(readDoc(t, rb.file)) {
			key := strings.Join(c.Args, "\x00")
			if seen[key] {
				continue
			}
			seen[key] = true
			t.Run(fmt.Sprintf("%s:%d", filepath.Base(rb.file), c.Line), func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, c.Args...)
				cmd.Dir, cmd.Env = root, env
				if slices.Contains(c.Args, "-") { // apply -f - reads the object of the pipe
					cmd.Stdin = strings.NewReader("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: piped\n")
				}
				out, err := cmd.CombinedOutput()
				if err != nil && !bytes.Contains(out, []byte("connection to the server 127.0.0.1:1 was refused")) &&
					!bytes.Contains(out, []byte("dial tcp 127.0.0.1:1: connect: connection refused")) {
					t.Errorf("kubectl %s: %v\n%s", strings.Join(c.Args, " "), err, lastLines(out, 5))
				}
			})
		}
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
