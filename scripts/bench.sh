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
row "dump deployments -A" bash -c "bin/etcdsafe dump '$DB' deployments -A --out \$(mktemp -u -p $OUT)"
rm -rf "$OUT"

# Backup against the pipelines an operator would otherwise run, with the
# real CLIs (Debian's age, zstd, GNU tar and gzip), on the same snapshot and
# kube dir (memory figures of a pipeline are its shell's only). etcdsafe also checks the snapshot trailer, hashes every entry
# into the manifest and fsyncs; the pipelines verify nothing.
for tool in age zstd gzip tar; do
  command -v $tool >/dev/null || { apt-get update -qq && apt-get install -y -qq age zstd gzip tar >/dev/null; break; }
done
BK=$(mktemp -d -p .cache)
mkdir -p "$BK/kube/pki/etcd" "$BK/kube/manifests"
head -c 2048 /dev/urandom > "$BK/kube/pki/etcd/ca.key"
printf 'apiVersion: v1\nkind: Pod\n' > "$BK/kube/manifests/etcd.yaml"
age-keygen -o "$BK/key.txt" 2>/dev/null
R=$(age-keygen -y "$BK/key.txt")
echo
echo "| backup of the snapshot + a kube dir | wall, peak RSS, peak anonymous |"
echo "|---|---|"
row "etcdsafe backup --from-db" bash -c "rm -f $BK/e.age* && bin/etcdsafe backup --from-db '$DB' --kube-dir $BK/kube -r $R --out $BK/e.age --log-format json"
row "tar -czf - \\| age" bash -c "tar -czf - '$DB' $BK/kube | age -r $R > $BK/g.age"
row "tar -cf - \\| zstd -T0 \\| age" bash -c "tar -cf - '$DB' $BK/kube | zstd -T0 -q | age -r $R > $BK/z.age"
row "etcdsafe verify" bin/etcdsafe verify "$BK/e.age" -i "$BK/key.txt"
row "age -d \\| zstd -d \\| tar -t" bash -c "age -d -i $BK/key.txt $BK/z.age | zstd -d -q | tar -t > /dev/null"
ls -l "$BK"/*.age | awk '{print "size " $5 " " $9}'
rm -rf "$BK"
