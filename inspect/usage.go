package inspect

import (
	"cmp"
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/internal/par"
)

// DefaultQuotaBytes is etcd's --quota-backend-bytes when it is not set
// (2 GiB).
const DefaultQuotaBytes = 2 << 30

// UsageOptions configures [Snapshot.Usage].
type UsageOptions struct {
	// Table maps keys to resources; nil is [decode.BuiltinResources]. A
	// custom resource the table does not know is named from its key
	// ("<group>/<plural>/[<namespace>/]<name>" under the prefix, as
	// kube-apiserver stores every custom resource), so the file's CRDs
	// need not be read.
	Table *decode.ResourceTable
	// Prefix is kube-apiserver's --etcd-prefix; empty is "/registry".
	Prefix string
	// Top is how many keys [Usage.Churning] holds; 0 is 20.
	Top int
	// Largest is how many keys [Usage.Largest] holds (the treemap's own
	// rectangles); 0 is 500.
	Largest int
	// QuotaBytes is etcd's --quota-backend-bytes; 0 is etcd's default,
	// [DefaultQuotaBytes].
	QuotaBytes int64
	// QuotaSource says where QuotaBytes came from ("flag", "manifest");
	// it is "default" when QuotaBytes is 0.
	QuotaSource string
}

// Usage is what fills a db, the report of `etcdsafe du`. Byte counts are
// those of the key bucket's records (the revision key plus the stored
// mvccpb.KeyValue, which holds the key and the value): what compaction
// removes. bbolt's page overhead and free pages are the difference to
// DBSizeInUse and DBSize. Lists are ordered biggest first, ties by name.
type Usage struct {
	Revision        int64 `json:"revision"`        // newest revision in the file
	CompactRevision int64 `json:"compactRevision"` // last finished compaction
	FileSize        int64 `json:"fileSize"`
	DBSize          int64 `json:"dbSize"`      // bbolt's size: what etcd's quota counts
	DBSizeInUse     int64 `json:"dbSizeInUse"` // minus free pages
	// Defrag is what a defragmentation would give back: DBSize minus
	// DBSizeInUse.
	Defrag     int64      `json:"defragFreeBytes"`
	Quota      Quota      `json:"quota"`
	Total      Counts     `json:"total"`
	Compaction Compaction `json:"compaction"`
	// Events is the part of Total held by Events (core and events.k8s.io
	// share one path); EventsShare is its bytes over Total's, 0 to 1.
	Events      Counts  `json:"events"`
	EventsShare float64 `json:"eventsShare"`
	// Resources, Namespaces and ResourceNamespaces are Total broken
	// down by resource ("pods", "deployments.apps"), by namespace ("" is
	// every cluster-scoped key) and by both.
	Resources          []Group `json:"resources"`
	Namespaces         []Group `json:"namespaces"`
	ResourceNamespaces []Group `json:"resourceNamespaces"`
	// Largest are the keys with the most bytes, all records counted.
	Largest []KeyUsage `json:"largest"`
	// Churning are the keys with the most revisions in the file (at
	// least two), ties by bytes.
	Churning []KeyUsage `json:"churning"`
	// Problems are records the walk could not read (left out of every
	// count).
	Problems []Problem `json:"-"`
}

// Quota is etcd's backend quota and how much of it the file uses.
type Quota struct {
	Bytes  int64  `json:"bytes"`
	Source string `json:"source"` // "default", "flag", "manifest"
	// UsedPercent is DBSize over Bytes, in percent: etcd raises its
	// NOSPACE alarm when the db would grow past the quota.
	UsedPercent float64 `json:"usedPercent"`
}

// Counts are the keys and records of a part of the file.
type Counts struct {
	Keys       int64 `json:"keys"`       // distinct keys with a record in the file
	LiveKeys   int64 `json:"liveKeys"`   // those whose newest record is a put
	Revisions  int64 `json:"revisions"`  // records
	Tombstones int64 `json:"tombstones"` // records of deletions
	Bytes      int64 `json:"bytes"`      // all records
	LiveBytes  int64 `json:"liveBytes"`  // the newest put of each live key
	// HistoryBytes is Bytes minus LiveBytes: older versions, deleted
	// keys and tombstones, what a compaction at the newest revision
	// removes.
	HistoryBytes int64 `json:"historyBytes"`
}

func (c *Counts) add(o *Counts) {
	c.Keys += o.Keys
	c.LiveKeys += o.LiveKeys
	c.Revisions += o.Revisions
	c.Tombstones += o.Tombstones
	c.Bytes += o.Bytes
	c.LiveBytes += o.LiveBytes
	c.HistoryBytes += o.HistoryBytes
}

// Group is the Counts of one resource, namespace, or both. The
// cluster-scoped keys are a namespace group of their own, with an empty
// Namespace and ClusterScoped set.
type Group struct {
	Resource      string `json:"resource,omitempty"`
	Namespace     string `json:"namespace,omitempty"`
	ClusterScoped bool   `json:"clusterScoped,omitempty"`
	Counts
}

// Compaction is what a compaction at the newest revision would remove:
// every record but the newest put of each live key, and but a deletion at
// exactly that revision (etcd's compaction keeps the tombstone at the
// revision it compacts at).
type Compaction struct {
	FreeBytes   int64 `json:"freeBytes"`
	FreeRecords int64 `json:"freeRecords"`
	// OldVersionBytes are the older puts of live keys, DeletedBytes the
	// puts of deleted keys, TombstoneBytes the deletions' records.
	OldVersionBytes int64 `json:"oldVersionBytes"`
	DeletedBytes    int64 `json:"deletedBytes"`
	TombstoneBytes  int64 `json:"tombstoneBytes"`
	// SizeAfter estimates the db after a compaction and a defrag: the
	// pages in use less FreeBytes's share of the record bytes (pages
	// shrink with the records they hold).
	SizeAfter int64 `json:"estimatedSizeAfter"`
}

// KeyUsage is one key's records in the file.
type KeyUsage struct {
	Key       string `json:"key"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Revisions are the key's records in the file, Tombstones its
	// deletions among them.
	Revisions    int64 `json:"revisions"`
	Tombstones   int64 `json:"tombstones"`
	Bytes        int64 `json:"bytes"`
	LiveBytes    int64 `json:"liveBytes"`
	HistoryBytes int64 `json:"historyBytes"`
	// Deleted: the newest record is a deletion.
	Deleted bool `json:"deleted"`
	// Version is etcd's version of the newest put: the puts since the
	// key was (re)created, compacted ones included.
	Version int64 `json:"version"`
	// Revision is the newest record's revision.
	Revision int64 `json:"revision"`
}

// Usage walks the key bucket once and reports what fills the file: bytes
// and revisions by resource, namespace and key, live against history,
// what compaction and defrag would free, and the quota in use.
//
// It reuses [Snapshot.Index]'s machinery: the bucket is cut into revision
// ranges walked at once, and each walker keeps one small aggregate per key
// (in a slab, keys in arenas, found through a map sized from bbolt's
// record count), never the records. The walkers then report their keys at
// once, each key by the first walker that met it, adding what the later
// ones found; the breakdowns and top lists are merged at the end.
func (s *Snapshot) Usage(ctx context.Context, o UsageOptions) (*Usage, error) {
	return s.usageWith(ctx, o, indexWalkers(s.FileSize))
}

// withDefaults fills in the defaults of the fields left zero.
func (o UsageOptions) withDefaults() *UsageOptions {
	if o.Table == nil {
		o.Table = decode.BuiltinResources()
	}
	if o.Prefix == "" {
		o.Prefix = "/registry"
	}
	o.Prefix = strings.TrimSuffix(o.Prefix, "/")
	if o.Top <= 0 {
		o.Top = 20
	}
	if o.Largest <= 0 {
		o.Largest = 500
	}
	return &o
}

// usageWith is Usage with n walkers.
func (s *Snapshot) usageWith(ctx context.Context, opts UsageOptions, n int) (*Usage, error) {
	o := opts.withDefaults()
	u := &Usage{FileSize: s.FileSize, CompactRevision: s.CompactRevision()}
	rev, err := s.Revision()
	if err != nil {
		return nil, err
	}
	u.Revision = rev

	ranges := s.splitRevisions(0, n)
	records := 0
	_ = guard("count records", func() error { records = s.tx.Bucket(bucketKey).Stats().KeyN; return nil })
	runs := make([]usageRun, len(ranges))
	var wg sync.WaitGroup
	var pagesErr error
	wg.Go(func() { // page faults of its own, on the same pages the walkers read
		pagesErr = guard("count pages in use", func() error {
			u.DBSize = s.tx.Size()
			u.DBSizeInUse = s.pagesInUse()
			return nil
		})
	})
	for i := range ranges {
		wg.Go(func() {
			r := &runs[i]
			if from := ranges[i][0]; len(from) >= 8 {
				r.start = int64(binary.BigEndian.Uint64(from))
			}
			r.idx = make(map[string]int32, records/len(ranges)+1)
			r.problems, r.err = s.walkRange(ctx, ranges[i][0], ranges[i][1], 0, r.add)
		})
	}
	wg.Wait()
	if pagesErr != nil {
		return nil, pagesErr
	}
	for i := range runs {
		if runs[i].err != nil {
			return nil, runs[i].err
		}
		u.Problems = append(u.Problems, runs[i].problems...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	joinRuns(runs)
	// Each walker reports its keys, on every core.
	tallies := make([]*usageTally, len(runs))
	par.Do(len(runs), len(runs), func(w int) {
		t := newUsageTally(o, u.Revision)
		runs[w].each(func(key string, a *keyAgg) {
			if !a.merged {
				t.add(key, a)
			}
		})
		tallies[w] = t
	})
	for i := range runs { // the arenas stay alive through the tallies' strings only
		runs[i] = usageRun{}
	}
	total := newUsageTally(o, u.Revision)
	for _, t := range tallies {
		total.merge(t)
	}
	total.fill(u, o)
	return u, nil
}

// pagesInUse is the bytes of the pages the buckets use, plus the two meta
// pages and the root page: bbolt does not load the freelist in read-only
// mode.
func (s *Snapshot) pagesInUse() int64 {
	pageSize := int64(s.db.Info().PageSize)
	inUse := int64(3)
	_ = s.tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
		bs := b.Stats()
		inUse += int64(bs.BranchPageN + bs.BranchOverflowN + bs.LeafPageN + bs.LeafOverflowN)
		return nil
	})
	return min(inUse*pageSize, s.tx.Size())
}

// joinRuns merges the records of a key that several walkers met into the
// aggregate of the first of them, marking the others merged. Looking every
// key up in every other walker's map would cost a cache miss or two per
// key and walker; instead only the keys that may continue an earlier
// walker's are looked up, in the earlier walkers' maps (nearest first):
//   - a key whose first record in its range is a deletion, or a put of a
//     key created before the range (an update): the creation, unless
//     compacted away, is in an earlier range;
//   - a key re-created after its deletion in an earlier range: found from
//     the earlier side, as a key whose last record there is a deletion.
//
// A key created in its range and not deleted before it, the most of a
// file, is looked up nowhere. Merges are applied in range order, so the
// newest records set the key's newest figures.
func joinRuns(runs []usageRun) {
	if len(runs) < 2 {
		return
	}
	type link struct {
		child, parent *keyAgg
		childRun      int
	}
	found := make([][]link, len(runs))
	par.Do(len(runs), len(runs), func(w int) {
		r := &runs[w]
		for _, c := range r.candidates {
			key, a := c.key, r.slot(c.slot)
			if a.cont && c.first {
				for v := w - 1; v >= 0; v-- {
					if p := runs[v].find(key); p != nil {
						found[w] = append(found[w], link{a, p, w})
						break
					}
				}
			}
			if a.lastTomb && !c.first && a.last == c.rev { // the key's last deletion in the range
				for v := w + 1; v < len(runs); v++ {
					if c := runs[v].find(key); c != nil {
						if !c.cont { // else found from its side
							found[w] = append(found[w], link{c, a, v})
						}
						break
					}
				}
			}
		}
	})
	var links []link
	for _, l := range found {
		links = append(links, l...)
	}
	slices.SortStableFunc(links, func(a, b link) int { return cmp.Compare(a.childRun, b.childRun) })
	root := map[*keyAgg]*keyAgg{} // merged aggregate -> the one it went into
	for _, l := range links {
		p := l.parent
		if r := root[p]; r != nil {
			p = r
		}
		p.merge(l.child)
		l.child.merged = true
		root[l.child] = p
	}
}

// keyAgg is what a walker keeps of one key: 48 bytes, and no pointer
// for the garbage collector to follow (the key is the map's).
type keyAgg struct {
	bytes     int64 // every record
	tombBytes int64
	last      int64 // revision of the newest record
	version   int64 // of the newest put
	lastSize  uint32
	revs      uint32
	tombs     uint32
	lastTomb  bool
	// cont: the first record in the walker's range is a deletion or an
	// update (the key was created before the range); merged: the records
	// were added to an earlier walker's aggregate of the key.
	cont, merged bool
}

// merge adds b, a later walker's records of the same key.
func (a *keyAgg) merge(b *keyAgg) {
	a.bytes += b.bytes
	a.tombBytes += b.tombBytes
	a.revs += b.revs
	a.tombs += b.tombs
	a.last, a.lastSize, a.lastTomb = b.last, b.lastSize, b.lastTomb
	if b.version != 0 {
		a.version = b.version
	}
}

// usageRun is one walker's keys.
type usageRun struct {
	start int64            // the range's first main revision (0: the first range)
	idx   map[string]int32 // key -> slot
	slab  [][]keyAgg
	arena keyArena
	// candidates are the keys joinRuns looks up in other walkers' maps:
	// the first record of a key that may continue an earlier range's
	// (first set), and every deletion (rev its revision: the key's last
	// record in the range if the aggregate's last is still rev).
	candidates []candidate

	problems []Problem
	err      error
}

const aggSlab = 1 << 12

func (r *usageRun) slot(i int32) *keyAgg { return &r.slab[i/aggSlab][i%aggSlab] }

func (r *usageRun) find(key string) *keyAgg {
	if i, ok := r.idx[key]; ok {
		return r.slot(i)
	}
	return nil
}

// each calls fn with every key, in no particular order.
func (r *usageRun) each(fn func(key string, a *keyAgg)) {
	for k, i := range r.idx {
		fn(k, r.slot(i))
	}
}

type candidate struct {
	key   string
	rev   int64
	slot  int32
	first bool
}

// add counts one record; records come in revision order.
func (r *usageRun) add(rev decode.Revision, v []byte) error {
	kv, err := decode.ParseKeyValue(v)
	if err != nil {
		return err
	}
	i, ok := r.idx[string(kv.Key)]
	key := ""
	if !ok {
		n := len(r.slab)
		if n == 0 || len(r.slab[n-1]) == aggSlab {
			r.slab = append(r.slab, make([]keyAgg, 0, aggSlab))
			n++
		}
		i = int32((n-1)*aggSlab + len(r.slab[n-1]))
		cont := r.start > 0 && (rev.Tombstone || kv.CreateRevision < r.start)
		r.slab[n-1] = append(r.slab[n-1], keyAgg{cont: cont})
		key = r.arena.add(kv.Key)
		r.idx[key] = i
		if cont {
			r.candidates = append(r.candidates, candidate{key: key, slot: i, first: true})
		}
	}
	if rev.Tombstone {
		if key == "" {
			key = r.arena.add(kv.Key) // the map keeps its own copy out of reach
		}
		r.candidates = append(r.candidates, candidate{key: key, slot: i, rev: rev.Main})
	}
	a := r.slot(i)
	size := int64(decode.RevisionLen + len(v))
	a.revs++
	a.last, a.lastTomb = rev.Main, rev.Tombstone
	if rev.Tombstone {
		size++
		a.tombs++
		a.tombBytes += size
	} else {
		a.version = kv.Version
	}
	a.bytes += size
	a.lastSize = uint32(min(size, 1<<32-1))
	return nil
}

// usageTally is the breakdowns and top lists of some keys.
type usageTally struct {
	o          *UsageOptions
	rev        int64 // the newest revision, where compaction is estimated
	total      Counts
	events     Counts
	compaction Compaction
	byGroup    map[string]map[string]*Counts // resource -> namespace -> counts
	resNames   map[string]string             // KeyPath -> GroupResource, to allocate each once
	largest    topList
	churning   topList
}

func newUsageTally(o *UsageOptions, rev int64) *usageTally {
	return &usageTally{o: o, rev: rev, byGroup: map[string]map[string]*Counts{}, resNames: map[string]string{},
		largest: topList{n: o.Largest, less: byBytes}, churning: topList{n: o.Top, less: byRevisions}}
}

// add counts key, whose records (every walker's) a sums.
func (t *usageTally) add(key string, a *keyAgg) {
	c := Counts{Keys: 1, Revisions: int64(a.revs), Tombstones: int64(a.tombs), Bytes: a.bytes}
	if !a.lastTomb {
		c.LiveKeys, c.LiveBytes = 1, int64(a.lastSize)
		t.compaction.OldVersionBytes += a.bytes - c.LiveBytes - a.tombBytes
	} else {
		t.compaction.DeletedBytes += a.bytes - a.tombBytes
	}
	c.HistoryBytes = c.Bytes - c.LiveBytes
	t.compaction.TombstoneBytes += a.tombBytes
	t.compaction.FreeRecords += c.Revisions - c.LiveKeys
	if a.lastTomb && a.last == t.rev { // kept by a compaction at rev
		t.compaction.TombstoneBytes -= int64(a.lastSize)
		t.compaction.FreeRecords--
	}
	t.total.add(&c)
	res, ns, name, events := t.classify(key)
	if events {
		t.events.add(&c)
	}
	addTo(t.group(res), ns, &c)
	ku := func() KeyUsage {
		return KeyUsage{Key: key, Resource: res, Namespace: ns, Name: name,
			Revisions: c.Revisions, Tombstones: c.Tombstones, Bytes: c.Bytes, LiveBytes: c.LiveBytes,
			HistoryBytes: c.HistoryBytes, Deleted: a.lastTomb, Version: a.version, Revision: a.last}
	}
	if t.largest.wants(c.Bytes, c.Revisions, key) {
		t.largest.push(ku())
	}
	if c.Revisions > 1 && t.churning.wants(c.Bytes, c.Revisions, key) {
		t.churning.push(ku())
	}
}

// group returns the namespaces of resource res.
func (t *usageTally) group(res string) map[string]*Counts {
	m := t.byGroup[res]
	if m == nil {
		m = map[string]*Counts{}
		t.byGroup[res] = m
	}
	return m
}

// classify names key's resource, namespace and name, and says whether it
// is an Event. The strings may point into the walker's arena.
func (t *usageTally) classify(key string) (res, ns, name string, events bool) {
	if ki, ok := t.o.Table.ForKey(t.o.Prefix, key); ok {
		r := t.resNames[ki.Resource.KeyPath]
		if r == "" {
			r = ki.Resource.GroupResource()
			t.resNames[strings.Clone(ki.Resource.KeyPath)] = r
		}
		return r, ki.Namespace, ki.Name, ki.Resource.KeyPath == "events"
	}
	rest, ok := strings.CutPrefix(key, t.o.Prefix+"/")
	if !ok {
		return "(outside " + t.o.Prefix + ")", "", key, false
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) >= 3 && len(parts) <= 4 && strings.Contains(parts[0], ".") && !slices.Contains(parts, ""):
		// a custom resource whose CRD the table does not know
		r := parts[1] + "." + parts[0]
		if len(parts) == 4 {
			return r, parts[2], parts[3], false
		}
		return r, "", parts[2], false
	case len(parts) >= 2:
		return "(unknown: " + parts[0] + ")", "", strings.Join(parts[1:], "/"), false
	}
	return "(unknown)", "", rest, false
}

// merge adds o's keys to t.
func (t *usageTally) merge(o *usageTally) {
	t.total.add(&o.total)
	t.events.add(&o.events)
	t.compaction.OldVersionBytes += o.compaction.OldVersionBytes
	t.compaction.DeletedBytes += o.compaction.DeletedBytes
	t.compaction.TombstoneBytes += o.compaction.TombstoneBytes
	t.compaction.FreeRecords += o.compaction.FreeRecords
	for res, m := range o.byGroup {
		for ns, c := range m {
			addTo(t.group(res), ns, c)
		}
	}
	for _, k := range o.largest.items {
		t.largest.push(k)
	}
	for _, k := range o.churning.items {
		t.churning.push(k)
	}
}

// fill writes the tally into u, copying every string out of the arenas.
func (t *usageTally) fill(u *Usage, o *UsageOptions) {
	u.Total, u.Events = t.total, t.events
	if t.total.Bytes > 0 {
		u.EventsShare = float64(t.events.Bytes) / float64(t.total.Bytes)
	}
	u.Compaction = t.compaction
	u.Compaction.FreeBytes = t.compaction.OldVersionBytes + t.compaction.DeletedBytes + t.compaction.TombstoneBytes
	u.Compaction.SizeAfter = u.DBSizeInUse
	if t.total.Bytes > 0 {
		u.Compaction.SizeAfter -= int64(float64(u.DBSizeInUse) * float64(u.Compaction.FreeBytes) / float64(t.total.Bytes))
	}
	u.Defrag = u.DBSize - u.DBSizeInUse
	u.Quota = Quota{Bytes: o.QuotaBytes, Source: o.QuotaSource}
	if o.QuotaBytes <= 0 {
		u.Quota = Quota{Bytes: DefaultQuotaBytes, Source: "default"}
	}
	u.Quota.UsedPercent = 100 * float64(u.DBSize) / float64(u.Quota.Bytes)

	byRes, byNS := map[string]*Counts{}, map[string]*Counts{}
	for r, m := range t.byGroup {
		for n, c := range m {
			res, ns := strings.Clone(r), strings.Clone(n)
			u.ResourceNamespaces = append(u.ResourceNamespaces, Group{Resource: res, Namespace: ns, ClusterScoped: ns == "", Counts: *c})
			addTo(byRes, res, c)
			addTo(byNS, ns, c)
		}
	}
	for res, c := range byRes {
		u.Resources = append(u.Resources, Group{Resource: res, Counts: *c})
	}
	for ns, c := range byNS {
		u.Namespaces = append(u.Namespaces, Group{Namespace: ns, ClusterScoped: ns == "", Counts: *c})
	}
	for _, gs := range [][]Group{u.Resources, u.Namespaces, u.ResourceNamespaces} {
		slices.SortFunc(gs, func(a, b Group) int {
			return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), strings.Compare(a.Resource, b.Resource), strings.Compare(a.Namespace, b.Namespace))
		})
	}
	u.Largest, u.Churning = t.largest.sorted(), t.churning.sorted()
}

func addTo[K comparable](m map[K]*Counts, k K, c *Counts) {
	g := m[k]
	if g == nil {
		g = &Counts{}
		m[k] = g
	}
	g.add(c)
}

// topList keeps the n greatest keys by less (a bounded min-heap).
type topList struct {
	n     int
	less  func(a, b *KeyUsage) bool // a ranks below b
	items []KeyUsage
}

func byBytes(a, b *KeyUsage) bool {
	return cmp.Or(cmp.Compare(a.Bytes, b.Bytes), cmp.Compare(a.Revisions, b.Revisions), strings.Compare(b.Key, a.Key)) < 0
}

func byRevisions(a, b *KeyUsage) bool {
	return cmp.Or(cmp.Compare(a.Revisions, b.Revisions), cmp.Compare(a.Bytes, b.Bytes), strings.Compare(b.Key, a.Key)) < 0
}

// wants reports whether a key with these figures would enter the list,
// before its KeyUsage is made.
func (l *topList) wants(bytes, revs int64, key string) bool {
	if len(l.items) < l.n {
		return true
	}
	if m := &l.items[0]; bytes < m.Bytes && revs < m.Revisions {
		return false // below the smallest on both counts: most keys
	}
	k := KeyUsage{Key: key, Bytes: bytes, Revisions: revs}
	return l.less(&l.items[0], &k)
}

// push adds k, dropping the smallest when full. k's strings are copied.
func (l *topList) push(k KeyUsage) {
	if len(l.items) == l.n {
		if !l.less(&l.items[0], &k) {
			return
		}
		l.items[0] = l.items[len(l.items)-1]
		l.items = l.items[:len(l.items)-1]
		l.down(0)
	}
	k.Key, k.Resource, k.Namespace, k.Name = strings.Clone(k.Key), strings.Clone(k.Resource), strings.Clone(k.Namespace), strings.Clone(k.Name)
	l.items = append(l.items, k)
	for i := len(l.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !l.less(&l.items[i], &l.items[p]) {
			break
		}
		l.items[i], l.items[p] = l.items[p], l.items[i]
		i = p
	}
}

func (l *topList) down(i int) {
	for {
		m := i
		for _, c := range []int{2*i + 1, 2*i + 2} {
			if c < len(l.items) && l.less(&l.items[c], &l.items[m]) {
				m = c
			}
		}
		if m == i {
			return
		}
		l.items[i], l.items[m] = l.items[m], l.items[i]
		i = m
	}
}

// sorted returns the items greatest first.
func (l *topList) sorted() []KeyUsage {
	out := slices.Clone(l.items)
	slices.SortFunc(out, func(a, b KeyUsage) int {
		switch {
		case l.less(&b, &a):
			return -1
		case l.less(&a, &b):
			return 1
		}
		return 0
	})
	if out == nil {
		out = []KeyUsage{}
	}
	return out
}
