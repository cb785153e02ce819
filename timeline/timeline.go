package timeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/par"
	"github.com/etcdsafe/etcdsafe/keyindex"
	"github.com/etcdsafe/etcdsafe/source"
)

// Backup is one backup Run reads: an archive (or any SOURCE) with what is
// known of it without reading it.
type Backup struct {
	// Name is the archive's name; Where its path or URL (what a command
	// takes as SOURCE).
	Name, Where string
	// Time is the backup's time (the sidecar's), else the file's; Revision
	// the snapshot's newest revision (0: unknown).
	Time     time.Time
	Revision int64
	// Sidecar is the archive's sidecar, nil without one.
	Sidecar *archive.Sidecar
	// Open opens the backup whole. The caller of Open closes the source.
	Open func(ctx context.Context) (*source.Source, error)
	// Index opens its key index; nil when it has none.
	Index func(ctx context.Context) (io.ReadCloser, error)
}

// Options configures [Run].
type Options struct {
	// Backups are the backups to read, in any order.
	Backups []Backup
	// Object is what to follow.
	Object Object
	// Identities decrypt the key indexes (the archives' own identities).
	Identities []age.Identity
	// NoIndex reads every backup whole, as if none had an index.
	NoIndex bool
	// Render shapes the objects shown (raw or create-ready, ...).
	Render decode.PresentOptions
	// ShowSecrets shows Secret values; by default each is replaced by
	// "(masked, N bytes[, changed])".
	ShowSecrets bool
	// Workers read indexes at once (default 2).
	Workers int
	// OnWarning is told of an index that could not be used (the backup is
	// then read whole) and of notes on rendering.
	OnWarning func(backup string, err error)
	// OnRead is told before each backup is read whole: i of n.
	OnRead func(i, n int, b *Backup)
}

// Result is an object's timeline.
type Result struct {
	// Object names what was followed; Key is its etcd key.
	Object Object `json:"object"`
	Key    string `json:"key"`
	// Backups are the backups read, oldest first.
	Backups []BackupInfo `json:"backups"`
	// Versions are the object's versions and events, oldest first.
	Versions []*Version `json:"versions"`
	// ReadWhole counts the backups read whole; ReadIndex those read by
	// their index only.
	ReadWhole int `json:"readWhole"`
	ReadIndex int `json:"readIndex"`
}

// BackupInfo is one backup as the timeline read it.
type BackupInfo struct {
	Name     string    `json:"name"`
	Where    string    `json:"where"`
	Time     time.Time `json:"time"`
	Revision int64     `json:"revision,omitempty"`
	// Read is "index", "whole" or "index+whole" (the index, then the
	// archive for a version's value).
	Read string `json:"read"`
	// Records counts the object's records the backup holds (history
	// included); Live says whether the object exists in it.
	Records int  `json:"records"`
	Live    bool `json:"live"`
	// Warning says why an index could not be used.
	Warning string `json:"warning,omitempty"`

	records []obs // the object's records, oldest first
}

// Events of a [Version].
const (
	Created   = "created"
	Updated   = "updated"
	Deleted   = "deleted"
	Recreated = "recreated"
	// FirstSeen: a version whose creation no backup holds (created before
	// the oldest backup, or its history was compacted away).
	FirstSeen = "first-seen"
	// Vanished: in one backup, absent from the next, and no backup holds
	// the deletion.
	Vanished = "vanished"
)

// Version is one version of the object, or its deletion.
type Version struct {
	Event string `json:"event"`
	// Revision is the put's (mod) revision or the deletion's; 0 for a
	// Vanished event. CreateRevision and Version are etcd's.
	Revision       int64 `json:"revision,omitempty"`
	CreateRevision int64 `json:"createRevision,omitempty"`
	Version        int64 `json:"version,omitempty"`
	// ValueSize and ValueSHA256 describe the stored value.
	ValueSize   int64  `json:"valueSize,omitempty"`
	ValueSHA256 string `json:"valueSHA256,omitempty"`
	// FirstSeen and LastSeen name the first and last backup holding the
	// record; SeenIn counts them.
	FirstSeen string `json:"firstSeen,omitempty"`
	LastSeen  string `json:"lastSeen,omitempty"`
	SeenIn    int    `json:"seenIn,omitempty"`
	// After and Before bound when it happened: after the newest backup
	// that does not hold it (nil: before the oldest), before the first
	// that does.
	After  *Bound `json:"after,omitempty"`
	Before *Bound `json:"before,omitempty"`
	// Manager, Operation and ManagedTime are from the newest entry of the
	// object's managedFields: who wrote it, and when.
	Manager     string     `json:"manager,omitempty"`
	Operation   string     `json:"operation,omitempty"`
	ManagedTime *time.Time `json:"managedTime,omitempty"`
	// Restore is where the version can be restored from: the newest
	// backup holding it.
	Restore *Bound `json:"restore,omitempty"`
	// Object is the version as shown (Secret values masked unless
	// ShowSecrets); Diff the unified YAML diff from the previous version
	// that has one (empty for the first, a deletion, or no change),
	// without metadata.resourceVersion and generation, which every write
	// or spec change bumps.
	Object map[string]any `json:"object,omitempty"`
	Diff   string         `json:"diff,omitempty"`
	// Note says more ("deleted and re-created between two backups", a
	// value that could not be decoded).
	Note string `json:"note,omitempty"`

	obs   []int // indexes of backups holding it
	first int
	sub   int64
	tomb  bool
	hash  [32]byte
	text  string // YAML without resourceVersion and generation, for diffs
	has   bool   // the value was read
	val   *decode.Value
}

// Bound is a backup and its time.
type Bound struct {
	Backup string    `json:"backup"`
	Where  string    `json:"where"`
	Time   time.Time `json:"time"`
}

// obs is one record of the object in one backup.
type obs struct {
	rev                  decode.Revision
	create, version      int64
	size                 int64
	hash                 [32]byte
	fromIndex, haveValue bool
	val                  *decode.Value // decoded, when read whole
	note                 string
}

// Run builds the timeline of o.Object over o.Backups.
func Run(ctx context.Context, o Options) (*Result, error) {
	m, err := o.Object.matcher()
	if err != nil {
		return nil, err
	}
	if len(o.Backups) == 0 {
		return nil, errors.New("timeline: no backups")
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.OnWarning == nil {
		o.OnWarning = func(string, error) {}
	}
	bs := append([]Backup(nil), o.Backups...)
	sort.SliceStable(bs, func(i, j int) bool {
		if !bs[i].Time.Equal(bs[j].Time) {
			return bs[i].Time.Before(bs[j].Time)
		}
		if bs[i].Revision != bs[j].Revision {
			return bs[i].Revision < bs[j].Revision
		}
		return bs[i].Name < bs[j].Name
	})
	t := &run{o: &o, bs: bs, m: m, keys: map[string]bool{}}
	t.res = &Result{Object: o.Object, Backups: make([]BackupInfo, len(bs))}
	for i, b := range bs {
		t.res.Backups[i] = BackupInfo{Name: b.Name, Where: b.Where, Time: b.Time.UTC(), Revision: b.Revision}
	}
	if err := t.readIndexes(ctx); err != nil {
		return nil, err
	}
	// backups without a usable index, whole
	var whole []int
	for i := range bs {
		if t.res.Backups[i].Read == "" {
			whole = append(whole, i)
		}
	}
	for n, i := range whole {
		if err := t.readWhole(ctx, i, n, len(whole)); err != nil {
			return nil, err
		}
	}
	if err := t.oneKey(); err != nil {
		return nil, err
	}
	t.versions()
	// then the archives that hold values no read gave yet
	for {
		i := t.bestArchive()
		if i < 0 {
			break
		}
		if err := t.readWhole(ctx, i, 0, 0); err != nil {
			return nil, err
		}
		t.versions()
	}
	t.finish()
	return t.res, nil
}

type run struct {
	o    *Options
	bs   []Backup
	m    *matcher
	keys map[string]bool
	res  *Result
	vs   []*Version
}

// readIndexes reads the key index of every backup that has one, a few at
// once; an index that cannot be used is warned of and its backup left to
// be read whole.
func (t *run) readIndexes(ctx context.Context) error {
	if t.o.NoIndex {
		return nil
	}
	type got struct {
		ix  *keyindex.Index
		err error
	}
	out := make([]got, len(t.bs))
	par.Do(len(t.bs), t.o.Workers, func(i int) {
		b := &t.bs[i]
		if b.Index == nil || ctx.Err() != nil {
			return
		}
		out[i].ix, out[i].err = readIndex(ctx, b, t.o.Identities, t.m.match)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, g := range out {
		bi := &t.res.Backups[i]
		switch {
		case g.ix == nil && g.err == nil:
			continue
		case g.err != nil:
			bi.Warning = g.err.Error()
			t.o.OnWarning(t.bs[i].Name, fmt.Errorf("%w; reading the archive whole", g.err))
			continue
		}
		bi.Read = "index"
		t.res.ReadIndex++
		for _, r := range g.ix.Records {
			t.keys[string(r.Key)] = true
			bi.records = append(bi.records, obs{rev: r.Revision, create: r.CreateRevision, version: r.Version, size: r.ValueSize, hash: r.ValueHash, fromIndex: true})
		}
	}
	return nil
}

// readIndex reads b's index and checks that it is bound to b: the
// sidecar's archive size and SHA-256, and the revision.
func readIndex(ctx context.Context, b *Backup, ids []age.Identity, match func([]byte) bool) (*keyindex.Index, error) {
	if b.Sidecar == nil {
		return nil, fmt.Errorf("key index of %s: the archive has no sidecar to bind its index to", b.Name)
	}
	rc, err := b.Index(ctx)
	if err != nil {
		return nil, fmt.Errorf("key index of %s: %w", b.Name, err)
	}
	defer rc.Close()
	ix, err := keyindex.Read(ctx, rc, keyindex.ReadOptions{Name: b.Name + keyindex.Suffix, Identities: ids, Match: match})
	if err != nil {
		return nil, err
	}
	if err := ix.CheckArchive(b.Sidecar.ArchiveSize, b.Sidecar.ArchiveSHA256, ""); err != nil {
		return nil, err
	}
	if b.Sidecar.Revision != 0 && ix.Header.Revision != b.Sidecar.Revision {
		return nil, &keyindex.Error{Name: ix.Name, Kind: keyindex.ErrMismatch,
			Reason: fmt.Sprintf("it describes revision %d, the sidecar %d", ix.Header.Revision, b.Sidecar.Revision)}
	}
	return ix, nil
}

// readWhole opens backup i whole and takes every record of the object,
// with its value. A backup read by its index must hold exactly the
// records the index listed.
func (t *run) readWhole(ctx context.Context, i, n, total int) error {
	b := &t.bs[i]
	bi := &t.res.Backups[i]
	if t.o.OnRead != nil {
		t.o.OnRead(n, total, b)
	}
	s, err := b.Open(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", b.Name, err)
	}
	defer s.Close()
	var recs []obs
	problems, err := s.Snapshot.Records(ctx, func(rec inspect.Record) error {
		if !t.m.match(rec.Key) {
			return nil
		}
		t.keys[string(rec.Key)] = true
		ob := obs{rev: rec.Rev, create: rec.CreateRevision, version: rec.Version, size: int64(len(rec.Value)), haveValue: !rec.Rev.Tombstone}
		if !rec.Rev.Tombstone {
			ob.hash = sha256.Sum256(rec.Value)
			ob.val, ob.note = t.decode(s, rec)
		}
		recs = append(recs, ob)
		return nil
	})
	if err == nil {
		err = s.Verdict(ctx)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", b.Name, err)
	}
	for _, p := range problems {
		t.o.OnWarning(b.Name, p)
	}
	if bi.Read == "index" {
		if err := sameRecords(bi.records, recs); err != nil {
			return &keyindex.Error{Name: b.Name + keyindex.Suffix, Kind: keyindex.ErrMismatch, Reason: err.Error()}
		}
		bi.Read = "index+whole"
		t.res.ReadIndex--
	} else {
		bi.Read = "whole"
	}
	t.res.ReadWhole++
	bi.records = recs
	return nil
}

// sameRecords compares an index's records of the object with the
// archive's.
func sameRecords(ix, whole []obs) error {
	if len(ix) != len(whole) {
		return fmt.Errorf("it lists %d records of the object, the archive holds %d", len(ix), len(whole))
	}
	for i := range ix {
		a, b := &ix[i], &whole[i]
		if a.rev != b.rev || a.create != b.create || a.version != b.version || a.hash != b.hash || !a.rev.Tombstone && a.size != b.size {
			return fmt.Errorf("its record at revision %s differs from the archive's", a.rev)
		}
	}
	return nil
}

// decode decodes one value, or says why not.
func (t *run) decode(s *source.Source, rec inspect.Record) (*decode.Value, string) {
	switch decode.SniffEncoding(rec.Value) {
	case decode.EncodingText, decode.EncodingEmpty:
		return nil, "not a Kubernetes object"
	}
	v, err := s.Decoder.Decode(rec.Key, rec.Value)
	if err != nil {
		return nil, "could not be decoded: " + err.Error()
	}
	return v, ""
}

// oneKey fails when the object's name matched keys in several namespaces.
func (t *run) oneKey() error {
	switch len(t.keys) {
	case 0:
		return &NotFoundError{Object: t.o.Object, Backups: len(t.bs)}
	case 1:
		for k := range t.keys {
			t.res.Key = k
			if m := t.m; m.exact == nil && len(k) > len(m.prefix)+len(m.suffix) {
				t.res.Object.Namespace = k[len(m.prefix) : len(k)-len(m.suffix)]
			}
		}
		return nil
	}
	var ks []string
	for k := range t.keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return &AmbiguousError{Object: t.o.Object, Keys: ks}
}

// NotFoundError is an object no backup holds, live or deleted.
type NotFoundError struct {
	Object  Object
	Backups int
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s is in none of the %d backups, neither live nor deleted", e.Object, e.Backups)
}

// AmbiguousError is a name found in several namespaces; Keys are the
// keys.
type AmbiguousError struct {
	Object Object
	Keys   []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%s is in several namespaces, pick one with -n: %s", e.Object, strings.Join(e.Keys, ", "))
}

// versions merges every backup's records into versions, oldest first.
func (t *run) versions() {
	type id struct {
		rev  decode.Revision
		hash [32]byte
	}
	byID := map[id]*Version{}
	var vs []*Version
	for i := range t.res.Backups {
		for _, r := range t.res.Backups[i].records {
			k := id{r.rev, r.hash}
			v := byID[k]
			if v == nil {
				v = &Version{Revision: r.rev.Main, CreateRevision: r.create, Version: r.version, ValueSize: r.size,
					first: i, sub: r.rev.Sub, tomb: r.rev.Tombstone, hash: r.hash}
				if !r.rev.Tombstone {
					v.ValueSHA256 = hex.EncodeToString(r.hash[:])
				} else {
					v.ValueSize = 0
				}
				byID[k] = v
				vs = append(vs, v)
			}
			v.obs = append(v.obs, i)
			if r.haveValue && !v.has {
				v.has, v.val, v.Note = true, r.val, r.note
			}
		}
	}
	sort.SliceStable(vs, func(i, j int) bool {
		a, b := vs[i], vs[j]
		if a.first != b.first {
			return a.first < b.first
		}
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
		}
		return a.sub < b.sub
	})
	t.vs = vs
}

// bestArchive is the backup to read whole next: the one holding the most
// versions whose value no read gave yet (the newest on a tie); -1 when
// none is left.
func (t *run) bestArchive() int {
	best, most := -1, 0
	for i := range t.res.Backups {
		if t.res.Backups[i].Read != "index" {
			continue
		}
		n := 0
		for _, v := range t.vs {
			if v.tomb || v.has {
				continue
			}
			for _, j := range v.obs {
				if j == i {
					n++
				}
			}
		}
		if n > 0 && n >= most {
			best, most = i, n
		}
	}
	return best
}
