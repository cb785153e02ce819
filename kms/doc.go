// Package kms reaches the KMS v2 plugins of a cluster, for decode to
// decrypt values kube-apiserver encrypted with a kms provider.
//
// A [Connector] is a [decode.KMSConnector]: it dials a plugin's gRPC unix
// socket (the provider's endpoint in the EncryptionConfiguration, or one
// socket given for every provider) through k8s.io/kms's own generated
// client, the API kube-apiserver calls. Only Decrypt is ever called:
// etcdsafe never encrypts, and never asks a plugin for a new key.
//
// Invariants: one Decrypt call per distinct encrypted data key while the
// calls for one key overlap (decode's envelope transformer caches the
// unwrapped keys; concurrent misses of the same key share one call here);
// errors are [*decode.KMSPluginError] naming the provider and the endpoint,
// never a key or a value. Dialling is lazy: a missing socket fails on the
// first value, not in [Connector.Plugin].
//
// A plugin found unreachable (no socket, not serving, no answer within
// [Options.Timeout]) stays so for the Connector's life: later values fail at
// once with the same error, so a hung plugin costs one timeout per run, not
// one per Secret. Non-guarantees: nothing here retries.
package kms
