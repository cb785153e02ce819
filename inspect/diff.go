package inspect

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"iter"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/internal/par"
)

// ChangeKind says how a key differs between two snapshots.
type ChangeKind int

// The kinds of [Change].
const (
	Added    ChangeKind = iota + 1 // in B only
	Deleted                        // in A only
	Modified                       // in both, with different values
)

func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Deleted:
		return "deleted"
	case Modified:
		return "modified"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one key whose newest value differs between snapshot A and B.
type Change struct {
	Key  string
	Kind ChangeKind
	// A and B are the key's entries, as [Snapshot.Index] would return
	// them; nil on the side that lacks it.
	A, B *Entry
}

// DiffOptions configures [Diff].
type DiffOptions struct {
	// SameLineage says that A and B are two moments of one cluster's
	// history (see [Snapshot.Lineage] and [CompareLineage]): a key with
	// the same create and mod revision on both sides then holds the same
	// value, and only keys whose revisions differ have their values
	// compared. Without it every common key's values are read and
	// compared byte for byte (a restored cluster reuses revisions for
	// other values).
	SameLineage bool
	// Filter, if not nil, says whether a key takes part, and in which
	// class (a small number the caller chooses, below [MaxDiffClasses]:
	// a resource, say) it is counted in [DiffResult.LiveA] and LiveB. It
	// is called for every record the query's prefixes match, on several
	// goroutines at once; key is valid only during the call.
	Filter func(key []byte) (class int, keep bool)
}

// MaxDiffClasses bounds the classes of [DiffOptions.Filter].
const MaxDiffClasses = 1 << 16

// DiffResult is what [Diff] found.
type DiffResult struct {
	// Changes are the keys that differ, in key order.
	Changes []Change
	// Compared counts the common keys whose values were compared (by
	// size, or read on both sides when the sizes agree); Skipped those
	// SameLineage let through unread.
	Compared, Skipped int
	// LiveA and LiveB count the live keys of each side by the class
	// [DiffOptions.Filter] gave them (nil without Filter); TotalA and
	// TotalB count them all.
	LiveA, LiveB   []int
	TotalA, TotalB int
	// ProblemsA and ProblemsB are the records either walk could not read.
	ProblemsA, ProblemsB []Problem
}

// Diff compares the live keys q selects in a and b (their newest state,
// or as of q.Revision on both sides); Changes come in key order. Values
// are compared byte for byte (for Kubernetes objects: as stored,
// encrypted values included, so that a re-encryption counts as a change),
// unless SameLineage lets a key with the same revisions on both sides
// through unread.
//
// How, and why (issue 13: diff of two 1M-object snapshots within 2.5x
// `ls -A` of one and in 256 MiB; two [Snapshot.Index] calls would hold two
// full indexes, keys included):
//   - Each file is walked once (both at once, each cut into revision
//     ranges as Index does) into 48-byte records: a 128-bit hash of the
//     key (hash/maphash under two seeds drawn per process, so that no
//     input can be built to collide), the revision, the create revision,
//     the value's size and a class. No key is copied.
//   - Each side is sorted by (hash, revision) in place, partitioned on
//     the hash's top byte first (hashes are uniform: 256 even parts sorted
//     on every core), and keeps the newest record per key.
//   - The two sorted sides are merged. Only the keys that differ are
//     read back from the files, by revision, to recover their names and
//     entries; values are read only where SameLineage does not skip them,
//     on every core.
//
// Two different keys of one file with the same 128-bit hash would be
// taken for one (probability about n²/2¹²⁹: 10⁻²⁷ for a million keys); a
// key read back is checked against its pair.
func Diff(ctx context.Context, a, b *Snapshot, q Query, o DiffOptions) (*DiffResult, error) {
	q.Deleted = false
	var sa, sb diffSide
	var wg sync.WaitGroup
	wg.Go(func() { sa.err = sa.collect(ctx, a, &q, &o) })
	sb.err = sb.collect(ctx, b, &q, &o)
	wg.Wait()
	if sa.err != nil {
		return nil, fmt.Errorf("snapshot A: %w", sa.err)
	}
	if sb.err != nil {
		return nil, fmt.Errorf("snapshot B: %w", sb.err)
	}
	res := &DiffResult{ProblemsA: sa.problems, ProblemsB: sb.problems, TotalA: len(sa.recs), TotalB: len(sb.recs)}
	if o.Filter != nil {
		res.LiveA, res.LiveB = sa.count(), sb.count()
	}
	type pending struct {
		kind ChangeKind
		x, y *diffRec
	}
	var changes, compare []pending
	ra, rb := sa.recs, sb.recs
	i, j := 0, 0
	for i < len(ra) || j < len(rb) {
		if (i+j)&0xffff == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var c int
		switch {
		case j == len(rb):
			c = -1
		case i == len(ra):
			c = 1
		default:
			c = ra[i].compareKey(&rb[j])
		}
		switch {
		case c < 0:
			changes = append(changes, pending{Deleted, &ra[i], nil})
			i++
		case c > 0:
			changes = append(changes, pending{Added, nil, &rb[j]})
			j++
		default:
			x, y := &ra[i], &rb[j]
			i, j = i+1, j+1
			switch {
			case o.SameLineage && x.create == y.create && x.main == y.main && x.sub == y.sub:
				res.Skipped++
			case x.size != y.size:
				res.Compared++
				changes = append(changes, pending{Modified, x, y})
			default:
				res.Compared++
				compare = append(compare, pending{Modified, x, y})
			}
		}
	}

	// Values of the same size, read on every core, in the order of A's
	// revisions: the files are read near sequentially, not at random.
	slices.SortFunc(compare, func(p, q pending) int { return cmp.Compare(p.x.main, q.x.main) })
	differs := make([]bool, len(compare))
	var firstErr error
	var errOnce sync.Once
	const chunk = 1024
	par.Do((len(compare)+chunk-1)/chunk, runtime.GOMAXPROCS(0), func(n int) {
		if ctx.Err() != nil {
			return
		}
		part := compare[n*chunk : min(len(compare), (n+1)*chunk)]
		err := sameValues(a, b, func(yield func(x, y *diffRec) bool) {
			for k := range part {
				if !yield(part[k].x, part[k].y) {
					return
				}
			}
		}, func(k int) { differs[n*chunk+k] = true })
		if err != nil {
			errOnce.Do(func() { firstErr = err })
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	for k := range compare {
		if differs[k] {
			changes = append(changes, compare[k])
		}
	}
	compare = nil

	// Read back the changed keys' entries.
	out := make([][]Change, len(changes))
	par.Do(len(changes), runtime.GOMAXPROCS(0), func(k int) {
		if ctx.Err() != nil {
			return
		}
		p := changes[k]
		var ea, eb *Entry
		var err error
		if p.x != nil {
			if ea, err = a.entryAt(p.x); err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("snapshot A: %w", err) })
				return
			}
		}
		if p.y != nil {
			if eb, err = b.entryAt(p.y); err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("snapshot B: %w", err) })
				return
			}
		}
		switch {
		case ea == nil:
			out[k] = []Change{{Key: eb.Key, Kind: Added, B: eb}}
		case eb == nil:
			out[k] = []Change{{Key: ea.Key, Kind: Deleted, A: ea}}
		case ea.Key != eb.Key: // two keys with one hash: cannot be, but never guess
			out[k] = []Change{{Key: ea.Key, Kind: Deleted, A: ea}, {Key: eb.Key, Kind: Added, B: eb}}
		default:
			out[k] = []Change{{Key: ea.Key, Kind: Modified, A: ea, B: eb}}
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	for _, cs := range out {
		res.Changes = append(res.Changes, cs...)
	}
	sort.Slice(res.Changes, func(i, j int) bool {
		ci, cj := &res.Changes[i], &res.Changes[j]
		if ci.Key != cj.Key {
			return ci.Key < cj.Key
		}
		return ci.Kind < cj.Kind
	})
	return res, nil
}

// entryAt reads the record r stands for back from the file.
func (s *Snapshot) entryAt(r *diffRec) (*Entry, error) {
	rev := decode.Revision{Main: r.main, Sub: int64(r.sub)}
	rec, err := s.Get(rev)
	if err != nil {
		return nil, err
	}
	return &Entry{Key: string(rec.Key), Rev: rev, CreateRevision: rec.CreateRevision, ModRevision: rec.ModRevision,
		Version: rec.Version, Lease: rec.Lease, ValueSize: int32(min(len(rec.Value), 1<<31-1)), enc: providers.id(rec.Value)}, nil
}

// sameValues reads the records of each pair from a and b with one cursor
// per file and calls differ with the pair's number when key or value
// differ. The records are missing only in a damaged file.
func sameValues(a, b *Snapshot, pairs iter.Seq2[*diffRec, *diffRec], differ func(k int)) error {
	return guard("compare values", func() error {
		ca, cb := a.tx.Bucket(bucketKey).Cursor(), b.tx.Bucket(bucketKey).Cursor()
		var ka, kb [decode.RevisionLen]byte
		k := 0
		for x, y := range pairs {
			va, err := valueAt(ca, ka[:], x)
			if err != nil {
				return fmt.Errorf("snapshot A: %w", err)
			}
			vb, err := valueAt(cb, kb[:], y)
			if err != nil {
				return fmt.Errorf("snapshot B: %w", err)
			}
			if !bytes.Equal(va.Key, vb.Key) || !bytes.Equal(va.Value, vb.Value) {
				differ(k)
			}
			k++
		}
		return nil
	})
}

// valueAt reads the put r stands for with c, its revision key built in buf.
func valueAt(c *bolt.Cursor, buf []byte, r *diffRec) (decode.KeyValue, error) {
	binary.BigEndian.PutUint64(buf[0:8], uint64(r.main))
	buf[8] = '_'
	binary.BigEndian.PutUint64(buf[9:17], uint64(r.sub))
	k, v := c.Seek(buf)
	if !bytes.Equal(k, buf) {
		return decode.KeyValue{}, fmt.Errorf("no record at revision %d_%d", r.main, r.sub)
	}
	return decode.ParseKeyValue(v)
}

// Stat counts the changes by kind, e.g. "2 added, 1 deleted, 3 modified".
func (r *DiffResult) Stat() string {
	var n [4]int
	for _, c := range r.Changes {
		n[c.Kind]++
	}
	parts := []string{}
	for _, k := range []ChangeKind{Added, Deleted, Modified} {
		parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
	}
	return strings.Join(parts, ", ")
}

// diffSeeds hash keys for every Diff of the process: both sides must
// agree, and a seed drawn at random keeps the hash from being predicted.
var diffSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// diffRec is what Diff keeps of one record: 48 bytes.
type diffRec struct {
	h0, h1 uint64 // the key's hash
	main   int64  // revision (the mod revision of a put)
	create int64
	sub    int32
	size   int32
	class  uint16
	tomb   bool
}

func (r *diffRec) compareKey(o *diffRec) int {
	switch {
	case r.h0 != o.h0:
		if r.h0 < o.h0 {
			return -1
		}
		return 1
	case r.h1 != o.h1:
		if r.h1 < o.h1 {
			return -1
		}
		return 1
	}
	return 0
}

func (r *diffRec) less(o *diffRec) bool {
	if c := r.compareKey(o); c != 0 {
		return c < 0
	}
	if r.main != o.main {
		return r.main < o.main
	}
	return r.sub < o.sub
}

// diffSide is one file's records.
type diffSide struct {
	recs     []diffRec
	problems []Problem
	err      error
}

// diffRun is what one walker of a side keeps.
type diffRun struct {
	filler[diffRec]
	problems []Problem
	err      error
}

// errBadSub is a record whose sub revision does not fit a diff record:
// no etcd transaction has 2³¹ operations.
var errBadSub = errors.New("sub revision out of range")

func (r *diffRun) collector(q *Query, o *DiffOptions) func(rev decode.Revision, v []byte) error {
	return func(rev decode.Revision, v []byte) error {
		if key, ok := decode.PeekKey(v); ok && !q.match(key) {
			return nil
		}
		kv, err := decode.ParseKeyValue(v)
		if err != nil {
			return err
		}
		if !q.match(kv.Key) {
			return nil
		}
		class := 0
		if o.Filter != nil {
			var keep bool
			if class, keep = o.Filter(kv.Key); !keep {
				return nil
			}
			if class < 0 || class >= MaxDiffClasses {
				class = 0
			}
		}
		if rev.Sub > 1<<31-1 {
			return errBadSub
		}
		e := r.slot()
		*e = diffRec{h0: maphash.Bytes(diffSeeds[0], kv.Key), h1: maphash.Bytes(diffSeeds[1], kv.Key),
			main: rev.Main, sub: int32(rev.Sub), class: uint16(class), tomb: rev.Tombstone}
		if !rev.Tombstone {
			e.create = kv.CreateRevision
			e.size = int32(min(len(kv.Value), 1<<31-1))
		}
		return nil
	}
}

// collect walks s into d.recs, sorted by key hash, one (the newest) per
// live key.
func (d *diffSide) collect(ctx context.Context, s *Snapshot, q *Query, o *DiffOptions) error {
	ranges := s.splitRevisions(q.Revision, indexWalkers(s.FileSize))
	var shared *sharedSlice[diffRec]
	if q.Exact == nil && len(q.Prefixes) == 0 && o.Filter == nil {
		shared = newSharedSlice[diffRec](s, len(ranges))
	}
	runs := make([]diffRun, len(ranges))
	var wg sync.WaitGroup
	for i := range ranges {
		wg.Go(func() {
			r := &runs[i]
			r.shared = shared
			r.problems, r.err = s.walkRange(ctx, ranges[i][0], ranges[i][1], q.Revision, r.collector(q, o))
			r.finish()
		})
	}
	wg.Wait()
	for i := range runs {
		if runs[i].err != nil {
			return runs[i].err
		}
		d.problems = append(d.problems, runs[i].problems...)
	}
	fills := make([]*filler[diffRec], len(runs))
	for i := range runs {
		fills[i] = &runs[i].filler
	}
	rs := gather(shared, fills)
	runs = nil
	rs = newestByHash(rs, runtime.GOMAXPROCS(0))
	if len(rs) < cap(rs)/2 {
		rs = append([]diffRec(nil), rs...) // most records were history
	}
	d.recs = rs
	return nil
}

// count counts the live records by class.
func (d *diffSide) count() []int {
	n := []int{}
	for i := range d.recs {
		c := int(d.recs[i].class)
		if c >= len(n) {
			n = append(n, make([]int, c+1-len(n))...)
		}
		n[c]++
	}
	return n
}

// newestByHash sorts rs by (hash, revision) and keeps each key's newest
// record if it is a put, in place. Hashes are uniform: rs is partitioned
// on their top byte in one counting pass and one pass of swaps, and the
// 256 parts are sorted on every core.
func newestByHash(rs []diffRec, cores int) []diffRec {
	const parts = 256
	var starts, ends [parts]int
	for i := range rs {
		ends[rs[i].h0>>56]++
	}
	for g, at := 0, 0; g < parts; g++ {
		starts[g] = at
		at += ends[g]
		ends[g] = at
	}
	next := starts
	for g := range parts {
		for next[g] < ends[g] {
			e := rs[next[g]]
			for int(e.h0>>56) != g {
				t := e.h0 >> 56
				rs[next[t]], e = e, rs[next[t]]
				next[t]++
			}
			rs[next[g]] = e
			next[g]++
		}
	}
	var kept [parts]int
	par.Do(parts, cores, func(g int) {
		part := rs[starts[g]:ends[g]]
		slices.SortFunc(part, func(x, y diffRec) int {
			if x.less(&y) {
				return -1
			}
			if y.less(&x) {
				return 1
			}
			return 0
		})
		out := part[:0]
		for i := 0; i < len(part); {
			j := i + 1
			for j < len(part) && part[j].compareKey(&part[i]) == 0 {
				j++
			}
			if last := part[j-1]; !last.tomb {
				out = append(out, last)
			}
			i = j
		}
		kept[g] = len(out)
	})
	n := 0
	for g := range parts {
		n += copy(rs[n:], rs[starts[g]:starts[g]+kept[g]])
	}
	return rs[:n]
}

// Lineage is what a file tells of the cluster history it belongs to.
type Lineage struct {
	// Members are the IDs in the members bucket, sorted (nil when the
	// bucket is missing or a record does not parse).
	Members []uint64
	// Revision is the newest revision in the key bucket; CompactRevision
	// the last finished compaction.
	Revision, CompactRevision int64
	// ConsistentIndex and Term are the raft position of the meta bucket
	// (0 when absent: etcd before 3.4).
	ConsistentIndex, Term uint64
}

// Lineage reads the file's [Lineage].
func (s *Snapshot) Lineage() (Lineage, error) {
	var l Lineage
	rev, err := s.Revision()
	if err != nil {
		return l, err
	}
	l.Revision, l.CompactRevision = rev, s.CompactRevision()
	err = guard("read members and meta", func() error {
		if b := s.tx.Bucket(bucketMeta); b != nil {
			l.ConsistentIndex, _ = decode.ParseUint64(b.Get([]byte("consistent_index")))
			l.Term, _ = decode.ParseUint64(b.Get([]byte("term")))
		}
		b := s.tx.Bucket(bucketMembers)
		if b == nil {
			return nil
		}
		var ids []uint64
		bad := false
		_ = b.ForEach(func(_, v []byte) error {
			m, err := decode.ParseMember(v)
			if err != nil {
				bad = true
				return nil
			}
			ids = append(ids, m.ID)
			return nil
		})
		if !bad {
			slices.Sort(ids)
			l.Members = ids
		}
		return nil
	})
	return l, err
}

// LineageVerdict is [CompareLineage]'s answer.
type LineageVerdict struct {
	// Same: the files are two moments of one cluster's history, as far as
	// they can show it; a key with the same create and mod revision holds
	// the same value on both sides.
	Same bool
	// Reason says why, in a sentence for the user.
	Reason string
	// A and B are what each file showed.
	A, B Lineage
}

// lineageProbe is how many of the older file's newest records are looked
// up in the newer one.
const lineageProbe = 256

// CompareLineage decides from the files alone whether a and b are two
// moments of one cluster's history. A cluster's ID is a hash of its first
// members' IDs, and the files carry no ID of their own but their members
// bucket; within one history, revisions, the raft index and the term only
// grow, and a record is never rewritten in place. So the rule, with the
// older file (lower revision) O and the newer N:
//   - the two member sets are known and equal (a member replaced since
//     makes the answer "not shown": values are then compared);
//   - N's consistent index and term are not below O's (a restore
//     restarts the raft log: `etcdutl snapshot restore` writes index =
//     number of members, term 1);
//   - each of O's newest [lineageProbe] records whose revision N has not
//     compacted away is in N, byte for byte (a cluster restored from an
//     older backup reuses those revisions for other writes).
//
// The answer errs towards "not the same": a wrong "same" would hide
// changes, a wrong "not the same" only costs reading the values.
func CompareLineage(a, b *Snapshot) (LineageVerdict, error) {
	la, err := a.Lineage()
	if err != nil {
		return LineageVerdict{}, fmt.Errorf("snapshot A: %w", err)
	}
	lb, err := b.Lineage()
	if err != nil {
		return LineageVerdict{}, fmt.Errorf("snapshot B: %w", err)
	}
	v := LineageVerdict{A: la, B: lb}
	older, newer, lo, ln, on := a, b, la, lb, "B"
	if lb.Revision < la.Revision {
		older, newer, lo, ln, on = b, a, lb, la, "A"
	}
	switch {
	case la.Members == nil || lb.Members == nil:
		v.Reason = "a file has no readable members bucket"
		return v, nil
	case !slices.Equal(la.Members, lb.Members):
		v.Reason = fmt.Sprintf("the member sets differ (%s vs %s)", memberList(la.Members), memberList(lb.Members))
		return v, nil
	case lo.ConsistentIndex > 0 && ln.ConsistentIndex > 0 && ln.ConsistentIndex < lo.ConsistentIndex:
		v.Reason = fmt.Sprintf("the raft index went back (%d, then %d at a higher revision): a restore", lo.ConsistentIndex, ln.ConsistentIndex)
		return v, nil
	case lo.Term > 0 && ln.Term > 0 && ln.Term < lo.Term:
		v.Reason = fmt.Sprintf("the raft term went back (%d, then %d at a higher revision): a restore", lo.Term, ln.Term)
		return v, nil
	}
	bad, err := probeRecords(older, newer, ln.CompactRevision)
	if err != nil {
		return v, err
	}
	if bad != "" {
		v.Reason = fmt.Sprintf("the record at revision %s differs in %s: revisions were reused (a restore)", bad, on)
		return v, nil
	}
	v.Same = true
	if on == "B" {
		v.Reason = fmt.Sprintf("same members (%s), B's revision, raft index and term not below A's, A's newest records unchanged in B", memberList(la.Members))
	} else {
		v.Reason = fmt.Sprintf("same members (%s), A's revision, raft index and term not below B's, B's newest records unchanged in A", memberList(la.Members))
	}
	return v, nil
}

// probeRecords looks up older's newest records in newer: a record at or
// above newer's compaction must be there, byte for byte. It returns the
// revision of the first that is not, or "".
func probeRecords(older, newer *Snapshot, compacted int64) (string, error) {
	var bad string
	err := guard("probe records", func() error {
		co := older.tx.Bucket(bucketKey).Cursor()
		cn := newer.tx.Bucket(bucketKey).Cursor()
		n := 0
		for k, v := co.Last(); k != nil && n < lineageProbe; k, v = co.Prev() {
			n++
			rev, err := decode.ParseRevision(k)
			if err != nil {
				continue // the walk reports it
			}
			if rev.Main < compacted {
				break
			}
			nk, nv := cn.Seek(k)
			if !bytes.Equal(nk, k) || !bytes.Equal(nv, v) {
				bad = rev.String()
				return nil
			}
		}
		return nil
	})
	return bad, err
}

func memberList(ids []uint64) string {
	if len(ids) == 0 {
		return "none"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprintf("%x", id)
	}
	return strings.Join(s, ",")
}
