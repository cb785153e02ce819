package crashtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	RunChildIfAsked(map[string]func() int{
		"exit3": func() int { os.Stderr.WriteString("child says " + os.Getenv("CRASHTEST_X")); return 3 },
		"kill":  func() int { KillSelf(); return 0 },
		"touch": func() int {
			if err := os.WriteFile(os.Getenv("CRASHTEST_FILE"), nil, 0o600); err != nil {
				return 1
			}
			time.Sleep(time.Minute) // until the parent kills it
			return 0
		},
	})
	os.Exit(m.Run())
}

func TestChild(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, mode string
		code       int // -1: killed
		stderr     string
	}{
		{"exit code and env", "exit3", 3, "child says hello"},
		{"SIGKILL", "kill", -1, ""},
		{"unknown mode", "nope", exitUnknownMode, `unknown mode "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Child(t, tc.mode, "CRASHTEST_X=hello")
			err := c.Wait()
			if got := Killed(err); got != (tc.code == -1) {
				t.Fatalf("Killed(%v) = %v", err, got)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("want an exit error, got %v", err)
			}
			if tc.code >= 0 && ee.ExitCode() != tc.code {
				t.Errorf("exit code %d, want %d", ee.ExitCode(), tc.code)
			}
			if got := c.Stderr.(interface{ String() string }).String(); !strings.Contains(got, tc.stderr) {
				t.Errorf("stderr %q lacks %q", got, tc.stderr)
			}
		})
	}
}

func TestWaitFileAndCleanupKill(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "started")
	var c *exec.Cmd
	t.Run("child", func(t *testing.T) {
		c = Child(t, "touch", "CRASHTEST_FILE="+p)
		WaitFile(t, p, 30*time.Second)
	})
	// The subtest's cleanup killed the child that was still sleeping.
	if c.ProcessState == nil || c.ProcessState.Success() {
		t.Fatalf("child not reaped by the cleanup: %v", c.ProcessState)
	}
	if Killed(nil) || Killed(errors.New("x")) {
		t.Error("Killed of a non-exit error")
	}
}
