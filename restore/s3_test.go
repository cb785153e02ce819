package restore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
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
	"github.com/etcdsafe/etcdsafe/internal/testfix"
	"github.com/etcdsafe/etcdsafe/snapshot"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

// s3Env starts a real S3 server (versitygw) with bucket "backups" and a
// client for it with the server's credentials.
func s3Env(t *testing.T) (*s3test.Server, *s3store.Client) {
	t.Helper()
	srv := s3test.Start(t, s3test.Options{})
	srv.CreateBucket(t, "backups", false)
	return srv, srv.StoreClient(t, "")
}

// putS3 publishes b under key of bucket "backups" through the S3 target,
// as backup does, with a sidecar for an archive (recipients of id).
func putS3(t *testing.T, c *s3store.Client, key string, b []byte, sidecar bool, id *age.X25519Identity) string {
	t.Helper()
	url := "s3://backups/" + key
	_, name := filepath.Split(key)
	s3test.Publish(t, c, url, b)
	if sidecar {
		sum := sha256.Sum256(b)
		sc := &archive.Sidecar{Version: archive.SidecarVersion, Archive: name, FormatVersion: archive.FormatVersion,
			ArchiveSize: int64(len(b)), ArchiveSHA256: hex.EncodeToString(sum[:]), Encrypted: id != nil}
		if id != nil {
			sc.Recipients = []string{archive.RecipientFingerprint(id.Recipient().String())}
		}
		sb, err := sc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s3test.Publish(t, c, url+archive.SidecarSuffix, sb)
	}
	return url
}

// encryptedArchive is snap and kubeDir (if set) as an archive for id.
func encryptedArchive(t *testing.T, snap, kubeDir string, id *age.X25519Identity) []byte {
	t.Helper()
	return archiveBytes(t, snap, kubeDir, archive.WriterOptions{Recipients: []age.Recipient{id.Recipient()}})
}

// prepareS3 is Prepare of the object at url, as cmd restore does it: the
// object's reader as the Input, its sidecar from the bucket.
func prepareS3(t *testing.T, c *s3store.Client, url string, o Options) (*Plan, bool, error) {
	t.Helper()
	ctx := context.Background()
	r, err := c.Open(ctx, url)
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	bkt, name, err := c.Split(url)
	if err != nil {
		t.Fatal(err)
	}
	o.Source = url
	o.Input = &Input{R: r, Sidecar: func() (*archive.Sidecar, error) {
		rc, err := bkt.Get(ctx, name+archive.SidecarSuffix)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return archive.DecodeSidecar(rc, bkt.Where(name+archive.SidecarSuffix))
	}}
	p, err := Prepare(ctx, o)
	if p != nil {
		t.Cleanup(func() { p.Close() })
	}
	return p, r.Verified, err
}

// TestRestoreFromS3 restores an encrypted archive (with its kube dir) and
// a snapshot straight from the bucket, and an archive from a plain stream
// (standard input), then runs a real etcd on each result.
func TestRestoreFromS3(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, c := s3Env(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	kube := t.TempDir()
	mkdir(t, filepath.Join(kube, "pki"))
	writeFile(t, filepath.Join(kube, "pki", "ca.crt"), "ca")
	arch := encryptedArchive(t, f.snap, kube, id)
	snap, err := os.ReadFile(f.snap)
	if err != nil {
		t.Fatal(err)
	}
	archURL := putS3(t, c, "prod/m1/m1-20260101T000000Z.tar.zst.age", arch, true, id)
	snapURL := putS3(t, c, "snapshots/snapshot.db", snap, false, nil)
	for _, tc := range []struct {
		name, url string
		kind      SourceKind
		kube      bool
	}{
		{"archive", archURL, SourceArchive, true},
		{"snapshot", snapURL, SourceSnapshot, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "etcd")
			kubeDst := ""
			if tc.kube {
				kubeDst = filepath.Join(t.TempDir(), "kubernetes")
			}
			peer := freePeerURL(t)
			p, verified, err := prepareS3(t, c, tc.url, Options{
				Identities: []age.Identity{id}, DataDir: dataDir, KubeDir: kubeDst,
				BumpRevision: DefaultBumpRevision, MarkCompacted: true,
				Membership: MembershipFlags{Name: "m1", InitialAdvertisePeerURLs: peer.String()},
			})
			if err != nil {
				t.Fatal(err)
			}
			if !verified || p.Kind != tc.kind || p.Source != tc.url || p.Revision != f.rev {
				t.Errorf("CRC-32C compared %v, plan kind %s source %s revision %d", verified, p.Kind, p.Source, p.Revision)
			}
			res, err := p.Execute(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tc.kube && res.KubeCreated == 0 {
				t.Errorf("kube dir: %+v", res)
			}
			checkRestored(t, f, dataDir, "m1", peer, DefaultBumpRevision)
		})
	}
	t.Run("standard input", func(t *testing.T) {
		t.Parallel()
		dataDir := filepath.Join(t.TempDir(), "etcd")
		peer := freePeerURL(t)
		_, _ = mustPrepareExecute(t, Options{Source: "standard input", Input: &Input{R: bytes.NewReader(arch)},
			Identities: []age.Identity{id}, DataDir: dataDir,
			Membership: MembershipFlags{Name: "m1", InitialAdvertisePeerURLs: peer.String()}})
		checkRestored(t, f, dataDir, "m1", peer, 0)
	})
}

// TestRestoreFromS3Refused: what a file would fail with, an object fails
// with too (same sentinels, so the same exit code), naming the URL and
// never the staging dir, with nothing staged, built or moved: damaged and
// cut objects, an unencrypted archive, a raw db without --skip-hash-check,
// --kube-dir with a snapshot, a missing key, wrong credentials.
func TestRestoreFromS3Refused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	srv, c := s3Env(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	arch := encryptedArchive(t, f.snap, "", id)
	plain, err := os.ReadFile(writeArchive(t, f.snap, ""))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(f.raw)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := os.ReadFile(f.snap)
	if err != nil {
		t.Fatal(err)
	}
	flipped := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x20; return b }
	for _, tc := range []struct {
		name    string
		upload  []byte // published with a sidecar
		replace []byte // then overwritten by a plain PutObject, if set
		o       Options
		want    error
		notWant error
	}{
		{name: "flip in the middle", upload: arch, replace: flipped(arch, len(arch)/2), want: archive.ErrTampered},
		{name: "flip in the last chunk", upload: arch, replace: flipped(arch, len(arch)-3), want: archive.ErrTampered, notWant: archive.ErrTruncated},
		{name: "cut", upload: arch, replace: arch[:len(arch)-1000], want: archive.ErrTruncated, notWant: archive.ErrTampered},
		{name: "wrong key", upload: arch, o: Options{Identities: []age.Identity{mustX25519(t)}}, want: archive.ErrWrongKey},
		{name: "unencrypted", upload: plain, want: archive.ErrUnencrypted},
		{name: "snapshot with a flip", upload: snap, replace: flipped(snap, len(snap)/2), want: snapshot.ErrTrailerMismatch},
		{name: "raw db", upload: raw, want: ErrNoTrailer},
		{name: "snapshot with kube dir", upload: snap, o: Options{KubeDir: "KUBE"}, want: ErrNoKubeDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := "refused/" + strings.ReplaceAll(tc.name, " ", "-") + "/m1.tar.zst.age"
			url := putS3(t, c, key, tc.upload, true, id)
			data := tc.upload
			if tc.replace != nil {
				data = tc.replace
				_, err := srv.Client(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String(key),
					Body: bytes.NewReader(tc.replace), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
				if err != nil {
					t.Fatal(err)
				}
			}
			dataDir := oldDataDir(t, f)
			parent := filepath.Dir(dataDir)
			if tc.o.KubeDir == "KUBE" {
				tc.o.KubeDir = filepath.Join(t.TempDir(), "kube")
			}
			if tc.o.Identities == nil {
				tc.o.Identities = []age.Identity{id}
			}
			tc.o.DataDir = dataDir
			before := testfix.ListNames(t, parent)
			_, _, err := prepareS3(t, c, url, tc.o)
			t.Log(err)
			if !errors.Is(err, tc.want) || tc.notWant != nil && errors.Is(err, tc.notWant) {
				t.Fatalf("got %v, want %v and not %v", err, tc.want, tc.notWant)
			}
			if msg := err.Error(); !strings.Contains(msg, url) || strings.Contains(msg, stagingPrefix) {
				t.Errorf("message %q: want the URL, no staging path", msg)
			}
			if after := testfix.ListNames(t, parent); !slices.Equal(before, after) {
				t.Errorf("refused restore changed %v -> %v", before, after)
			}
			// the same bytes in a file, with the same sidecar
			file := filepath.Join(t.TempDir(), "m1.tar.zst.age")
			writeFile(t, file, string(data))
			copySidecar(t, c, url, archive.SidecarPath(file))
			tc.o.Source, tc.o.Input = file, nil
			if _, ferr := Prepare(context.Background(), tc.o); !errors.Is(ferr, tc.want) || tc.notWant != nil && errors.Is(ferr, tc.notWant) {
				t.Errorf("file: %v, want %v and not %v", ferr, tc.want, tc.notWant)
			}
		})
	}

	t.Run("missing key", func(t *testing.T) {
		t.Parallel()
		url := "s3://backups/prod/none.tar.zst.age"
		_, _, err := prepareS3(t, c, url, Options{DataDir: filepath.Join(t.TempDir(), "etcd")})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), url) {
			t.Errorf("got %v, want ErrNotExist naming %s", err, url)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		t.Parallel()
		url := putS3(t, c, "creds/m1.tar.zst.age", arch, false, nil)
		const secret = "0123456789abcdef0123456789abcdef01234567"
		wrong := srv.StoreClient(t, secret)
		_, _, err := prepareS3(t, wrong, url, Options{DataDir: filepath.Join(t.TempDir(), "etcd")})
		if !errors.Is(err, s3store.ErrDenied) || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), srv.SecretKey) {
			t.Errorf("got %v, want ErrDenied without the secret", err)
		}
	})
}

func mustX25519(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// copySidecar copies the sidecar of the object at url to the file dst.
func copySidecar(t *testing.T, c *s3store.Client, url, dst string) {
	t.Helper()
	bkt, name, err := c.Split(url)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := bkt.Get(context.Background(), name+archive.SidecarSuffix)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, string(b))
}
