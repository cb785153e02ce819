// Package kubestore writes Kubernetes objects into etcd byte-for-byte the
// way kube-apiserver v1.37 stores them, so that tests and fixtures exercise
// the same bytes a real cluster leaves behind.
//
// What it reproduces (checked against testdata/real-k8s1.37-etcd3.7):
//   - keys: <prefix>/<resource path>/[<namespace>/]<name> with kube's
//     exceptions (services/specs, services/endpoints, minions, controllers,
//     ingress, <group>/<plural> for CRDs, custom resources and APIServices);
//     the table in keys.go is deliberately independent of the product's;
//   - values: built-in types as `k8s\x00` + runtime.Unknown protobuf, CRDs as
//     JSON in apiextensions.k8s.io/v1beta1, APIServices as JSON in
//     apiregistration.k8s.io/v1, custom resources as JSON with sorted keys,
//     each JSON value ending in a newline;
//   - metadata: resourceVersion cleared, uid, creationTimestamp, generation
//     (for kinds whose strategy sets it), the kubectl last-applied
//     annotation and managedFields as `kubectl apply` (client side) leaves
//     them, computed with the same structured-merge-diff schemas;
//   - encryption at rest: k8s:enc:{aescbc,aesgcm,secretbox}:v1:<key>: for
//     configured resources, plus the matching EncryptionConfiguration file.
//
// Determinism: uids, timestamps and (with [Options.DeterministicCrypto])
// IVs and nonces derive from [Options.Seed] and [Options.Start], so the
// same calls write the same values every run.
//
// Non-guarantees: the writer applies no server-side defaulting of its own
// (pass [Options.Defaulter] to fill defaults), runs no admission or
// validation, and only knows the kinds listed in keys.go. It is test and
// fixture tooling, not a Kubernetes API server.
package kubestore
