package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/restore"
	"github.com/etcdsafe/etcdsafe/store/s3store"
)

type restoreOptions struct {
	identity, passFile string
	dataDir, manifest  string
	name, peerURLs     string
	initialCluster     string
	token              string
	bump               uint64
	markCompacted      bool
	mmap               uint64
	skipHashCheck      bool
	compact            bool
	cleanLeases        bool
	force, dryRun      bool
	kubeDir            string
	only               []string
	tmpDir             string
	allowUnencrypted   bool
	json               bool
	s3                 s3Flags
}

func newRestoreCmd() *cobra.Command {
	o := &restoreOptions{}
	c := &cobra.Command{
		Use:   "restore SOURCE --data-dir DIR [--kube-dir DIR] [--dry-run]",
		Short: "Rebuild an etcd data dir (and /etc/kubernetes) from a backup, snapshot or raw db",
		Long: `Rebuild etcd's data dir from SOURCE: a backup archive (-i IDENTITY), a snapshot file
(its SHA-256 trailer is checked) or a raw member/snap/db copied from a stopped etcd (no
trailer, so its integrity cannot be checked: confirm with --skip-hash-check). SOURCE may
also be s3://BUCKET/KEY, an archive or snapshot in a bucket, read from there once into the
private staging dir (credentials from the AWS chain; --s3-endpoint for anything but AWS),
or - for one read from standard input.

DIR must be absent, an empty directory or an etcd data dir (one with member/snap/db);
anything else (a file, a symlink, another directory) is refused and nothing is moved.
The new data dir is built with etcdutl's restore logic in a private 0700 staging dir
(.etcdsafe-restore-*) beside DIR, then an existing DIR is renamed to
DIR.etcdsafe-<UTC time> (never deleted) and the new one renamed into place. If
interrupted between the two renames, the printed 'mv' command puts the old dir back.
Staging dirs hold plaintext (the snapshot, kube dir keys); one that a killed run left is
removed by the next restore, which logs it. Kubernetes-safe defaults: --bump-revision
1000000000 --mark-compacted, so clients never see revisions go backwards and informers
relist.

An archive must be encrypted: an unencrypted one proves nothing about who wrote it, so it
is refused (exit 3) unless --allow-unencrypted.

Membership (--name, --initial-advertise-peer-urls, --initial-cluster-token) comes from
etcd's static pod manifest: --manifest, else the archive's when --kube-dir restores
manifests, else /etc/kubernetes/manifests/etcd.yaml, else the archive's. Flags may add to
it but not contradict it. The manifest's --data-dir is only a candidate: --dry-run shows
it, and a restore needs --data-dir given explicitly. The result is a single-member
cluster (what --force-new-cluster makes) unless --initial-cluster lists several members,
for restoring every master from one snapshot.

The restore refuses while etcd holds DIR's db or listens on the manifest's client URLs,
unless --force.

The plan states the snapshot's alarms and its db size against etcd's quota
(--quota-backend-bytes of the manifest, else etcd's 2 GiB default). Alarms (NOSPACE,
CORRUPT) are never carried into the new cluster: etcdutl's restore copies them, so they
are cleared from the restored db (a NOSPACE snapshot would otherwise start etcd with
every write refused). A db within 1.5 MiB (etcd's largest write) of the quota, as a
snapshot taken under NOSPACE is, would raise NOSPACE again, so it is refused: --compact writes the
restored db with only the newest revision of each key (etcd's own mvcc compaction at the
snapshot's revision) and defragmented, and the restore fails before anything is moved if
even that is too close to the quota. --clean-leases deletes, before etcd starts, what goes stale on
new hardware: /registry/masterleases/*, kube-apiserver's identity leases
(kube-system/apiserver-*) and the node heartbeat leases (kube-node-lease); the plan lists
each key, and the deletions are one etcd write at the snapshot's revision + 1.

--dry-run never refuses and changes nothing: it prints the whole plan, then every blocker
it found (etcd running, kube dir files that differ, a db over the quota; and, as
warnings, an existing data dir ahead of the snapshot), then exits with the status the
same restore without --dry-run would exit with: 0 if it would go ahead, 5 if etcd runs,
1 for differing kube dir files or a db too close to the quota. A script can use it as a
preflight check.

--kube-dir DIR puts the archive's kubernetes/ files back (--only pki,manifests,kubeconfigs
or all) with modes, owners (as root) and links; files that exist and differ are listed and
left alone unless --force, which keeps each old one as a hidden .NAME.etcdsafe-<time>.
Manifests are written last.` + exitStatus(exitRead...),
		Example: `  etcdsafe restore backup.age -i key.txt --data-dir /var/lib/etcd --kube-dir /etc/kubernetes --dry-run
  etcdsafe restore s3://backups/prod/m1/m1-20260501T020000Z.tar.zst.age -i key.txt --data-dir /var/lib/etcd --kube-dir /etc/kubernetes
  ssh backup-host cat m1.tar.zst.age | etcdsafe restore - -i key.txt --data-dir /var/lib/etcd
  etcdsafe restore snapshot.db --manifest /etc/kubernetes/manifests/etcd.yaml --data-dir /var/lib/etcd
  etcdsafe restore db --skip-hash-check --data-dir /var/lib/etcd --name m1 \
      --initial-advertise-peer-urls https://10.0.0.1:2380 \
      --initial-cluster m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd, o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.StringVarP(&o.identity, "identity", "i", "", "age identity file or unencrypted ssh private key [$ETCDSAFE_IDENTITY]")
	f.StringVar(&o.passFile, "passphrase-file", "", "file holding the archive's passphrase (or set ETCDSAFE_PASSPHRASE)")
	f.StringVar(&o.dataDir, "data-dir", "", "etcd data dir to rebuild: absent, empty or an etcd data dir (required; --dry-run shows the manifest's)")
	f.StringVar(&o.manifest, "manifest", "", "etcd static pod manifest to take membership from")
	f.StringVar(&o.name, "name", "", "member name (default: the manifest's, else \"default\")")
	f.StringVar(&o.peerURLs, "initial-advertise-peer-urls", "", "member's peer URLs (default: the manifest's)")
	f.StringVar(&o.initialCluster, "initial-cluster", "", "every member as name=peerURL,... (default: this member only)")
	f.StringVar(&o.token, "initial-cluster-token", "", "cluster token (default: the manifest's, else etcd-cluster)")
	f.Uint64Var(&o.bump, "bump-revision", restore.DefaultBumpRevision, "add this to the revision (0 disables it and --mark-compacted)")
	f.BoolVar(&o.markCompacted, "mark-compacted", restore.DefaultMarkCompacted, "mark revisions before the bump compacted (needs --bump-revision)")
	f.Uint64Var(&o.mmap, "initial-memory-map-size", 0, "bbolt initial mmap size in bytes, for large dbs (0: etcd default)")
	f.BoolVar(&o.skipHashCheck, "skip-hash-check", false, "restore a db without (or with a mismatching) SHA-256 trailer")
	f.BoolVar(&o.compact, "compact", false, "keep only the newest revision of each key and defragment, so an oversized snapshot fits the quota")
	f.BoolVar(&o.cleanLeases, "clean-leases", false, "delete masterleases, kube-apiserver identity leases and node leases before etcd starts")
	f.BoolVar(&o.force, "force", false, "restore even if etcd seems to run; replace differing kube dir files")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	f.StringVar(&o.kubeDir, "kube-dir", "", "restore the archive's kube dir here (e.g. /etc/kubernetes)")
	f.StringSliceVar(&o.only, "only", nil, "with --kube-dir: pki, manifests, kubeconfigs or all (default all)")
	f.StringVar(&o.tmpDir, "tmp-dir", "", "where to stage the extracted snapshot and kube dir (default: beside the data dir)")
	f.BoolVar(&o.allowUnencrypted, "allow-unencrypted", false, "accept an unencrypted archive (written with --insecure-no-encryption)")
	f.BoolVar(&o.json, "json", false, "print the plan and result as JSON")
	o.s3.register(f)
	return c
}

func runRestore(cmd *cobra.Command, o *restoreOptions, src string, out, stderr io.Writer) error {
	ctx := cmd.Context()
	if o.bump == 0 && !cmd.Flags().Changed("mark-compacted") {
		o.markCompacted = false
	}
	if o.markCompacted && o.bump == 0 {
		return usagef("--mark-compacted needs --bump-revision > 0")
	}
	if o.bump > 0 && !o.markCompacted {
		return usagef("--bump-revision needs --mark-compacted (etcdutl ignores the bump without it)")
	}
	if len(o.only) > 0 && o.kubeDir == "" {
		return usagef("--only needs --kube-dir")
	}
	ids, err := readIdentities(o.identity, o.passFile, stderr)
	if err != nil {
		return err
	}
	var in *restore.Input
	switch {
	case src == "-":
		src, in = "standard input", &restore.Input{R: cmd.InOrStdin()}
	case s3store.IsURL(src):
		obj, err := openObject(ctx, &o.s3, src)
		if err != nil {
			return err
		}
		defer obj.r.Close() // Prepare reads it to its end
		in = &restore.Input{R: obj.r, Sidecar: obj.sidecar}
	}
	plan, err := restore.Prepare(ctx, restore.Options{
		Source:           src,
		Input:            in,
		Identities:       ids,
		AllowUnencrypted: o.allowUnencrypted,
		DataDir:          o.dataDir,
		Manifest:         o.manifest,
		Membership: restore.MembershipFlags{
			Name: o.name, InitialAdvertisePeerURLs: o.peerURLs,
			InitialCluster: o.initialCluster, InitialClusterToken: o.token,
		},
		BumpRevision:    o.bump,
		MarkCompacted:   o.markCompacted,
		InitialMmapSize: o.mmap,
		SkipHashCheck:   o.skipHashCheck,
		Compact:         o.compact,
		CleanLeases:     o.cleanLeases,
		Force:           o.force,
		KubeDir:         o.kubeDir,
		Only:            o.only,
		DryRun:          o.dryRun,
		TmpDir:          o.tmpDir,
		OnSweep: func(dir string) {
			fmt.Fprintf(stderr, "etcdsafe: removed %s, left by a restore that was killed (it held plaintext)\n", termtext.Clean(dir))
		},
	})
	if errors.Is(err, restore.ErrDataDirNotConfirmed) {
		return usageError{err}
	}
	if err != nil {
		return err // archive.Extract explained what the sidecar tells
	}
	defer plan.Close()
	if o.json && o.dryRun {
		if err := printJSON(out, map[string]any{"plan": plan, "dryRun": true}); err != nil {
			return err
		}
		return plan.Refusal()
	}
	if !o.json {
		printPlan(out, plan, o.dryRun)
	}
	if o.dryRun {
		fmt.Fprintln(out, "dry run: nothing was changed")
		// The dry run exits as the real restore would: a preflight check.
		return plan.Refusal()
	}
	res, err := plan.Execute(ctx)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(out, map[string]any{"plan": plan, "result": res, "nextSteps": plan.NextSteps()})
	}
	fmt.Fprintf(out, "restored %s in %s", termtext.Clean(res.DataDir), res.BuildTime.Round(1e6))
	if res.Backup != "" {
		fmt.Fprintf(out, "; the old data dir is %s", termtext.Clean(res.Backup))
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "db %s -> %s", humanBytes(res.DBSizeBefore), humanBytes(res.DBSize))
	if q := plan.Quota; q.Bytes > 0 {
		fmt.Fprintf(out, " (quota %s, %d%% used)", humanBytes(q.Bytes), res.DBSize*100/q.Bytes)
	}
	fmt.Fprintln(out)
	if res.AlarmsCleared > 0 {
		fmt.Fprintf(out, "alarms: %d cleared from the restored db\n", res.AlarmsCleared)
	}
	if plan.CleanLeases {
		fmt.Fprintf(out, "stale leases: %d deleted\n", res.KeysRemoved)
	}
	if plan.KubeDir != "" {
		fmt.Fprintf(out, "kube dir %s: %d created, %d replaced, %d unchanged\n", termtext.Clean(plan.KubeDir), res.KubeCreated, res.KubeReplaced, res.KubeUnchanged)
	}
	fmt.Fprintln(out, "\nnext steps:")
	for i, s := range plan.NextSteps() {
		fmt.Fprintf(out, "  %d. %s\n", i+1, termtext.Clean(s))
	}
	return nil
}

// printPlan prints the plan. Every name that comes from the source or a
// manifest (paths, hosts, member names, URLs) goes through termtext.Clean:
// an archive can hold any bytes, escape sequences included.
func printPlan(out io.Writer, p *restore.Plan, dryRun bool) {
	w := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	c := termtext.Clean
	if dryRun {
		w("restore plan (dry run):")
	} else {
		w("restore plan:")
	}
	w("  read      %s (%s, trailer %s)", c(p.Source), p.Kind, p.Trailer)
	if p.Archive != nil {
		w("            archive of %s taken %s from %s, etcd %s", c(p.Archive.Host), p.Archive.Created.Format("2006-01-02 15:04:05Z07:00"), c(p.Archive.Endpoint), c(p.Archive.EtcdVersion))
	}
	switch {
	case p.MarkCompacted && len(p.StaleKeys) > 0:
		w("  revision  %d -> %d (+1 for the lease deletions, +%d), older revisions marked compacted", p.Revision, p.NewRevision, p.NewRevision-p.Revision-1)
	case p.MarkCompacted:
		w("  revision  %d -> %d (+%d), older revisions marked compacted", p.Revision, p.NewRevision, p.NewRevision-p.Revision)
	default:
		w("  revision  %d (not bumped: clients that saw newer revisions will misbehave)", p.NewRevision)
	}
	if p.Manifest != nil {
		w("  manifest  %s", c(p.Manifest.Path))
	} else {
		w("  manifest  none")
	}
	m := p.Membership
	w("  member    %s, peer urls %s, token %s (from %s)", c(m.Name), c(strings.Join(m.PeerURLs, ",")), c(m.Token), c(m.From))
	w("  cluster   %s", c(m.InitialCluster))
	if p.DataDirConfirmed {
		w("  data dir  %s (%s, %s)", c(p.DataDir), p.DataDirFrom, dataDirNow(p.DataDirState))
	} else {
		w("  data dir  %s (%s) is only a candidate, from %s: pass --data-dir %s to confirm", c(p.DataDir), dataDirNow(p.DataDirState), p.DataDirFrom, c(p.DataDir))
	}
	w("  build     %s", c(p.BuildDir))
	switch p.DataDirState {
	case restore.DataDirEtcd:
		w("  move      %s -> %s (kept, not deleted)", c(p.DataDir), c(p.Backup))
	case restore.DataDirEmpty:
		w("  replace   the empty directory %s", c(p.DataDir))
	}
	w("  write     %s (0700)", c(p.DataDir))
	if p.InitialMmapSize > 0 {
		w("  mmap      %d bytes", p.InitialMmapSize)
	}
	q := p.Quota
	switch {
	case q.Bytes == 0:
		w("  db size   %s; quota %s", humanBytes(q.DBSize), c(q.From))
	case q.Over && p.Compact:
		w("  db size   %s, too close to the quota of %s (%s): compacted and defragmented to fit", humanBytes(q.DBSize), humanBytes(q.Bytes), c(q.From))
	case q.Over && q.DBSize >= q.Bytes:
		w("  db size   %s, over the quota of %s (%s): etcd would reject the first write and raise NOSPACE", humanBytes(q.DBSize), humanBytes(q.Bytes), c(q.From))
	case q.Over:
		w("  db size   %s, within %s of the quota of %s (%s): etcd would reject large writes and raise NOSPACE again", humanBytes(q.DBSize), humanBytes(restore.MaxRequestBytes), humanBytes(q.Bytes), c(q.From))
	default:
		w("  db size   %s of the quota %s (%s), %d%%", humanBytes(q.DBSize), humanBytes(q.Bytes), c(q.From), q.DBSize*100/q.Bytes)
	}
	if p.Compact {
		at := p.Revision
		if len(p.StaleKeys) > 0 {
			at++ // after the deletions
		}
		w("  compact   keep the newest revision of each key (compaction at revision %d), then defragment", at)
	}
	if len(p.Alarms) == 0 {
		w("  alarms    none")
	}
	for _, a := range p.Alarms {
		w("  alarm     %s (raised by member %s): cleared in the restored db; carried over, %s", c(a.Type), c(a.MemberID), restore.AlarmConsequence(a.Type))
	}
	if p.CleanLeases {
		w("  leases    %d to delete before etcd starts (stale on new hardware):", len(p.StaleKeys))
		for _, k := range p.StaleKeys {
			w("  delete    %s", c(k))
		}
	}
	for _, ch := range p.Checks {
		w("  checked   %s", c(ch))
	}
	if p.KubeDir != "" {
		counts := map[string]int{}
		for _, ch := range p.KubeChanges {
			counts[ch.Action]++
			if ch.Action != "unchanged" {
				line := fmt.Sprintf("  kube dir  %-9s %s", ch.Action, c(ch.Path))
				if ch.Backup != "" {
					line += " (old kept as " + c(ch.Backup) + ")"
				}
				w("%s", line)
			}
		}
		w("  kube dir  %s: %d to create, %d to replace, %d unchanged", c(p.KubeDir), counts["create"], counts["replace"], counts["unchanged"])
	}
	if p.Recover != "" {
		w("  if interrupted after the move, put the old data dir back with: %s", c(p.Recover))
	}
	for _, n := range p.Notes {
		w("  note: %s", c(n))
	}
	for _, b := range p.Blockers {
		if b.Refuses {
			w("  BLOCKER: %s", c(b.Message))
		} else {
			w("  WARNING: %s", c(b.Message))
		}
	}
}

func dataDirNow(state string) string {
	switch state {
	case restore.DataDirEtcd:
		return "an etcd data dir now"
	case restore.DataDirEmpty:
		return "an empty directory now"
	}
	return "absent now"
}
