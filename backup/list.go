package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/etcdsafe/etcdsafe/archive"
	"github.com/etcdsafe/etcdsafe/internal/par"
	"github.com/etcdsafe/etcdsafe/keyindex"
	"github.com/etcdsafe/etcdsafe/store"
)

// Entry is one archive found on a [store.Target].
type Entry struct {
	// Name is the archive's name; Where where it is (a path).
	Name  string
	Where string
	Size  int64
	// Time is the sidecar's creation time (UTC), or the object's
	// modification time without a usable sidecar.
	Time    time.Time
	Sidecar *archive.Sidecar
	// SidecarErr says why Sidecar is nil.
	SidecarErr error
	// Retention is the archive's object lock, on a target that keeps
	// them (nil: none, or an active one that could not be read).
	Retention *store.Retention
	// Index reports that a key index (NAME.index) lies beside it.
	Index bool
}

// IsArchiveName reports whether n is named like an archive backup writes
// (".tar.zst.age" or ".tar.zst"); hidden names are never archives.
func IsArchiveName(n string) bool {
	return !strings.HasPrefix(n, ".") && (strings.HasSuffix(n, ".tar.zst.age") || strings.HasSuffix(n, ".tar.zst"))
}

// isPartialName matches the final names of partial archives, sidecars
// and key indexes.
func isPartialName(base string) bool {
	return IsArchiveName(base) || IsArchiveName(strings.TrimSuffix(base, archive.SidecarSuffix)) ||
		IsArchiveName(strings.TrimSuffix(base, keyindex.Suffix))
}

// listWorkers bounds the sidecar reads List has in flight.
const listWorkers = 8

// List returns the archives on t with their sidecars, newest first (by
// time, then by name, so a "_02" backup of the same second comes first).
// It needs no key and takes no lock.
func List(ctx context.Context, t store.Target) ([]Entry, error) {
	objs, err := t.List(ctx)
	if err != nil {
		return nil, err
	}
	var archives []store.Object
	indexes := map[string]bool{}
	for _, o := range objs {
		if IsArchiveName(o.Name) {
			archives = append(archives, o)
		}
		if n, ok := strings.CutSuffix(o.Name, keyindex.Suffix); ok {
			indexes[n] = true
		}
	}
	// One sidecar read (and, on a target that locks, one stat) per
	// archive: over the network they are round trips, made listWorkers at
	// a time.
	_, retainer := t.(store.Retainer)
	out := make([]Entry, len(archives))
	par.Do(len(archives), listWorkers, func(i int) {
		o := archives[i]
		e := Entry{Name: o.Name, Where: t.Where(o.Name), Size: o.Size, Time: o.ModTime.UTC(), Index: indexes[o.Name]}
		if retainer {
			if st, err := t.Stat(ctx, o.Name); err == nil {
				e.Retention = st.Retention
			}
		}
		sc, err := readSidecar(ctx, t, o.Name)
		switch {
		case err != nil:
			e.SidecarErr = err
		case sc.Archive != o.Name:
			e.SidecarErr = fmt.Errorf("sidecar names %q, not this archive", sc.Archive)
		default:
			e.Sidecar, e.Time = sc, sc.Created.UTC()
		}
		out[i] = e
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}

// Newest returns the newest archive of entries (gathered from one or
// several targets) that has a usable sidecar, as [List] orders them (by
// time, then by name): an archive without one was not published by a
// backup run as it is (a copy, a file put there by hand) and its time is
// only the file's. False when no entry has a sidecar.
func Newest(entries []Entry) (Entry, bool) {
	var best Entry
	found := false
	for _, e := range entries {
		if e.Sidecar == nil {
			continue
		}
		if !found || e.Time.After(best.Time) || e.Time.Equal(best.Time) && e.Name > best.Name {
			best, found = e, true
		}
	}
	return best, found
}

func readSidecar(ctx context.Context, t store.Target, name string) (*archive.Sidecar, error) {
	sn := name + archive.SidecarSuffix
	rc, err := t.Get(ctx, sn)
	if err != nil {
		return nil, fmt.Errorf("open sidecar: %w", err)
	}
	defer rc.Close()
	return archive.DecodeSidecar(rc, t.Where(sn))
}

// PruneOptions configures [Prune].
type PruneOptions struct {
	// Policy must not be empty.
	Policy archive.RetentionPolicy
	// GroupBy makes the groups Policy applies to one by one; the zero
	// value puts every backup in one group.
	GroupBy archive.GroupBy
	// DryRun decides and lists, and deletes nothing.
	DryRun bool
	// Only, if set, limits the prune to the group with this key.
	Only string
	// Current is the archive the running backup just wrote: always kept.
	Current string
	// Now tells which sidecars are dated in the future; default time.Now.
	Now func() time.Time
}

// PruneResult is what [Prune] decided and did.
type PruneResult struct {
	// Partials are the partial archives of killed runs removed (or, in a
	// dry run, that would be); PartialsErr says why some could not be.
	Partials    []string
	PartialsErr error
	// Decisions are by group, newest first within a group.
	Decisions []archive.RetentionDecision
	// Removed are the archives deleted (with their key indexes and
	// sidecars).
	Removed []string
	// Unmanaged are archives without a usable sidecar: always kept.
	Unmanaged []string
	// Future are archives whose sidecar is dated ahead of now (clock skew).
	Future []string
	// Locked are archives the policy drops but an object lock keeps
	// (deleted by a later prune once the lock ends).
	Locked []LockedArchive
}

// LockedArchive is an archive a prune kept because it is locked.
type LockedArchive struct {
	Name  string
	Mode  string
	Until time.Time
}

// futureSlack is how far ahead of now a sidecar may be dated before it is
// reported as clock skew.
const futureSlack = 5 * time.Minute

// Prune takes t's lock, sweeps the partial archives killed runs left, and
// applies the policy to each group of backups: unless DryRun, it deletes
// each archive the policy drops, then its key index, then its sidecar. Archives without a
// usable sidecar are never deleted. It stops at the first failed deletion
// and returns what it did so far with the error.
func Prune(ctx context.Context, t store.Target, o PruneOptions) (*PruneResult, error) {
	unlock, err := t.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &PruneResult{}
	// Under the lock no backup is writing: partial archives are killed runs'.
	res.Partials, res.PartialsErr = t.SweepPartials(ctx, isPartialName, o.DryRun)
	return res, applyRetention(ctx, t, o, res)
}

// applyRetention is Prune's work after the sweep; the caller holds the lock.
func applyRetention(ctx context.Context, t store.Target, o PruneOptions, res *PruneResult) error {
	if o.Policy.Empty() {
		return errors.New("prune: empty retention policy")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	entries, err := List(ctx, t)
	if err != nil {
		return err
	}
	var items []archive.RetentionItem
	now := o.Now()
	for _, e := range entries {
		if e.Sidecar == nil {
			res.Unmanaged = append(res.Unmanaged, e.Name)
			continue
		}
		g := o.GroupBy.Key(e.Sidecar.Cluster, e.Sidecar.Host)
		if o.Only != "" && g != o.Only {
			continue
		}
		if e.Time.After(now.Add(futureSlack)) {
			res.Future = append(res.Future, e.Name)
		}
		items = append(items, archive.RetentionItem{Name: e.Name, Time: e.Time.UTC(), Group: g, Current: e.Name == o.Current})
	}
	res.Decisions = archive.ApplyRetention(items, o.Policy)
	_, retainer := t.(store.Retainer)
	for _, d := range res.Decisions {
		if d.Keep || d.Current {
			continue
		}
		if o.DryRun {
			if !retainer {
				continue
			}
			// what the lock will keep
			if obj, err := t.Stat(ctx, d.Name); err == nil && obj.Retention.Active(now) {
				res.Locked = append(res.Locked, LockedArchive{Name: d.Name, Mode: obj.Retention.Mode, Until: obj.Retention.Until})
			}
			continue
		}
		// Archive first: a leftover sidecar is harmless and List ignores it.
		if err := t.Delete(ctx, d.Name); err != nil {
			var re *store.RetainedError
			if errors.As(err, &re) {
				res.Locked = append(res.Locked, LockedArchive{Name: d.Name, Mode: re.Retention.Mode, Until: re.Retention.Until})
				continue
			}
			if errors.Is(err, store.ErrRetained) {
				res.Locked = append(res.Locked, LockedArchive{Name: d.Name})
				continue
			}
			return err
		}
		// then the index: an index without its archive is never read
		if err := t.Delete(ctx, d.Name+keyindex.Suffix); err != nil {
			return err
		}
		if err := t.Delete(ctx, d.Name+archive.SidecarSuffix); err != nil {
			return err
		}
		res.Removed = append(res.Removed, d.Name)
	}
	return nil
}
