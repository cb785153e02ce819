package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestCronJob checks the CronJob's shape and confinement here, without a
// cluster (the e2e suite has a real kube-apiserver accept it): strict
// decoding into the k8s.io/api types (a misspelt field fails), then what
// issue 14 asks of it.
func TestCronJob(t *testing.T) {
	b, err := os.ReadFile("kubernetes/cronjob.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cj *batchv1.CronJob
	kinds := map[string]int{}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		kinds[meta.Kind]++
		var obj any
		switch meta.Kind {
		case "CronJob":
			cj = &batchv1.CronJob{}
			obj = cj
		case "Namespace":
			obj = &corev1.Namespace{}
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		default:
			t.Fatalf("unexpected kind %q in cronjob.yaml", meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: %v", meta.Kind, err)
		}
	}
	if cj == nil || kinds["CronJob"] != 1 {
		t.Fatalf("cronjob.yaml holds %v, want one CronJob", kinds)
	}
	spec := cj.Spec.JobTemplate.Spec.Template.Spec
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		t.Fatalf("want one container, got %d (+%d init)", len(spec.Containers), len(spec.InitContainers))
	}
	c := spec.Containers[0]
	sc, psc := c.SecurityContext, spec.SecurityContext
	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("CronJob: %s", what)
		}
	}
	check("concurrencyPolicy Forbid", cj.Spec.ConcurrencyPolicy == batchv1.ForbidConcurrent)
	check("history limits set", cj.Spec.SuccessfulJobsHistoryLimit != nil && cj.Spec.FailedJobsHistoryLimit != nil)
	check("hostNetwork (etcd on the node's loopback)", spec.HostNetwork)
	check("no host PID or IPC", !spec.HostPID && !spec.HostIPC)
	_, cp := spec.NodeSelector["node-role.kubernetes.io/control-plane"]
	check("nodeSelector node-role.kubernetes.io/control-plane", cp)
	check("toleration of the control-plane taint", slices.ContainsFunc(spec.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Key == "node-role.kubernetes.io/control-plane" && tl.Effect == corev1.TaintEffectNoSchedule && tl.Operator == corev1.TolerationOpExists
	}))
	check("no service account token", spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken)
	check("runAsUser 0 (the client key is root's, 0600), nowhere else", psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 && (sc == nil || sc.RunAsUser == nil))
	check("seccomp RuntimeDefault", psc != nil && psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault)
	check("readOnlyRootFilesystem", sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem)
	check("allowPrivilegeEscalation false", sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation)
	check("not privileged", sc != nil && (sc.Privileged == nil || !*sc.Privileged))
	check("capabilities: drop ALL, add none", sc != nil && sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0)
	check("a memory limit", !c.Resources.Limits.Memory().IsZero())

	// host paths: the kube dir and the etcd PKI read-only; only the backup
	// and metrics dirs writable
	hostPath := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPath[v.Name] = v.HostPath.Path
		}
	}
	writable := map[string]bool{}
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		hp, ok := hostPath[m.Name]
		if !ok {
			if !m.ReadOnly {
				writable[m.MountPath] = true
			}
			continue
		}
		mounted[hp] = true
		check("host path "+hp+" at the same path", m.MountPath == hp)
		if !m.ReadOnly {
			writable[m.MountPath] = true
			check("host path "+hp+" writable: only the backup and metrics dirs may be", hp == "/var/backups/etcdsafe" || hp == "/var/lib/prometheus/node-exporter")
		}
	}
	for _, p := range []string{"/etc/kubernetes/pki/etcd", "/etc/kubernetes"} {
		check("host path "+p+" mounted read-only", mounted[p] && !writable[p])
	}
	// every path the command writes is a writable mount, every file it
	// reads is under a mount
	for _, a := range c.Args {
		name, val, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(val, "/") {
			continue
		}
		switch name {
		case "--out", "--tmp-dir":
			check(name+" "+val+" is a writable mount", writable[val])
		case "--metrics-file":
			check(name+" "+val+" is in a writable mount", writable[filepath.Dir(val)])
		default:
			check(name+" "+val+" is under a mount", slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
				return strings.HasPrefix(val, m.MountPath+"/") || val == m.MountPath
			}))
		}
	}
}
