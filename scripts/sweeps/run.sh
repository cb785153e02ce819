#!/usr/bin/env bash
# Sweeps of issue 10's attack classes against bin/etcdsafe (minutes, not
# part of make test, whose tests cover each class with fewer runs):
#   sweep.py   one flipped bit in a real snapshot into ls/get/dump/history
#              (N runs, default 600), and every page of a raw db zeroed
#              under --check
#   asweep.py  300 mutated encrypted archives into ls/verify/restore, and a
#              plain archive into every reader
#   ksweep.py  read commands SIGKILLed at random points on a large archive
#              (needs .cache/bench-100000.db from make bench-data), then a
#              scan of the staging dir for plaintext
set -euo pipefail
cd "$(dirname "$0")/../.."
make build >/dev/null
export SWEEP_WORK=$(mktemp -d "${TMPDIR:-/tmp}/etcdsafe-sweep.XXXXXX")
trap 'rm -rf "$SWEEP_WORK"' EXIT
B=bin/etcdsafe
$B keygen --x25519 -o "$SWEEP_WORK/k.txt" >/dev/null 2>&1
grep -o 'age1[a-z0-9]*' "$SWEEP_WORK/k.txt" | head -1 > "$SWEEP_WORK/r.txt"
mkdir -p "$SWEEP_WORK/kube/pki" "$SWEEP_WORK/arch" "$SWEEP_WORK/big"
echo secret-key-material > "$SWEEP_WORK/kube/pki/ca.key"
$B backup --from-db testdata/real-k8s1.37-etcd3.7/snapshot.db --kube-dir "$SWEEP_WORK/kube" -R "$SWEEP_WORK/r.txt" --out "$SWEEP_WORK/arch" 2>/dev/null >/dev/null
python3 scripts/sweeps/sweep.py "${1:-600}"
python3 scripts/sweeps/asweep.py
if [ -f .cache/bench-100000.db ]; then
  $B backup --from-db .cache/bench-100000.db --kube-dir "" -R "$SWEEP_WORK/r.txt" --out "$SWEEP_WORK/big" 2>/dev/null >/dev/null
  python3 scripts/sweeps/ksweep.py
else
  echo "ksweep: skipped (make bench-data first)"
fi
