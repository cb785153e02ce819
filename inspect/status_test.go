package inspect

import (
	"context"
	"crypto/sha256"
	"os"
	"testing"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

const realSnapshot = "../testdata/real-k8s1.37-etcd3.7/snapshot.db"

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestStatusAgreesWithEtcdutl compares our figures with etcdutl's own
// snapshot status on a snapshot written by a real kube-apiserver.
func TestStatusAgreesWithEtcdutl(t *testing.T) {
	t.Parallel()
	before := fileHash(t, realSnapshot)
	want, err := snapshot.NewV3(zap.NewNop()).Status(realSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(realSnapshot, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Status(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got.Hash != want.Hash || got.Revision != want.Revision || got.LiveKeys != want.TotalKey || got.DBSize != want.TotalSize || got.StorageVersion != want.Version {
		t.Errorf("status differs from etcdutl:\n got hash=%x rev=%d keys=%d size=%d version=%q\nwant hash=%x rev=%d keys=%d size=%d version=%q",
			got.Hash, got.Revision, got.LiveKeys, got.DBSize, got.StorageVersion, want.Hash, want.Revision, want.TotalKey, want.TotalSize, want.Version)
	}
	if len(got.CheckErrors) != 0 || len(got.Problems) != 0 {
		t.Errorf("unexpected problems: %v %v", got.CheckErrors, got.Problems)
	}
	if len(got.Members) != 1 || got.Members[0].IDString() != "5318d7aa4eda7129" {
		t.Errorf("members = %+v", got.Members)
	}
	if got.Tombstones != 1 || got.Revisions != 230 {
		t.Errorf("tombstones=%d revisions=%d, want 1 and 230", got.Tombstones, got.Revisions)
	}
	if fileHash(t, realSnapshot) != before {
		t.Fatal("snapshot file changed")
	}
	t.Logf("%+v", got)
}
