package kubernetes_test

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// invocation is what a kubectl command acts on, read from its arguments.
type invocation struct {
	Verb      string   // "get", "rollout restart", "create secret generic", ...
	Refs      []ref    // the objects named
	Namespace string   // -n; "" when not given
	Container string   // -c
	Selector  string   // -l
	Kustomize string   // -k
	Files     []string // -f
	Keys      []string // of --from-literal and --from-file
	Ports     []string // port-forward's
	Remote    []string // exec's command, after --
}

// ref is an object a command names; Name "" stands for every object of the kind.
type ref struct{ Kind, Name string }

// valueFlags are the flags whose value is the next word, unless given as --flag=value.
var valueFlags = map[string]bool{
	"-n": true, "--namespace": true, "-c": true, "--container": true, "-l": true, "--selector": true,
	"-f": true, "--filename": true, "-k": true, "--kustomize": true, "-o": true, "--output": true,
	"--tail": true, "--since": true, "--timeout": true, "--for": true, "--replicas": true,
	"--image": true, "--profile": true, "--target": true, "--from-literal": true, "--from-file": true,
	"--field-selector": true, "--sort-by": true, "--context": true, "--kubeconfig": true, "--dry-run": true,
	"--type": true, "--copy-to": true, "--custom": true, "--address": true,
}

// boolFlags are short flags that take no value in some commands but do in others.
var boolFlags = map[string][]string{
	"logs": {"-f", "-p"}, // --follow, --previous
}

// kinds maps the resource names kubectl accepts to the kinds the manifests use.
var kinds = map[string]string{
	"pod": "Pod", "pods": "Pod", "po": "Pod",
	"deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
	"configmap": "ConfigMap", "configmaps": "ConfigMap", "cm": "ConfigMap",
	"secret": "Secret", "secrets": "Secret",
	"service": "Service", "services": "Service", "svc": "Service",
	"persistentvolumeclaim": "PersistentVolumeClaim", "persistentvolumeclaims": "PersistentVolumeClaim", "pvc": "PersistentVolumeClaim",
	"networkpolicy": "NetworkPolicy", "networkpolicies": "NetworkPolicy", "netpol": "NetworkPolicy",
	"poddisruptionbudget": "PodDisruptionBudget", "poddisruptionbudgets": "PodDisruptionBudget", "pdb": "PodDisruptionBudget",
	"namespace": "Namespace", "namespaces": "Namespace", "ns": "Namespace",
	"serviceaccount": "ServiceAccount", "serviceaccounts": "ServiceAccount", "sa": "ServiceAccount",
	"podmonitor": "PodMonitor", "podmonitors": "PodMonitor",
	"event": "Event", "events": "Event", "ev": "Event",
}

// parse reads a kubectl command's arguments.
func parse(args []string) (invocation, error) {
	var inv invocation
	var pos []string
	verb := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			inv.Remote = args[i+1:]
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if verb == "" {
				verb = a
			} else {
				pos = append(pos, a)
			}
			continue
		}
		name, value, hasValue := strings.Cut(a, "=")
		if !hasValue && valueFlags[name] && !slices.Contains(boolFlags[verb], name) {
			if i+1 >= len(args) {
				return inv, fmt.Errorf("%s without its value", name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "-n", "--namespace":
			inv.Namespace = value
		case "-c", "--container":
			inv.Container = value
		case "-l", "--selector":
			inv.Selector = value
		case "-k", "--kustomize":
			inv.Kustomize = value
		case "-f", "--filename":
			if !slices.Contains(boolFlags[verb], name) {
				inv.Files = append(inv.Files, value)
			}
		case "--from-literal", "--from-file":
			key, _, _ := strings.Cut(value, "=")
			inv.Keys = append(inv.Keys, key)
		}
	}
	inv.Verb = verb
	var err error
	switch verb {
	case "get", "describe", "edit", "delete", "scale", "label", "annotate", "wait":
		inv.Refs, err = refs(pos)
	case "rollout":
		if len(pos) == 0 {
			return inv, fmt.Errorf("rollout without a subcommand")
		}
		inv.Verb += " " + pos[0]
		inv.Refs, err = refs(pos[1:])
	case "top":
		if len(pos) == 0 || kinds[pos[0]] != "Pod" {
			return inv, fmt.Errorf("top %v: the runbook tops pods", pos)
		}
		inv.Refs = []ref{{Kind: "Pod"}}
		for _, n := range pos[1:] {
			inv.Refs = append(inv.Refs, ref{"Pod", n})
		}
	case "logs", "exec", "port-forward", "attach", "debug":
		if len(pos) == 0 {
			return inv, fmt.Errorf("%s without a target", verb)
		}
		r, e := refs(pos[:1])
		if e != nil && !strings.Contains(pos[0], "/") {
			r, e = []ref{{"Pod", pos[0]}}, nil // a bare name is a pod's
		}
		inv.Refs, err, inv.Ports = r, e, pos[1:]
	case "create":
		switch {
		case len(pos) == 3 && pos[0] == "secret" && pos[1] == "generic", len(pos) == 2 && pos[0] == "configmap":
			inv.Verb += " " + strings.Join(pos[:len(pos)-1], " ")
			inv.Refs = []ref{{kinds[pos[0]], pos[len(pos)-1]}}
		case len(pos) == 0 && len(inv.Files) > 0:
		default:
			err = fmt.Errorf("create %v: not a form this test knows", pos)
		}
	case "apply", "kustomize":
		if verb == "kustomize" && len(pos) == 1 {
			inv.Kustomize = pos[0]
		}
		if inv.Kustomize == "" && len(inv.Files) == 0 {
			err = fmt.Errorf("%s without -k or -f", verb)
		}
	case "config", "version", "cluster-info":
	default:
		err = fmt.Errorf("kubectl %s is not a command this test understands: teach it", verb)
	}
	return inv, err
}

// refs reads "kind/name ..." or "kind[,kind] [name ...]".
func refs(pos []string) ([]ref, error) {
	var rs []ref
	if len(pos) == 0 {
		return nil, nil
	}
	if strings.Contains(pos[0], "/") {
		for _, p := range pos {
			k, n, ok := strings.Cut(p, "/")
			if !ok || kinds[k] == "" {
				return nil, fmt.Errorf("%q is not kind/name of a known kind", p)
			}
			rs = append(rs, ref{kinds[k], n})
		}
		return rs, nil
	}
	for _, k := range strings.Split(pos[0], ",") {
		if kinds[k] == "" {
			return nil, fmt.Errorf("%q is not a kind this test knows", k)
		}
		if len(pos) == 1 {
			rs = append(rs, ref{Kind: kinds[k]})
		}
		for _, n := range pos[1:] {
			rs = append(rs, ref{kinds[k], n})
		}
	}
	return rs, nil
}

// needsNamespace: the command acts on namespaced objects and nothing else names their
// namespace (a kustomization does, and so does an object piped to apply -f -).
func (inv invocation) needsNamespace() bool {
	switch {
	case inv.Verb == "config" || inv.Verb == "version" || inv.Verb == "cluster-info" || inv.Verb == "kustomize":
		return false
	case inv.Kustomize != "":
		return false
	case slices.Equal(inv.Files, []string{"-"}) && inv.Verb == "apply":
		return false // the piped object carries its namespace
	}
	return true
}

// kustomizationDir returns -k's directory relative to deploy/kubernetes, or "".
func (inv invocation) kustomizationDir() string {
	d := path.Clean(inv.Kustomize)
	rel, ok := strings.CutPrefix(d, "deploy/kubernetes/")
	if !ok {
		return ""
	}
	return rel
}
