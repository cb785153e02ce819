package harness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// Binaries names the etcd and kube-apiserver executables to run.
type Binaries struct {
	Etcd      string
	APIServer string
}

// Cluster is one control-plane node laid out under Root: Root/etc/kubernetes
// is the kube dir, Root/var/lib/etcd the etcd data dir.
type Cluster struct {
	Root      string
	KubeDir   string
	DataDir   string
	Bin       Binaries
	EtcdURL   string // https client URL of etcd
	APIURL    string // https URL of kube-apiserver
	EncConfig string // the EncryptionConfiguration kube-apiserver reads

	procs []*proc
}

// proc is a started binary; exited closes when it ends.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
	err    error
}

// EtcdManifest is the path of etcd's static pod manifest.
func (c *Cluster) EtcdManifest() string {
	return filepath.Join(c.KubeDir, "manifests", "etcd.yaml")
}

// APIServerManifest is the path of kube-apiserver's static pod manifest.
func (c *Cluster) APIServerManifest() string {
	return filepath.Join(c.KubeDir, "manifests", "kube-apiserver.yaml")
}

// AdminConf is the path of the admin kubeconfig (a client cert in system:masters).
func (c *Cluster) AdminConf() string { return filepath.Join(c.KubeDir, "admin.conf") }

// PKI returns the path of a file under the kube dir's pki directory.
func (c *Cluster) PKI(name string) string { return filepath.Join(c.KubeDir, "pki", name) }

// Layout writes a kubeadm-shaped root under root (which must exist) and
// returns the cluster, not started.
func Layout(root string, bin Binaries) (*Cluster, error) {
	c := &Cluster{
		Root:    root,
		KubeDir: filepath.Join(root, "etc", "kubernetes"),
		DataDir: filepath.Join(root, "var", "lib", "etcd"),
		Bin:     bin,
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	clientPort, peerPort, metricsPort, apiPort := ports[0], ports[1], ports[2], ports[3]
	c.EtcdURL = fmt.Sprintf("https://127.0.0.1:%d", clientPort)
	c.APIURL = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	pki := filepath.Join(c.KubeDir, "pki")
	etcdPKI := filepath.Join(pki, "etcd")
	for _, d := range []string{etcdPKI, filepath.Join(c.KubeDir, "manifests"), filepath.Join(root, "logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	ca, err := newCA(pki, "ca", "kubernetes")
	if err != nil {
		return nil, err
	}
	etcdCA, err := newCA(etcdPKI, "ca", "etcd-ca")
	if err != nil {
		return nil, err
	}
	local := []string{"127.0.0.1", "::1"}
	issues := []struct {
		ca   *certAuthority
		dir  string
		name string
		o    leafOptions
	}{
		{etcdCA, etcdPKI, "server", leafOptions{cn: "e2e-master", server: true, client: true, dns: []string{"localhost", "e2e-master"}, ips: local}},
		{etcdCA, etcdPKI, "peer", leafOptions{cn: "e2e-master", server: true, client: true, dns: []string{"localhost", "e2e-master"}, ips: local}},
		{etcdCA, etcdPKI, "healthcheck-client", leafOptions{cn: "kube-etcd-healthcheck-client", client: true}},
		{etcdCA, pki, "apiserver-etcd-client", leafOptions{cn: "kube-apiserver-etcd-client", client: true}},
		{ca, pki, "apiserver", leafOptions{cn: "kube-apiserver", server: true,
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			ips: []string{"127.0.0.1", "10.96.0.1"}}},
		{ca, pki, "admin", leafOptions{cn: "kubernetes-admin", orgs: []string{"system:masters"}, client: true}},
	}
	for _, is := range issues {
		if err := is.ca.issue(is.dir, is.name, is.o); err != nil {
			return nil, err
		}
	}
	if err := writeServiceAccountKeys(pki); err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	c.EncConfig = filepath.Join(c.KubeDir, "encryption-config.yaml")
	enc := fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: %s
      - identity: {}
`, base64.StdEncoding.EncodeToString(secret))
	if err := os.WriteFile(c.EncConfig, []byte(enc), 0o600); err != nil {
		return nil, fmt.Errorf("write encryption config: %w", err)
	}

	peerURL := fmt.Sprintf("https://127.0.0.1:%d", peerPort)
	etcdCmd := []string{"etcd",
		"--advertise-client-urls=" + c.EtcdURL,
		"--cert-file=" + filepath.Join(etcdPKI, "server.crt"),
		"--client-cert-auth=true",
		"--data-dir=" + c.DataDir,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=e2e-master=" + peerURL,
		"--key-file=" + filepath.Join(etcdPKI, "server.key"),
		"--listen-client-urls=" + c.EtcdURL,
		fmt.Sprintf("--listen-metrics-urls=http://127.0.0.1:%d", metricsPort),
		"--listen-peer-urls=" + peerURL,
		"--name=e2e-master",
		"--peer-cert-file=" + filepath.Join(etcdPKI, "peer.crt"),
		"--peer-client-cert-auth=true",
		"--peer-key-file=" + filepath.Join(etcdPKI, "peer.key"),
		"--peer-trusted-ca-file=" + filepath.Join(etcdPKI, "ca.crt"),
		"--snapshot-count=10000",
		"--trusted-ca-file=" + filepath.Join(etcdPKI, "ca.crt"),
	}
	apiCmd := []string{"kube-apiserver",
		"--advertise-address=127.0.0.1",
		"--allow-privileged=true",
		"--authorization-mode=Node,RBAC",
		"--bind-address=127.0.0.1",
		"--client-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--enable-admission-plugins=NodeRestriction",
		"--enable-bootstrap-token-auth=true",
		"--encryption-provider-config=" + c.EncConfig,
		// kube-apiserver 1.37 refuses a loopback advertise address with the
		// lease reconciler of the "kubernetes" Service's endpoints
		"--endpoint-reconciler-type=none",
		"--etcd-cafile=" + filepath.Join(etcdPKI, "ca.crt"),
		"--etcd-certfile=" + filepath.Join(pki, "apiserver-etcd-client.crt"),
		"--etcd-keyfile=" + filepath.Join(pki, "apiserver-etcd-client.key"),
		"--etcd-servers=" + c.EtcdURL,
		fmt.Sprintf("--secure-port=%d", apiPort),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/12",
		"--tls-cert-file=" + filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "apiserver.key"),
	}
	if err := writeManifest(c.EtcdManifest(), "etcd", etcdCmd, []string{etcdPKI, filepath.Dir(c.DataDir)}); err != nil {
		return nil, err
	}
	if err := writeManifest(c.APIServerManifest(), "kube-apiserver", apiCmd, []string{pki, c.KubeDir}); err != nil {
		return nil, err
	}
	return c, writeAdminConf(c)
}

// writeManifest writes a static pod manifest shaped like kubeadm's.
func writeManifest(path, name string, command, hostPaths []string) error {
	pod := corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: "kube-system",
			Labels:    map[string]string{"component": name, "tier": "control-plane"},
		},
		Spec: corev1.PodSpec{
			HostNetwork:       true,
			PriorityClassName: "system-node-critical",
			Containers: []corev1.Container{{
				Name:            name,
				Image:           "registry.k8s.io/" + name,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         command,
			}},
		},
	}
	for i, p := range hostPaths {
		vname := fmt.Sprintf("vol-%d", i)
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: vname,
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: p}}})
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts,
			corev1.VolumeMount{Name: vname, MountPath: p})
	}
	b, err := yaml.Marshal(pod)
	if err != nil {
		return fmt.Errorf("marshal %s manifest: %w", name, err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s manifest: %w", name, err)
	}
	return nil
}

func writeAdminConf(c *Cluster) error {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(c.PKI(name))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		return b, nil
	}
	caPEM, err := read("ca.crt")
	if err != nil {
		return err
	}
	certPEM, err := read("admin.crt")
	if err != nil {
		return err
	}
	keyPEM, err := read("admin.key")
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: c.APIURL, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["kubernetes-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["kubernetes-admin@e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "kubernetes-admin"}
	cfg.CurrentContext = "kubernetes-admin@e2e"
	if err := clientcmd.WriteToFile(*cfg, c.AdminConf()); err != nil {
		return fmt.Errorf("write admin.conf: %w", err)
	}
	return nil
}

// RESTConfig reads admin.conf.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminConf())
	if err != nil {
		return nil, fmt.Errorf("load admin.conf: %w", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	return cfg, nil
}

// manifestCommand reads the command line of a static pod manifest.
func manifestCommand(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(b, &pod); err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", path, err)
	}
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.Containers[0].Command) < 2 {
		return nil, fmt.Errorf("manifest %s: want one container with a command", path)
	}
	return pod.Spec.Containers[0].Command, nil
}

// ManifestFlag returns the value of --name=value in a manifest's command.
func ManifestFlag(path, name string) (string, error) {
	cmd, err := manifestCommand(path)
	if err != nil {
		return "", err
	}
	for _, a := range cmd[1:] {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("manifest %s has no --%s", path, name)
}

// Start runs etcd then kube-apiserver with the flags their manifests list
// and waits until kube-apiserver's /readyz answers ok.
func (c *Cluster) Start(ctx context.Context) error {
	if err := c.startFromManifest(c.EtcdManifest(), c.Bin.Etcd, "etcd"); err != nil {
		return err
	}
	if err := c.startFromManifest(c.APIServerManifest(), c.Bin.APIServer, "kube-apiserver"); err != nil {
		return err
	}
	return c.waitReady(ctx, 4*time.Minute)
}

func (c *Cluster) startFromManifest(manifest, bin, name string) error {
	args, err := manifestCommand(manifest)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(c.Root, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logf, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	c.procs = append(c.procs, p)
	return nil
}

func (c *Cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	tr, err := rest.TransportFor(cfg)
	if err != nil {
		return fmt.Errorf("transport: %w", err)
	}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		for _, p := range c.procs {
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited (%w): %s", p.name, p.err, tail(p.log.Name()))
			default:
			}
		}
		resp, err := hc.Get(c.APIURL + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver not ready after %s: %s; see %s", timeout, last, filepath.Join(c.Root, "logs"))
}

// Stop terminates kube-apiserver then etcd (SIGTERM, then SIGKILL after 20s)
// and waits for them.
func (c *Cluster) Stop() error {
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			errs = append(errs, fmt.Errorf("%s ignored SIGTERM", p.name))
		}
		p.log.Close()
	}
	c.procs = nil
	return errors.Join(errs...)
}

// tail returns the last lines of a log that say why a process failed.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var keep []string
	for _, l := range lines {
		if strings.HasPrefix(l, "E") || strings.Contains(l, `"level":"fatal"`) || strings.Contains(l, `"level":"error"`) {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		keep = lines
	}
	if len(keep) > 5 {
		keep = keep[len(keep)-5:]
	}
	return strings.Join(keep, "\n")
}

// freePorts returns n distinct free loopback TCP ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
