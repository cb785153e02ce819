// Package kdiff compares two etcd files as Kubernetes objects: which
// objects were added, deleted and changed between A and B, each change as
// a unified diff of the create-ready YAML that `etcdsafe get` prints, with
// what the API server rewrites on its own (resourceVersion, managedFields,
// generation, uid, creationTimestamp, status unless asked for) left out,
// and the findings an operator looks for first flagged on top.
//
// The flow is [Prepare] (walk both files once through inspect.Diff, decide
// the lineage, work out the findings) -> [Plan] (the changed keys, the
// findings, the counts) -> [Plan.Objects] (render and diff each change on
// every core, in order, into a callback) -> [Result].
//
// Guarantees: Secrets are decoded in memory only, and unless
// [Options.ShowSecrets] their data, stringData and last-applied annotation
// values are replaced by a mask that shows the value's length and whether
// it changed, never the value nor a hash of it; keys that hold no
// Kubernetes object (or a value that does not decode) are compared as
// keys, with sizes, and SHA-256 digests only of values that are not
// Secrets nor encrypted. Nothing is written anywhere.
//
// Non-guarantees: objects whose only differences are noise are counted,
// not shown ([Result.NoiseOnly]); a key re-encrypted with the same content
// is such an object. With a lineage shown (or forced) by the files, a key
// whose create and mod revision are the same on both sides is not read:
// see inspect.CompareLineage for what the files prove.
package kdiff
