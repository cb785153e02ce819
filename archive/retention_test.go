package archive

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestApplyRetention checks decisions against a calendar worked out by
// hand, following restic's documented `forget` examples.
func TestApplyRetention(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	// Nightly backups at 02:00 plus an extra one some days, over ~3 months.
	// 2026-03-02 is a Monday (ISO week 10); 2026-01-01 a Thursday.
	items := []RetentionItem{
		{Name: "a", Time: at("2025-12-30 02:00")}, // Tue, ISO 2026-W01, Dec
		{Name: "b", Time: at("2025-12-31 02:00")}, // Wed, ISO 2026-W01, Dec (newest of Dec)
		{Name: "c", Time: at("2026-01-01 02:00")}, // Thu, W01, Jan
		{Name: "d", Time: at("2026-01-31 02:00")}, // Sat, W05, Jan (newest of Jan)
		{Name: "e", Time: at("2026-02-28 02:00")}, // Sat, W09, Feb (newest of Feb)
		{Name: "f", Time: at("2026-03-01 02:00")}, // Sun, W09
		{Name: "g", Time: at("2026-03-02 02:00")}, // Mon, W10
		{Name: "h", Time: at("2026-03-02 14:00")}, // Mon, W10, extra run same day
		{Name: "i", Time: at("2026-03-03 02:00")}, // Tue, W10
	}
	tests := []struct {
		name   string
		policy RetentionPolicy
		keep   map[string][]string // name -> reasons; absent = removed
	}{
		{"empty policy keeps all", RetentionPolicy{}, map[string][]string{
			"a": {"policy empty"}, "b": {"policy empty"}, "c": {"policy empty"}, "d": {"policy empty"}, "e": {"policy empty"},
			"f": {"policy empty"}, "g": {"policy empty"}, "h": {"policy empty"}, "i": {"policy empty"}}},
		{"last 3", RetentionPolicy{Last: 3}, map[string][]string{"i": {"last"}, "h": {"last"}, "g": {"last"}}},
		{"last more than items", RetentionPolicy{Last: 20}, map[string][]string{
			"a": {"last"}, "b": {"last"}, "c": {"last"}, "d": {"last"}, "e": {"last"},
			"f": {"last"}, "g": {"last"}, "h": {"last"}, "i": {"last"}}},
		{"daily 3 takes the newest of each day", RetentionPolicy{Daily: 3}, map[string][]string{
			"i": {"daily"}, "h": {"daily"}, "f": {"daily"}}},
		{"weekly 3 uses ISO weeks across the year end", RetentionPolicy{Weekly: 3}, map[string][]string{
			"i": {"weekly"}, "f": {"weekly"}, "d": {"weekly"}}},
		{"weekly 5 reaches week 1 of 2026 in December", RetentionPolicy{Weekly: 5}, map[string][]string{
			"i": {"weekly"}, "f": {"weekly"}, "d": {"weekly"}, "c": {"weekly"}}},
		{"monthly 3", RetentionPolicy{Monthly: 3}, map[string][]string{
			"i": {"monthly"}, "e": {"monthly"}, "d": {"monthly"}}},
		{"monthly all", RetentionPolicy{Monthly: -1}, map[string][]string{
			"i": {"monthly"}, "e": {"monthly"}, "d": {"monthly"}, "b": {"monthly"}}},
		{"rules combine", RetentionPolicy{Last: 1, Daily: 2, Weekly: 2, Monthly: 2}, map[string][]string{
			"i": {"last", "daily", "weekly", "monthly"}, "h": {"daily"}, "f": {"weekly"}, "e": {"monthly"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ApplyRetention(items, tc.policy)
			if len(got) != len(items) {
				t.Fatalf("%d decisions for %d items", len(got), len(items))
			}
			for i := 1; i < len(got); i++ {
				if got[i].Time.After(got[i-1].Time) {
					t.Fatalf("not newest first: %s before %s", got[i-1].Name, got[i].Name)
				}
			}
			for _, d := range got {
				want, ok := tc.keep[d.Name]
				if d.Keep != ok {
					t.Errorf("%s (%s): keep=%v, want %v (reasons %v)", d.Name, d.Time.Format(time.DateTime), d.Keep, ok, d.Reasons)
					continue
				}
				if ok && !reflect.DeepEqual(d.Reasons, want) {
					t.Errorf("%s: reasons %v, want %v", d.Name, d.Reasons, want)
				}
			}
		})
	}
}

func TestApplyRetentionTiesAndInput(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)
	items := []RetentionItem{{Name: "x", Time: ts}, {Name: "z", Time: ts}, {Name: "y", Time: ts}}
	got := ApplyRetention(items, RetentionPolicy{Last: 1})
	if got[0].Name != "z" || !got[0].Keep || got[1].Keep || got[2].Keep {
		t.Fatalf("tie not broken by name: %+v", got)
	}
	if items[0].Name != "x" || items[1].Name != "z" {
		t.Fatal("input was reordered")
	}
	if len(ApplyRetention(nil, RetentionPolicy{Last: 1})) != 0 {
		t.Fatal("decisions for no items")
	}
}

func TestRetentionPolicyString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    RetentionPolicy
		want string
	}{
		{RetentionPolicy{}, "none"},
		{RetentionPolicy{Last: 7, Monthly: -1}, "last=7 monthly=all"},
		{RetentionPolicy{Daily: 1, Weekly: 2}, "daily=1 weekly=2"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.p.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSidecar(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	arch := filepath.Join(dir, "m0-20260501T020000Z.tar.zst.age")
	content := randBytes(t, 100_000)
	if err := os.WriteFile(arch, content, 0o600); err != nil {
		t.Fatal(err)
	}
	sc := &Sidecar{Version: SidecarVersion, Archive: filepath.Base(arch), FormatVersion: FormatVersion,
		Created: time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC), Host: "m0", Revision: 42,
		ArchiveSize: int64(len(content)), ArchiveSHA256: sumHex(content), Encrypted: true,
		Recipients: []string{RecipientFingerprint("age1qqqq")}}
	b, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(SidecarPath(arch), b, 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSidecar(SidecarPath(arch))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, sc) {
		t.Fatalf("round trip: %+v != %+v", back, sc)
	}
	if err := VerifyAgainstSidecar(arch, back); err != nil {
		t.Fatalf("verify intact: %v", err)
	}

	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrTruncated},
		{"appended", func(b []byte) []byte { return append(b, 0) }, ErrTampered},
		{"flipped", func(b []byte) []byte { b[500] ^= 1; return b }, ErrTampered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "a")
			if err := os.WriteFile(p, tc.mutate(append([]byte(nil), content...)), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := VerifyAgainstSidecar(p, back); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}

	bad := []struct {
		name, json string
		want       error
	}{
		{"not json", "{", ErrNotArchive},
		{"no hash", `{"sidecar_version":1,"archive":"a"}`, ErrNotArchive},
		{"newer", `{"sidecar_version":99}`, ErrUnsupportedVersion},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "s.json")
			if err := os.WriteFile(p, []byte(tc.json), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadSidecar(p); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRecipientFingerprint(t *testing.T) {
	t.Parallel()
	fp := RecipientFingerprint("ssh-ed25519 AAAAC3Nza key@host")
	tests := []struct {
		line, prefix string
	}{
		{"", "scrypt"},
		{"age1pq1abc", "mlkem768x25519:sha256:"},
		{"age1abc", "x25519:sha256:"},
		{"ssh-rsa AAAAB3 c", "ssh-rsa:sha256:"},
		{"ssh-ed25519 AAAAC3Nza other-comment", fp},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			got := RecipientFingerprint(tc.line)
			if !strings.HasPrefix(got, tc.prefix) {
				t.Fatalf("RecipientFingerprint(%q) = %q, want prefix %q", tc.line, got, tc.prefix)
			}
		})
	}
	if RecipientFingerprint("age1abc") == RecipientFingerprint("age1abd") {
		t.Fatal("different recipients share a fingerprint")
	}
}

// TestApplyRetentionGroups: two masters in one directory each keep their
// own N newest; one master's many backups never push out the other's.
func TestApplyRetentionGroups(t *testing.T) {
	t.Parallel()
	day := func(d int) time.Time { return time.Date(2026, 4, d, 2, 0, 0, 0, time.UTC) }
	g := DefaultGroupBy
	var items []RetentionItem
	for d := 1; d <= 6; d++ {
		items = append(items, RetentionItem{Name: "m1-" + string(rune('0'+d)), Time: day(d), Group: g.Key("prod", "m1")})
	}
	// m2 stopped backing up on day 2: under one group, keep-last 3 would
	// delete both of its backups.
	items = append(items,
		RetentionItem{Name: "m2-1", Time: day(1), Group: g.Key("prod", "m2")},
		RetentionItem{Name: "m2-2", Time: day(2), Group: g.Key("prod", "m2")})
	got := ApplyRetention(items, RetentionPolicy{Last: 3})
	kept := map[string]bool{}
	for i, d := range got {
		if i > 0 && got[i-1].Group == d.Group && d.Time.After(got[i-1].Time) {
			t.Fatalf("not newest first within group: %s before %s", got[i-1].Name, d.Name)
		}
		if i > 0 && got[i-1].Group > d.Group {
			t.Fatalf("groups not ordered: %q before %q", got[i-1].Group, d.Group)
		}
		kept[d.Name] = d.Keep
	}
	want := map[string]bool{"m1-6": true, "m1-5": true, "m1-4": true, "m1-3": false, "m1-2": false, "m1-1": false, "m2-2": true, "m2-1": true}
	if !reflect.DeepEqual(kept, want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}
	// With no grouping the old behaviour holds: m2 loses both.
	for i := range items {
		items[i].Group = GroupBy{}.Key("prod", "m?")
	}
	for _, d := range ApplyRetention(items, RetentionPolicy{Last: 3}) {
		if strings.HasPrefix(d.Name, "m2") && d.Keep {
			t.Fatalf("single group kept %s", d.Name)
		}
	}
}

// TestApplyRetentionCurrent: sidecars dated ahead (clock skew) outrank the
// archive just written; it is kept anyway, and only it is.
func TestApplyRetentionCurrent(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 4, 10, 2, 0, 0, 0, time.UTC)
	var items []RetentionItem
	for d := 1; d <= 7; d++ {
		items = append(items, RetentionItem{Name: "future-" + string(rune('0'+d)), Time: now.AddDate(0, 0, d)})
	}
	items = append(items, RetentionItem{Name: "old", Time: now.AddDate(0, 0, -1)}, RetentionItem{Name: "now", Time: now, Current: true})
	for _, p := range []RetentionPolicy{{Last: 7}, {Daily: 7}, {Weekly: 1}, {Monthly: 1}, {Last: 1, Daily: 1}} {
		for _, d := range ApplyRetention(items, p) {
			switch d.Name {
			case "now":
				if !d.Keep {
					t.Errorf("%v: current archive dropped", p)
				}
			case "old":
				if d.Keep {
					t.Errorf("%v: old kept (%v)", p, d.Reasons)
				}
			}
		}
	}
	for _, d := range ApplyRetention(items, RetentionPolicy{Last: 7}) {
		if d.Name == "now" && !reflect.DeepEqual(d.Reasons, []string{"current"}) {
			t.Errorf("reasons %v, want [current]", d.Reasons)
		}
	}
	// The current archive that is also the newest is kept by the rules,
	// and uses up a slot as before.
	items = []RetentionItem{{Name: "a", Time: now.Add(-time.Hour)}, {Name: "b", Time: now, Current: true}}
	got := ApplyRetention(items, RetentionPolicy{Last: 1})
	if !got[0].Keep || got[0].Name != "b" || !reflect.DeepEqual(got[0].Reasons, []string{"last"}) || got[1].Keep {
		t.Fatalf("%+v", got)
	}
}

func TestParseGroupBy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		err      bool
	}{
		{"", "none", false}, {"none", "none", false}, {"host", "host", false}, {"cluster", "cluster", false},
		{"host,cluster", "cluster,host", false}, {"cluster, host", "cluster,host", false}, {"tags", "", true},
	}
	for _, tc := range tests {
		g, err := ParseGroupBy(tc.in)
		if (err != nil) != tc.err || (err == nil && g.String() != tc.want) {
			t.Errorf("ParseGroupBy(%q) = %v, %v; want %s", tc.in, g, err, tc.want)
		}
	}
	if k := DefaultGroupBy.Key("", "m1"); k != "cluster=- host=m1" {
		t.Errorf("Key = %q", k)
	}
}
