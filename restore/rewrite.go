package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/pkg/v3/traceutil"
	"go.etcd.io/etcd/server/v3/lease"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.uber.org/zap"

	"github.com/etcdsafe/etcdsafe/inspect"
)

// Keys that go stale when a control plane is restored on new hardware, as
// kube-apiserver writes them under its default --etcd-prefix.
const (
	// MasterLeasesPrefix holds one key per kube-apiserver (its IP), which
	// the "kubernetes" Service's endpoints are built from.
	MasterLeasesPrefix = "/registry/masterleases/"
	// APIServerLeasePrefix is kube-apiserver's identity Leases
	// (kube-system/apiserver-<hash>), one per apiserver process.
	APIServerLeasePrefix = "/registry/leases/kube-system/apiserver-"
	// NodeLeasePrefix is the kubelets' heartbeat Leases.
	NodeLeasePrefix = "/registry/leases/kube-node-lease/"
)

// staleLeasePrefixes are the prefixes CleanLeases removes, in plan order.
var staleLeasePrefixes = []string{MasterLeasesPrefix, APIServerLeasePrefix, NodeLeasePrefix}

// staleKeys lists the live keys under staleLeasePrefixes in the db at path.
func staleKeys(ctx context.Context, path string) ([]string, error) {
	s, err := inspect.Open(path, inspect.OpenOptions{LockTimeout: lockTimeout})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	q := inspect.Query{}
	for _, p := range staleLeasePrefixes {
		q.Prefixes = append(q.Prefixes, []byte(p))
	}
	entries, _, err := s.Index(ctx, q)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		keys = append(keys, e.Key)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return strings.Compare(a, b)
	})
	return keys, nil
}

// rewriteResult is what [rewriteDB] did.
type rewriteResult struct {
	// Revision is the newest revision after the deletions (the
	// snapshot's, plus one if any key was deleted).
	Revision int64
	// Deleted counts the keys deleted.
	Deleted int
	// Size is the db file size after the rewrite.
	Size int64
}

// rewriteDB copies the db at src (size bytes of it: without its trailer)
// to dst and rewrites dst through etcd's own storage code: the keys are
// deleted in one mvcc write (tombstones at the next revision, as an etcd
// DeleteRange writes them), then with compact the history is compacted at
// the newest revision (mvcc's compaction: only the newest revision of each
// live key remains) and the file defragmented (etcd backend's Defrag, the
// bbolt copy etcdutl defrag makes).
func rewriteDB(ctx context.Context, lg *zap.Logger, src, dst string, size int64, keys []string, compact bool) (res rewriteResult, err error) {
	if err := copyPrefix(src, dst, size); err != nil {
		return res, err
	}
	// etcd's mvcc and lease code panic on what they cannot read (a
	// damaged db): turn that into an error at this one boundary.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rewrite db: etcd's storage code failed: %v", r)
		}
	}()
	// No fsync: dst is a temp file in the staging dir that etcdutl's
	// restore copies (and syncs) into the data dir; a crash leaves it to
	// the next run's sweep.
	bcfg := backend.DefaultBackendConfig(lg)
	bcfg.Path, bcfg.UnsafeNoFsync = dst, true
	be := backend.New(bcfg)
	defer func() {
		if cerr := be.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close db: %w", cerr)
		}
	}()
	le := lease.NewLessor(lg, be, nil, lease.LessorConfig{MinLeaseTTL: 1})
	defer le.Stop()
	// etcd compacts in batches of 1000 revisions with a 10 ms pause
	// between them, so as not to stall a serving member; nothing is
	// served here, so the batches are large and the pauses nil (a 100k
	// object snapshot: 9 s with etcd's defaults).
	s := mvcc.NewStore(lg, be, le, mvcc.StoreConfig{CompactionBatchLimit: 100_000, CompactionSleepInterval: time.Nanosecond})
	if len(keys) > 0 {
		tw := s.Write(traceutil.TODO())
		for _, k := range keys {
			n, _ := tw.DeleteRange([]byte(k), nil)
			res.Deleted += int(n)
		}
		tw.End()
	}
	res.Revision = s.Rev()
	if compact {
		done, err := s.Compact(traceutil.TODO(), res.Revision)
		switch {
		case errors.Is(err, mvcc.ErrCompacted):
			// already compacted there: nothing older to drop
		case err != nil:
			_ = s.Close()
			return res, fmt.Errorf("compact at revision %d: %w", res.Revision, err)
		default:
			select {
			case <-done:
			case <-ctx.Done():
				_ = s.Close()
				return res, ctx.Err()
			}
		}
	}
	s.Commit()
	if err := s.Close(); err != nil {
		return res, fmt.Errorf("close mvcc store: %w", err)
	}
	if compact {
		if err := be.Defrag(); err != nil {
			return res, fmt.Errorf("defragment: %w", err)
		}
	}
	res.Size = be.Size()
	return res, ctx.Err()
}

// copyPrefix copies the first n bytes of src to a new 0600 file dst and
// syncs it.
func copyPrefix(src, dst string, n int64) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	buf := make([]byte, 1<<20)
	if w, err := io.CopyBuffer(out, io.LimitReader(in, n), buf); err != nil {
		return fmt.Errorf("copy db: %w", err)
	} else if w != n {
		return fmt.Errorf("copy db: %d of %d bytes: %w", w, n, io.ErrUnexpectedEOF)
	}
	return out.Sync()
}

// clearAlarms removes every alarm from the db at path through etcd's alarm
// schema, as 'etcdctl alarm disarm' would in a running cluster, and
// returns how many there were.
func clearAlarms(lg *zap.Logger, path string) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("clear alarms: etcd's storage code failed: %v", r)
		}
	}()
	be := backend.NewDefaultBackend(lg, path)
	defer func() {
		if cerr := be.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close db: %w", cerr)
		}
	}()
	ab := schema.NewAlarmBackend(lg, be)
	alarms, err := ab.GetAllAlarms()
	if err != nil {
		return 0, fmt.Errorf("read alarms: %w", err)
	}
	for _, a := range alarms {
		ab.MustDeleteAlarm(a)
	}
	be.ForceCommit()
	return len(alarms), nil
}

// rewrite runs [rewriteDB] on a copy of the snapshot in the build staging
// dir and returns that copy. mvcc's compaction keeps each key's newest
// record at or below the compaction revision (a deletion's tombstone too),
// so the newest record stays and etcdutl's bump lands where the plan said.
func (p *Plan) rewrite(ctx context.Context, stageDir string, res *Result) (string, error) {
	prepared := filepath.Join(stageDir, "prepared.db")
	rr, err := rewriteDB(ctx, p.opts.Logger, p.snapPath, prepared, p.Quota.DBSize, p.StaleKeys, p.opts.Compact)
	if err != nil {
		return "", fmt.Errorf("rewrite the restored db: %w", err)
	}
	res.KeysRemoved = rr.Deleted
	if st, err := os.Stat(prepared); err == nil && p.Quota.Bytes > 0 && st.Size()+MaxRequestBytes > p.Quota.Bytes {
		return "", &QuotaError{Size: st.Size(), Quota: p.Quota.Bytes, From: p.Quota.From, Compacted: p.opts.Compact}
	}
	return prepared, nil
}
