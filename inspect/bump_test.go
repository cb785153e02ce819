package inspect

import (
	"context"
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// TestBumpedRestore: a data dir restored with etcdutl's --bump-revision
// holds an empty marker record at the bumped revision; the walk and status
// skip it instead of reporting a malformed record, and status still agrees
// with etcdutl.
func TestBumpedRestore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath: realSnapshot, Name: "m1", OutputDataDir: dir,
		PeerURLs: []string{"http://127.0.0.1:2380"}, InitialCluster: "m1=http://127.0.0.1:2380",
		InitialClusterToken: "t", RevisionBump: 1000, MarkCompacted: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "member", "snap", "db")
	s, err := Open(dir, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entries, problems, err := s.Index(context.Background(), Query{})
	if err != nil || len(problems) != 0 {
		t.Fatalf("index: %v, problems %v", err, problems)
	}
	st, err := s.Status(context.Background(), false)
	if err != nil || len(st.Problems) != 0 {
		t.Fatalf("status: %v, problems %v", err, st.Problems)
	}
	want, err := snapshot.NewV3(zap.NewNop()).Status(db)
	if err != nil {
		t.Fatal(err)
	}
	// etcdutl unmarshals the empty marker as a key named "" and counts it:
	// one more than the keys there are.
	if st.Revision != want.Revision || st.LiveKeys != want.TotalKey-1 || st.Hash != want.Hash || len(entries) != st.LiveKeys {
		t.Fatalf("got rev %d keys %d/%d hash %x, etcdutl rev %d keys %d hash %x", st.Revision, st.LiveKeys, len(entries), st.Hash, want.Revision, want.TotalKey, want.Hash)
	}
	// --mark-compacted schedules the compaction; etcd finishes it on start
	if st.Revision != 231+1000 || st.ScheduledCompactRevision != 231+1000 {
		t.Fatalf("revision %d, scheduled compaction %d: want both 1231", st.Revision, st.ScheduledCompactRevision)
	}
}
