package restore

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/internal/units"
)

// DefaultQuotaBytes is etcd's backend quota when --quota-backend-bytes is
// not set (or 0): 2 GiB (go.etcd.io/etcd/server/v3/storage.DefaultQuotaBytes).
const DefaultQuotaBytes = 2 << 30

// MaxRequestBytes is etcd's default --max-request-bytes (1.5 MiB), the
// largest write kube-apiserver may send. etcd refuses a write when the db
// size plus the write's cost would pass the quota, so a db within this of
// the quota refuses large writes and raises NOSPACE again: a snapshot
// taken under NOSPACE is typically there, below the quota itself.
const MaxRequestBytes = 3 << 19

// Blocker kinds (see [Blocker]).
const (
	BlockEtcdRunning  = "etcd-running"   // etcd holds the data dir's db or listens on its client URL
	BlockKubeConflict = "kube-conflict"  // kube dir files differ from the archive's
	BlockOverQuota    = "over-quota"     // the db leaves no room for a write under the quota
	BlockNewerDataDir = "newer-data-dir" // the existing data dir is ahead of the snapshot (a warning)
)

// Blocker is something a dry run found that stops a real restore with the
// same options (Refuses), or that the operator must know before one (a
// warning: the restore goes ahead).
type Blocker struct {
	// Kind is one of the Block* constants.
	Kind string `json:"kind"`
	// Message says what was found, and how to get past it.
	Message string `json:"message"`
	// Refuses is true when a real restore with these options fails on it.
	Refuses bool `json:"refuses"`

	err error // what the real restore would return
}

// Err returns the error the real restore would fail with (nil for a
// warning).
func (b Blocker) Err() error { return b.err }

// Quota is the db's size set against etcd's --quota-backend-bytes.
type Quota struct {
	// DBSize is the size of the db etcd would open (the snapshot without
	// its SHA-256 trailer), which etcd's quota counts, free pages and
	// all. (Not the size in use: that takes a walk of every page, seconds
	// on a 2 GiB snapshot; 'etcdsafe du' tells it.)
	DBSize int64 `json:"dbSize"`
	// Bytes is the quota (0 when the manifest disables it with a negative
	// value); From says where it came from: "manifest <path>", or
	// "etcd's default" when no manifest sets it.
	Bytes int64  `json:"bytes"`
	From  string `json:"from"`
	// Over is true when the db leaves less than [MaxRequestBytes] under
	// the quota: etcd would refuse writes and raise NOSPACE.
	Over bool `json:"over"`
}

// snapshotFacts reads the alarms and the db size of the db at path
// (read-only; the trailer, if any, is not part of the size).
func snapshotFacts(path string) (alarms []decode.Alarm, size int64, problems []string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, nil, err
	}
	size = st.Size()
	if size%512 == sha256.Size {
		// etcdutl's rule for a trailer (bbolt files are whole pages); it
		// truncates the trailer away
		size -= sha256.Size
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return nil, 0, nil, fmt.Errorf("open db: %w", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("alarm"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			a, err := decode.ParseAlarm(k)
			if err != nil {
				problems = append(problems, "alarm bucket: "+err.Error())
				return nil
			}
			alarms = append(alarms, a)
			return nil
		})
	})
	return alarms, size, problems, err
}

// quotaOf reads --quota-backend-bytes from m as etcd does: unset or 0 is
// the default, negative disables the quota.
func quotaOf(m *EtcdManifest) (bytes int64, from string) {
	if m == nil || m.QuotaBackendBytes == "" {
		return DefaultQuotaBytes, "etcd's default"
	}
	n, err := strconv.ParseInt(m.QuotaBackendBytes, 10, 64)
	switch {
	case err != nil:
		return DefaultQuotaBytes, fmt.Sprintf("etcd's default; the manifest's --quota-backend-bytes=%q is not a number", m.QuotaBackendBytes)
	case n == 0:
		return DefaultQuotaBytes, "etcd's default (the manifest sets 0)"
	case n < 0:
		return 0, "disabled by the manifest " + m.Path
	}
	return n, "the manifest " + m.Path
}

// facts fills the plan's alarms and quota, from the staged or source db.
func (p *Plan) facts() error {
	alarms, size, problems, err := snapshotFacts(p.snapPath)
	if err != nil {
		return p.userPaths(fmt.Errorf("snapshot %s: %w", p.snapPath, err))
	}
	p.Notes = append(p.Notes, problems...)
	for _, a := range alarms {
		p.Alarms = append(p.Alarms, Alarm{Type: a.Type, MemberID: fmt.Sprintf("%x", a.MemberID)})
	}
	q := Quota{DBSize: size}
	q.Bytes, q.From = quotaOf(p.Manifest)
	q.Over = q.Bytes > 0 && q.DBSize+MaxRequestBytes > q.Bytes
	p.Quota = q
	return nil
}

// Alarm is an alarm raised in the snapshot's cluster (etcd's alarm bucket).
type Alarm struct {
	// Type is "NOSPACE" or "CORRUPT".
	Type string `json:"type"`
	// MemberID is the old member that raised it, in hex.
	MemberID string `json:"memberID"`
}

// AlarmConsequence says what an alarm would do to the restored cluster if
// it were carried over, and what clearing it means.
func AlarmConsequence(typ string) string {
	switch typ {
	case "NOSPACE":
		return "etcd would start with NOSPACE raised and refuse every write until 'etcdctl alarm disarm'"
	case "CORRUPT":
		return "the old cluster found its members' data differ: this snapshot may come from the damaged member; check it ('etcdsafe status --check', compare with another member's backup) before trusting it"
	}
	return "etcd would start with it raised"
}

// addBlocker records a blocker; in a real restore, a refusing one fails
// Prepare at once.
func (p *Plan) addBlocker(kind string, refuses bool, err error, msg string) error {
	if refuses && !p.opts.DryRun {
		return err
	}
	p.Blockers = append(p.Blockers, Blocker{Kind: kind, Message: msg, Refuses: refuses, err: err})
	return nil
}

// Refusal returns the error a real restore with the plan's options would
// fail with: that of its first refusing blocker, or nil. A dry run that
// finds blockers prints them all, then its command exits as the real
// restore would.
func (p *Plan) Refusal() error {
	for _, b := range p.Blockers {
		if b.Refuses {
			return b.err
		}
	}
	return nil
}

// checkQuota turns an oversized db into a blocker unless Compact may bring
// it under the quota (then Execute checks again after compacting).
func (p *Plan) checkQuota() error {
	q := p.Quota
	if !q.Over || p.opts.Compact {
		return nil
	}
	err := &QuotaError{Size: q.DBSize, Quota: q.Bytes, From: q.From}
	return p.addBlocker(BlockOverQuota, true, err, err.Error()+"; restore with --compact (newest revisions only, defragmented), or raise the manifest's --quota-backend-bytes")
}

// checkNewerDataDir warns when the data dir to replace is ahead of the
// snapshot: restoring rolls back what was written since.
func (p *Plan) checkNewerDataDir() {
	if p.DataDirState != DataDirEtcd {
		return
	}
	rev, err := latestRevision(p.DataDir + "/member/snap/db")
	if err != nil || rev <= p.Revision {
		return // a locked or damaged db: the running check says more
	}
	_ = p.addBlocker(BlockNewerDataDir, false, nil, fmt.Sprintf(
		"the data dir %s is at revision %d, ahead of the snapshot's %d: the restore rolls back %d revisions (the old dir is kept at %s)",
		p.DataDir, rev, p.Revision, rev-p.Revision, p.Backup))
}

// QuotaError means the db etcd would open leaves less than
// [MaxRequestBytes] under its quota: etcd would refuse writes and raise
// NOSPACE. It wraps [ErrOverQuota].
type QuotaError struct {
	// Size and Quota are in bytes; From says where the quota comes from.
	Size, Quota int64
	From        string
	// Compacted is true when the size is that of the compacted db.
	Compacted bool
}

func (e *QuotaError) Error() string {
	what := "the snapshot's db"
	if e.Compacted {
		what = "the compacted db"
	}
	if e.Size >= e.Quota {
		return fmt.Sprintf("%s is %s, not below etcd's quota of %s (%s): etcd would reject the first write and raise NOSPACE",
			what, humanBytes(e.Size), humanBytes(e.Quota), e.From)
	}
	return fmt.Sprintf("%s is %s, within %s (etcd's largest write) of its quota of %s (%s): etcd would reject large writes and raise NOSPACE again",
		what, humanBytes(e.Size), humanBytes(MaxRequestBytes), humanBytes(e.Quota), e.From)
}

// Unwrap returns [ErrOverQuota].
func (e *QuotaError) Unwrap() error { return ErrOverQuota }

// ErrOverQuota means the restored db would not fit etcd's quota; see
// [QuotaError].
var ErrOverQuota = errors.New("the db is over etcd's quota")

// humanBytes prints n in binary units with the exact count.
func humanBytes(n int64) string {
	if n < 1024 {
		return units.Bytes(n)
	}
	return fmt.Sprintf("%s (%d bytes)", units.Bytes(n), n)
}
