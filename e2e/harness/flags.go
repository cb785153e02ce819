package harness

import (
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// SetManifestFlag sets --name=value in a static pod manifest's command,
// replacing the flag if it is there, appending it if not; the cluster
// runs it from the next Start.
func SetManifestFlag(path, name, value string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(b, &pod); err != nil {
		return fmt.Errorf("parse manifest %s: %w", path, err)
	}
	if len(pod.Spec.Containers) != 1 {
		return fmt.Errorf("manifest %s: want one container", path)
	}
	cmd := pod.Spec.Containers[0].Command
	flag, found := "--"+name+"=", false
	for i, a := range cmd {
		if strings.HasPrefix(a, flag) {
			cmd[i], found = flag+value, true
		}
	}
	if !found {
		cmd = append(cmd, flag+value)
	}
	pod.Spec.Containers[0].Command = cmd
	if b, err = yaml.Marshal(pod); err != nil {
		return fmt.Errorf("marshal manifest: %w", err)
	}
	return os.WriteFile(path, b, 0o600)
}
