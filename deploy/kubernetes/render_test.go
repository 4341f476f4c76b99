// Package kubernetes_test checks the manifests under deploy/kubernetes without a
// cluster: kubectl kustomize renders each kustomization, every rendered object decodes
// strictly into its Kubernetes API type, the objects keep the names, probes, security
// context, settings and secret handling docs/RUNBOOK.md relies on, and the runbooks'
// kubectl commands name objects the manifests define.
package kubernetes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// root is the repository's root, from this package's directory.
var root = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}()

const namespace = "discovery-agent"

// Every kustomization under deploy/kubernetes that can be applied; overlays are the
// agent's deployments, the others are applied beside one.
var (
	overlays       = []string{"overlays/local", "overlays/production", "overlays/aws"}
	kustomizations = append(append([]string{}, overlays...), "podmonitor", "backup")
)

// object is one rendered object, decoded into its API type.
type object struct {
	Kind, Name, Namespace string
	Labels                map[string]string
	Value                 any // *appsv1.Deployment, *corev1.ConfigMap, ...
}

// rendering is what kubectl kustomize made of one kustomization.
type rendering struct {
	Dir     string // relative to deploy/kubernetes
	Objects []object
}

// types are the kinds the manifests may use, by apiVersion and kind. A kind missing
// here fails the test: add it with its API type, so that it is decoded strictly too.
var types = map[string]func() any{
	"v1/Namespace":                        func() any { return new(corev1.Namespace) },
	"v1/ServiceAccount":                   func() any { return new(corev1.ServiceAccount) },
	"v1/ConfigMap":                        func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                           func() any { return new(corev1.Secret) },
	"v1/Service":                          func() any { return new(corev1.Service) },
	"v1/PersistentVolumeClaim":            func() any { return new(corev1.PersistentVolumeClaim) },
	"v1/Pod":                              func() any { return new(corev1.Pod) },
	"apps/v1/Deployment":                  func() any { return new(appsv1.Deployment) },
	"networking.k8s.io/v1/NetworkPolicy":  func() any { return new(networkingv1.NetworkPolicy) },
	"policy/v1/PodDisruptionBudget":       func() any { return new(policyv1.PodDisruptionBudget) },
	"monitoring.coreos.com/v1/PodMonitor": func() any { return new(podMonitor) },
}

// podMonitor is the part of the Prometheus Operator's PodMonitor the manifests use
// (monitoring.coreos.com/v1). It is not in k8s.io/api; a field outside it fails the
// strict decoding like a misspelt one.
type podMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel            string               `json:"jobLabel"`
		Selector            metav1.LabelSelector `json:"selector"`
		PodMetricsEndpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// kubectl returns kubectl's path. Without it, or with one too old for the manifests,
// the test is skipped, unless REQUIRE_INTEGRATION=1 (CI) makes that a failure.
func kubectl(t *testing.T) string {
	t.Helper()
	p, err := kubectlOnce()
	if err != nil {
		if os.Getenv("REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%v (REQUIRE_INTEGRATION=1)", err)
		}
		t.Skip(err)
	}
	return p
}

// kubectlOnce finds kubectl and checks that its kustomize is v5 or later (kubectl
// 1.27+): the manifests use labels, inline patches and generator options that older
// ones lack. Debian 12's kubernetes-client (kubectl 1.20, kustomize v2) is too old.
var kubectlOnce = sync.OnceValues(func() (string, error) {
	p, err := exec.LookPath("kubectl")
	if err != nil {
		return "", errors.New("kubectl is not installed (Debian: kubernetes-client, or the upstream binary)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "version", "--client", "-o", "json").Output()
	var v struct {
		Client    struct{ GitVersion string } `json:"clientVersion"`
		Kustomize string                      `json:"kustomizeVersion"`
	}
	if err == nil {
		err = json.Unmarshal(out, &v)
	}
	if err != nil {
		return "", fmt.Errorf("kubectl version: %w", err)
	}
	major, _, _ := strings.Cut(strings.TrimPrefix(v.Kustomize, "v"), ".")
	if n, err := strconv.Atoi(major); err != nil || n < 5 {
		return "", fmt.Errorf("kubectl %s has kustomize %q: deploy/kubernetes needs kustomize v5 (kubectl 1.27 or later)", v.Client.GitVersion, v.Kustomize)
	}
	return p, nil
})

var renders sync.Map // dir → func() (rendering, error), rendered once per test binary

// render renders deploy/kubernetes/dir and decodes every object strictly.
func render(t *testing.T, dir string) rendering {
	t.Helper()
	bin := kubectl(t)
	f, _ := renders.LoadOrStore(dir, sync.OnceValues(func() (rendering, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "kustomize", filepath.Join(root, "deploy/kubernetes", dir))
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return rendering{}, fmt.Errorf("kubectl kustomize %s: %v\n%s", dir, err, stderr.Bytes())
		}
		objs, err := decode(out)
		if err != nil {
			return rendering{}, fmt.Errorf("%s: %w", dir, err)
		}
		return rendering{Dir: dir, Objects: objs}, nil
	}))
	r, err := f.(func() (rendering, error))()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// decode splits kubectl kustomize's output into objects and decodes each into its API
// type, refusing unknown and duplicate fields with the API server's case-sensitive
// rules.
func decode(out []byte) ([]object, error) {
	var objs []object
	for i, doc := range bytes.Split(out, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var tm metav1.TypeMeta
		if err := kjson.UnmarshalCaseSensitivePreserveInts(j, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		newValue, ok := types[tm.APIVersion+"/"+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("document %d: %s %s is not a kind this test knows", i, tm.APIVersion, tm.Kind)
		}
		v := newValue()
		strict, err := kjson.UnmarshalStrict(j, v)
		if err == nil && len(strict) > 0 {
			err = fmt.Errorf("%v", strict)
		}
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
		meta := v.(metav1.Object)
		objs = append(objs, object{Kind: tm.Kind, Name: meta.GetName(), Namespace: meta.GetNamespace(), Labels: meta.GetLabels(), Value: v})
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no objects rendered")
	}
	return objs, nil
}

// get returns the object of kind and name, or nil.
func (r rendering) get(kind, name string) any {
	for _, o := range r.Objects {
		if o.Kind == kind && o.Name == name {
			return o.Value
		}
	}
	return nil
}

func (r rendering) deployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	d, _ := r.get("Deployment", name).(*appsv1.Deployment)
	if d == nil {
		t.Fatalf("%s: no Deployment %s", r.Dir, name)
	}
	return d
}

func (r rendering) configMap(t *testing.T, name string) *corev1.ConfigMap {
	t.Helper()
	c, _ := r.get("ConfigMap", name).(*corev1.ConfigMap)
	if c == nil {
		t.Fatalf("%s: no ConfigMap %s", r.Dir, name)
	}
	return c
}

// podSpecs returns every pod the rendering runs: its Deployments' templates and its
// Pods, by "Kind/name".
func (r rendering) podSpecs() map[string]corev1.PodTemplateSpec {
	pods := map[string]corev1.PodTemplateSpec{}
	for _, o := range r.Objects {
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			pods["Deployment/"+o.Name] = v.Spec.Template
		case *corev1.Pod:
			pods["Pod/"+o.Name] = corev1.PodTemplateSpec{ObjectMeta: v.ObjectMeta, Spec: v.Spec}
		}
	}
	return pods
}

// TestRender renders every kustomization and decodes its objects strictly; the other
// tests rely on it, and it names which kustomization broke.
func TestRender(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			for _, o := range r.Objects {
				if o.Kind != "Namespace" && o.Namespace != namespace {
					t.Errorf("%s %s is in namespace %q, not %s", o.Kind, o.Name, o.Namespace, namespace)
				}
			}
		})
	}
}

// The decoder must refuse what the API server refuses; otherwise every check built on
// it passes on manifests a cluster rejects.
func TestDecodeIsStrict(t *testing.T) {
	bad := map[string]string{
		"unknown field":      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {}\nbinaryDate: {}\n",
		"field's case":       "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  Replicas: 1\n",
		"misplaced field":    "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  ports: []\n",
		"unknown kind":       "apiVersion: v1\nkind: Gadget\nmetadata:\n  name: x\n",
		"podmonitor's field": "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata:\n  name: x\nspec:\n  podMetricsEndpoint: []\n",
	}
	for name, doc := range bad {
		if _, err := decode([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := decode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  A: b\n")); err != nil {
		t.Errorf("a valid ConfigMap: %v", err)
	}
}

// hasPrefix reports whether path is dir or under it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}
