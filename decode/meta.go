package decode

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// ErrBadMeta is wrapped by errors about records of etcd's small buckets
// (meta, members, alarm).
var ErrBadMeta = errors.New("malformed etcd metadata record")

// ParseUint64 decodes a big-endian uint64 value of the "meta" bucket
// (consistent_index, term) or the "auth" bucket (authRevision).
func ParseUint64(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, &FormatError{What: "uint64 value", Reason: fmt.Sprintf("length %d, want 8", len(v)), Err: ErrBadMeta}
	}
	return binary.BigEndian.Uint64(v), nil
}

// Member is one record of etcd's "members" bucket.
type Member struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// IDString is the member ID in etcd's hex form, as etcdctl prints it.
func (m Member) IDString() string { return strconv.FormatUint(m.ID, 16) }

// ParseMember decodes a "members" bucket value (JSON, etcd 3.4+).
func ParseMember(v []byte) (Member, error) {
	var m Member
	if err := json.Unmarshal(v, &m); err != nil {
		return Member{}, &FormatError{What: "member record", Reason: "not JSON", Err: fmt.Errorf("%w: %w", ErrBadMeta, err)}
	}
	return m, nil
}

// Alarm is one raised alarm of the "alarm" bucket.
type Alarm struct {
	MemberID uint64
	Type     string // "NOSPACE", "CORRUPT"
}

// ParseAlarm decodes an "alarm" bucket key (a marshaled AlarmMember).
func ParseAlarm(k []byte) (Alarm, error) {
	var a etcdserverpb.AlarmMember
	if err := proto.Unmarshal(k, &a); err != nil {
		return Alarm{}, &FormatError{What: "alarm record", Reason: "not an AlarmMember", Err: fmt.Errorf("%w: %w", ErrBadMeta, err)}
	}
	return Alarm{MemberID: a.MemberID, Type: a.Alarm.String()}, nil
}
