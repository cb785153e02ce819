package backup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/store"
)

func ExampleArchiveName() {
	at := time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC)
	fmt.Println(backup.ArchiveName("prod", "master-1", at, true))
	fmt.Println(backup.ArchiveName("", "master-1", at, false))
	// Output:
	// prod-20260601T020000Z.tar.zst.age
	// master-1-20260601T020000Z.tar.zst
}

func ExampleRun() {
	dir, _ := os.MkdirTemp("", "backups")
	defer os.RemoveAll(dir)
	id, _ := age.GenerateX25519Identity()
	res, err := backup.Run(context.Background(), backup.Options{
		DB:         filepath.Join("..", "testdata", "real-k8s1.37-etcd3.7", "snapshot.db"),
		Outputs:    []backup.Output{{Target: store.NewLocal(dir)}},
		Recipients: []age.Recipient{id.Recipient()},
		Cluster:    "prod",
		Now:        func() time.Time { return time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Archive, res.Sidecar.Revision, res.Sidecar.DBSize)
	entries, _ := backup.List(context.Background(), store.NewLocal(dir))
	fmt.Println(len(entries), entries[0].Name == res.Archive)
	// Output:
	// prod-20260601T020000Z.tar.zst.age 231 303136
	// 1 true
}

func ExampleVerify() {
	dir, _ := os.MkdirTemp("", "backups")
	defer os.RemoveAll(dir)
	id, _ := age.GenerateX25519Identity()
	res, err := backup.Run(context.Background(), backup.Options{
		DB:         filepath.Join("..", "testdata", "real-k8s1.37-etcd3.7", "snapshot.db"),
		Outputs:    []backup.Output{{Target: store.NewLocal(dir)}},
		Recipients: []age.Recipient{id.Recipient()},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Without the key: the file is the one backup wrote.
	quick, err := backup.VerifyQuick(context.Background(), res.Where)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(quick.Sidecar.Revision)
	// With it: every entry, the snapshot's trailer and bbolt's check.
	rep, err := backup.Verify(context.Background(), res.Where, backup.VerifyOptions{Identities: []age.Identity{id}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Trailer, rep.Sidecar, rep.Status.Revision, len(rep.Status.CheckErrors))
	// Output:
	// 231
	// verified matches 231 0
}
