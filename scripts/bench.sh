#!/usr/bin/env bash
# make bench: the read commands on a generated snapshot, each next to its
# comparison run in the same go, median of 3 runs: wall time, peak RSS and
# peak anonymous memory (RSS minus the page cache of the mmap'd file).
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${1:?usage: bench.sh SNAPSHOT}
go build -o bin/etcdsafe ./cmd/etcdsafe
go build -o bin/floor ./internal/cmd/floor
[ -x bin/etcdutl ] || bash scripts/build-etcdutl.sh bin/etcdutl v3.7.3
KEY=$(bin/etcdsafe ls "$DB" deployments -A -o keys | sed -n 1p)
NS=$(echo "$KEY" | cut -d/ -f4)
NAME=$(echo "$KEY" | cut -d/ -f5)
cat "$DB" > /dev/null # warm the page cache: every run reads from memory

median() { for _ in 1 2 3; do python3 scripts/peakmem.py "$@"; done | sort -n | sed -n 2p; }
row() { printf '| %-34s | %s |\n' "$1" "$(median "${@:2}")"; }

echo "snapshot: $DB ($(du -h "$DB" | cut -f1)), $(bin/floor "$DB")"
echo
echo "| command | wall, peak RSS, peak anonymous |"
echo "|---|---|"
row "floor: walk key bucket, read keys" bin/floor "$DB"
row "etcdutl snapshot status" bin/etcdutl snapshot status "$DB"
row "status" bin/etcdsafe status "$DB"
row "status --check" bin/etcdsafe status "$DB" --check
row "ls -A (every key)" bin/etcdsafe ls "$DB" -A
row "ls deployments -A" bin/etcdsafe ls "$DB" deployments -A
row "get deployment/$NAME -n $NS" bin/etcdsafe get "$DB" "deployment/$NAME" -n "$NS"
row "get deployments -A" bin/etcdsafe get "$DB" deployments -A
row "history deployment/$NAME" bin/etcdsafe history "$DB" "deployment/$NAME" -n "$NS"
OUT=$(mktemp -d -p .cache)
row "dump deployments -A" bash -c "rm -rf $OUT/d && bin/etcdsafe dump '$DB' deployments -A --out $OUT/d"
rm -rf "$OUT"
