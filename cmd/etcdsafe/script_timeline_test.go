package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"filippo.io/age"
	"github.com/rogpeppe/go-internal/testscript"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/store"
)

func init() { scriptCmds["backupnights"] = cmdBackupNights }

// cmdBackupNights: backupnights DIR writes five nightly backups of a real etcd into
// DIR, encrypted to $RECIPIENT, dated 2026-11-01..05 01:00 UTC, etcd
// compacted after each as kube-apiserver does. Secret app/db-creds
// (password hunter2-very-secret...) is created (night 0, backed up
// without key index, as an older etcdsafe did), updated by kubectl-edit
// (night 1), deleted (night 2), re-created (night 3), updated twice
// (night 4). It sets $REV1..$REV6 to the revisions of these writes and
// $NIGHT0..$NIGHT4 to the archives' names.
func cmdBackupNights(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: backupnights DIR")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o700))
	r, err := age.ParseX25519Recipient(ts.Getenv("RECIPIENT"))
	ts.Check(err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := etcdtest.StartDir(ts.MkAbs("backupnights-etcd"), etcdtest.WithUnsafeNoFsync())
	ts.Check(err)
	defer srv.Stop()
	w, err := kubestore.New(srv.Client, kubestore.Options{Seed: 13})
	ts.Check(err)
	sec := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "db-creds", Namespace: "app"},
		Data:       map[string][]byte{"password": []byte("hunter2-very-secret"), "user": []byte("app")}}
	revs := 0
	step := func(rev int64, err error) {
		ts.Check(err)
		revs++
		ts.Setenv("REV"+strconv.Itoa(revs), strconv.FormatInt(rev, 10))
	}
	base := time.Date(2026, 11, 1, 1, 0, 0, 0, time.UTC)
	night := func(i int) {
		db := ts.MkAbs(fmt.Sprintf("backupnights-etcd/night%d.db", i))
		rc, err := srv.Client.Snapshot(ctx)
		ts.Check(err)
		f, err := os.Create(db)
		ts.Check(err)
		_, err = io.Copy(f, rc)
		ts.Check(err)
		rc.Close()
		ts.Check(f.Close())
		res, err := backup.Run(ctx, backup.Options{DB: db, Outputs: []backup.Output{{Target: store.NewLocal(dir)}},
			Recipients: []age.Recipient{r}, Cluster: "prod", Host: "m0", NoIndex: i == 0,
			Now: func() time.Time { return base.Add(time.Duration(i) * 24 * time.Hour) }})
		ts.Check(err)
		ts.Setenv("NIGHT"+strconv.Itoa(i), filepath.Base(res.Where))
		rev, err := srv.Revision(ctx)
		ts.Check(err)
		_, err = srv.Client.Compact(ctx, rev, clientv3.WithCompactPhysical()) // the next night must not hold what it removes
		ts.Check(err)
	}
	step(w.Create(ctx, sec))
	night(0)
	sec.Data["password"] = []byte("hunter2-very-secret-2")
	step(w.Update(ctx, sec, "kubectl-edit"))
	night(1)
	step(w.Delete(ctx, sec))
	night(2)
	sec.Data["password"] = []byte("hunter2-very-secret-3")
	step(w.Create(ctx, sec))
	night(3)
	sec.Data["user"] = []byte("admin")
	step(w.Update(ctx, sec, "kubectl-edit"))
	sec.Data["password"] = []byte("hunter2-very-secret-4")
	step(w.Update(ctx, sec, "vault-agent"))
	night(4)
}
