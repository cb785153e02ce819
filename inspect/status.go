package inspect

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/etcdsafe/etcdsafe/decode"
)

// Status holds the figures of `etcdsafe status`.
type Status struct {
	StorageVersion           string          `json:"storageVersion,omitempty"` // "3.7.0"; empty in 3.5 files
	ClusterVersion           string          `json:"clusterVersion,omitempty"`
	Revision                 int64           `json:"revision"` // newest revision in the key bucket
	CompactRevision          int64           `json:"compactRevision"`
	ScheduledCompactRevision int64           `json:"scheduledCompactRevision"`
	ConsistentIndex          uint64          `json:"consistentIndex"`
	Term                     uint64          `json:"term"`
	Members                  []decode.Member `json:"members"`
	RemovedMembers           []string        `json:"removedMembers,omitempty"`
	Alarms                   []decode.Alarm  `json:"alarms,omitempty"`
	LiveKeys                 int             `json:"liveKeys"`
	Revisions                int             `json:"revisions"` // records in the key bucket
	Tombstones               int             `json:"tombstones"`
	FileSize                 int64           `json:"fileSize"`
	DBSize                   int64           `json:"dbSize"`      // bbolt's size (high-water mark)
	DBSizeInUse              int64           `json:"dbSizeInUse"` // minus free pages
	// Hash is the CRC-32C of every bucket name, key and value, as
	// `etcdutl snapshot status` computes it.
	Hash     uint32   `json:"hash"`
	Problems []string `json:"problems,omitempty"`
	// Check holds bbolt's consistency check result when it was run.
	CheckRun    bool     `json:"checkRun"`
	CheckErrors []string `json:"checkErrors,omitempty"`
}

// Status reads the figures; check runs bbolt's full consistency check too.
func (s *Snapshot) Status(ctx context.Context, check bool) (*Status, error) {
	st := &Status{FileSize: s.FileSize, Members: []decode.Member{}}
	err := guard("status", func() error {
		tx := s.tx
		st.DBSize = tx.Size()
		// bbolt does not load the freelist in read-only mode, so count the
		// pages the buckets use (plus the two meta pages and the root page).
		pageSize := int64(s.db.Info().PageSize)
		inUse := int64(3)
		_ = tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			bs := b.Stats()
			inUse += int64(bs.BranchPageN + bs.BranchOverflowN + bs.LeafPageN + bs.LeafOverflowN)
			return nil
		})
		st.DBSizeInUse = min(inUse*pageSize, st.DBSize)

		if b := tx.Bucket(bucketMeta); b != nil {
			if v := b.Get([]byte("storageVersion")); v != nil {
				st.StorageVersion = string(v)
			}
			for name, dst := range map[string]*uint64{"consistent_index": &st.ConsistentIndex, "term": &st.Term} {
				if v := b.Get([]byte(name)); v != nil {
					if n, err := decode.ParseUint64(v); err == nil {
						*dst = n
					} else {
						st.Problems = append(st.Problems, "meta "+name+": "+err.Error())
					}
				}
			}
			for name, dst := range map[string]*int64{"finishedCompactRev": &st.CompactRevision, "scheduledCompactRev": &st.ScheduledCompactRevision} {
				if v := b.Get([]byte(name)); v != nil {
					if r, err := decode.ParseRevision(v); err == nil {
						*dst = r.Main
					} else {
						st.Problems = append(st.Problems, "meta "+name+": "+err.Error())
					}
				}
			}
		}
		if b := tx.Bucket(bucketCluster); b != nil {
			st.ClusterVersion = string(b.Get([]byte("clusterVersion")))
		}
		if b := tx.Bucket(bucketMembers); b != nil {
			_ = b.ForEach(func(k, v []byte) error {
				m, err := decode.ParseMember(v)
				if err != nil {
					st.Problems = append(st.Problems, "member "+string(k)+": "+err.Error())
					return nil
				}
				st.Members = append(st.Members, m)
				return nil
			})
			sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].ID < st.Members[j].ID })
		}
		if b := tx.Bucket(bucketRemoved); b != nil {
			_ = b.ForEach(func(k, _ []byte) error { st.RemovedMembers = append(st.RemovedMembers, string(k)); return nil })
		}
		if b := tx.Bucket(bucketAlarm); b != nil {
			_ = b.ForEach(func(k, _ []byte) error {
				a, err := decode.ParseAlarm(k)
				if err != nil {
					st.Problems = append(st.Problems, "alarm: "+err.Error())
					return nil
				}
				st.Alarms = append(st.Alarms, a)
				return nil
			})
		}

		// One pass over every bucket: etcdutl's hash, and the key counts.
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		live := map[string]struct{}{}
		c := tx.Cursor()
		n := 0
		for name, _ := c.First(); name != nil; name, _ = c.Next() {
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			h.Write(name)
			isKey := string(name) == string(bucketKey)
			err := b.ForEach(func(k, v []byte) error {
				if n++; n&0xffff == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				h.Write(k)
				h.Write(v)
				if !isKey {
					return nil
				}
				st.Revisions++
				rev, err := decode.ParseRevision(k)
				if err != nil {
					st.Problems = append(st.Problems, Problem{Revision: k, Err: err}.Error())
					return nil
				}
				st.Revision = rev.Main
				if len(v) == 0 {
					return nil // the empty marker of a --bump-revision restore
				}
				kv, err := decode.ParseKeyValue(v)
				if err != nil {
					st.Problems = append(st.Problems, Problem{Revision: k, Err: err}.Error())
					return nil
				}
				if rev.Tombstone {
					st.Tombstones++
					delete(live, string(kv.Key))
				} else {
					live[string(kv.Key)] = struct{}{}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		st.Hash = h.Sum32()
		st.LiveKeys = len(live)
		if check {
			st.CheckRun = true
			var ce *CheckError
			if err := s.Check(ctx); errors.As(err, &ce) {
				st.CheckErrors = ce.Problems
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// CompactRevision is the revision of the last finished compaction (0 if
// none): state older than it is incomplete in the file.
func (s *Snapshot) CompactRevision() int64 {
	var rev int64
	_ = guard("read meta", func() error {
		if b := s.tx.Bucket(bucketMeta); b != nil {
			if r, err := decode.ParseRevision(b.Get([]byte("finishedCompactRev"))); err == nil {
				rev = r.Main
			}
		}
		return nil
	})
	return rev
}

// Revision is the newest revision in the key bucket (0 when it is empty),
// read from its last key without walking it.
func (s *Snapshot) Revision() (int64, error) {
	var rev int64
	err := guard("read newest revision", func() error {
		k, _ := s.tx.Bucket(bucketKey).Cursor().Last()
		if k == nil {
			return nil
		}
		r, err := decode.ParseRevision(k)
		if err != nil {
			return fmt.Errorf("%s: newest revision key: %w", s.DBPath, err)
		}
		rev = r.Main
		return nil
	})
	return rev, err
}
