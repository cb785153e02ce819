package source_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/s3test"
	"github.com/etcdsafe/etcdsafe/snapshot"
	"github.com/etcdsafe/etcdsafe/source"
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

// putObject publishes b as bucket "backups", key through the S3 target, as
// backup does (full-object CRC-32C), and with a sidecar when sc is set.
func putObject(t *testing.T, c *s3store.Client, key string, b []byte, sc *archive.Sidecar) string {
	t.Helper()
	url := "s3://backups/" + key
	s3test.Publish(t, c, url, b)
	if sc != nil {
		sb, err := sc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s3test.Publish(t, c, url+archive.SidecarSuffix, sb)
	}
	return url
}

// replaceObject overwrites key with b by a plain PutObject, which
// computes a new checksum: the server then vouches for the damaged bytes,
// and only the archive's own checks can tell.
func replaceObject(t *testing.T, srv *s3test.Server, key string, b []byte) {
	t.Helper()
	_, err := srv.Client(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String(key),
		Body: bytes.NewReader(b), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
	if err != nil {
		t.Fatal(err)
	}
}

func sidecarFor(name string, b []byte, id *archive.Identity) *archive.Sidecar {
	sum := sha256.Sum256(b)
	sc := &archive.Sidecar{Version: archive.SidecarVersion, Archive: name, FormatVersion: archive.FormatVersion,
		ArchiveSize: int64(len(b)), ArchiveSHA256: hex.EncodeToString(sum[:]), Encrypted: id != nil}
	if id != nil {
		sc.Recipients = []string{archive.RecipientFingerprint(id.Recipient())}
	}
	return sc
}

// openS3 opens url as cmd does: the object's reader as the Input, its
// sidecar from the bucket. verified reports the reader's CRC-32C verdict.
func openS3(t *testing.T, c *s3store.Client, url string, o source.Options) (s *source.Source, verified bool, err error) {
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
	o.Input = &source.Input{R: r, Sidecar: func() (*archive.Sidecar, error) {
		rc, err := bkt.Get(ctx, name+archive.SidecarSuffix)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return archive.DecodeSidecar(rc, bkt.Where(name+archive.SidecarSuffix))
	}}
	s, err = source.Open(ctx, url, o)
	return s, r.Verified, err
}

// TestOpenS3 reads an archive and a snapshot from S3 as from files: the
// same objects, names that are the URLs, the server's checksum checked.
func TestOpenS3(t *testing.T) {
	t.Parallel()
	_, c := s3Env(t)
	id := newIdentity(t)
	arch := mustRead(t, makeArchive(t, id))
	archURL := putObject(t, c, "prod/m1/backup.tar.zst.age", arch, sidecarFor("backup.tar.zst.age", arch, id))
	snapURL := putObject(t, c, "snapshots/demo.db", mustRead(t, demoDB), nil)
	for _, tc := range []struct {
		name, url, wantName string
		archive             bool
	}{
		{"archive", archURL, archURL + " (its etcd/snapshot.db)", true},
		{"snapshot", snapURL, snapURL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmp := t.TempDir()
			s, verified, err := openS3(t, c, tc.url, source.Options{TmpDir: tmp, Identities: identities(id), DecryptionConfigPath: demoEnc})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := s.Verdict(ctx); err != nil {
				t.Errorf("verdict: %v", err)
			}
			if !verified {
				t.Error("the server's CRC-32C was not compared")
			}
			if s.Name != tc.wantName || s.Archive != tc.archive || s.Trailer() != snapshot.TrailerValid {
				t.Errorf("name %q archive %v trailer %v", s.Name, s.Archive, s.Trailer())
			}
			if obj, _, err := s.Render(entry(t, s, secretKey), source.RenderOptions{}); err != nil || obj.GetKind() != "Secret" {
				t.Errorf("render secret: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Error(err)
			}
			emptyDir(t, tmp)
		})
	}
}

// TestOpenS3Damaged: a damaged or cut object fails as the same bytes in a
// file do (the same sentinels, so the same exit code), with the sidecar
// telling damage from a cut; a missing key and wrong credentials are
// clear errors, and the secret never shows. Nothing is left staged, and
// no message names the staging dir.
func TestOpenS3Damaged(t *testing.T) {
	t.Parallel()
	srv, c := s3Env(t)
	id := newIdentity(t)
	arch := mustRead(t, makeArchive(t, id))
	sc := sidecarFor("a.tar.zst.age", arch, id)
	snap := mustRead(t, demoDB)
	flipped := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x40; return b }
	for _, tc := range []struct {
		name    string
		data    []byte
		sidecar bool
		want    error // for the object and the file alike
		notWant error
	}{
		{name: "flip in the middle", data: flipped(arch, len(arch)/2), sidecar: true, want: archive.ErrTampered},
		{name: "flip in the last chunk", data: flipped(arch, len(arch)-3), sidecar: true, want: archive.ErrTampered, notWant: archive.ErrTruncated},
		{name: "flip in the last chunk, no sidecar", data: flipped(arch, len(arch)-3), want: archive.ErrTruncated},
		{name: "cut", data: arch[:len(arch)-100], sidecar: true, want: archive.ErrTruncated, notWant: archive.ErrTampered},
		{name: "empty", data: nil, sidecar: true, want: inspect.ErrNotSnapshot}, // no archive magic: read as a db
		{name: "snapshot with a flip", data: flipped(snap, len(snap)/3), want: snapshot.ErrTrailerMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := "damaged/" + strings.ReplaceAll(tc.name, " ", "-") + "/a.tar.zst.age"
			var side *archive.Sidecar
			if tc.sidecar {
				side = sc
			}
			url := putObject(t, c, key, arch, side)
			replaceObject(t, srv, key, tc.data)
			dir := t.TempDir()
			file := mustWrite(t, filepath.Join(dir, "a.tar.zst.age"), tc.data)
			if tc.sidecar {
				b, _ := sc.Marshal()
				mustWrite(t, archive.SidecarPath(file), b)
			}
			o := source.Options{TmpDir: t.TempDir(), Identities: identities(id)}
			ctx := context.Background()
			fromFile, ferr := source.Open(ctx, file, o)
			s, _, err := openS3(t, c, url, o)
			for what, e := range map[string]error{"object": err, "file": ferr} {
				if e == nil {
					e = map[string]*source.Source{"object": s, "file": fromFile}[what].Verdict(ctx)
				}
				if !errors.Is(e, tc.want) || tc.notWant != nil && errors.Is(e, tc.notWant) {
					t.Errorf("%s: %v, want %v and not %v", what, e, tc.want, tc.notWant)
				}
			}
			for _, src := range []*source.Source{s, fromFile} {
				if src != nil {
					_ = src.Close()
				}
			}
			if err != nil && (!strings.Contains(err.Error(), url) || strings.Contains(err.Error(), o.TmpDir)) {
				t.Errorf("the error does not name the URL, or names the staging dir: %v", err)
			}
			emptyDir(t, o.TmpDir)
		})
	}

	t.Run("at rest", func(t *testing.T) {
		t.Parallel()
		// A flip on the server's disk: the stored CRC-32C no longer
		// matches, and the snapshot (which age does not guard) is caught
		// by it at the end of the stream.
		url := putObject(t, c, "rest/demo.db", snap, nil)
		p := filepath.Join(srv.Dir, "backups", "rest", "demo.db")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, flipped(b, len(b)/3), 0o600); err != nil {
			t.Fatal(err)
		}
		tmp := t.TempDir()
		s, _, err := openS3(t, c, url, source.Options{TmpDir: tmp})
		if !errors.Is(err, s3store.ErrChecksum) || !strings.Contains(err.Error(), url) {
			t.Errorf("got %v, want ErrChecksum naming %s", err, url)
		}
		if s != nil {
			_ = s.Close()
		}
		emptyDir(t, tmp)
	})

	t.Run("missing key", func(t *testing.T) {
		t.Parallel()
		url := "s3://backups/prod/none.tar.zst.age"
		_, _, err := openS3(t, c, url, source.Options{})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), url) {
			t.Errorf("got %v, want ErrNotExist naming %s", err, url)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		t.Parallel()
		url := putObject(t, c, "creds/demo.db", snap, nil)
		const secret = "0123456789abcdef0123456789abcdef01234567"
		wrong := srv.StoreClient(t, secret)
		_, _, err := openS3(t, wrong, url, source.Options{})
		if !errors.Is(err, s3store.ErrDenied) || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), srv.SecretKey) {
			t.Errorf("got %v, want ErrDenied without the secret", err)
		}
	})
}
