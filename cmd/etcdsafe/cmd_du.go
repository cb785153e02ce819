package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/duhtml"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/internal/table"
	"github.com/etcdsafe/etcdsafe/internal/termtext"
	"github.com/etcdsafe/etcdsafe/internal/units"
	"github.com/etcdsafe/etcdsafe/restore"
	"github.com/etcdsafe/etcdsafe/source"
)

type duOptions struct {
	src    sourceOptions
	output string
	top    int
	html   string
	force  bool
	quota  string
}

func newDuCmd() *cobra.Command {
	o := &duOptions{}
	c := &cobra.Command{
		Use:   "du SOURCE",
		Short: "Show what fills the db: bytes by resource, namespace and key, history, quota",
		Long: `Show what fills an etcd db, the question of a NOSPACE alarm: bytes and revisions by
resource, namespace and key, live against history, the keys with the most revisions in the
file (churn), Events' share, what a compaction would free (older versions, deleted keys,
tombstones), what a defrag would free (the db's size against its pages in use), and the
quota in use.

Bytes are those of the key bucket's records (the revision key and the stored KeyValue, key
and value); bbolt's pages and free space make up the rest of the db size. The quota is
--quota-backend-bytes, else the one etcd's static pod manifest in the archive sets
(kubernetes/manifests/etcd.yaml, when SOURCE is a backup archive with the kube dir), else
etcd's default of 2 GiB, labelled as such. etcd counts the db's size, free pages included,
against the quota: a defrag gives them back.

-o json is the report as one object (its fields are documented in docs/ARCHITECTURE.md, "du");
every list holds the --top biggest. --html FILE also writes one self-contained page (no
network: everything inline) with a treemap of resource -> namespace -> object by bytes and
the tables; it is written atomically, mode 0600, and an existing FILE is kept unless
--force.` + exitStatus(exitRead...),
		Example: `  etcdsafe du snapshot.db
  etcdsafe du /var/backups/etcd/prod-20261202T030000Z.tar.zst.age -i key.txt --html du.html
  etcdsafe du s3://backups/etcd/prod-20261202T030000Z.tar.zst.age -i key.txt
  etcdsafe du /var/lib/etcd --quota-backend-bytes 8Gi --top 5 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(args[0]); err != nil {
				return err
			}
			return runDu(cmd, o, args[0], cmd.OutOrStdout())
		},
	}
	o.src.addFlags(c.Flags())
	addOutputFlag(c.Flags(), &o.output, "table", "json")
	c.Flags().IntVar(&o.top, "top", 10, "rows of each list (resources, namespaces, keys)")
	c.Flags().StringVar(&o.html, "html", "", "also write the report as a self-contained HTML page with a treemap to this file")
	c.Flags().BoolVar(&o.force, "force", false, "replace an existing --html file")
	c.Flags().StringVar(&o.quota, "quota-backend-bytes", "", "etcd's quota (bytes, or 8Gi, 8G...); default: the archived etcd manifest's, else etcd's 2 GiB")
	return c
}

func (o *duOptions) validate(src string) error {
	if o.top < 1 {
		return usagef("--top must be at least 1")
	}
	if o.quota != "" {
		if _, err := parseQuota(o.quota); err != nil {
			return usagef("--quota-backend-bytes: %v", err)
		}
	}
	if o.html != "" {
		if st, err := os.Stat(o.html); err == nil {
			switch {
			case st.IsDir():
				return usagef("--html %s is a directory", o.html)
			case !o.force:
				return usagef("--html %s already exists; --force replaces it", o.html)
			}
			if same, _ := sameFile(o.html, src); same {
				return usagef("--html %s is SOURCE itself", o.html)
			}
		}
		if st, err := os.Stat(filepath.Dir(o.html)); err != nil || !st.IsDir() {
			return usagef("--html %s: no such directory %s", o.html, filepath.Dir(o.html))
		}
	}
	return nil
}

// sameFile reports whether a and b name one file.
func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// parseQuota reads a byte count: a number, or a quantity (8Gi, 8G).
func parseQuota(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("%q is not a positive number of bytes", s)
		}
		return n, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number of bytes (e.g. 8589934592 or 8Gi)", s)
	}
	n, ok := q.AsInt64()
	if !ok || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive whole number of bytes", s)
	}
	return n, nil
}

// quotaOf picks the quota: the flag, else the archive's etcd manifest,
// else none (etcd's default). A manifest that does not parse is warned of.
func quotaOf(o *duOptions, s *source.Source, stderr io.Writer) (int64, string) {
	if o.quota != "" {
		n, _ := parseQuota(o.quota) // validated
		return n, "flag"
	}
	if s.EtcdManifest == nil {
		return 0, ""
	}
	m, err := restore.ParseEtcdManifest(s.EtcdManifest)
	if err != nil {
		fmt.Fprintf(stderr, "etcdsafe: warning: the archive's etcd manifest: %v; quota: etcd's default\n", err)
		return 0, ""
	}
	if m.QuotaBackendBytes == "" {
		return 0, ""
	}
	n, err := strconv.ParseInt(m.QuotaBackendBytes, 10, 64)
	if err != nil || n <= 0 {
		fmt.Fprintf(stderr, "etcdsafe: warning: the archive's etcd manifest: --quota-backend-bytes=%q is not a number of bytes; quota: etcd's default\n", m.QuotaBackendBytes)
		return 0, ""
	}
	return n, "manifest"
}

// duReport is -o json: the source and the usage.
type duReport struct {
	Source string `json:"source"`
	*inspect.Usage
}

func runDu(cmd *cobra.Command, o *duOptions, path string, out io.Writer) (err error) {
	ctx := cmd.Context()
	s, err := openSource(cmd, path, &o.src)
	if err != nil {
		return err
	}
	defer s.Close()
	defer func() { err = s.Settle(ctx, err) }()
	quota, quotaSource := quotaOf(o, s, cmd.ErrOrStderr())
	u, err := s.Snapshot.Usage(ctx, inspect.UsageOptions{Table: s.Table, Prefix: s.Prefix, Top: o.top,
		QuotaBytes: quota, QuotaSource: quotaSource})
	if err != nil {
		return err
	}
	if err := s.Verdict(ctx); err != nil {
		return err // nothing written from a damaged source
	}
	if o.html != "" {
		if err := writeDuHTML(o, u, path); err != nil {
			return err
		}
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	if o.output == "json" {
		err = printJSON(bw, duReport{Source: path, Usage: trimUsage(u, o.top)})
	} else {
		err = printDu(cmd, bw, path, trimUsage(u, o.top), o.html)
	}
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if o.html != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "etcdsafe: wrote %s\n", o.html)
	}
	if len(u.Problems) > 0 {
		fails := &failures{w: cmd.ErrOrStderr()}
		fails.addProblems(u.Problems)
		return &partialError{n: fails.n, code: exitIntegrity}
	}
	return nil
}

// writeDuHTML commits the page: temp file beside it, fsync, rename.
func writeDuHTML(o *duOptions, u *inspect.Usage, path string) error {
	f, err := fsx.Create(o.html, 0o600)
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	defer f.Abort()
	f.NoReplace = !o.force
	bw := bufio.NewWriterSize(f, 64<<10)
	if err := duhtml.Write(bw, u, duhtml.Options{Source: path, Top: o.top}); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return usagef("--html %s already exists; --force replaces it", o.html)
		}
		return err
	}
	return nil
}

// trimUsage returns u with every list cut to n.
func trimUsage(u *inspect.Usage, n int) *inspect.Usage {
	t := *u
	cut := func(gs []inspect.Group) []inspect.Group { return gs[:min(n, len(gs))] }
	t.Resources, t.Namespaces, t.ResourceNamespaces = cut(u.Resources), cut(u.Namespaces), cut(u.ResourceNamespaces)
	t.Largest, t.Churning = u.Largest[:min(n, len(u.Largest))], u.Churning[:min(n, len(u.Churning))]
	return &t
}

func printDu(cmd *cobra.Command, w io.Writer, path string, u *inspect.Usage, html string) error {
	ctx := cmd.Context()
	pct := func(part, whole int64) string {
		if whole <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
	}
	quota := fmt.Sprintf("%.1f%% of %s used", u.Quota.UsedPercent, humanBytes(u.Quota.Bytes))
	switch u.Quota.Source {
	case "default":
		quota += " (etcd's default quota: --quota-backend-bytes not known)"
	case "manifest":
		quota += " (--quota-backend-bytes of the archived etcd manifest)"
	default:
		quota += " (--quota-backend-bytes)"
	}
	summary := [][2]string{
		{"Source", path},
		{"Revision", fmt.Sprintf("%d (last compaction: %d)", u.Revision, u.CompactRevision)},
		{"DB size", fmt.Sprintf("%s, in use %s: a defrag would free %s", humanBytes(u.DBSize), humanBytes(u.DBSizeInUse), humanBytes(u.Defrag))},
		{"Quota", quota},
		{"Keys", fmt.Sprintf("%s (%s live) in %s records, %s of them tombstones", units.Thousands(u.Total.Keys), units.Thousands(u.Total.LiveKeys),
			units.Thousands(u.Total.Revisions), units.Thousands(u.Total.Tombstones))},
		{"Record bytes", fmt.Sprintf("%s: live %s, history %s (%s)", humanBytes(u.Total.Bytes), humanBytes(u.Total.LiveBytes),
			humanBytes(u.Total.HistoryBytes), pct(u.Total.HistoryBytes, u.Total.Bytes))},
		{"Compaction", fmt.Sprintf("would free %s in %s records (older versions %s, deleted keys %s, tombstones %s)",
			humanBytes(u.Compaction.FreeBytes), units.Thousands(u.Compaction.FreeRecords), humanBytes(u.Compaction.OldVersionBytes),
			humanBytes(u.Compaction.DeletedBytes), humanBytes(u.Compaction.TombstoneBytes))},
		{"After compact+defrag", "about " + humanBytes(u.Compaction.SizeAfter)},
		{"Events", fmt.Sprintf("%s (%s of the record bytes) in %s keys", humanBytes(u.Events.Bytes), pct(u.Events.Bytes, u.Total.Bytes),
			units.Thousands(u.Events.Keys))},
	}
	if html != "" {
		summary = append(summary, [2]string{"HTML", html})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range summary {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], termtext.Clean(r[1]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	groups := func(title, first string, gs []inspect.Group, name func(*inspect.Group) string) error {
		fmt.Fprintf(w, "\n%s\n", title)
		_, err := table.Print(ctx, w, len(gs), table.Options{
			Header: []string{first, "KEYS", "REVISIONS", "BYTES", "LIVE", "HISTORY", "SHARE"},
			Row: func(i int, c []table.Cell) bool {
				g := &gs[i]
				c[0], c[1], c[2] = table.Text(name(g)), table.Int(g.Keys), table.Int(g.Revisions)
				c[3], c[4], c[5] = table.Text(humanBytes(g.Bytes)), table.Text(humanBytes(g.LiveBytes)), table.Text(humanBytes(g.HistoryBytes))
				c[6] = table.Text(pct(g.Bytes, u.Total.Bytes))
				return true
			}})
		return err
	}
	if err := groups("By resource:", "RESOURCE", u.Resources, func(g *inspect.Group) string { return g.Resource }); err != nil {
		return err
	}
	if err := groups("By namespace:", "NAMESPACE", u.Namespaces, func(g *inspect.Group) string {
		if g.ClusterScoped {
			return "(cluster-scoped)"
		}
		return g.Namespace
	}); err != nil {
		return err
	}
	keys := func(title string, ks []inspect.KeyUsage) error {
		fmt.Fprintf(w, "\n%s\n", title)
		if len(ks) == 0 {
			fmt.Fprintln(w, "(none)")
			return nil
		}
		_, err := table.Print(ctx, w, len(ks), table.Options{
			Header: []string{"KEY", "REVISIONS", "VERSION", "BYTES", "LIVE", "HISTORY"},
			Row: func(i int, c []table.Cell) bool {
				k := &ks[i]
				name := k.Key
				if k.Deleted {
					name += " (deleted)"
				}
				c[0], c[1], c[2] = table.Text(name), table.Int(k.Revisions), table.Int(k.Version)
				c[3], c[4], c[5] = table.Text(humanBytes(k.Bytes)), table.Text(humanBytes(k.LiveBytes)), table.Text(humanBytes(k.HistoryBytes))
				return true
			}})
		return err
	}
	if err := keys("Largest keys (all their records):", u.Largest); err != nil {
		return err
	}
	return keys("Churning keys (most revisions in the file):", u.Churning)
}
