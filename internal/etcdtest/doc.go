// Package etcdtest starts a real, single-member etcd server in-process
// (go.etcd.io/etcd/server/v3/embed) for tests and for the fixture
// generators under internal/cmd.
//
// Every server listens on loopback TCP ports picked by the kernel, so tests
// may run in parallel without clashing, and logs nothing below error level.
// [Server.Stop] closes the client and the server, after which the data
// directory is a valid etcd data dir that can be opened offline (bbolt
// takes no lock once etcd has exited).
//
// With [WithTLS] the client port requires TLS with client-certificate
// authentication; the CA, server and client certificates are generated
// into <dir>/pki/etcd in the kubeadm layout (ca.crt, ca.key, server.crt,
// server.key, healthcheck-client.crt, healthcheck-client.key,
// apiserver-etcd-client.crt, apiserver-etcd-client.key).
//
// Non-guarantees: the server is not tuned for durability tests (fsync stays
// on, but nothing here simulates crashes), and certificates are valid for
// one day only.
package etcdtest
