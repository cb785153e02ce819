// Package deploy holds no code: its tests check the files beside it, the
// way etcdsafe is run every night (issue 14).
//
//   - systemd/: etcdsafe-backup.service and .timer, checked by
//     systemd-analyze verify (no warning allowed) and systemd-analyze
//     security (exposure at most 2.0);
//   - prometheus/: the alert rules, parsed by Prometheus' own rule parser
//     and evaluated by its rule engine over metrics files written by
//     backup.WriteMetrics and drill.WriteMetrics, each alert firing on a
//     bad night and silent on good ones;
//   - kubernetes/: the CronJob, checked here for its security settings and
//     by the e2e suite against a real kube-apiserver (server-side dry run).
//
// It is a module of its own: Prometheus' rule engine brings about 80
// modules (cloud SDKs among them) that the etcdsafe binary does not need.
package deploy
