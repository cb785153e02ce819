package inspect

import (
	"context"
	"encoding/binary"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/internal/par"
)

// Index walks the key bucket once and returns the matching keys sorted by
// key, with the problems met on the way (in revision order). Values stay in
// the file; one [Entry] is returned per key.
//
// How, and why (issue 6: ls -A of a 1M-object snapshot near the bare
// cursor walk, under 256 MB):
//   - The bucket is cut into revision ranges walked at once, one goroutine
//     each (GOMAXPROCS of them on a large file). The walk is mostly page
//     faults on the mmap'd file (1M records, 2.1 GB: 0.4 s in a fresh
//     process, 0.06 s once mapped): on the 2-core machine here two walkers
//     take the same wall time as one; the parsing and copying they do is
//     what gets shared.
//   - Each matching record is kept as an Entry. A query over the whole
//     keyspace puts them straight into one slice sized by the bucket's
//     record count (bbolt keeps it in its page headers), the walkers taking
//     chunks of it in turn; a narrower query fills blocks of its own that
//     are copied into one slice at the end. Either way no slice doubles
//     (every smaller copy of a doubling slice is garbage: 200k keys once
//     allocated 153 MiB for 31 MiB kept).
//   - Each key is copied into an arena of its group (the first [groupLen]
//     bytes of the key): one allocation per chunk instead of one per key,
//     and the keys a sort compares, once partitioned, sit together.
//   - Instead of a map from key to newest record, the records are sorted by
//     (key, revision), which the output needs anyway, on every core, and
//     the newest record of each key decides: a put is the key's entry, a
//     deletion removes it (or, for Query.Deleted, marks the put before it).
func (s *Snapshot) Index(ctx context.Context, q Query) ([]Entry, []Problem, error) {
	ranges := s.splitRevisions(q.Revision, indexWalkers(s.FileSize))
	var shared *sharedSlice[Entry]
	if q.Exact == nil && len(q.Prefixes) == 0 {
		shared = newSharedSlice[Entry](s, len(ranges))
	}
	runs := make([]indexRun, len(ranges))
	var wg sync.WaitGroup
	for i := range ranges {
		wg.Go(func() {
			r := &runs[i]
			r.shared = shared
			r.problems, r.err = s.walkRange(ctx, ranges[i][0], ranges[i][1], q.Revision, r.collector(&q))
			r.finish()
		})
	}
	wg.Wait()
	var problems []Problem
	for i := range runs {
		if runs[i].err != nil {
			return nil, problems, runs[i].err
		}
		problems = append(problems, runs[i].problems...)
	}
	prefixes := rankGroups(runs, shared)
	fills := make([]*filler[Entry], len(runs))
	for i := range runs {
		fills[i] = &runs[i].filler
	}
	es := gather(shared, fills)
	runs = nil
	es = sortNewest(es, prefixes, runtime.GOMAXPROCS(0), q.Deleted)
	if len(es) < cap(es)/2 {
		es = append([]Entry(nil), es...) // most records were history: give the rest back
	}
	repackKeys(es)
	return es, problems, nil
}

// Knobs, which tests turn to take every path on small files.
var (
	indexWalkers    = walkers
	sharedSlack     = entrySlab // room per walker for its last chunk
	parallelSortMin = 1 << 15
)

// walkers is how many goroutines walk a file of size bytes: one per core on
// a large file, one on a small one (where starting them costs more than the
// walk).
func walkers(size int64) int {
	if size < 32<<20 {
		return 1
	}
	return min(runtime.GOMAXPROCS(0), 8)
}

// splitRevisions cuts the bucket into n ranges of bucket keys [from, to)
// by main revision, from the first record to the last (or maxRev). The
// first range starts at the first record (nil), the last ends at the end
// (nil). Records are spread over revisions roughly evenly; an uneven spread
// only costs balance, never correctness.
func (s *Snapshot) splitRevisions(maxRev int64, n int) [][2][]byte {
	whole := [][2][]byte{{nil, nil}}
	if n < 2 {
		return whole
	}
	var first, last decode.Revision
	err := guard("walk key bucket", func() error {
		c := s.tx.Bucket(bucketKey).Cursor()
		fk, _ := c.First()
		lk, _ := c.Last()
		var err error
		if first, err = decode.ParseRevision(fk); err != nil {
			return err
		}
		last, err = decode.ParseRevision(lk)
		return err
	})
	if err != nil {
		return whole // the walk will report what is wrong
	}
	hi := last.Main
	if maxRev > 0 && maxRev < hi {
		hi = maxRev
	}
	span := hi - first.Main
	if span < int64(n) {
		return whole
	}
	out := make([][2][]byte, n)
	var prev []byte
	for i := 1; i < n; i++ {
		b := binary.BigEndian.AppendUint64(nil, uint64(first.Main+span/int64(n)*int64(i)))
		out[i-1] = [2][]byte{prev, b}
		prev = b
	}
	out[n-1] = [2][]byte{prev, nil}
	return out
}

// indexRun is what one walker keeps.
type indexRun struct {
	filler[Entry]
	groups   map[string]*keyGroup
	prefixes []string // by group number
	arena0   keyArena // for keys past maxGroups groups
	overflow bool     // arena0 was used

	problems []Problem
	err      error
}

// keyGroup is the keys of one walker that start with the same groupLen
// bytes.
type keyGroup struct {
	id    uint16
	arena keyArena
}

// groupLen is how many leading key bytes name a key's arena.
const groupLen = 20

// maxGroups bounds the groups a walker keeps (a file of random keys
// would make one per key); past it, the entries are sorted without groups.
var maxGroups = 4096

// noGroup marks an entry whose walker ran out of groups.
const noGroup = 1<<16 - 1

// group returns the arena and the walker's number of key's group.
func (r *indexRun) group(key []byte) (*keyArena, uint16) {
	p := key[:min(len(key), groupLen)]
	if g := r.groups[string(p)]; g != nil {
		return &g.arena, g.id
	}
	if len(r.groups) >= maxGroups {
		r.overflow = true
		return &r.arena0, noGroup
	}
	if r.groups == nil {
		r.groups = map[string]*keyGroup{}
	}
	g := &keyGroup{id: uint16(len(r.prefixes))}
	r.groups[string(p)] = g
	r.prefixes = append(r.prefixes, string(p))
	return &g.arena, g.id
}

func (r *indexRun) collector(q *Query) func(rev decode.Revision, v []byte) error {
	return func(rev decode.Revision, v []byte) error {
		if key, ok := decode.PeekKey(v); ok && !q.match(key) {
			return nil // most records, on a targeted query
		}
		kv, err := decode.ParseKeyValue(v)
		if err != nil {
			return err
		}
		if !q.match(kv.Key) {
			return nil
		}
		e := r.slot()
		a, g := r.group(kv.Key)
		*e = Entry{Key: a.add(kv.Key), Rev: rev, grp: g}
		if !rev.Tombstone {
			e.CreateRevision, e.ModRevision, e.Version, e.Lease = kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease
			e.ValueSize = int32(min(len(kv.Value), 1<<31-1))
			e.enc = providers.id(kv.Value)
		}
		return nil
	}
}

// keyArena copies keys into shared buffers: one allocation per chunk
// instead of one per key, and a group's keys next to each other in memory.
type keyArena struct {
	buf []byte
}

const arenaChunk = 1 << 20

func (a *keyArena) add(k []byte) string {
	if len(k) == 0 {
		return ""
	}
	if len(k) > arenaChunk/8 {
		return string(k) // a huge key gets its own allocation
	}
	if len(a.buf)+len(k) > cap(a.buf) {
		// chunks grow from 1 KiB: most groups hold few keys
		a.buf = make([]byte, 0, min(arenaChunk, max(1024, 2*cap(a.buf))))
	}
	start := len(a.buf)
	a.buf = append(a.buf, k...)
	// The chunk is never written again below start+len(k): the string
	// stays valid and immutable, and keeps the chunk alive.
	return unsafe.String(&a.buf[start], len(k))
}

// repackKeys copies the keys of es, in order, into new arenas: the keys
// were stored in the order of the walk (revision order), and every later
// pass over the entries (ls reads each key twice) would otherwise jump
// around the heap, a cache miss per key. The old arenas, which also hold
// the keys of history and deletions, become garbage.
func repackKeys(es []Entry) {
	const chunk = 1 << 15
	par.Do((len(es)+chunk-1)/chunk, runtime.GOMAXPROCS(0), func(i int) {
		part := es[i*chunk : min(len(es), (i+1)*chunk)]
		n := 0
		for j := range part {
			n += len(part[j].Key)
		}
		buf := make([]byte, 0, n)
		for j := range part {
			if k := part[j].Key; k != "" {
				buf = append(buf, k...)
				part[j].Key = unsafe.String(&buf[len(buf)-len(k)], len(k))
			}
		}
	})
}

// byKeyRev orders by key, then revision; every key shares its first off
// bytes.
type byKeyRev struct {
	es  []Entry
	off int
}

func (s byKeyRev) Len() int { return len(s.es) }

func (s byKeyRev) Less(i, j int) bool {
	a, b := &s.es[i], &s.es[j]
	if c := strings.Compare(a.Key[s.off:], b.Key[s.off:]); c != 0 {
		return c < 0
	}
	if a.Rev.Main != b.Rev.Main {
		return a.Rev.Main < b.Rev.Main
	}
	return a.Rev.Sub < b.Rev.Sub
}

func (s byKeyRev) Swap(i, j int) { s.es[i], s.es[j] = s.es[j], s.es[i] }

// rankGroups renumbers the entries' groups from each walker's numbers to
// the rank of the group's prefix among all of them, and returns the
// prefixes by rank; nil if a walker ran out of groups (the entries are then
// sorted without them).
func rankGroups(runs []indexRun, shared *sharedSlice[Entry]) []string {
	seen := map[string]bool{}
	var prefixes []string
	for i := range runs {
		if runs[i].overflow {
			return nil
		}
		for _, p := range runs[i].prefixes {
			if !seen[p] {
				seen[p] = true
				prefixes = append(prefixes, p)
			}
		}
	}
	if len(prefixes) >= noGroup {
		return nil
	}
	sort.Strings(prefixes)
	rank := make(map[string]uint16, len(prefixes))
	for i, p := range prefixes {
		rank[p] = uint16(i)
	}
	par.Do(len(runs), runtime.GOMAXPROCS(0), func(i int) {
		r := &runs[i]
		remap := make([]uint16, len(r.prefixes))
		for j, p := range r.prefixes {
			remap[j] = rank[p]
		}
		renumber := func(es []Entry) {
			for k := range es {
				es[k].grp = remap[es[k].grp]
			}
		}
		for _, ch := range r.chunks {
			renumber(shared.s[ch.start : ch.start+ch.len])
		}
		for _, b := range r.blocks {
			renumber(b)
		}
	})
	return prefixes
}

// sortNewest sorts es by (key, revision) and keeps the newest record of
// each key (see newestPerKey), in place. It sorts by group first, with one
// counting pass and one pass of swaps (groups are ranked by prefix, so that
// is the order of the keys too), then each group on its own, on every core,
// comparing keys past the prefix their group shares, and takes each
// group's newest records there too; the groups are then moved together.
// Much cheaper than one sort of everything: fewer comparisons, shorter
// ones, and the keys compared sit in one group's arena. Without groups
// (prefixes nil), one sort.
func sortNewest(es []Entry, prefixes []string, cores int, deleted bool) []Entry {
	if prefixes == nil {
		sortEntries(es, cores, 0)
		return newestPerKey(es, deleted)
	}
	ends := make([]int, len(prefixes))
	for i := range es {
		ends[es[i].grp]++
	}
	starts := make([]int, len(prefixes))
	for g, at := 0, 0; g < len(ends); g++ {
		starts[g] = at
		at += ends[g]
		ends[g] = at
	}
	next := slices.Clone(starts)
	for g := range next {
		for next[g] < ends[g] {
			e := es[next[g]]
			for int(e.grp) != g {
				t := e.grp
				es[next[t]], e = e, es[next[t]]
				next[t]++
			}
			es[next[g]] = e
			next[g]++
		}
	}
	order := make([]int, len(prefixes)) // biggest groups first
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return ends[order[i]]-starts[order[i]] > ends[order[j]]-starts[order[j]] })
	kept := make([]int, len(prefixes))
	par.Do(len(order), cores, func(i int) {
		g := order[i]
		part := es[starts[g]:ends[g]]
		sortEntries(part, max(1, cores*len(part)/max(1, len(es))), len(prefixes[g]))
		kept[g] = len(newestPerKey(part, deleted))
	})
	n := 0
	for g := range prefixes {
		n += copy(es[n:], es[starts[g]:starts[g]+kept[g]])
	}
	clear(es[n:])
	return es[:n]
}

// sortEntries sorts es by (key, revision) on up to `cores` cores, comparing
// keys from byte off (every key in es shares the bytes before it): the
// slice is partitioned around a sampled key (every record of a key lands on
// the same side) and the two sides are sorted at once.
func sortEntries(es []Entry, cores, off int) {
	if cores < 2 || len(es) < parallelSortMin {
		sort.Sort(byKeyRev{es, off})
		return
	}
	pivot := samplePivot(es)
	i := 0 // es[:i] < pivot
	for j := range es {
		if es[j].Key < pivot {
			es[i], es[j] = es[j], es[i]
			i++
		}
	}
	if i == 0 || i == len(es) {
		sort.Sort(byKeyRev{es, off})
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { sortEntries(es[:i], cores/2, off) })
	sortEntries(es[i:], cores-cores/2, off)
	wg.Wait()
}

// samplePivot returns the median key of 255 evenly spaced records.
func samplePivot(es []Entry) string {
	const n = 255
	keys := make([]string, n)
	for i := range keys {
		keys[i] = es[i*(len(es)-1)/(n-1)].Key
	}
	sort.Strings(keys)
	return keys[n/2]
}

// newestPerKey keeps, from es sorted by (key, revision), one entry per key
// decided by its newest record: a put is returned unless deleted is set; a
// deletion drops the key, or with deleted set returns the put before it
// marked Deleted. It works in place.
func newestPerKey(es []Entry, deleted bool) []Entry {
	out := es[:0]
	for i := 0; i < len(es); {
		j := i + 1
		for j < len(es) && es[j].Key == es[i].Key {
			j++
		}
		last := es[j-1]
		last.grp = 0
		switch {
		case !last.Rev.Tombstone:
			if !deleted {
				out = append(out, last)
			}
		case deleted:
			for k := j - 2; k >= i; k-- {
				if !es[k].Rev.Tombstone {
					e := es[k]
					e.Deleted, e.DeletedRevision, e.grp = true, last.Rev.Main, 0
					out = append(out, e)
					break
				}
			}
		}
		i = j
	}
	clear(es[len(out):]) // drop the keys' references for the collector
	return out
}

// providerTable interns encryption-at-rest provider names ("identity",
// "aescbc:key1", ...) so that an Entry holds one byte instead of a string.
// Names are read without a lock (ls reads one per line, on every core):
// the list is replaced, never changed in place.
type providerTable struct {
	mu       sync.Mutex // for id
	names    atomic.Pointer[[]string]
	byHeader map[string]uint8
}

var providers = func() *providerTable {
	t := &providerTable{byHeader: map[string]uint8{}}
	t.names.Store(&[]string{"identity"})
	return t
}()

// tooManyProviders names the slot shared by providers beyond the 254th (a
// damaged or hostile file).
const tooManyProviders = "(one of more than 254 providers)"

func (t *providerTable) name(i uint8) string {
	if names := *t.names.Load(); int(i) < len(names) {
		return names[i]
	}
	return tooManyProviders
}

// id returns the slot of value v's provider, read from its
// "k8s:enc:<provider>:<version>:<key>:" header.
func (t *providerTable) id(v []byte) uint8 {
	n := decode.EncryptionHeaderLen(v)
	if n == 0 {
		return 0
	}
	h := v[:n]
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.byHeader[string(h)]; ok {
		return i
	}
	name := decode.SniffEncryption(v).String()
	names := *t.names.Load()
	i := len(names)
	for j, n := range names {
		if n == name {
			i = j
		}
	}
	if i == len(names) {
		if i == 255 {
			return 255
		}
		grown := append(slices.Clip(names), name)
		t.names.Store(&grown)
	}
	if len(t.byHeader) < 4096 {
		t.byHeader[string(h)] = uint8(i)
	}
	return uint8(i)
}
