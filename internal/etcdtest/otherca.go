package etcdtest

// WritePKI writes a fresh CA and kubeadm's etcd leaf certificates (as
// [WithTLS] does) into dir: a second PKI, for tests of a wrong CA bundle
// or of a client certificate from another CA. Keys are 0600.
func WritePKI(dir string) error { return writePKI(dir) }
