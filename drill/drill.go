package drill

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdsafe/etcdsafe/decode"
	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/internal/fsx"
	"github.com/etcdsafe/etcdsafe/restore"
	"github.com/etcdsafe/etcdsafe/source"
)

// StagingPrefix names the drill's private dirs under [Options.TmpDir].
const StagingPrefix = ".etcdsafe-drill-"

// MemberName is the name of the drill's restored member.
const MemberName = "etcdsafe-drill"

// Defaults of [Options].
const (
	DefaultPageSize     = 1000
	DefaultReadyTimeout = 10 * time.Minute
)

// archivedManifest names the manifest the quota came from in messages.
const archivedManifest = "the archive's kubernetes/manifests/etcd.yaml"

// maxSamples bounds the keys listed per kind of problem in a [Report].
const maxSamples = 20

var (
	// ErrFailed means a check of the drill failed or something would block
	// a real restore; the [*FailedError] says which.
	ErrFailed = errors.New("restore drill failed")
	// ErrMismatch means the restored etcd does not serve what the snapshot
	// holds (keys missing, added or different), or values in it are
	// malformed: the backup's integrity is in question.
	ErrMismatch = errors.New("the restored etcd does not serve what the snapshot holds")
)

// FailedError lists the reasons a drill failed. It wraps [ErrFailed],
// [ErrMismatch] when keys or values differ or are malformed, and the first
// decryption error met (decode.ErrDecrypt or decode.ErrEncrypted: a key
// problem).
type FailedError struct {
	// Reasons are short sentences, one per failed check or blocker.
	Reasons []string
	causes  []error
}

func (e *FailedError) Error() string {
	return ErrFailed.Error() + ": " + strings.Join(e.Reasons, "; ")
}

// Unwrap returns [ErrFailed] and the causes.
func (e *FailedError) Unwrap() []error { return append([]error{ErrFailed}, e.causes...) }

// Options configures [Run].
type Options struct {
	// TmpDir holds the private drill dir (restored data dir, etcd's socket);
	// default the system temp dir. It needs room for a copy of the db.
	TmpDir string
	// PageSize is the number of keys per range request; default
	// [DefaultPageSize].
	PageSize int
	// ReadyTimeout bounds etcd's start on the restored data dir (it
	// rebuilds its index of every key); default [DefaultReadyTimeout].
	ReadyTimeout time.Duration
	// Logger receives etcd's and etcdutl's logs; default none.
	Logger *zap.Logger
	// OnStep, if set, is called as each step starts ("restore", "start",
	// "read", "write"), for progress output.
	OnStep func(step string)
	// OnSweep, if set, is called with each drill dir a killed run left
	// that Run removed.
	OnSweep func(dir string)
	// Now is the clock of the report; default time.Now.
	Now func() time.Time

	// testHook, when set (tests only), runs at each step with the private
	// dir; an error aborts the drill there, as an interruption would.
	testHook func(step, dir string) error
}

// Check is one check of the drill and its outcome.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Blocker is something that would stop a real restore from coming up
// writable, or that the drill could not prove.
type Blocker struct {
	// Kind is "alarm", "quota" or "kms".
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	// Fatal blockers fail the drill; a "kms" one does not (the values may
	// well decrypt where the KMS plugin runs) and is a warning.
	Fatal bool `json:"fatal"`
}

// Report is what a drill found. Counts are of keys, newest values only.
type Report struct {
	Source string `json:"source"`
	// Kind is restore's name for what was restored ("snapshot", "raw-db";
	// an archive's snapshot is restored from its verified extracted copy).
	Kind     string    `json:"kind"`
	Archive  bool      `json:"archive"`
	Started  time.Time `json:"started"`
	Duration float64   `json:"durationSeconds"`
	// Revision is the snapshot's newest revision, RestoredRevision the
	// restored member's (Revision plus restore's bump).
	Revision         int64 `json:"revision"`
	RestoredRevision int64 `json:"restoredRevision"`
	// Keys are the snapshot's live keys, KeysRead those read back.
	Keys     int `json:"keys"`
	KeysRead int `json:"keysRead"`
	// Missing keys are in the snapshot but not served, Extra served but
	// not in the snapshot, Different served with another value, revision
	// or version.
	Missing   int `json:"missing"`
	Extra     int `json:"extra"`
	Different int `json:"different"`
	// Objects decoded (Secrets among them), values that are no objects
	// (text such as compact_rev_key or a master lease's address),
	// Encrypted values (encrypted at rest), Undecodable objects,
	// KeyProblems (encrypted values the keys given do not open), KMS
	// values (only a KMS plugin decrypts them).
	Objects     int `json:"objects"`
	Secrets     int `json:"secrets"`
	NotObjects  int `json:"notObjects"`
	Encrypted   int `json:"encrypted"`
	Undecodable int `json:"undecodable"`
	KeyProblems int `json:"keyProblems"`
	KMS         int `json:"kms"`
	// DBSize is the restored member's db size, Quota its quota (0:
	// disabled) and QuotaSource where that came from (the archive's etcd
	// manifest, or etcd's default).
	DBSize      int64  `json:"dbSize"`
	Quota       int64  `json:"quota"`
	QuotaSource string `json:"quotaSource"`
	// Alarms are the alarms the restored member came up with.
	Alarms []string `json:"alarms"`
	// Checks in the order they ran; Blockers of a real restore.
	Checks   []Check   `json:"checks"`
	Blockers []Blocker `json:"blockers"`
	// Samples name some keys of each problem (keys only, never values).
	Samples []string `json:"samples,omitempty"`
	// OK is true when every check passed and nothing fatal blocks.
	OK bool `json:"ok"`

	kmsErr error // why the first KMS value was not decrypted
}

func (r *Report) check(name string, ok bool, format string, a ...any) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
}

func (r *Report) sample(format string, a ...any) {
	if len(r.Samples) < maxSamples {
		r.Samples = append(r.Samples, fmt.Sprintf(format, a...))
	}
}

// Run drills src: restore, start, read back, decode, compare, test write
// (see the package doc). src must stay open until Run returns; Run waits
// for its integrity verdict first and returns it (wrapped) when bad. The
// name in the report is src.Name.
//
// It returns the report and nil when the drill passed; the report and a
// [*FailedError] when a check failed or something blocks a restore; and,
// when the drill could not run to its end (the restore failed, etcd did
// not start, ctx ended), the report so far (or nil) and that error. On
// every return the private dir is gone and etcd stopped.
func Run(ctx context.Context, src *source.Source, o Options) (rep *Report, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	t0 := o.Now()
	rep = &Report{Source: src.Name, Archive: src.Archive, Started: t0.UTC(), Alarms: []string{}, Checks: []Check{}, Blockers: []Blocker{}}
	defer func() {
		if rep != nil {
			rep.Duration = o.Now().Sub(t0).Seconds()
		}
	}()
	step := func(s, dir string) error {
		if o.OnStep != nil {
			o.OnStep(s)
		}
		if o.testHook != nil {
			if err := o.testHook(s, dir); err != nil {
				return err
			}
		}
		return ctx.Err()
	}

	if err := src.Verdict(ctx); err != nil {
		return nil, err
	}
	if rep.Revision, err = src.Snapshot.Revision(); err != nil {
		return nil, fmt.Errorf("read the snapshot's revision: %w", err)
	}
	// a leftover that cannot be removed does not stop this drill
	removed, _ := fsx.SweepStaging(o.TmpDir, StagingPrefix)
	for _, d := range removed {
		if o.OnSweep != nil {
			o.OnSweep(d)
		}
	}
	stage, err := fsx.NewStaging(o.TmpDir, StagingPrefix)
	if err != nil {
		return nil, fmt.Errorf("create the drill dir: %w", err)
	}
	defer func() {
		if rerr := stage.Remove(); rerr != nil && err == nil {
			err = rerr
		}
	}()

	// The snapshot's side: every live key, sorted by key.
	if err := step("index", stage.Path); err != nil {
		return nil, err
	}
	entries, problems, err := src.Snapshot.Index(ctx, inspect.Query{})
	if err != nil {
		return nil, fmt.Errorf("list the snapshot's keys: %w", src.Settle(ctx, err))
	}
	if !slices.IsSortedFunc(entries, func(a, b inspect.Entry) int { return strings.Compare(a.Key, b.Key) }) {
		slices.SortFunc(entries, func(a, b inspect.Entry) int { return strings.Compare(a.Key, b.Key) })
	}
	rep.Keys = len(entries)
	var causes []error
	if len(problems) > 0 {
		rep.check("snapshot records", false, "%d records of the snapshot do not parse (first: %v)", len(problems), problems[0])
		causes = append(causes, ErrMismatch)
	}

	// The restore, as a real one runs it: single member, bumped.
	if err := step("restore", stage.Path); err != nil {
		return nil, err
	}
	peer, err := freePeerURL()
	if err != nil {
		return nil, err
	}
	quotaFlag, qerr := archivedQuota(src.EtcdManifest)
	if qerr != nil {
		rep.check("quota", false, "%v", qerr)
	}
	manifest := filepath.Join(stage.Path, "etcd.yaml")
	if err := os.WriteFile(manifest, drillManifest(peer.String(), quotaFlag), 0o600); err != nil {
		return nil, fmt.Errorf("write the drill member's manifest: %w", err)
	}
	dataDir := filepath.Join(stage.Path, "data")
	ro := restore.Options{
		Source:        src.Snapshot.DBPath,
		Manifest:      manifest,
		DataDir:       dataDir,
		TmpDir:        stage.Path,
		BumpRevision:  restore.DefaultBumpRevision,
		MarkCompacted: restore.DefaultMarkCompacted,
		// The source's verdict was in before: an archive verified to its
		// end, a trailer matched; a raw db has none to check.
		SkipHashCheck: true,
		Logger:        o.Logger,
	}
	plan, err := restore.Prepare(ctx, ro)
	var qe *restore.QuotaError
	if errors.As(err, &qe) {
		if quotaFlag != "" {
			qe.From = archivedManifest
		}
		// What a real restore refuses; the drill goes on as the hint says
		// (--compact), to prove the data all the same.
		rep.Blockers = append(rep.Blockers, Blocker{Kind: "quota", Fatal: true,
			Detail: qe.Error() + "; a restore needs --compact (newest revisions only, defragmented) or a higher --quota-backend-bytes (the drill goes on compacted)"})
		ro.Compact = true
		plan, err = restore.Prepare(ctx, ro)
	}
	if err != nil {
		return failedOr(rep, fmt.Errorf("prepare the restore of %s: %w", src.Name, err), causes)
	}
	defer plan.Close()
	rep.Kind = string(plan.Kind)
	rep.Quota, rep.QuotaSource = plan.Quota.Bytes, plan.Quota.From
	if quotaFlag != "" {
		rep.QuotaSource = archivedManifest
	}
	for _, a := range plan.Alarms {
		s := fmt.Sprintf("%s (raised by member %s)", a.Type, a.MemberID)
		rep.Alarms = append(rep.Alarms, s)
		rep.Blockers = append(rep.Blockers, Blocker{Kind: "alarm", Fatal: true,
			Detail: "the snapshot was taken under the alarm " + s + ": " + restore.AlarmConsequence(a.Type) + "; restore clears it from the restored db, but not its cause"})
	}
	if _, err := plan.Execute(ctx); err != nil {
		if errors.As(err, &qe) && quotaFlag != "" {
			qe.From = archivedManifest // not the drill's own manifest
		}
		return failedOr(rep, fmt.Errorf("restore %s: %w", src.Name, err), causes)
	}
	_ = plan.Close() // the staged copy is not needed any more
	quota := plan.Quota.Bytes
	if quota == 0 {
		quota = -1 // disabled by the manifest: etcd takes a negative quota as none
	}

	if err := step("start", stage.Path); err != nil {
		return rep, err
	}
	m, err := startMember(ctx, memberConfig{dir: stage.Path, dataDir: dataDir, name: plan.Membership.Name, peer: peer,
		quota: quota, logger: o.Logger, timeout: o.ReadyTimeout})
	if err != nil {
		return rep, err
	}
	defer m.stop()

	st, err := m.client.Status(ctx, m.endpoint)
	if err != nil {
		return rep, fmt.Errorf("status of the restored etcd: %w", err)
	}
	rep.DBSize = st.DbSize
	rep.RestoredRevision = st.Header.Revision
	rep.check("revision", st.Header.Revision == plan.NewRevision, "restored at revision %d: the snapshot's %d plus the bump of %d (want %d)",
		st.Header.Revision, plan.Revision, restore.DefaultBumpRevision, plan.NewRevision)
	if man := src.Manifest; man != nil {
		ok := man.Revision == 0 || man.Revision == rep.Revision
		rep.check("archive manifest", ok && man.DBSize == src.Snapshot.FileSize, "MANIFEST.json: revision %d, db %d bytes; the extracted snapshot: revision %d, %d bytes",
			man.Revision, man.DBSize, rep.Revision, src.Snapshot.FileSize)
	}
	al, err := m.client.AlarmList(ctx)
	if err != nil {
		return rep, fmt.Errorf("alarms of the restored etcd: %w", err)
	}
	var raised []string
	for _, a := range al.Alarms {
		raised = append(raised, fmt.Sprintf("%s (member %x)", a.Alarm, a.MemberID))
	}
	if len(raised) == 0 {
		rep.check("alarms", true, "the restored etcd came up with no alarm raised")
	} else {
		rep.check("alarms", false, "the restored etcd came up with alarms raised: %s", strings.Join(raised, ", "))
	}
	if quota > 0 && rep.DBSize >= quota {
		rep.check("quota", false, "the restored db is %d bytes, not below the quota of %d bytes (%s)", rep.DBSize, quota, rep.QuotaSource)
	}

	if err := step("read", stage.Path); err != nil {
		return rep, err
	}
	rc, err := readBack(ctx, m.client, st.Header.Revision, entries, src, o.PageSize, rep)
	if err != nil {
		return rep, err
	}
	causes = append(causes, rc...)
	rep.check("keys", rep.Missing == 0 && rep.Extra == 0 && rep.KeysRead == rep.Keys,
		"%d keys read back, %d in the snapshot: %d missing, %d extra", rep.KeysRead, rep.Keys, rep.Missing, rep.Extra)
	rep.check("values", rep.Different == 0, "%d keys differ in value, revision or version", rep.Different)
	rep.check("objects", rep.Undecodable == 0 && rep.KeyProblems == 0,
		"%d objects decoded (%d Secrets; %d values encrypted at rest), %d undecodable, %d not decryptable with the keys given, %d values that are not objects",
		rep.Objects, rep.Secrets, rep.Encrypted, rep.Undecodable, rep.KeyProblems, rep.NotObjects)
	if rep.KMS > 0 {
		rep.Blockers = append(rep.Blockers, Blocker{Kind: "kms",
			Detail: fmt.Sprintf("%d values are encrypted by a KMS provider and were not decrypted here (kube-apiserver reads them only where its KMS plugin answers; --kms-socket reaches a KMS v2 plugin from the drill): %v", rep.KMS, rep.kmsErr)})
	}

	if err := step("write", stage.Path); err != nil {
		return rep, err
	}
	werr := testWrite(ctx, m.client)
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if werr != nil {
		rep.check("write", false, "a test write failed: %v", werr)
	} else {
		rep.check("write", true, "a test key was written and deleted")
	}

	var reasons []string
	for _, c := range rep.Checks {
		if !c.OK {
			reasons = append(reasons, c.Name+": "+c.Detail)
		}
	}
	for _, b := range rep.Blockers {
		if b.Fatal {
			reasons = append(reasons, b.Kind+": "+b.Detail)
		}
	}
	if len(reasons) > 0 {
		return rep, &FailedError{Reasons: reasons, causes: causes}
	}
	rep.OK = true
	return rep, nil
}

// drillManifest is the static pod manifest of the drill's member, which
// restore reads its membership from (never this host's
// /etc/kubernetes/manifests/etcd.yaml, whose etcd may be running).
func drillManifest(peer, quota string) []byte {
	if quota != "" {
		quota = "    - --quota-backend-bytes=" + quota + "\n"
	}
	return fmt.Appendf(nil, `apiVersion: v1
kind: Pod
metadata:
  name: etcdsafe-drill
spec:
  containers:
  - name: etcd
    command:
    - etcd
    - --name=%s
    - --initial-advertise-peer-urls=%s
%s`, MemberName, peer, quota)
}

// archivedQuota returns the --quota-backend-bytes of the archive's etcd
// manifest b, as written ("" when none is set or b is nil).
func archivedQuota(b []byte) (string, error) {
	if b == nil {
		return "", nil
	}
	m, err := restore.ParseEtcdManifest(b)
	if err != nil {
		return "", fmt.Errorf("the archive's etcd manifest: %w", err)
	}
	if m.QuotaBackendBytes == "" {
		return "", nil
	}
	if _, err := strconv.ParseInt(m.QuotaBackendBytes, 10, 64); err != nil {
		return "", fmt.Errorf("the archive's etcd manifest sets --quota-backend-bytes=%q, not a number of bytes: etcd's default applies", m.QuotaBackendBytes)
	}
	return m.QuotaBackendBytes, nil
}

// failedOr returns err, or, when fatal blockers were found before it, a
// [*FailedError] naming them and err.
func failedOr(rep *Report, err error, causes []error) (*Report, error) {
	var reasons []string
	for _, b := range rep.Blockers {
		if b.Fatal {
			reasons = append(reasons, b.Kind+": "+b.Detail)
		}
	}
	if len(reasons) == 0 {
		return rep, err
	}
	return rep, &FailedError{Reasons: append(reasons, err.Error()), causes: append(causes, err)}
}

// testWrite writes a key outside the Kubernetes prefix and deletes it.
func testWrite(ctx context.Context, c *clientv3.Client) error {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	key := "/etcdsafe-drill/" + hex.EncodeToString(b)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.Put(wctx, key, "drill"); err != nil {
		return err
	}
	_, err := c.Delete(wctx, key)
	return err
}

// page is one range response.
type page struct {
	kvs []*mvccpb.KeyValue
}

// tally is what decoding found, per worker.
type tally struct {
	objects, secrets, notObjects, encrypted, undecodable, keyProblems, kms int
	samples                                                                []string
	keyErr, badErr, kmsErr                                                 error
}

// readBack ranges over every key at revision rev in pages, compares each
// with entries (sorted by key) in the fetching goroutine and decodes the
// values on every core. It fills rep's counts and returns the causes for a
// [FailedError].
func readBack(ctx context.Context, c *clientv3.Client, rev int64, entries []inspect.Entry, src *source.Source, pageSize int, rep *Report) ([]error, error) {
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	pages := make(chan page, 2)
	workers := max(1, runtime.GOMAXPROCS(0))
	tallies := make([]tally, workers)
	secrets := []byte(src.Prefix + "/secrets/")
	for w := range workers {
		wg.Go(func() {
			t := &tallies[w]
			for p := range pages {
				for _, kv := range p.kvs {
					decodeOne(src.Decoder, kv, secrets, t)
				}
			}
		})
	}
	// rep's key counts are written by the fetcher only, and read after Wait
	fetch := func() error {
		defer close(pages)
		// Pages are cut at the snapshot's keys, not by a limit: etcd
		// counts every key to the range's end for each request, so a
		// limited range over the whole keyspace costs O(keys) per page
		// (minutes for a million keys). The ranges still cover every
		// key from "\x00" up: a key the snapshot lacks is read too.
		i := 0
		for from := 0; from == 0 || from < len(entries); from += pageSize {
			key := "\x00"
			if from > 0 {
				key = entries[from].Key
			}
			end := "\x00" // to the end of the keyspace
			if from+pageSize < len(entries) {
				end = entries[from+pageSize].Key
			}
			resp, err := c.Get(gctx, key, clientv3.WithRange(end), clientv3.WithRev(rev), clientv3.WithSerializable())
			if err != nil {
				return fmt.Errorf("read keys back from the restored etcd: %w", err)
			}
			for _, kv := range resp.Kvs {
				i = compareOne(src.Snapshot, entries, i, kv, rep)
			}
			if len(resp.Kvs) > 0 {
				select {
				case pages <- page{kvs: resp.Kvs}:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		for ; i < len(entries); i++ {
			rep.Missing++
			rep.sample("missing: %s", entries[i].Key)
		}
		return nil
	}
	err := fetch()
	cancel()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	var causes []error
	var keyErr, badErr error
	for _, t := range tallies {
		rep.Objects += t.objects
		rep.Secrets += t.secrets
		rep.NotObjects += t.notObjects
		rep.Encrypted += t.encrypted
		rep.Undecodable += t.undecodable
		rep.KeyProblems += t.keyProblems
		rep.KMS += t.kms
		for _, s := range t.samples {
			rep.sample("%s", s)
		}
		keyErr = cmpOr(keyErr, t.keyErr)
		badErr = cmpOr(badErr, t.badErr)
		rep.kmsErr = cmpOr(rep.kmsErr, t.kmsErr)
	}
	if rep.Missing > 0 || rep.Extra > 0 || rep.Different > 0 || badErr != nil {
		causes = append(causes, ErrMismatch)
	}
	if badErr != nil {
		causes = append(causes, badErr)
	}
	if keyErr != nil {
		causes = append(causes, keyErr)
	}
	return causes, nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// compareOne compares kv, read back, with the snapshot's entries from i
// on (both sorted by key) and returns the index of the next entry.
func compareOne(snap *inspect.Snapshot, entries []inspect.Entry, i int, kv *mvccpb.KeyValue, rep *Report) int {
	rep.KeysRead++
	k := string(kv.Key)
	for i < len(entries) && entries[i].Key < k {
		rep.Missing++
		rep.sample("missing: %s", entries[i].Key)
		i++
	}
	if i == len(entries) || entries[i].Key != k {
		rep.Extra++
		rep.sample("extra: %s", k)
		return i
	}
	e := &entries[i]
	var why string
	switch {
	case e.ModRevision != kv.ModRevision:
		why = fmt.Sprintf("mod revision %d in the snapshot, %d restored", e.ModRevision, kv.ModRevision)
	case e.CreateRevision != kv.CreateRevision:
		why = fmt.Sprintf("create revision %d in the snapshot, %d restored", e.CreateRevision, kv.CreateRevision)
	case e.Version != kv.Version:
		why = fmt.Sprintf("version %d in the snapshot, %d restored", e.Version, kv.Version)
	default:
		rec, err := snap.Get(e.Rev)
		switch {
		case err != nil:
			why = fmt.Sprintf("the snapshot's record does not read: %v", err)
		case !bytes.Equal(rec.Value, kv.Value):
			why = fmt.Sprintf("value differs (%d bytes in the snapshot, %d restored)", len(rec.Value), len(kv.Value))
		}
	}
	if why != "" {
		rep.Different++
		rep.sample("differs: %s: %s", k, why)
	}
	return i + 1
}

// decodeOne decodes one value read back into t.
func decodeOne(d *decode.Decoder, kv *mvccpb.KeyValue, secrets []byte, t *tally) {
	switch decode.SniffEncoding(kv.Value) {
	case decode.EncodingText, decode.EncodingEmpty:
		t.notObjects++
		return
	}
	if bytes.HasPrefix(kv.Value, []byte("k8s:enc:")) {
		t.encrypted++
	}
	_, err := d.Decode(kv.Key, kv.Value)
	switch {
	case err == nil:
		t.objects++
		if bytes.HasPrefix(kv.Key, secrets) {
			t.secrets++
		}
	case errors.Is(err, decode.ErrKMS):
		t.kms++
		t.kmsErr = cmpOr(t.kmsErr, err)
	case errors.Is(err, decode.ErrEncrypted), errors.Is(err, decode.ErrDecrypt):
		t.keyProblems++
		t.keyErr = cmpOr(t.keyErr, err)
		if len(t.samples) < maxSamples {
			t.samples = append(t.samples, fmt.Sprintf("not decryptable: %s: %v", kv.Key, err))
		}
	default:
		t.undecodable++
		if errors.Is(err, decode.ErrBadValue) || errors.Is(err, decode.ErrBadKeyValue) {
			t.badErr = cmpOr(t.badErr, err)
		}
		if len(t.samples) < maxSamples {
			t.samples = append(t.samples, fmt.Sprintf("undecodable: %s: %v", kv.Key, err))
		}
	}
}
