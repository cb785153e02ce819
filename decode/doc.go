// Package decode holds pure functions from the bytes etcd and kube-apiserver
// write to Go values: mvcc revision keys, mvccpb.KeyValue records, the
// Kubernetes value layers (encryption at rest, the "k8s\x00" protobuf
// envelope, JSON, CBOR), the resource table that maps etcd keys to API
// resources, conversions from old storage versions to served ones, and the
// create-ready cleaning rules.
//
// Invariants: nothing here does I/O or touches bbolt; no function panics on
// input, whatever the bytes; errors never contain secret values (keys may
// appear, values appear only as a length and a digest).
package decode
