package timeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/keyindex"
	"github.com/etcdsafe/etcdsafe/source"
	"github.com/etcdsafe/etcdsafe/store"
)

const secretValue = "hunter2-very-secret"

// nights is a backup dir the test wrote: a Secret created, backed up
// (without index: an older etcdsafe), changed by another manager, backed
// up, deleted, backed up, re-created, backed up, changed twice, backed up;
// etcd compacted after each backup, as kube-apiserver does.
type nights struct {
	dir   string
	id    *age.X25519Identity
	revs  []int64 // create, update, delete, re-create, update, update
	names []string
}

func writeNights(t *testing.T, extra ...store.Target) *nights {
	t.Helper()
	ctx := context.Background()
	srv := etcdtest.Start(t, etcdtest.WithUnsafeNoFsync())
	w, err := kubestore.New(srv.Client, kubestore.Options{Seed: 13})
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	n := &nights{dir: t.TempDir(), id: id}
	sec := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "db-creds", Namespace: "app"},
		Data:       map[string][]byte{"password": []byte(secretValue), "user": []byte("app")}}
	step := func(rev int64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		n.revs = append(n.revs, rev)
	}
	base := time.Date(2026, 11, 1, 1, 0, 0, 0, time.UTC)
	night := func(i int, noIndex bool) {
		t.Helper()
		db := filepath.Join(t.TempDir(), "snap.db")
		rc, err := srv.Client.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(db)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		f.Close()
		outs := []backup.Output{{Target: store.NewLocal(n.dir)}}
		for _, x := range extra {
			outs = append(outs, backup.Output{Target: x})
		}
		res, err := backup.Run(ctx, backup.Options{DB: db, Outputs: outs,
			Recipients: []age.Recipient{id.Recipient()}, Cluster: "c", Host: "h", NoIndex: noIndex,
			Now: func() time.Time { return base.Add(time.Duration(i) * 24 * time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		n.names = append(n.names, res.Archive)
		rev, err := srv.Revision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// physical: the next night's snapshot must not hold what this
		// compaction removes (etcd compacts in the background otherwise,
		// late on a loaded machine)
		if _, err := srv.Client.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
	}
	step(w.Create(ctx, sec))
	night(0, true)
	sec.Data["password"] = []byte(secretValue + "-2")
	step(w.Update(ctx, sec, "kubectl-edit"))
	night(1, false)
	step(w.Delete(ctx, sec))
	night(2, false)
	sec.Data["password"] = []byte(secretValue + "-3")
	step(w.Create(ctx, sec))
	night(3, false)
	sec.Data["user"] = []byte("admin")
	step(w.Update(ctx, sec, "kubectl-edit"))
	sec.Data["password"] = []byte(secretValue + "-4")
	step(w.Update(ctx, sec, "vault-agent"))
	night(4, false)
	return n
}

func (n *nights) options(t *testing.T) Options {
	t.Helper()
	open := func(ctx context.Context, where string) (*source.Source, error) {
		return source.Open(ctx, where, source.Options{TmpDir: t.TempDir(),
			Identities: func() ([]age.Identity, error) { return []age.Identity{n.id}, nil }})
	}
	bs, err := Discover(context.Background(), store.NewLocal(n.dir), open)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Backups: bs, Object: Object{Type: "secret", Name: "db-creds"}, Identities: []age.Identity{n.id},
		Render: decode.PresentOptions{Raw: true}}
}

// TestTimeline: every version the test wrote, with its revision, the
// backups that hold it, the bounds, the field manager, the archive to
// restore it from; the index-less backup read whole, the others by index
// except the archives needed for values; no secret value anywhere.
func TestTimeline(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd: skipped with -short")
	}
	n := writeNights(t)
	ctx := context.Background()
	o := n.options(t)
	var reads []string
	o.OnRead = func(_, _ int, b *Backup) { reads = append(reads, b.Name) }
	var warnings []string
	o.OnWarning = func(b string, err error) { warnings = append(warnings, b+": "+err.Error()) }
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Key != "/registry/secrets/app/db-creds" || res.Object.Resource != "secrets" || res.Object.Namespace != "app" {
		t.Errorf("key %q, object %+v", res.Key, res.Object)
	}
	want := []struct {
		event             string
		rev               int64
		first, last       int // nights
		manager           string
		after             int // night, -1: none
		hasObject, hasDif bool
	}{
		{Created, n.revs[0], 0, 1, "kubectl-client-side-apply", -1, true, false},
		{Updated, n.revs[1], 1, 2, "kubectl-edit", 0, true, true},
		// etcd's compaction at the deletion's revision keeps the tombstone
		{Deleted, n.revs[2], 2, 3, "", 1, false, false},
		{Recreated, n.revs[3], 3, 4, "kubectl-client-side-apply", 2, true, false},
		{Updated, n.revs[4], 4, 4, "kubectl-edit", 3, true, true},
		{Updated, n.revs[5], 4, 4, "vault-agent", 3, true, true},
	}
	if len(res.Versions) != len(want) {
		t.Fatalf("%d versions, want %d: %s", len(res.Versions), len(want), dump(res))
	}
	for i, w := range want {
		v := res.Versions[i]
		if v.Event != w.event || v.Revision != w.rev || v.FirstSeen != n.names[w.first] || v.LastSeen != n.names[w.last] || v.Manager != w.manager {
			t.Errorf("version %d: %s rev %d seen %s..%s by %q; want %s rev %d seen %s..%s by %q", i, v.Event, v.Revision, v.FirstSeen, v.LastSeen, v.Manager,
				w.event, w.rev, n.names[w.first], n.names[w.last], w.manager)
		}
		if w.after < 0 && v.After != nil || w.after >= 0 && (v.After == nil || v.After.Backup != n.names[w.after]) || v.Before == nil || v.Before.Backup != n.names[w.first] {
			t.Errorf("version %d: bounds %+v .. %+v", i, v.After, v.Before)
		}
		if (v.Object != nil) != w.hasObject || (v.Diff != "") != w.hasDif {
			t.Errorf("version %d: object %v, diff %q", i, v.Object != nil, v.Diff)
		}
		if w.event != Deleted && (v.Restore == nil || v.Restore.Backup != n.names[w.last] || v.ManagedTime == nil || len(v.ValueSHA256) != 64) {
			t.Errorf("version %d: restore %+v, managed time %v, hash %q", i, v.Restore, v.ManagedTime, v.ValueSHA256)
		}
	}
	if d := res.Versions[5].Diff; !strings.Contains(d, "password: (masked, 21 bytes, changed)") || !strings.Contains(d, "user: (masked, 5 bytes, unchanged)") {
		t.Errorf("diff of the last version:\n%s", d)
	}
	// what every write bumps is not part of a diff (the object keeps it)
	for _, i := range []int{1, 4, 5} {
		if d := res.Versions[i].Diff; strings.Contains(d, "resourceVersion") {
			t.Errorf("version %d: the diff shows resourceVersion:\n%s", i, d)
		}
	}
	if md, _ := res.Versions[5].Object["metadata"].(map[string]any); md["resourceVersion"] == nil {
		t.Error("the object shown lost its resourceVersion")
	}
	// night 0 has no index: read whole; nights 4 (r4, r5, r6) and 2 (r2,
	// the newest of the two holding it) for values; 1 and 3 by index only
	wantReads := []string{"whole", "index", "index+whole", "index", "index+whole"}
	for i, b := range res.Backups {
		if b.Read != wantReads[i] || b.Name != n.names[i] {
			t.Errorf("backup %d: %s read %q, want %s %q", i, b.Name, b.Read, n.names[i], wantReads[i])
		}
	}
	if res.ReadWhole != 3 || res.ReadIndex != 2 || len(reads) != 3 || len(warnings) != 0 {
		t.Errorf("read whole %d (%v), by index %d; warnings %v", res.ReadWhole, reads, res.ReadIndex, warnings)
	}
	noSecret(t, res)

	// --no-index: the same timeline, every archive read whole
	o.NoIndex, o.OnRead = true, nil
	all, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if all.ReadWhole != 5 || all.ReadIndex != 0 || len(all.Versions) != len(res.Versions) {
		t.Fatalf("no index: read whole %d, %d versions", all.ReadWhole, len(all.Versions))
	}
	for i := range all.Versions {
		a, b := all.Versions[i], res.Versions[i]
		if a.Event != b.Event || a.Revision != b.Revision || a.FirstSeen != b.FirstSeen || a.LastSeen != b.LastSeen || a.Diff != b.Diff || a.ValueSHA256 != b.ValueSHA256 {
			t.Errorf("no index: version %d differs: %+v vs %+v", i, a, b)
		}
	}
	// show secrets: the value is there
	o.NoIndex, o.ShowSecrets = false, true
	shown, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dump(shown), base64.StdEncoding.EncodeToString([]byte(secretValue+"-4"))) {
		t.Errorf("--show-secrets does not show the value")
	}
}

func dump(res *Result) string {
	b, _ := json.MarshalIndent(res, "", " ")
	return string(b)
}

// noSecret fails if any form of the secret value is in the result.
func noSecret(t *testing.T, res *Result) {
	t.Helper()
	out := dump(res)
	for _, s := range []string{secretValue, base64.StdEncoding.EncodeToString([]byte(secretValue)), base64.StdEncoding.EncodeToString([]byte(secretValue + "-4"))} {
		if strings.Contains(out, s) {
			t.Fatalf("the result holds the secret value (%q)", s)
		}
	}
}

// TestTimelineBadIndex: an index that cannot be used (cut, another
// archive's, another key's) is warned of and its archive read whole: the
// same timeline; an index bound to its archive but listing other records
// (what a holder of the recipient could write) fails with ErrMismatch when
// the archive is read.
func TestTimelineBadIndex(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd: skipped with -short")
	}
	n := writeNights(t)
	ctx := context.Background()
	good, err := Run(ctx, n.options(t))
	if err != nil {
		t.Fatal(err)
	}
	idx := func(i int) string { return filepath.Join(n.dir, n.names[i]+keyindex.Suffix) }
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	night1, night3 := read(idx(1)), read(idx(3))
	other, _ := age.GenerateX25519Identity()
	for _, tc := range []struct {
		name  string
		index []byte
		want  error
	}{
		{"cut", night3[:len(night3)-10], keyindex.ErrTruncated},
		{"another archive's", night1, keyindex.ErrMismatch},
		{"another key's", reencrypt(t, night3, n.id, other), keyindex.ErrWrongKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(idx(3), tc.index, 0o600); err != nil {
				t.Fatal(err)
			}
			defer restore(t, idx(3), night3)
			o := n.options(t)
			var warned []error
			o.OnWarning = func(_ string, err error) { warned = append(warned, err) }
			res, err := Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(warned) != 1 || !errors.Is(warned[0], tc.want) || res.Backups[3].Read != "whole" || res.Backups[3].Warning == "" {
				t.Fatalf("warnings %v, backup 3 read %q", warned, res.Backups[3].Read)
			}
			if dump(&Result{Versions: res.Versions}) != dump(&Result{Versions: good.Versions}) {
				t.Errorf("the timeline differs with a bad index")
			}
		})
	}
	t.Run("forged", func(t *testing.T) {
		// night 3's records, bound to night 4's archive: night 4 seems to
		// hold r4 only; it is read whole for r4's value and disagrees
		sc, err := archive.ReadSidecar(filepath.Join(n.dir, n.names[4]+archive.SidecarSuffix))
		if err != nil {
			t.Fatal(err)
		}
		db := snapshotOf(t, filepath.Join(n.dir, n.names[3]), n.id)
		var buf bytes.Buffer
		w, err := keyindex.NewWriter(&buf, keyindex.WriterOptions{Recipients: []age.Recipient{n.id.Recipient()},
			Header: keyindex.Header{Revision: sc.Revision, SnapshotSHA256: "x"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keyindex.Build(ctx, db.Snapshot, w); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(sc.ArchiveSize, sc.ArchiveSHA256); err != nil {
			t.Fatal(err)
		}
		orig := read(idx(4))
		if err := os.WriteFile(idx(4), buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		defer restore(t, idx(4), orig)
		_, err = Run(ctx, n.options(t))
		if !errors.Is(err, keyindex.ErrMismatch) || !errors.Is(err, archive.ErrTampered) {
			t.Fatalf("Run with a forged index: %v", err)
		}
	})
}

// restore puts b back at p.
func restore(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// snapshotOf opens the archive at p whole.
func snapshotOf(t *testing.T, p string, id age.Identity) *source.Source {
	t.Helper()
	s, err := source.Open(context.Background(), p, source.Options{TmpDir: t.TempDir(),
		Identities: func() ([]age.Identity, error) { return []age.Identity{id}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reencrypt decrypts an age file with from and encrypts it to to.
func reencrypt(t *testing.T, b []byte, from age.Identity, to *age.X25519Identity) []byte {
	t.Helper()
	r, err := age.Decrypt(bytes.NewReader(b), from)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := age.Encrypt(&out, to.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, r); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
