package fsx

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/etcdsafe/etcdsafe/internal/crashtest"
)

// TestMain lets the test binary act as a helper process that dies
// mid-write, or that holds a directory lock until its stdin closes.
func TestMain(m *testing.M) {
	crashtest.RunChildIfAsked(map[string]func() int{
		"kill-mid-write": func() int {
			f, err := Create(os.Getenv("FSX_TEST_TARGET"), 0o600)
			if err != nil {
				return 2
			}
			if _, err := f.Write(make([]byte, 1<<16)); err != nil {
				return 2
			}
			crashtest.KillSelf() // no deferred cleanup can run, as with the OOM killer
			return 0
		},
		"hold-lock": func() int {
			unlock, err := Lock(os.Getenv("FSX_TEST_TARGET"))
			if err != nil {
				return 2
			}
			defer unlock()
			os.Stdout.WriteString("locked\n")
			buf := make([]byte, 1)
			_, _ = os.Stdin.Read(buf) // hold until the parent closes stdin
			return 0
		},
	})
	os.Exit(m.Run())
}

func TestKillMidWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "backup.age")
	cmd := crashtest.Child(t, "kill-mid-write", "FSX_TEST_TARGET="+target)
	if err := cmd.Wait(); !crashtest.Killed(err) {
		t.Fatalf("helper did not die by SIGKILL: %v %s", err, cmd.Stderr)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("final name exists after a killed write: %v", err)
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, ".backup.age.tmp-*"))
	if len(tmps) != 1 {
		t.Fatalf("want exactly one leftover temp file, got %v", tmps)
	}
	st, err := os.Stat(tmps[0])
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 1<<16 || st.Mode().Perm() != 0o600 {
		t.Fatalf("temp file: size %d mode %v", st.Size(), st.Mode().Perm())
	}
}

func TestAtomicFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		existing  bool
		noReplace bool
		expect    int64
		write     string
		wantErr   bool
		wantFinal string // "" = must not exist
	}{
		{name: "new file", write: "hello", expect: -1, wantFinal: "hello"},
		{name: "count ok", write: "hello", expect: 5, wantFinal: "hello"},
		{name: "short write", write: "hell", expect: 5, wantErr: true},
		{name: "long write", write: "hello!", expect: 5, wantErr: true},
		{name: "replace", existing: true, write: "new", expect: -1, wantFinal: "new"},
		{name: "no replace refuses", existing: true, noReplace: true, write: "new", expect: -1, wantErr: true, wantFinal: "old"},
		{name: "no replace new", noReplace: true, write: "new", expect: -1, wantFinal: "new"},
		{name: "empty", write: "", expect: 0, wantFinal: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out")
			if tc.existing {
				if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			f, err := Create(path, 0o640)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Abort()
			f.ExpectSize = tc.expect
			f.NoReplace = tc.noReplace
			if _, err := f.Write([]byte(tc.write)); err != nil {
				t.Fatal(err)
			}
			err = f.Commit()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Commit: err=%v, wantErr=%v", err, tc.wantErr)
			}
			if tc.noReplace && tc.existing && !errors.Is(err, fs.ErrExist) {
				t.Errorf("want fs.ErrExist, got %v", err)
			}
			got, rerr := os.ReadFile(path)
			switch {
			case tc.wantErr && !tc.existing:
				if !errors.Is(rerr, fs.ErrNotExist) {
					t.Errorf("final name exists after failed commit")
				}
			case rerr != nil:
				t.Fatalf("read final: %v", rerr)
			default:
				want := tc.wantFinal
				if !tc.wantErr {
					want = tc.write
				}
				if string(got) != want {
					t.Errorf("final content %q, want %q", got, want)
				}
			}
			if !tc.wantErr {
				st, _ := os.Stat(path)
				if st.Mode().Perm() != 0o640 {
					t.Errorf("mode %v, want 0640", st.Mode().Perm())
				}
			}
			left, _ := filepath.Glob(filepath.Join(dir, ".out.tmp-*"))
			if len(left) != 0 {
				t.Errorf("temp files left: %v", left)
			}
		})
	}
}

func TestDoubleCommitAndAbortAfterCommit(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x")
	f, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); !errors.Is(err, ErrCommitted) {
		t.Fatalf("second Commit: %v, want ErrCommitted", err)
	}
	if _, err := f.Write([]byte("more")); !errors.Is(err, ErrCommitted) {
		t.Fatalf("Write after Commit: %v, want ErrCommitted", err)
	}
	f.Abort() // must not remove the committed file
	if b, err := os.ReadFile(path); err != nil || string(b) != "data" {
		t.Fatalf("after Abort: %q %v", b, err)
	}
}

func TestAbortRemovesTemp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "x")
	f, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	tmp := f.Name()
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	f.Abort()
	for _, p := range []string{tmp, path} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after Abort", p)
		}
	}
	if err := f.Commit(); !errors.Is(err, ErrCommitted) {
		t.Errorf("Commit after Abort: %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "metrics.prom")
	for _, content := range []string{"a 1\n", "a 2\n"} {
		if err := WriteFileAtomic(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Fatalf("got %q %v want %q", b, err, content)
		}
	}
	if err := WriteFileAtomic(filepath.Join(t.TempDir(), "missing", "x"), nil, 0o600); err == nil {
		t.Fatal("want error for a missing directory")
	}
}

func TestPrivateTemps(t *testing.T) {
	t.Parallel()
	dir, err := MkdirPrivate(t.TempDir(), "p-*")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", st.Mode().Perm())
	}
	f, err := CreateTemp(dir, "f-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ = f.Stat()
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", st.Mode().Perm())
	}
}

func TestLockContention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(dir)
	var le *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	if le.PID != os.Getpid() {
		t.Errorf("holder pid %d, want %d", le.PID, os.Getpid())
	}
	unlock()
	unlock2, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}

func TestLockAcrossProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := crashtest.Command("hold-lock", "FSX_TEST_TARGET="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("helper: %q %v", buf, err)
	}
	_, err = Lock(dir)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while helper holds it: %v", err)
	}
	if le.PID != cmd.Process.Pid {
		t.Errorf("holder pid %d, want %d", le.PID, cmd.Process.Pid)
	}
	if want := "pid " + strconv.Itoa(cmd.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after helper exit: %v", err)
	}
	unlock()
}
