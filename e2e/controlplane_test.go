package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etcdsafe/etcdsafe/e2e/harness"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// bump is etcdsafe restore's default --bump-revision.
const bump = 1_000_000_000

// TestControlPlane runs the scenarios of issue 5 in order on one real
// control plane; each needs the one before. The nightly backup also goes to
// a bucket with object lock on a local S3 server, and the wiped master
// restores from there (issue 12).
func TestControlPlane(t *testing.T) {
	bin, es := bins(t)
	s3 := startS3(t, "e2e-backups")
	s3.setenv(t) // the etcdsafe commands find the endpoint and credentials as the AWS SDK does
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root := t.TempDir()
	master := filepath.Join(root, "master")
	if err := os.MkdirAll(master, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := harness.Layout(master, bin)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	t.Logf("control plane ready in %.1fs", time.Since(start).Seconds())
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	w, err := harness.ApplyWorkload(ctx, cfg, harness.WorkloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("workload: %d writes in %.1fs, deleted %s", w.Writes, time.Since(start).Seconds(), w.Deleted)

	key := filepath.Join(root, "backup.key")
	recipient := strings.TrimSpace(mustCLI(t, es, "keygen", "-o", key))
	var archive, remote string // the backup in the local directory and in the bucket
	var rev int64
	var captured []harness.Listing

	if !t.Run("1_backup_over_tls_and_verify", func(t *testing.T) {
		out := filepath.Join(root, "backups")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		bout := mustCLI(t, es, "backup", "--endpoints", c.EtcdURL,
			"--cacert", c.PKI("etcd/ca.crt"), "--cert", c.PKI("etcd/healthcheck-client.crt"), "--key", c.PKI("etcd/healthcheck-client.key"),
			"--kube-dir", c.KubeDir, "-r", recipient, "--out", out, "--cluster", "e2e",
			"--out", "s3://e2e-backups/fleet/", "--object-lock", "governance", "--lock-for", "1d")
		took := time.Since(start)
		archives, _ := filepath.Glob(filepath.Join(out, "*.tar.zst.age"))
		if len(archives) != 1 {
			t.Fatalf("want one archive in %s, got %v; backup printed:\n%s", out, archives, bout)
		}
		archive = archives[0]
		remote = "s3://e2e-backups/fleet/e2e/" + filepath.Base(archive)
		if !strings.Contains(bout, remote+"\n") {
			t.Fatalf("backup did not print %s:\n%s", remote, bout)
		}
		// the fleet listing shows it, locked
		lout := mustCLI(t, es, "list", "s3://e2e-backups/fleet/")
		if !strings.Contains(lout, "e2e/"+filepath.Base(archive)) || !strings.Contains(lout, "governance until") {
			t.Fatalf("list s3://e2e-backups/fleet/ does not show %s locked:\n%s", remote, lout)
		}
		fi, err := os.Stat(archive)
		if err != nil {
			t.Fatal(err)
		}
		vout := mustCLI(t, es, "verify", archive, "-i", key, "-o", "json")
		var st map[string]any
		if err := json.Unmarshal([]byte(mustCLI(t, es, "status", archive, "-i", key, "-o", "json")), &st); err != nil {
			t.Fatalf("status json: %v", err)
		}
		rf, ok := st["revision"].(float64)
		if !ok || rf < float64(w.Writes) {
			t.Fatalf("status revision %v below the workload's %d writes", st["revision"], w.Writes)
		}
		rev = int64(rf)
		if _, _, code := etcdsafe(t, es, "verify", archive, "-i", filepath.Join(root, "missing.key")); code == 0 {
			t.Fatal("verify with a missing key exited 0")
		}
		t.Logf("backup: %d bytes at revision %d in %.2fs; verify: %.300s", fi.Size(), rev, took.Seconds(), vout)
		fmt.Printf("e2e backup: archive %d bytes, revision %d, %.2fs\n", fi.Size(), rev, took.Seconds())
	}) {
		t.FailNow()
	}

	if !t.Run("2_decode_parity", func(t *testing.T) {
		var err error
		captured, err = harness.CaptureAPI(ctx, cfg, strconv.FormatInt(rev, 10))
		if err != nil {
			t.Fatal(err)
		}
		total, equal := 0, 0
		for _, l := range captured {
			if reason, ok := notInEtcd[l.Name]; ok {
				t.Logf("%s: %d objects not compared: %s", l.Name, len(l.Items), reason)
				continue
			}
			if l.Err != nil {
				t.Errorf("%s: the API did not list it at revision %d: %v", l.Name, rev, l.Err)
				continue
			}
			if len(l.Items) == 0 {
				continue
			}
			stdout := mustCLI(t, es, "get", archive, l.Name, "-A", "--raw", "-o", "json", "-i", key)
			var got struct{ Items []map[string]any }
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("%s: output is not a JSON List: %v\n%.300s", l.Name, err, stdout)
			}
			byID := map[string]map[string]any{}
			for _, it := range got.Items {
				byID[objID(it)] = it
			}
			if len(got.Items) != len(l.Items) {
				t.Errorf("%s: etcdsafe printed %d objects, the API listed %d", l.Name, len(got.Items), len(l.Items))
			}
			for _, want := range l.Items {
				total++
				g, ok := byID[objID(want)]
				if !ok {
					t.Errorf("%s %s: missing from etcdsafe's output", l.Name, objID(want))
					continue
				}
				dropManagedFields(want)
				dropManagedFields(g)
				if diffs := jsonDiff("", want, g); len(diffs) > 0 {
					t.Errorf("%s %s differs from the API:\n  %s", l.Name, objID(want), strings.Join(diffs, "\n  "))
					continue
				}
				equal++
			}
		}
		var counts []string
		for _, l := range captured {
			counts = append(counts, fmt.Sprintf("%s=%d", l.Name, len(l.Items)))
		}
		t.Logf("listed at revision %d: %s", rev, strings.Join(counts, " "))
		if total < 250 {
			t.Errorf("only %d objects compared", total)
		}
		t.Logf("parity %d/%d", equal, total)
		fmt.Printf("e2e parity %d/%d\n", equal, total)
		// the deleted object is history, not state
		if out, _, code := etcdsafe(t, es, "get", archive, "configmaps", "tmp-debug", "-n", "payments", "-i", key); code == 0 {
			t.Errorf("deleted ConfigMap %s still served: %.200s", w.Deleted, out)
		}
		if out := mustCLI(t, es, "history", archive, "configmaps/tmp-debug", "-n", "payments", "-i", key); !strings.Contains(out, "tmp-debug") {
			t.Errorf("history does not show the deleted ConfigMap %s:\n%s", w.Deleted, out)
		}
	}) {
		t.FailNow()
	}

	t.Run("3_create_ready_into_a_second_api_server", func(t *testing.T) {
		createReady(ctx, t, bin, es, archive, key, root, c)
	})

	t.Run("4_wiped_master_restored_from_the_bucket", func(t *testing.T) {
		// the master's disk is gone with its local backups: only the bucket is left
		if err := os.RemoveAll(filepath.Dir(archive)); err != nil {
			t.Fatal(err)
		}
		wipedMaster(ctx, t, es, remote, key, rev, c, captured)
	})
}

// served returns every object of the workload, keyed resource + id, from
// listings: the namespaces the workload wrote and the cluster-scoped kinds
// kube-apiserver does not manage itself.
func workloadObjects(ls []harness.Listing, namespaces []string) map[string]map[string]any {
	clusterScoped := map[string]bool{"nodes": true, "persistentvolumes": true, "customresourcedefinitions.apiextensions.k8s.io": true,
		"clusterwidgets.e2e.etcdsafe.io": true, "validatingwebhookconfigurations.admissionregistration.k8s.io": true,
		"mutatingwebhookconfigurations.admissionregistration.k8s.io": true, "priorityclasses.scheduling.k8s.io": true,
		"ingressclasses.networking.k8s.io": true, "namespaces": true}
	inNS := map[string]bool{}
	for _, n := range namespaces {
		inNS[n] = true
	}
	out := map[string]map[string]any{}
	for _, l := range ls {
		for _, it := range l.Items {
			md, _ := it["metadata"].(map[string]any)
			ns, _ := md["namespace"].(string)
			if inNS[ns] || (ns == "" && clusterScoped[l.Name]) {
				dropManagedFields(it)
				out[l.Name+" "+objID(it)] = it
			}
		}
	}
	return out
}

// wipedMaster stops the control plane, deletes its data dir and kube dir,
// restores both from source (a file or an s3:// URL) and checks that the
// cluster serves the workload and accepts writes again.
func wipedMaster(ctx context.Context, t *testing.T, es, source, key string, rev int64, c *harness.Cluster, before []harness.Listing) {
	want := workloadObjects(before, []string{"payments", "shop", "monitoring"})
	if len(want) < 100 {
		t.Fatalf("only %d workload objects captured", len(want))
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{c.DataDir, c.KubeDir} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	out := mustCLI(t, es, "restore", source, "-i", key, "--data-dir", c.DataDir, "--kube-dir", c.KubeDir)
	t.Logf("restore from %s in %.2fs:\n%s", source, time.Since(start).Seconds(), out)
	for _, f := range []string{c.EtcdManifest(), c.APIServerManifest(), c.AdminConf(), c.EncConfig, c.PKI("etcd/ca.key"), c.PKI("sa.key")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("restored kube dir lacks %s: %v", f, err)
		}
	}
	start = time.Now()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restored control plane ready in %.1fs", time.Since(start).Seconds())
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	after, err := harness.CaptureAPI(ctx, cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	got := workloadObjects(after, []string{"payments", "shop", "monitoring"})
	same := 0
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("%s: not served after the restore", id)
			continue
		}
		if diffs := jsonDiff("", w, g); len(diffs) > 0 {
			t.Errorf("%s changed across the restore:\n  %s", id, strings.Join(diffs, "\n  "))
			continue
		}
		same++
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("%s: served after the restore but not before", id)
		}
	}
	t.Logf("restore: %d/%d workload objects served unchanged", same, len(want))
	fmt.Printf("e2e restore from %s: %d/%d objects served unchanged\n", source, same, len(want))

	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A watch from a revision clients saw before the restore must be told to
	// relist (410 Gone), not silently resume.
	wi, err := cs.CoreV1().ConfigMaps("payments").Watch(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatInt(rev, 10)})
	gone := false
	switch {
	case err != nil:
		gone = apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
		if !gone {
			t.Errorf("watch from revision %d: %v, want 410 Gone", rev, err)
		}
	default:
		select {
		case ev := <-wi.ResultChan():
			if ev.Type == watch.Error {
				st := apierrors.FromObject(ev.Object)
				gone = apierrors.IsResourceExpired(st) || apierrors.IsGone(st)
			}
			if !gone {
				t.Errorf("watch from revision %d: first event %s %T, want a 410 Gone error", rev, ev.Type, ev.Object)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("watch from revision %d: no event in 30s, want 410 Gone", rev)
		}
		wi.Stop()
	}
	cm, err := cs.CoreV1().ConfigMaps("payments").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-restore"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newRV, err := strconv.ParseInt(cm.ResourceVersion, 10, 64)
	if err != nil || newRV <= rev+bump {
		t.Errorf("new write got resourceVersion %q, want above %d (revision %d + bump %d)", cm.ResourceVersion, rev+bump, rev, bump)
	}
	t.Logf("watch from %d gone=%v; new write at revision %d", rev, gone, newRV)
	fmt.Printf("e2e wiped master: watch from %d -> 410 Gone=%v, new write at %d\n", rev, gone, newRV)
}
