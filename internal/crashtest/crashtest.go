package crashtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// envMode names the mode a re-executed test binary runs instead of tests.
const envMode = "ETCDSAFE_CRASHTEST_MODE"

// exitUnknownMode is the exit code of a child started in a mode its
// TestMain does not know.
const exitUnknownMode = 99

// RunChildIfAsked returns at once in a normal test run. In a child started
// by [Child], it runs the function of the child's mode and exits the
// process with its result (99 for a mode missing from modes); it never
// returns then. Call it first in TestMain.
func RunChildIfAsked(modes map[string]func() int) {
	mode, ok := os.LookupEnv(envMode)
	if !ok {
		return
	}
	run, ok := modes[mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "crashtest: unknown mode %q\n", mode)
		os.Exit(exitUnknownMode)
	}
	os.Exit(run())
}

// Command returns, not started, the test binary in mode with env
// (KEY=value) added to this process's environment: for a child whose
// standard streams the test wires itself. Most tests want [Child].
func Command(mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), envMode+"="+mode)
	return cmd
}

// Child starts the test binary in mode, as [Command] makes it, and returns
// the started command; its Stderr is a *bytes.Buffer holding the child's
// standard error. The caller waits for it; a child still running when the
// test ends is killed then.
func Child(t testing.TB, mode string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := Command(mode, env...)
	cmd.Stderr = new(bytes.Buffer)
	if err := cmd.Start(); err != nil {
		t.Fatalf("crashtest: start %s child: %v", mode, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// KillSelf sends SIGKILL to this process and never returns: no deferred
// function or cleanup runs, as when the OOM killer or a power cut ends a
// run. Call it from a hook in a child.
func KillSelf() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// Killed reports whether err, from the Wait of a child, says the child
// died by SIGKILL.
func Killed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// WaitFile polls until path exists, failing the test after timeout: a
// child has reached the point that creates it.
func WaitFile(t testing.TB, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("crashtest: %s did not appear within %v", path, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
