package restore

import (
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/types"

	"github.com/etcdsafe/etcdsafe/internal/termtext"
)

// etcd's own defaults, used when neither a flag nor the manifest says.
const (
	defaultName    = "default"
	defaultPeerURL = "http://localhost:2380"
	defaultToken   = "etcd-cluster"
)

// Membership is the cluster the restored data dir will belong to.
type Membership struct {
	// Name is this member's --name.
	Name string `json:"name"`
	// PeerURLs are this member's --initial-advertise-peer-urls.
	PeerURLs []string `json:"peerURLs"`
	// InitialCluster lists every member as "name=url,...".
	InitialCluster string `json:"initialCluster"`
	// Token is --initial-cluster-token.
	Token string `json:"initialClusterToken"`
	// From says where the values came from ("manifest", "flags", "defaults").
	From string `json:"from"`
}

// Members returns the member names of InitialCluster, sorted.
func (m Membership) Members() []string {
	um, err := types.NewURLsMap(m.InitialCluster)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(um))
	for n := range um {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// MembershipFlags are the membership values given on the command line;
// empty fields are taken from the manifest, then from etcd's defaults.
type MembershipFlags struct {
	Name                     string
	InitialAdvertisePeerURLs string
	InitialCluster           string
	InitialClusterToken      string
}

// ResolveMembership combines flags and the manifest (which may be nil).
// Without InitialCluster the result is a single-member cluster, the
// outcome of --force-new-cluster. A flag that contradicts the manifest, or
// a member whose entry in the initial cluster is missing or differs from
// its peer URLs, fails with [ErrMembership]: etcd would refuse to start or
// crash-loop with "unexpected removal of unknown remote peer".
func ResolveMembership(f MembershipFlags, m *EtcdManifest) (Membership, error) {
	var ms Membership
	if m != nil {
		ms.Name, ms.PeerURLs, ms.Token, ms.From = m.Name, slices.Clone(m.InitialAdvertisePeerURLs), m.InitialClusterToken, "manifest "+m.Path
	}
	flags := false
	if f.Name != "" {
		if ms.Name != "" && ms.Name != f.Name {
			return ms, fmt.Errorf("--name %q differs from the manifest's %q: %w", f.Name, ms.Name, ErrMembership)
		}
		ms.Name, flags = f.Name, true
	}
	if f.InitialAdvertisePeerURLs != "" {
		u := splitList(f.InitialAdvertisePeerURLs)
		if len(ms.PeerURLs) > 0 && !sameURLs(u, ms.PeerURLs) {
			return ms, fmt.Errorf("--initial-advertise-peer-urls %s differs from the manifest's %s: %w", termtext.Clean(strings.Join(u, ",")), termtext.Clean(strings.Join(ms.PeerURLs, ",")), ErrMembership)
		}
		ms.PeerURLs, flags = u, true
	}
	if f.InitialClusterToken != "" {
		if ms.Token != "" && ms.Token != f.InitialClusterToken {
			return ms, fmt.Errorf("--initial-cluster-token %q differs from the manifest's %q: %w", f.InitialClusterToken, ms.Token, ErrMembership)
		}
		ms.Token, flags = f.InitialClusterToken, true
	}
	switch {
	case m != nil && flags:
		ms.From += " and flags"
	case flags:
		ms.From = "flags"
	case m == nil:
		ms.From = "defaults"
	}
	if ms.Name == "" {
		ms.Name = defaultName
	}
	if len(ms.PeerURLs) == 0 {
		ms.PeerURLs = []string{defaultPeerURL}
	}
	if ms.Token == "" {
		ms.Token = defaultToken
	}
	if _, err := types.NewURLs(ms.PeerURLs); err != nil {
		return ms, fmt.Errorf("peer urls %s: %w: %w", termtext.Clean(strings.Join(ms.PeerURLs, ",")), ErrMembership, err)
	}
	if f.InitialCluster == "" {
		parts := make([]string, len(ms.PeerURLs))
		for i, u := range ms.PeerURLs {
			parts[i] = ms.Name + "=" + u
		}
		ms.InitialCluster = strings.Join(parts, ",")
		return ms, nil
	}
	um, err := types.NewURLsMap(f.InitialCluster)
	if err != nil {
		return ms, fmt.Errorf("--initial-cluster %q: %w: %w", f.InitialCluster, ErrMembership, err)
	}
	own, ok := um[ms.Name]
	if !ok {
		return ms, fmt.Errorf("--initial-cluster has no member named %q: %w", ms.Name, ErrMembership)
	}
	if !sameURLs(own.StringSlice(), ms.PeerURLs) {
		return ms, fmt.Errorf("--initial-cluster gives %s=%s but its peer urls are %s: %w",
			termtext.Clean(ms.Name), termtext.Clean(strings.Join(own.StringSlice(), ",")), termtext.Clean(strings.Join(ms.PeerURLs, ",")), ErrMembership)
	}
	ms.InitialCluster = f.InitialCluster
	return ms, nil
}

func sameURLs(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
