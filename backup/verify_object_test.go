package backup

import (
	"bytes"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/s3test"
	"github.com/etcdsafe/etcdsafe/store"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

// objectBackup runs a backup of realDB, encrypted to a new identity, to a
// directory and to bucket "vault" of a new S3 server, and returns the
// server, a client, the object's URL, the directory's copy and the
// identity.
func objectBackup(t *testing.T) (srv *s3test.Server, c *s3store.Client, url, local string, id *age.X25519Identity) {
	t.Helper()
	srv = s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "vault", false)
	c = srv.StoreClient(t, "")
	dir := t.TempDir()
	id = identity(t)
	o := fileOptions(dir, id)
	o.Outputs = append(o.Outputs, Output{Target: c.Bucket("vault", "prod")})
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c, "s3://vault/prod/" + res.Archive, filepath.Join(dir, res.Archive), id
}

// openObject opens url as cmd verify does: reader, size, metadata, the
// sidecar from the bucket and the reader's CRC-32C verdict. The reader is
// closed by the test's cleanup.
func openObject(t *testing.T, c *s3store.Client, url string) *Object {
	t.Helper()
	r, err := c.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	bkt, name, err := c.Split(url)
	if err != nil {
		t.Fatal(err)
	}
	return &Object{R: r, Size: r.Size(), Meta: r.Meta(),
		Sidecar: func() (*archive.Sidecar, error) {
			rc, err := bkt.Get(t.Context(), name+archive.SidecarSuffix)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return archive.DecodeSidecar(rc, bkt.Where(name+archive.SidecarSuffix))
		},
		Checksum: func() (string, bool) { return "S3 CRC-32C", r.Verified }}
}

// TestVerifyObject: an archive backup published in a bucket verifies from
// there as its directory copy does, through the one archive reader, with
// the server's CRC-32C compared; the quick check compares the object's
// size and metadata with the sidecar without reading it.
func TestVerifyObject(t *testing.T) {
	t.Parallel()
	srv, c, url, local, id := objectBackup(t)
	q, err := VerifyQuickObject(t.Context(), url, openObject(t, c, url))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"size", "created", "host", "cluster", "revision"}; !slices.Equal(q.Compared, want) || q.Archive != url {
		t.Errorf("quick: compared %v of %s, want %v", q.Compared, q.Archive, want)
	}
	if fq, err := VerifyQuick(t.Context(), local); err != nil || fq.Sidecar.ArchiveSHA256 != q.Sidecar.ArchiveSHA256 {
		t.Fatalf("the directory's copy: %v", err)
	}

	vo := VerifyOptions{Identities: []age.Identity{id}, TmpDir: t.TempDir()}
	want, err := Verify(t.Context(), local, vo)
	if err != nil {
		t.Fatal(err)
	}
	vo.Object = openObject(t, c, url)
	got, err := Verify(t.Context(), url, vo)
	if err != nil {
		t.Fatal(err)
	}
	if got.Archive != url || got.SHA256 != want.SHA256 || got.ArchiveBytes != want.ArchiveBytes || got.Sidecar != "matches" ||
		got.Trailer != want.Trailer || got.Status.Hash != want.Status.Hash || got.ChecksumName != "S3 CRC-32C" || got.Checksum != ChecksumMatches {
		t.Errorf("object report %+v, file report %+v", got, want)
	}
	if want.Checksum != "" || want.ChecksumName != "" {
		t.Errorf("a file has no store checksum: %+v", want)
	}
	requireEmpty(t, vo.TmpDir)

	// Put by another client without CRC-32C: the server keeps none.
	b, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	bare := "s3://vault/prod/bare/" + filepath.Base(local)
	putPlain(t, srv, bare, b, nil, "")
	copySidecarTo(t, c, url, bare)
	vo.Object = openObject(t, c, bare)
	got, err = Verify(t.Context(), bare, vo)
	if err != nil {
		t.Fatal(err)
	}
	if got.Checksum != ChecksumNone || got.ChecksumName != "S3 CRC-32C" || got.Sidecar != "matches" {
		t.Errorf("no CRC-32C on the server: %+v", got)
	}

	// No sidecar: the full check says so, the quick one cannot run.
	lone := "s3://vault/prod/lone/" + filepath.Base(local)
	putPlain(t, srv, lone, b, nil, types.ChecksumAlgorithmCrc32c)
	vo.Object = openObject(t, c, lone)
	if got, err = Verify(t.Context(), lone, vo); err != nil || got.Sidecar != "none" {
		t.Errorf("without sidecar: %v, %+v", err, got)
	}
	if _, err := VerifyQuickObject(t.Context(), lone, openObject(t, c, lone)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("quick without sidecar: %v, want ErrNotExist", err)
	}
}

// putPlain puts b as the object at url with a plain PutObject (the
// server keeps a new checksum of algorithm algo; "" is the SDK's default,
// not CRC-32C) and metadata meta.
func putPlain(t *testing.T, srv *s3test.Server, url string, b []byte, meta map[string]string, algo types.ChecksumAlgorithm) {
	t.Helper()
	bucket, key, err := s3store.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b), Metadata: meta}
	if algo != "" {
		in.ChecksumAlgorithm = algo
	}
	if _, err := srv.Client(t).PutObject(t.Context(), in); err != nil {
		t.Fatal(err)
	}
}

// copySidecarTo copies the sidecar of the object at from beside the
// object at to, naming to's archive.
func copySidecarTo(t *testing.T, c *s3store.Client, from, to string) {
	t.Helper()
	sc, err := openObject(t, c, from).Sidecar()
	if err != nil {
		t.Fatal(err)
	}
	bkt, name, err := c.Split(to)
	if err != nil {
		t.Fatal(err)
	}
	sc.Archive = name
	sb, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	up, err := bkt.Put(t.Context(), name+archive.SidecarSuffix, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(sb); err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(int64(len(sb))); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyObjectDamaged: an object replaced (the server vouching for
// the new bytes), cut, lengthened, or whose metadata disagrees with the
// sidecar: the quick check sees what size and metadata show, the full one
// the rest, with the sentinels a damaged file gets.
func TestVerifyObjectDamaged(t *testing.T) {
	t.Parallel()
	srv, c, url, local, id := objectBackup(t)
	b, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	meta := openObject(t, c, url).Meta
	flipped := func(i int) []byte { f := bytes.Clone(b); f[i] ^= 1; return f }
	otherHost := maps.Clone(meta)
	otherHost["etcdsafe-host"] = "intruder"
	for _, tc := range []struct {
		name        string
		data        []byte
		meta        map[string]string
		quick, full error // nil: passes
	}{
		{"flip, metadata kept", flipped(len(b) / 2), meta, nil, archive.ErrTampered},
		{"flip in the last chunk", flipped(len(b) - 2), meta, nil, archive.ErrTampered},
		{"cut", b[:len(b)-1000], meta, archive.ErrTruncated, archive.ErrTruncated},
		// age reads a last chunk one byte too long as a damaged one
		{"longer", append(bytes.Clone(b), 0), meta, archive.ErrTampered, archive.ErrTruncated},
		{"other host in the metadata", b, otherHost, archive.ErrTampered, nil},
		{"no metadata", b, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := "s3://vault/damaged/" + strings.ReplaceAll(tc.name, " ", "-") + "/" + filepath.Base(local)
			putPlain(t, srv, u, tc.data, tc.meta, types.ChecksumAlgorithmCrc32c)
			copySidecarTo(t, c, url, u)
			q, err := VerifyQuickObject(t.Context(), u, openObject(t, c, u))
			if tc.quick == nil && err != nil || tc.quick != nil && !errors.Is(err, tc.quick) {
				t.Errorf("quick: %v, want %v", err, tc.quick)
			}
			if err != nil && !strings.Contains(err.Error(), u) {
				t.Errorf("quick: the error does not name the object: %v", err)
			}
			if tc.meta == nil && err == nil && !slices.Equal(q.Compared, []string{"size"}) {
				t.Errorf("quick without metadata compared %v", q.Compared)
			}
			tmp := t.TempDir()
			rep, err := Verify(t.Context(), u, VerifyOptions{Identities: []age.Identity{id}, TmpDir: tmp, Object: openObject(t, c, u)})
			switch {
			case tc.full == nil && (err != nil || rep.Checksum != ChecksumMatches):
				t.Errorf("full: %v", err)
			case tc.full != nil && (!errors.Is(err, tc.full) || rep != nil):
				t.Errorf("full: %v, want %v and no report", err, tc.full)
			case tc.full != nil && !strings.Contains(err.Error(), u):
				t.Errorf("full: the error does not name the object: %v", err)
			}
			requireEmpty(t, tmp)
			// the same bytes in a file beside the same sidecar
			file := copyBackup(t, local, func([]byte) []byte { return tc.data })
			_, ferr := Verify(t.Context(), file, VerifyOptions{Identities: []age.Identity{id}, TmpDir: tmp})
			if tc.full == nil && ferr != nil || tc.full != nil && !errors.Is(ferr, tc.full) {
				t.Errorf("file: %v, want %v", ferr, tc.full)
			}
		})
	}
}
