// Package crashtest re-executes the running test binary as a child process
// in a named mode, so that a test can SIGKILL a real process at a chosen
// point (a hook in the code under test, or a timer in the parent) and then
// inspect what the process left on disk.
//
// A package opts in from its TestMain:
//
//	func TestMain(m *testing.M) {
//		crashtest.RunChildIfAsked(map[string]func() int{"backup": backupChild})
//		os.Exit(m.Run())
//	}
//
// and a test starts a child with [Child] and waits for it. Arguments reach
// the child through environment variables the package defines itself.
//
// Non-guarantees: only Unix signals are supported, and a child that is not
// waited for is killed when the test ends, not earlier.
package crashtest
