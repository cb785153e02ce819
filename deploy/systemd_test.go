package deploy_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var units = []string{"etcdsafe-backup.service", "etcdsafe-backup.timer", "etcdsafe-drill.service", "etcdsafe-drill.timer"}

// systemdAnalyze returns the path of systemd-analyze. It fails in CI when
// the tool is missing (make check-deploy installs Debian's systemd package),
// and skips elsewhere.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("systemd-analyze is missing (apt-get install systemd): %v", err)
		}
		t.Skip("systemd-analyze is missing (apt-get install systemd)")
	}
	return p
}

// unitRoot lays out a root for systemd-analyze --root: the host's system
// units (for the targets ours depend on), the programs ExecStart and
// ExecStartPre name, and our units, each passed through edit.
func unitRoot(t *testing.T, edit func(name, text string) string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc/systemd/system", "usr/lib/systemd", "usr/bin", "bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hostUnits := "/usr/lib/systemd/system"
	if _, err := os.Stat(hostUnits); err != nil {
		hostUnits = "/lib/systemd/system"
	}
	if out, err := exec.Command("cp", "-a", hostUnits, filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copy the host's system units: %v: %s", err, out)
	}
	for _, p := range []string{"usr/bin/etcdsafe", "bin/mkdir"} {
		if err := os.WriteFile(filepath.Join(root, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join("systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if edit != nil {
			text = edit(u, text)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/systemd/system", u), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestSystemdVerify runs systemd-analyze verify on the units: the shipped
// ones pass without a single line of output; each broken copy (systemd only
// warns about most mistakes, and exits 0) is caught.
func TestSystemdVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	replace := func(unit, old, repl string) func(string, string) string {
		return func(name, text string) string {
			if name != unit {
				return text
			}
			if !strings.Contains(text, old) {
				t.Fatalf("%s has no %q", unit, old)
			}
			return strings.Replace(text, old, repl, 1)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(name, text string) string
		want string // in the output; "" for none at all
	}{
		{"shipped", nil, ""},
		{"misspelt key", replace("etcdsafe-backup.service", "ProtectHome=yes", "ProtectHom=yes"), "Unknown key"},
		{"bad service type", replace("etcdsafe-backup.service", "Type=oneshot", "Type=oneshots"), "service type"},
		{"program missing", replace("etcdsafe-backup.service", "ExecStart=/usr/bin/etcdsafe", "ExecStart=/usr/sbin/etcdsafe"), "not executable"},
		{"bad calendar", replace("etcdsafe-backup.timer", "OnCalendar=*-*-* 01:00:00", "OnCalendar=*-*-* 25:00:00"), "calendar"},
		{"bad syscall group", replace("etcdsafe-backup.service", "SystemCallFilter=@system-service", "SystemCallFilter=@system-services"), "system-services"},
		{"drill: misspelt key", replace("etcdsafe-drill.service", "PrivateTmp=yes", "PrivateTemp=yes"), "Unknown key"},
		{"drill: bad calendar", replace("etcdsafe-drill.timer", "OnCalendar=Sun *-*-* 05:00:00", "OnCalendar=Sunday-ish 05:00"), "calendar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := unitRoot(t, tc.edit)
			cmd := exec.Command(sa, append([]string{"verify", "--man=no", "--root=" + root}, units...)...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			if tc.want == "" {
				if err != nil || out.Len() > 0 {
					t.Fatalf("systemd-analyze verify: %v\n%s", err, out.String())
				}
				return
			}
			if out.Len() == 0 {
				t.Fatalf("systemd-analyze verify said nothing (exit %v)", err)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Fatalf("systemd-analyze verify output lacks %q:\n%s", tc.want, out.String())
			}
		})
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for etcdsafe-[a-z]+\.service: ([0-9.]+)`)

// TestSystemdSecurity scores each service's sandbox with systemd-analyze
// security (0 = fully sandboxed, 10 = none): at most 2.0 ("OK"); without
// the sandbox lines the same check fails.
func TestSystemdSecurity(t *testing.T) {
	sa := systemdAnalyze(t)
	for _, svc := range []string{"etcdsafe-backup.service", "etcdsafe-drill.service"} {
		noSandbox := func(name, text string) string {
			if name != svc {
				return text
			}
			text, _, _ = strings.Cut(text, "# Sandbox\n")
			return text
		}
		for _, tc := range []struct {
			name string
			edit func(name, text string) string
			ok   bool
		}{
			{"shipped", nil, true},
			{"without sandbox", noSandbox, false},
		} {
			t.Run(svc+"/"+tc.name, func(t *testing.T) {
				root := unitRoot(t, tc.edit)
				out, err := exec.Command(sa, "security", "--offline=true", "--threshold=20", "--root="+root, svc).CombinedOutput()
				m := exposureRE.FindSubmatch(out)
				if m == nil {
					t.Fatalf("no exposure level in systemd-analyze security's output (%v):\n%s", err, out)
				}
				score, perr := strconv.ParseFloat(string(m[1]), 64)
				if perr != nil {
					t.Fatal(perr)
				}
				t.Logf("systemd-analyze security %s: exposure %.1f (exit %v)", svc, score, err)
				if tc.ok != (err == nil && score <= 2.0) {
					t.Fatalf("exposure %.1f, exit %v; want ok=%v\n%s", score, err, tc.ok, out)
				}
			})
		}
	}
}

// TestServicePaths checks what systemd cannot: every directory a service
// writes is in ReadWritePaths (ProtectSystem=strict makes the rest
// read-only) or is its StateDirectory, every variable it expands is in its
// example env file, and the examples hold no credential.
func TestServicePaths(t *testing.T) {
	for _, tc := range []struct {
		unit, env string
		flags     []string // flags whose value (a dir) is written
	}{
		{"etcdsafe-backup.service", "backup.env", []string{"--out"}},
		{"etcdsafe-drill.service", "drill.env", nil},
	} {
		t.Run(tc.unit, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("systemd", tc.unit))
			if err != nil {
				t.Fatal(err)
			}
			unit := regexp.MustCompile(`(?m)^#.*\n`).ReplaceAllString(string(b), "")
			unit = strings.ReplaceAll(unit, "\\\n", " ")
			setting := func(key string) []string {
				var vals []string
				for _, line := range strings.Split(unit, "\n") {
					if v, ok := strings.CutPrefix(line, key+"="); ok {
						vals = append(vals, strings.Fields(v)...)
					}
				}
				return vals
			}
			rw := map[string]bool{}
			for _, p := range setting("ReadWritePaths") {
				rw[p] = true
			}
			args := setting("ExecStart")
			flag := func(name string) string {
				for i, a := range args {
					if a == name && i+1 < len(args) {
						return args[i+1]
					}
				}
				t.Fatalf("ExecStart has no %s", name)
				return ""
			}
			for _, f := range tc.flags {
				if out := flag(f); !rw[out] {
					t.Errorf("%s %s is not in ReadWritePaths %v", f, out, setting("ReadWritePaths"))
				}
			}
			if m := filepath.Dir(flag("--metrics-file")); !rw[m] {
				t.Errorf("--metrics-file's dir %s is not in ReadWritePaths", m)
			}
			if tmp, state := flag("--tmp-dir"), setting("StateDirectory"); len(state) != 1 || tmp != "/var/lib/"+state[0] {
				t.Errorf("--tmp-dir %s is not the StateDirectory %v (the only other writable place)", tmp, state)
			}
			env, err := os.ReadFile(filepath.Join("systemd", tc.env))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range regexp.MustCompile(`\$\{?([A-Z_]+)`).FindAllStringSubmatch(unit, -1) {
				if !regexp.MustCompile(`(?m)^#?` + m[1] + `=`).Match(env) {
					t.Errorf("ExecStart expands $%s, which %s does not mention", m[1], tc.env)
				}
			}
			for _, line := range strings.Split(string(env), "\n") {
				if strings.HasPrefix(line, "AWS_") {
					t.Errorf("%s sets %q: the example holds no credential", tc.env, line)
				}
			}
		})
	}
}
