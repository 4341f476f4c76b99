package kubernetes_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func metav1LabelSelector(s *metav1.LabelSelector) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(s)
}

// The PodMonitor is applied beside an overlay, never in one (clusters without the
// Prometheus Operator's CRD must still apply the overlays), and scrapes the agent's
// metrics port under the job name the alert rules select.
func TestPodMonitor(t *testing.T) {
	for _, dir := range overlays {
		for _, o := range render(t, dir).Objects {
			if o.Kind == "PodMonitor" {
				t.Errorf("%s renders a PodMonitor: clusters without its CRD could not apply it", dir)
			}
		}
	}
	prod := render(t, "overlays/production")
	d, c := agentContainer(t, prod)
	pm, _ := render(t, "podmonitor").get("PodMonitor", agent).(*podMonitor)
	if pm == nil {
		t.Fatalf("podmonitor renders no PodMonitor %s", agent)
	}
	sel, err := metav1LabelSelector(&pm.Spec.Selector)
	if err != nil || len(pm.Spec.Selector.MatchLabels) == 0 || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not select the agent's pods %v", pm.Spec.Selector, d.Spec.Template.Labels)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("%d endpoints, want the metrics port", len(pm.Spec.PodMetricsEndpoints))
	}
	if ep := pm.Spec.PodMetricsEndpoints[0]; ep.Path != "/metrics" {
		t.Errorf("path %q, want /metrics", ep.Path)
	} else if _, ok := containerPort(c, ep.Port); !ok || ep.Port != "metrics" {
		t.Errorf("port %q is not the agent's metrics port", ep.Port)
	}
	// monitoring/alerts.yml selects job="discovery-agent"; the job is the value of the
	// pod label jobLabel names.
	alerts, err := os.ReadFile(filepath.Join(root, "monitoring/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`up\{job="([^"]+)"\}`).FindSubmatch(alerts)
	if m == nil {
		t.Fatal("monitoring/alerts.yml: no up{job=...} rule")
	}
	if job := d.Spec.Template.Labels[pm.Spec.JobLabel]; job != string(m[1]) {
		t.Errorf("the PodMonitor's job would be %q (label %q); the alerts select job=%q", job, pm.Spec.JobLabel, m[1])
	}
}

// The backup pod mounts the agent's claim as the agent's user, so that restored files
// belong to the agent, and meets the namespace's restricted standard.
func TestBackupPod(t *testing.T) {
	prod := render(t, "overlays/production")
	d, _ := agentContainer(t, prod)
	r := render(t, "backup")
	pods := r.podSpecs()
	if len(pods) != 1 {
		t.Fatalf("backup renders %d pods, want 1", len(pods))
	}
	for name, pod := range pods {
		securityContext(t, name, pod.Spec)
		claim := ""
		for _, v := range pod.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim.ClaimName
			}
		}
		if claim != dataClaim || prod.get("PersistentVolumeClaim", claim) == nil {
			t.Errorf("%s mounts claim %q, want %s", name, claim, dataClaim)
		}
		agentSC, sc := d.Spec.Template.Spec.SecurityContext, pod.Spec.SecurityContext
		if sc == nil || agentSC == nil || !equal(sc.RunAsUser, agentSC.RunAsUser) || !equal(sc.FSGroup, agentSC.FSGroup) {
			t.Errorf("%s does not run as the agent's user and group", name)
		}
		if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("%s restartPolicy %q: a forgotten backup pod must end, releasing the volume", name, pod.Spec.RestartPolicy)
		}
	}
}

func equal(a, b *int64) bool { return a != nil && b != nil && *a == *b }
