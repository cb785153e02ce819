package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/s3test"
	"github.com/etcdsafe/etcdsafe/keyindex"
	"github.com/etcdsafe/etcdsafe/store"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

// TestRunOutputsS3: one run writes the same archive to a directory and a
// bucket with object lock; the bucket's copy is locked until created +
// the policy's horizon, carries the metadata known before the archive,
// its sidecar equals the directory's, and List shows the lock. A prune
// that drops a locked archive keeps it and says why.
func TestRunOutputsS3(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "fleet", true)
	c := srv.StoreClient(t, "")
	dir := t.TempDir()
	id := identity(t)
	bkt := c.Bucket("fleet", "prod").Sub("c")
	o := fileOptions(dir, id)
	o.Outputs = append(o.Outputs, Output{Target: bkt})
	// The server checks retain-until dates against its own clock: the
	// runs are dated from now, the first one unlocked.
	now := time.Now().UTC().Truncate(time.Second)
	times := []time.Time{now.Add(-96 * time.Hour), now.Add(-72 * time.Hour), now}
	var res *Result
	for i, tm := range times {
		o.Now = func() time.Time { return tm }
		if i > 0 {
			o.Keep = archive.RetentionPolicy{Daily: 5}
			o.ObjectLock = &ObjectLock{Mode: store.Governance}
		}
		var err error
		if res, err = Run(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	if len(res.Outputs) != 2 || res.Outputs[0].Locked || !res.Outputs[1].Locked || res.Outputs[1].Err != nil {
		t.Fatalf("outputs: %+v", res.Outputs)
	}
	name := res.Archive
	st, err := bkt.Stat(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if st.Retention == nil || st.Retention.Mode != store.Governance || !st.Retention.Until.Equal(now.Add(5*24*time.Hour)) {
		t.Fatalf("retention = %+v", st.Retention)
	}
	local, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := bkt.Get(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(remote) != string(local) {
		t.Fatalf("bucket copy differs from the directory's (%d vs %d bytes, %v)", len(remote), len(local), err)
	}
	r, err := c.Open(t.Context(), bkt.Where(name))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if m := r.Meta(); m["etcdsafe-host"] != "h" || m["etcdsafe-cluster"] != "c" || m["etcdsafe-revision"] != fmt.Sprint(res.Sidecar.Revision) || len(m["etcdsafe-snapshot-sha256"]) != 64 {
		t.Errorf("metadata = %v", m)
	}
	entries, err := List(t.Context(), bkt)
	if err != nil || len(entries) != 3 {
		t.Fatalf("List: %d entries, %v", len(entries), err)
	}
	if entries[0].Retention == nil || entries[0].Sidecar == nil || entries[0].Sidecar.ArchiveSHA256 != res.Sidecar.ArchiveSHA256 || !entries[0].Index {
		t.Errorf("newest entry: %+v", entries[0])
	}
	// the key index beside the archive, locked as it is, and the same
	// bytes as the directory's (one index for every output)
	ist, err := bkt.Stat(t.Context(), name+keyindex.Suffix)
	if err != nil || ist.Retention == nil || !ist.Retention.Until.Equal(st.Retention.Until) || !res.Outputs[1].Index {
		t.Fatalf("index in the bucket: %+v, %v", ist, err)
	}
	lidx, err := os.ReadFile(filepath.Join(dir, name+keyindex.Suffix))
	if err != nil {
		t.Fatal(err)
	}
	rc, err = bkt.Get(t.Context(), name+keyindex.Suffix)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := keyindex.Read(t.Context(), rc, keyindex.ReadOptions{Identities: []age.Identity{id}})
	rc.Close()
	if err != nil || int64(len(lidx)) != ist.Size {
		t.Fatalf("index in the bucket: %v (%d bytes, the directory's %d)", err, ist.Size, len(lidx))
	}
	if err := ix.CheckArchive(int64(len(local)), res.Sidecar.ArchiveSHA256, r.Meta()["etcdsafe-snapshot-sha256"]); err != nil {
		t.Fatal(err)
	}
	// Last=1 drops the two older ones: the unlocked one goes, the locked
	// one is kept and reported.
	pr, err := Prune(t.Context(), bkt, PruneOptions{Policy: archive.RetentionPolicy{Last: 1}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("prune failed on a locked archive: %v", err)
	}
	if len(pr.Locked) != 1 || !pr.Locked[0].Until.Equal(times[1].Add(5*24*time.Hour)) || len(pr.Removed) != 1 || !strings.Contains(pr.Removed[0], times[0].Format("20060102T150405Z")) {
		t.Fatalf("prune: removed %v, locked %+v", pr.Removed, pr.Locked)
	}
	// the removed archive's index and sidecar went with it
	for _, suffix := range []string{"", keyindex.Suffix, archive.SidecarSuffix} {
		if _, err := bkt.Stat(t.Context(), pr.Removed[0]+suffix); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after prune, %s%s: %v", pr.Removed[0], suffix, err)
		}
	}
}

// TestRunOutputFails: the bucket is gone when the upload starts: the
// directory still gets the archive, the run reports the failed output in
// an OutputsError, and nothing is published in the bucket.
func TestRunOutputFails(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "fleet", false)
	c := srv.StoreClient(t, "")
	dir := t.TempDir()
	o := fileOptions(dir, identity(t))
	bkt := c.Bucket("fleet", "x")
	o.Outputs = append(o.Outputs, Output{Target: dead{bkt}})
	res, err := Run(t.Context(), o)
	var oe *OutputsError
	if !errors.As(err, &oe) || len(oe.Failed) != 1 || res == nil || res.Archive == "" {
		t.Fatalf("Run: %v, %+v", err, res)
	}
	if got := names(t, dir); len(got) != 3 {
		t.Fatalf("directory holds %v", got)
	}
	out, err := srv.Client(t).ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("fleet")})
	if err != nil || len(out.Contents) != 0 {
		t.Fatalf("bucket holds %d objects (%v)", len(out.Contents), err)
	}
	ups, err := srv.Client(t).ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String("fleet")})
	if err != nil || len(ups.Uploads) != 0 {
		t.Fatalf("%d uploads left (%v)", len(ups.Uploads), err)
	}
	// object lock with no output able to keep it: refused before the snapshot
	o = fileOptions(t.TempDir(), identity(t))
	o.ObjectLock = &ObjectLock{Mode: store.Compliance, For: time.Hour}
	var opt *OptionsError
	if _, err := Run(t.Context(), o); !errors.As(err, &opt) {
		t.Fatalf("object lock on a directory only: %v", err)
	}
	// a bucket without object lock: refused before the snapshot
	o.Outputs = []Output{{Target: bkt}}
	if _, err := Run(t.Context(), o); !errors.Is(err, store.ErrNoRetention) {
		t.Fatalf("object lock on a plain bucket: %v", err)
	}
}

// dead is a target whose uploads fail on the first write.
type dead struct{ *s3store.Bucket }

func (d dead) Put(ctx context.Context, name string, o store.PutOptions) (store.Upload, error) {
	up, err := d.Bucket.Put(ctx, name, o)
	return failing{up}, err
}

type failing struct{ store.Upload }

func (failing) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestLockDuration(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	for _, tc := range []struct {
		p    archive.RetentionPolicy
		want time.Duration
		ok   bool
	}{
		{archive.RetentionPolicy{Last: 5}, 0, false},
		{archive.RetentionPolicy{Daily: 7}, 7 * day, true},
		{archive.RetentionPolicy{Daily: 7, Weekly: 4}, 28 * day, true},
		{archive.RetentionPolicy{Daily: 40, Weekly: 4, Monthly: 1}, 40 * day, true},
	} {
		if d, ok := LockDuration(tc.p); d != tc.want || ok != tc.ok {
			t.Errorf("%v: %v %v", tc.p, d, ok)
		}
	}
}
