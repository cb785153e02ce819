package termtext

import "testing"

func TestClean(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"kube-system/coredns", "kube-system/coredns"},
		{"пароль-ü", "пароль-ü"},
		{"a\x1b[31mred", `a\x1b[31mred`},
		{"bell\a", `bell\x07`},
		{"nl\nx", `nl\x0ax`},
		{"del\x7f", `del\x7f`},
		{"c1\u009b31m", `c1\u009b31m`},
		{"rlo\u202etxt.exe", `rlo\u202etxt.exe`},
		{"bad\xffutf8", `bad\xffutf8`},
		{`back\slash`, `back\slash`},
	} {
		if got := Clean(tc.in); got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if Safe(tc.in) != (tc.in == tc.want) {
			t.Errorf("Safe(%q) = %v", tc.in, Safe(tc.in))
		}
	}
}

func FuzzClean(f *testing.F) {
	f.Add("a\x1b[2J")
	f.Add("\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		c := Clean(s)
		if !Safe(c) {
			t.Fatalf("Clean(%q) = %q is not safe", s, c)
		}
		if Safe(s) && c != s {
			t.Fatalf("safe %q changed to %q", s, c)
		}
	})
}
