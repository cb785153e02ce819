package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/backup"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

type verifyOptions struct {
	identity string
	passFile string
	quick    bool
	tmpDir   string
	output   string
	// allowUnencrypted reads a plain .tar.zst archive
	allowUnencrypted bool
	s3               s3Flags
}

func newVerifyCmd() *cobra.Command {
	o := &verifyOptions{}
	c := &cobra.Command{
		Use:   "verify ARCHIVE|s3://BUCKET/KEY|- [-i IDENTITY] [--quick]",
		Short: "Check a backup archive end to end: decryption, every entry, bbolt consistency",
		Long: `Decrypt and decompress the whole archive, check every entry against MANIFEST.json (size and
SHA-256, nothing missing or added, nothing after the end), check the snapshot's SHA-256
trailer and run bbolt's consistency check on it, then print its status. The snapshot
touches disk only as a 0600 file in a private temp directory (--tmp-dir, default the system
temp dir), removed on exit and on interrupt.

The identity comes from -i FILE or $ETCDSAFE_IDENTITY (a path); a passphrase from
--passphrase-file or $ETCDSAFE_PASSPHRASE.

--quick needs no key: it only compares the archive's size and SHA-256 with its sidecar
(<archive>.json), which proves the file is the one backup wrote, not that it decrypts.

An archive in a bucket (s3://BUCKET/KEY) is read from there once, without a local copy of
the archive; besides the archive's SHA-256 against the sidecar beside it, the server's
full-object CRC-32C is checked when it keeps one. --quick reads no content there: it
compares the object's size and the metadata backup stored with it (time, host, cluster,
revision) with the sidecar. - reads an archive from standard input (it has no sidecar).
Credentials come from the AWS chain (environment, profiles, web identity, instance role).` + exitStatus(exitOK, exitFailure, exitUsage, exitIntegrity, exitKey, exitInterrupted),
		Example: `  etcdsafe verify /var/backups/etcd/m0-20260501T020000Z.tar.zst.age -i /root/etcd-backup.key
  etcdsafe verify --quick /var/backups/etcd/m0-20260501T020000Z.tar.zst.age
  etcdsafe verify s3://backups/prod/m0/m0-20260501T020000Z.tar.zst.age -i /root/etcd-backup.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.quick {
				return runVerifyQuick(cmd.Context(), args[0], o, cmd.OutOrStdout())
			}
			return runVerify(cmd, o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.StringVarP(&o.identity, "identity", "i", "", "age identity file or unencrypted ssh private key [$ETCDSAFE_IDENTITY]")
	f.StringVar(&o.passFile, "passphrase-file", "", "file holding the archive's passphrase, or \"tty\" to be asked (or set ETCDSAFE_PASSPHRASE)")
	f.BoolVar(&o.quick, "quick", false, "only compare the archive with its sidecar's size and SHA-256 (no key)")
	f.StringVar(&o.tmpDir, "tmp-dir", "", "where the snapshot is extracted for the bbolt check")
	f.BoolVar(&o.allowUnencrypted, "allow-unencrypted", false, "verify an unencrypted (.tar.zst) archive: nothing proves who wrote it")
	addOutputFlag(f, &o.output, "table", "json")
	o.s3.register(f)
	return c
}

func runVerify(cmd *cobra.Command, o *verifyOptions, path string, out, stderr io.Writer) error {
	ids, err := readIdentities(o.identity, o.passFile, stderr)
	if err != nil {
		return err
	}
	vo := backup.VerifyOptions{
		Identities: ids, AllowUnencrypted: o.allowUnencrypted, TmpDir: o.tmpDir,
		OnSwept: sweptPrinter(stderr), OnSweepError: warnPrinter(stderr),
	}
	switch {
	case path == "-":
		path, vo.Object = "standard input", &backup.Object{R: cmd.InOrStdin(), Size: -1}
	case s3store.IsURL(path):
		obj, err := openObject(cmd.Context(), &o.s3, path)
		if err != nil {
			return err
		}
		defer obj.r.Close()
		r := obj.r
		vo.Object = &backup.Object{R: r, Size: r.Size(), Meta: r.Meta(), Sidecar: obj.sidecar, Index: obj.index,
			Checksum: func() (string, bool) { return "S3 CRC-32C", r.Verified }}
	}
	rep, err := backup.Verify(cmd.Context(), path, vo)
	if rep == nil {
		return err
	}
	if o.output == "json" {
		if err := printJSON(out, rep); err != nil {
			return err
		}
	} else {
		printVerify(out, rep)
	}
	if !rep.Encrypted {
		fmt.Fprintln(stderr, "etcdsafe: warning: this archive is NOT encrypted")
	}
	if errors.Is(err, backup.ErrSnapshotProblems) {
		return &partialError{n: len(rep.Status.Problems), code: exitIntegrity}
	}
	return err
}

// indexVerdict says what verify found of the archive's key index.
func indexVerdict(v string) string {
	switch v {
	case "matches":
		return "matches the archive and every record of its snapshot"
	case "none":
		return "none (timeline reads this archive whole)"
	}
	return v
}

func printVerify(out io.Writer, r *backup.VerifyReport) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	m, st := r.Manifest, r.Status
	enc := "yes"
	if !r.Encrypted {
		enc = "NO"
	}
	var content int64
	for _, e := range m.Entries {
		content += e.Size
	}
	row("Archive", r.Archive)
	row("Archive size", humanBytes(r.ArchiveBytes))
	row("Archive SHA-256", r.SHA256)
	row("Encrypted", enc)
	row("Sidecar", r.Sidecar)
	row("Key index", indexVerdict(r.Index))
	switch r.Checksum {
	case backup.ChecksumMatches:
		row(r.ChecksumName, "matches the server's")
	case backup.ChecksumNone:
		row(r.ChecksumName, "server keeps no checksum")
	}
	row("Created", m.Created.UTC().Format("2006-01-02 15:04:05 UTC"))
	row("Host", orDash(m.Host))
	row("Source", orDash(m.Endpoint))
	row("etcd version", orDash(m.EtcdVersion))
	row("Entries", fmt.Sprintf("%d, all match MANIFEST.json (%s of content)", len(m.Entries), humanBytes(content)))
	row("Snapshot", humanBytes(m.DBSize))
	row("SHA-256 trailer", r.Trailer)
	row("Revision", st.Revision)
	row("Compacted revision", st.CompactRevision)
	row("Live keys", st.LiveKeys)
	row("Revisions", st.Revisions)
	row("Hash (etcdutl)", fmt.Sprintf("%x", st.Hash))
	if len(st.CheckErrors) == 0 {
		row("Consistency check", "ok")
	} else {
		row("Consistency check", fmt.Sprintf("%d error(s)", len(st.CheckErrors)))
		for _, e := range st.CheckErrors {
			row("", e)
		}
	}
	tw.Flush()
}

func runVerifyQuick(ctx context.Context, path string, o *verifyOptions, out io.Writer) error {
	var rep *backup.QuickReport
	var err error
	switch {
	case path == "-":
		return usagef("verify --quick compares a file or object with its sidecar; standard input has none")
	case s3store.IsURL(path):
		var info *s3store.Info
		var sidecar func() (*archive.Sidecar, error)
		if info, sidecar, err = statObject(ctx, &o.s3, path); err != nil {
			return err
		}
		// its size and metadata are all --quick needs: no content is read
		rep, err = backup.VerifyQuickObject(ctx, path, &backup.Object{Size: info.Size, Meta: info.Meta, Sidecar: sidecar})
	default:
		rep, err = backup.VerifyQuick(ctx, path)
	}
	if err != nil {
		return err
	}
	sc := rep.Sidecar
	if o.output == "json" {
		return printJSON(out, map[string]any{"archive": rep.Archive, "quick": true, "sidecar": sc, "compared": rep.Compared})
	}
	what, unchecked := "size and SHA-256 match", "decryption not checked"
	if s3store.IsURL(path) {
		what, unchecked = "size", "content not read"
		if len(rep.Compared) > 1 {
			what += " and metadata (" + strings.Join(rep.Compared[1:], ", ") + ")"
		}
		what += " match"
	}
	fmt.Fprintf(out, "%s: %s the sidecar (revision %d, %s); %s, run verify -i KEY for that\n",
		termtext.Clean(rep.Archive), what, sc.Revision, sc.Created.UTC().Format("2006-01-02 15:04:05 UTC"), unchecked)
	return nil
}
