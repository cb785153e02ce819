package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/etcdsafe/etcdsafe/internal/demodata"
	"github.com/etcdsafe/etcdsafe/internal/etcdtest"
	"github.com/etcdsafe/etcdsafe/internal/kubestore"
)

// updateScripts rewrites the expected files of `cmp stdout FILE` in the
// scripts from the current output: go test ./cmd/etcdsafe -run TestScripts -update.
// Review every diff as a change of the CLI's output.
var updateScripts = flag.Bool("update", false, "rewrite the files compared with cmp in testdata/script/*.txtar")

// Test seams of the etcdsafe command the scripts run (see scriptMain).
const (
	// envSigintWhen: send the process itself SIGINT once this file exists.
	envSigintWhen = "ETCDSAFE_TEST_SIGINT_WHEN"
	// envReportMemLimit: print the Go memory limit to stderr after a run
	// that ended with exit 0.
	envReportMemLimit = "ETCDSAFE_TEST_REPORT_MEMLIMIT"
)

// runTests is TestMain's last step: testscript.Main installs this test
// binary as the `etcdsafe` command of the scripts (in a bin dir put first
// in $PATH) and runs the tests; when the binary is started as that
// command, it runs main instead and exits. It never returns.
func runTests(m *testing.M) {
	testscript.Main(m, map[string]func(){"etcdsafe": scriptMain})
}

// scriptMain is the real main, plus two test seams that only watch it.
func scriptMain() {
	// passphrase archives at a small scrypt work factor: age's default
	// costs a second per backup and per read (readers accept any factor
	// up to the default)
	testOnlyScryptLogN = 10
	if p := os.Getenv(envSigintWhen); p != "" {
		// A real SIGINT, as from Ctrl-C or systemd, once the run has
		// reached the point that creates p (main's signal handler is set
		// by then).
		go func() {
			for {
				if _, err := os.Lstat(p); err == nil {
					_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	main() // exits itself unless the code is 0
	if os.Getenv(envReportMemLimit) != "" {
		fmt.Fprintf(os.Stderr, "memlimit=%d\n", debug.SetMemoryLimit(-1))
	}
}

// scriptFixtures are the repo fixtures each script finds in $WORK.
var scriptFixtures = map[string]string{
	"demo.db":       "../../testdata/generated/demo.db",
	"demo-enc.yaml": "../../testdata/generated/encryption-config.yaml",
	"real.db":       "../../testdata/real-k8s1.37-etcd3.7/snapshot.db",
	"real-enc.yaml": "../../testdata/real-k8s1.37-etcd3.7/encryption-config.yaml",
	// kube-apiserver v1.30.14 on etcd v3.5.21, with kubeadm-config
	"old.db":       "../../testdata/real-k8s1.30-etcd3.5/snapshot.db",
	"old-enc.yaml": "../../testdata/real-k8s1.30-etcd3.5/encryption-config.yaml",
	// a kubeadm master's /etc/kubernetes/manifests/etcd.yaml
	"kube/manifests/etcd.yaml": "../../restore/testdata/etcd-kubeadm-single.yaml",
}

// TestScripts runs testdata/script/*.txtar: the CLI's behaviour, one
// scenario per file, as shell sessions (exit codes, output, files left).
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		Setup:               scriptSetup,
		Cmds:                scriptCmds,
		RequireExplicitExec: true,
		UpdateScripts:       *updateScripts,
	})
}

// scriptSetup gives every script copies of the fixtures, a kube dir and an
// age key pair: $WORK/key.txt for $RECIPIENT, and $WORK/other.txt, a key
// that opens nothing.
func scriptSetup(env *testscript.Env) error {
	for dst, src := range scriptFixtures {
		if err := copyFixture(src, filepath.Join(env.WorkDir, dst)); err != nil {
			return err
		}
	}
	for name, content := range map[string]string{
		"kube/pki/ca.crt":  "-----BEGIN CERTIFICATE-----\nMIIB (a kubeadm CA certificate)\n-----END CERTIFICATE-----\n",
		"kube/pki/ca.key":  "-----BEGIN PRIVATE KEY-----\nMIIE (the CA key: secret)\n-----END PRIVATE KEY-----\n",
		"kube/admin.conf":  "apiVersion: v1\nkind: Config\nclusters: []\n",
		"kube/tmp/big.bin": "a cache the backups --exclude\n",
	} {
		if err := writeFile(filepath.Join(env.WorkDir, name), content); err != nil {
			return err
		}
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	other, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(env.WorkDir, "key.txt"), id.String()+"\n"); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(env.WorkDir, "other.txt"), other.String()+"\n"); err != nil {
		return err
	}
	env.Setenv("RECIPIENT", id.Recipient().String())
	return nil
}

func copyFixture(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("fixture: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}

func writeFile(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o600)
}

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"exits":    cmdExits,
	"etcd":     cmdEtcd,
	"deadend":  cmdDeadend,
	"waitfile": cmdWaitfile,
	"chop":     cmdChop,
	"tree":     cmdTree,
	// S3 (script_s3_test.go)
	"s3server": cmdS3Server,
	"s3bucket": cmdS3Bucket,
	"s3ls":     cmdS3Ls,
	"randfile": cmdRandFile,
}

// cmdExits: exits CODE PROG [ARGS...] runs PROG as exec does and checks
// its exit code is CODE (exec alone only tells zero from non-zero).
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exits (give the expected code)")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode() // -1 when killed by a signal
		if !ee.Exited() {
			ts.Fatalf("%s did not exit: %v", args[1], err)
		}
	case err != nil:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// cmdEtcd: etcd start starts a real etcd (embedded, in this test process)
// serving TLS with client certificates as on a kubeadm master, with the
// demo cluster written as kube-apiserver writes it. It sets $ENDPOINT, $PKI
// (the kubeadm etcd certificate dir) and $ETCD_DATA (its data dir). etcd
// stop stops it; the script's end stops it too.
func cmdEtcd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: etcd start|stop")
	}
	switch args[0] {
	case "start":
		if scriptEtcd(ts) != nil {
			ts.Fatalf("etcd already started")
		}
		dir := ts.MkAbs("etcd-data")
		s, err := etcdtest.StartDir(dir, etcdtest.WithTLS())
		ts.Check(err)
		etcds.Store(ts, s)
		ts.Defer(func() { s.Stop(); etcds.Delete(ts) })
		w, err := kubestore.New(s.Client, demodata.WriterOptions())
		ts.Check(err)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err = demodata.Fill(ctx, s.Client, w)
		ts.Check(err)
		ts.Setenv("ENDPOINT", s.Endpoint)
		ts.Setenv("PKI", s.PKIDir)
		ts.Setenv("ETCD_DATA", s.DataDir)
	case "stop":
		s := scriptEtcd(ts)
		if s == nil {
			ts.Fatalf("etcd not started")
		}
		s.Stop()
	default:
		ts.Fatalf("usage: etcd start|stop")
	}
}

// etcds maps a running script to its etcd.
var etcds sync.Map

func scriptEtcd(ts *testscript.TestScript) *etcdtest.Server {
	if v, ok := etcds.Load(ts); ok {
		return v.(*etcdtest.Server)
	}
	return nil
}

// cmdDeadend: deadend sets $DEADEND to host:port of a TCP listener that
// accepts connections and never answers, like an etcd that hangs: a
// client waits there until its timeout or its interruption.
func cmdDeadend(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: deadend")
	}
	addr, stop, err := etcdtest.Silent()
	ts.Check(err)
	ts.Defer(stop)
	ts.Setenv("DEADEND", addr)
}

// cmdWaitfile: waitfile PATH waits (up to 30 s) until PATH exists and is
// not empty: a background command has reached the point that writes it
// (etcdsafe writes its pid into a directory's lock file once it holds it).
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	p := ts.MkAbs(args[0])
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st, err := os.Stat(p); err == nil && st.Size() > 0 {
			return
		}
	}
	ts.Fatalf("%s did not appear (or stayed empty) in 30s", args[0])
}

// cmdChop: chop FILE N removes the last N bytes of FILE, as a copy cut
// short does.
func cmdChop(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: chop FILE N")
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || n < 0 {
		ts.Fatalf("chop: bad byte count %q", args[1])
	}
	p := ts.MkAbs(args[0])
	st, err := os.Stat(p)
	ts.Check(err)
	if n > st.Size() {
		ts.Fatalf("chop: %s has only %d bytes", args[0], st.Size())
	}
	ts.Check(os.Truncate(p, st.Size()-n))
}

// cmdTree: tree DIR prints the files under DIR, one slash-separated path
// relative to DIR a line, sorted (find's order is the file system's).
func cmdTree(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: tree DIR")
	}
	root := ts.MkAbs(args[0])
	var files []string
	ts.Check(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	}))
	sort.Strings(files)
	for _, f := range files {
		fmt.Fprintln(ts.Stdout(), f)
	}
}
