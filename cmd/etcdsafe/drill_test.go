package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDrillInterruptedCLI interrupts drill as Ctrl-C does (the command's
// context ends) once etcd listens on the restored data dir: exit 130,
// nothing left in --tmp-dir (the staged snapshot, the restored data dir,
// the socket), no metrics written.
func TestDrillInterruptedCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real etcd")
	}
	tmp := t.TempDir()
	prom := filepath.Join(t.TempDir(), "drill.prom")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	saw := make(chan string, 1)
	go func() {
		defer cancel()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if m, _ := filepath.Glob(filepath.Join(tmp, ".etcdsafe-drill-*", "client.sock")); len(m) > 0 {
				saw <- m[0]
				return
			}
		}
	}()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"drill", demoDB, "--decryption-config", "../../testdata/generated/encryption-config.yaml",
		"--tmp-dir", tmp, "--metrics-file", prom}, nil, &out, &errb)
	select {
	case <-saw:
	default:
		t.Fatalf("the drill never started etcd (exit %d): %s", code, errb.String())
	}
	if code != exitInterrupted || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("exit %d, stderr %q; want 130, interrupted", code, errb.String())
	}
	if out.Len() > 0 {
		t.Errorf("an interrupted drill printed a report:\n%s", out.String())
	}
	des, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		t.Errorf("left in --tmp-dir: %s", de.Name())
	}
	if _, err := os.Stat(prom); !os.IsNotExist(err) {
		t.Errorf("an interrupted drill wrote metrics: %v", err)
	}
}
