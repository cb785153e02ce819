package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/etcdsafe/etcdsafe/internal/demodata"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
)

func init() {
	scriptCmds["diffnights"] = cmdDiffNights
}

// cmdDiffNights: diffnights writes two snapshots of one embedded etcd to $WORK:
// night1.db (the demo cluster, demodata.Fill) and night2.db (after
// demodata.NextDay with 5 Lease renewals), and their Secrets' decryption
// config, nights-enc.yaml.
func cmdDiffNights(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: diffnights")
	}
	s, err := etcdtest.StartDir(ts.MkAbs("diffnights-etcd"), etcdtest.WithUnsafeNoFsync())
	ts.Check(err)
	defer s.Stop()
	w, err := kubestore.New(s.Client, demodata.WriterOptions())
	ts.Check(err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = demodata.Fill(ctx, s.Client, w)
	ts.Check(err)
	save := func(name string) {
		rc, err := s.Client.Snapshot(ctx)
		ts.Check(err)
		defer rc.Close()
		f, err := os.Create(ts.MkAbs(name))
		ts.Check(err)
		_, err = io.Copy(f, rc)
		ts.Check(err)
		ts.Check(f.Close())
	}
	save("night1.db")
	_, err = demodata.NextDay(ctx, w, 5)
	ts.Check(err)
	save("night2.db")
	ts.Check(os.WriteFile(filepath.Join(ts.MkAbs("."), "nights-enc.yaml"), w.EncryptionConfigYAML(), 0o600))
}
