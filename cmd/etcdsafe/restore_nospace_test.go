package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

func init() { scriptCmds["nospace"] = cmdNoSpace }

// cmdNoSpace: nospace FILE QUOTA writes to FILE a snapshot of a real etcd
// (embedded) run with --quota-backend-bytes=QUOTA and filled until it
// raised NOSPACE: the leases --clean-leases removes (a masterlease, an
// apiserver identity lease, a node lease), the kube-controller-manager's
// lease it keeps, and ten ConfigMaps overwritten with 64 KiB values.
func cmdNoSpace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: nospace FILE QUOTA")
	}
	quota, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	s, err := etcdtest.StartDir(ts.MkAbs("nospace-etcd"), etcdtest.WithQuotaBytes(quota), etcdtest.WithUnsafeNoFsync())
	ts.Check(err)
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lease, err := s.Client.Grant(ctx, 3600)
	ts.Check(err)
	_, err = s.Client.Put(ctx, "/registry/masterleases/10.0.0.11", "k8s\x00", clientv3.WithLease(lease.ID))
	ts.Check(err)
	for _, k := range []string{"/registry/leases/kube-system/apiserver-6x3ouhvw3uqmkeyn", "/registry/leases/kube-node-lease/master-1", "/registry/leases/kube-system/kube-controller-manager"} {
		_, err = s.Client.Put(ctx, k, "k8s\x00")
		ts.Check(err)
	}
	big := strings.Repeat("x", 64<<10)
	for i := 0; ; i++ {
		_, err := s.Client.Put(ctx, fmt.Sprintf("/registry/configmaps/default/cm-%d", i%10), big)
		if errors.Is(err, rpctypes.ErrNoSpace) {
			break
		}
		ts.Check(err)
		if i > 1000 {
			ts.Fatalf("no NOSPACE after 1000 puts")
		}
	}
	_, err = snapshot.Save(ctx, s.Client, ts.MkAbs(args[0]))
	ts.Check(err)
}
