package timeline

import (
	"context"
	"path"
	"testing"

	"filippo.io/age"

	"github.com/etcdsafe/etcdsafe/internal/s3test"
	"github.com/etcdsafe/etcdsafe/source"
)

// TestTimelineBucket: the nights written to a bucket prefix as well (the
// key index beside each archive there): the timeline over the prefix is
// the directory's, read by the same indexes and archives.
func TestTimelineBucket(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("embedded etcd and versitygw: skipped with -short")
	}
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "fleet", false)
	bkt := srv.StoreClient(t, "").Bucket("fleet", "prod").Sub("c")
	n := writeNights(t, bkt)
	ctx := context.Background()
	local, err := Run(ctx, n.options(t))
	if err != nil {
		t.Fatal(err)
	}
	open := func(ctx context.Context, where string) (*source.Source, error) {
		rc, err := bkt.Get(ctx, path.Base(where))
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return source.Open(ctx, where, source.Options{TmpDir: t.TempDir(), Input: &source.Input{R: rc},
			Identities: func() ([]age.Identity, error) { return []age.Identity{n.id}, nil }})
	}
	bs, err := Discover(ctx, bkt, open)
	if err != nil {
		t.Fatal(err)
	}
	o := n.options(t)
	o.Backups = bs
	remote, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range remote.Backups {
		if b.Read != local.Backups[i].Read || b.Where != bkt.Where(n.names[i]) {
			t.Errorf("backup %d: %s read %q, the directory's %q", i, b.Where, b.Read, local.Backups[i].Read)
		}
	}
	if dump(&Result{Versions: stripWhere(remote.Versions)}) != dump(&Result{Versions: stripWhere(local.Versions)}) {
		t.Errorf("the bucket's timeline differs from the directory's:\n%s\n%s", dump(remote), dump(local))
	}
}

// stripWhere drops the locations, which differ between a bucket and a
// directory.
func stripWhere(vs []*Version) []*Version {
	out := make([]*Version, len(vs))
	for i, v := range vs {
		c := *v
		for _, b := range []**Bound{&c.After, &c.Before, &c.Restore} {
			if *b != nil {
				x := **b
				x.Where = ""
				*b = &x
			}
		}
		out[i] = &c
	}
	return out
}
