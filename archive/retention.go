package archive

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// RetentionPolicy is a grandfather-father-son policy, with the semantics
// of restic's `forget`: each rule keeps the newest backup of each of its
// most recent N periods that hold a backup. A backup kept by any rule is
// kept. A negative count means "every period"; zero disables the rule.
type RetentionPolicy struct {
	// Last keeps the N newest backups.
	Last int
	// Daily keeps the newest backup of each of the last N days with one.
	Daily int
	// Weekly keeps the newest backup of each of the last N ISO weeks.
	Weekly int
	// Monthly keeps the newest backup of each of the last N months.
	Monthly int
}

// Empty reports whether no rule is set. [ApplyRetention] keeps everything
// under an empty policy; callers should refuse to prune with one.
func (p RetentionPolicy) Empty() bool {
	return p.Last == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0
}

// String describes the policy, e.g. "last=7 daily=14".
func (p RetentionPolicy) String() string {
	s := ""
	add := func(k string, v int) {
		if v == 0 {
			return
		}
		if s != "" {
			s += " "
		}
		if v < 0 {
			s += k + "=all"
		} else {
			s += fmt.Sprintf("%s=%d", k, v)
		}
	}
	add("last", p.Last)
	add("daily", p.Daily)
	add("weekly", p.Weekly)
	add("monthly", p.Monthly)
	if s == "" {
		return "none"
	}
	return s
}

// RetentionItem is one backup as retention sees it.
type RetentionItem struct {
	// Name identifies the backup (its file name); it breaks ties between
	// equal times so the result is deterministic.
	Name string
	// Time is when the backup was taken. Periods (days, weeks, months) are
	// computed in Time's location: pass UTC times for UTC periods.
	Time time.Time
	// Group names the series the item belongs to (see [GroupBy.Key]): the
	// policy applies within each group on its own, so the backups of one
	// master never push out those of another.
	Group string
	// Current marks the archive the running backup has just written: it is
	// always kept (reason "current"), whatever the dates of the others say
	// (a sidecar dated ahead by clock skew would otherwise outrank it).
	Current bool
}

// RetentionDecision is the verdict on one item.
type RetentionDecision struct {
	RetentionItem
	// Keep is true when at least one rule keeps the item.
	Keep bool
	// Reasons names the rules that keep it ("last", "daily", "weekly",
	// "monthly"); empty when it is to be removed, or "policy empty" when the
	// policy keeps everything.
	Reasons []string
}

// ApplyRetention decides which items policy p keeps. The policy applies to
// each [RetentionItem.Group] on its own; an item marked Current is always
// kept. It returns one decision per item, ordered by group and newest first
// within a group. It does not modify items.
func ApplyRetention(items []RetentionItem, p RetentionPolicy) []RetentionDecision {
	out := make([]RetentionDecision, len(items))
	for i, it := range items {
		out[i] = RetentionDecision{RetentionItem: it}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].Name > out[j].Name
	})
	if p.Empty() {
		for i := range out {
			out[i].Keep = true
			out[i].Reasons = []string{"policy empty"}
		}
		return out
	}
	for start := 0; start < len(out); {
		end := start + 1
		for end < len(out) && out[end].Group == out[start].Group {
			end++
		}
		applyGroup(out[start:end], p)
		start = end
	}
	return out
}

// applyGroup applies p to the decisions of one group, newest first.
func applyGroup(out []RetentionDecision, p RetentionPolicy) {
	type rule struct {
		name   string
		count  int
		bucket func(time.Time) string
		last   string
		seen   bool
	}
	rules := []*rule{
		{name: "last", count: p.Last, bucket: nil},
		{name: "daily", count: p.Daily, bucket: func(t time.Time) string { return t.Format("2006-01-02") }},
		{name: "weekly", count: p.Weekly, bucket: func(t time.Time) string {
			y, w := t.ISOWeek()
			return fmt.Sprintf("%04d-W%02d", y, w)
		}},
		{name: "monthly", count: p.Monthly, bucket: func(t time.Time) string { return t.Format("2006-01") }},
	}
	for i := range out {
		d := &out[i]
		for _, r := range rules {
			if r.count == 0 {
				continue
			}
			if r.bucket == nil { // last: every item is its own period
				d.Keep = true
				d.Reasons = append(d.Reasons, r.name)
				r.count--
				continue
			}
			b := r.bucket(d.Time)
			if r.seen && b == r.last {
				continue
			}
			r.seen, r.last = true, b
			d.Keep = true
			d.Reasons = append(d.Reasons, r.name)
			r.count--
		}
		if d.Current && !d.Keep {
			d.Keep = true
			d.Reasons = append(d.Reasons, "current")
		}
	}
}

// GroupBy says which sidecar fields make up a retention group, as restic's
// `forget --group-by`. The zero value puts every backup in one group.
type GroupBy struct {
	Cluster, Host bool
}

// DefaultGroupBy groups by cluster and host: one series per master.
var DefaultGroupBy = GroupBy{Cluster: true, Host: true}

// ParseGroupBy parses a comma-separated list of "cluster" and "host", or
// "" / "none" for a single group.
func ParseGroupBy(s string) (GroupBy, error) {
	var g GroupBy
	if s == "" || s == "none" {
		return g, nil
	}
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "cluster":
			g.Cluster = true
		case "host":
			g.Host = true
		default:
			return g, fmt.Errorf("group by %q: want cluster, host, cluster,host or none", f)
		}
	}
	return g, nil
}

// String is the form [ParseGroupBy] reads.
func (g GroupBy) String() string {
	switch {
	case g.Cluster && g.Host:
		return "cluster,host"
	case g.Cluster:
		return "cluster"
	case g.Host:
		return "host"
	}
	return "none"
}

// Key returns the group key of a backup of cluster taken on host, e.g.
// "cluster=prod host=m1"; an empty field shows as "-". It is meant to be
// shown to people (pass it through a terminal cleaner first).
func (g GroupBy) Key(cluster, host string) string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	var parts []string
	if g.Cluster {
		parts = append(parts, "cluster="+dash(cluster))
	}
	if g.Host {
		parts = append(parts, "host="+dash(host))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}
