package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kmstest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
	"github.com/etcdsafe/etcdsafe/snapshot"
)

// KMS v2 in the scripts (kms*.txtar): test plugins on unix sockets served
// by this test process, and snapshots of Secrets encrypted through them.
func init() {
	scriptCmds["kms"] = cmdKMS
}

// kmsPlugins maps a running script to its plugins by name.
var kmsPlugins sync.Map // *testscript.TestScript -> map[string]*kmstest.Plugin

func scriptPlugins(ts *testscript.TestScript) map[string]*kmstest.Plugin {
	v, _ := kmsPlugins.LoadOrStore(ts, map[string]*kmstest.Plugin{})
	return v.(map[string]*kmstest.Plugin)
}

// cmdKMS drives test KMS v2 plugins (k8s.io/kms's gRPC server):
//
//	kms start NAME SECRET   serve plugin NAME (wrapping key from SECRET); $KMS_NAME is its socket
//	kms stop NAME           stop it (its socket removed)
//	kms calls NAME N        check it served N Decrypt calls
//	kms snap NAME OUT N     write OUT, a snapshot of 2N Secrets in namespaces a and b that
//	                        kube-apiserver's KMS v2 envelope encrypted through NAME as
//	                        provider "NAME" (a: one AES-GCM data key, b: one HKDF seed),
//	                        and a plain ConfigMap; enc.yaml names NAME's endpoint
func cmdKMS(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: kms start|stop|calls|snap NAME ...")
	}
	plugins := scriptPlugins(ts)
	name := args[1]
	switch {
	case args[0] == "start" && len(args) == 3:
		// a short dir: unix socket paths are limited to ~108 bytes
		dir, err := os.MkdirTemp("", "kms")
		ts.Check(err)
		p, err := kmstest.Start(filepath.Join(dir, name+".sock"), kmstest.Options{Secret: args[2]})
		ts.Check(err)
		plugins[name] = p
		ts.Defer(func() { p.Close(); _ = os.RemoveAll(dir) })
		ts.Setenv("KMS_"+name, p.Socket)
	case args[0] == "stop" && len(args) == 2:
		scriptPlugin(ts, name).Close()
	case args[0] == "calls" && len(args) == 3:
		want, err := strconv.ParseInt(args[2], 10, 64)
		ts.Check(err)
		if got := scriptPlugin(ts, name).DecryptCalls(); got != want {
			ts.Fatalf("plugin %s served %d Decrypt calls, want %d", name, got, want)
		}
	case args[0] == "snap" && len(args) == 4:
		n, err := strconv.Atoi(args[3])
		ts.Check(err)
		kmsSnapshot(ts, scriptPlugin(ts, name), name, ts.MkAbs(args[2]), n)
	default:
		ts.Fatalf("usage: kms start NAME SECRET | stop NAME | calls NAME N | snap NAME OUT N")
	}
}

func scriptPlugin(ts *testscript.TestScript, name string) *kmstest.Plugin {
	p := scriptPlugins(ts)[name]
	if p == nil {
		ts.Fatalf("no kms plugin %s started", name)
	}
	return p
}

func kmsSnapshot(ts *testscript.TestScript, p *kmstest.Plugin, provider, out string, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := etcdtest.StartDir(ts.MkAbs("kms-etcd"))
	ts.Check(err)
	defer s.Stop()
	w, err := kubestore.New(s.Client, kubestore.Options{})
	ts.Check(err)
	for _, ns := range []string{"a", "b"} {
		enc, err := kmstest.NewWriter(ctx, p.Service(), provider, ns == "b")
		ts.Check(err)
		for i := range n {
			key := fmt.Sprintf("/registry/secrets/%s/s%d", ns, i)
			plain := fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s%d","namespace":%q},"data":{"password":"aHVudGVyMg=="}}`, i, ns)
			v, err := enc.Encrypt(ctx, key, plain)
			ts.Check(err)
			_, err = w.PutRaw(ctx, key, v)
			ts.Check(err)
		}
	}
	_, err = w.PutRaw(ctx, "/registry/configmaps/a/plain", []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"plain","namespace":"a"}}`))
	ts.Check(err)
	_, err = snapshot.Save(ctx, s.Client, out)
	ts.Check(err)
	cfg := fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms:
          apiVersion: v2
          name: %s
          endpoint: %s
      - identity: {}
`, provider, p.Endpoint)
	ts.Check(os.WriteFile(ts.MkAbs("enc.yaml"), []byte(cfg), 0o600))
}
