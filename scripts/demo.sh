#!/usr/bin/env bash
# make demo: a realistic cluster in an embedded etcd served over TLS as on a
# kubeadm master, the nightly backup job, then what an operator does with
# etcdsafe the morning after.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/etcdsafe}
OUT=${DEMO_OUT:-demo-out}
rm -rf "$OUT"


say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

ETCD_PID= S3_PID=
stop_servers() {
  [ -z "$ETCD_PID" ] || { kill "$ETCD_PID" 2>/dev/null || true; wait "$ETCD_PID" 2>/dev/null || true; }
  # s3server kills its versitygw on SIGTERM
  [ -z "$S3_PID" ] || { kill "$S3_PID" 2>/dev/null || true; wait "$S3_PID" 2>/dev/null || true; }
  ETCD_PID= S3_PID=
}
trap stop_servers EXIT

echo "== Starting an embedded etcd (TLS, client certificates) and writing a cluster into it as kube-apiserver does"
go build -o bin/mkdemo ./internal/cmd/mkdemo
go build -o bin/s3server ./internal/cmd/s3server
bin/mkdemo -out "$OUT" -serve > bin/mkdemo.log 2>&1 &
ETCD_PID=$!
for _ in $(seq 1 120); do
  [ -s "$OUT/endpoint" ] && break
  kill -0 $ETCD_PID 2>/dev/null || { cat bin/mkdemo.log; exit 1; }
  sleep 0.5
done
[ -s "$OUT/endpoint" ] || { echo "etcd did not come up"; cat bin/mkdemo.log; exit 1; }
ENDPOINT=$(cat "$OUT/endpoint")
KUBE="$OUT/kubernetes"   # stands for /etc/kubernetes on a master
SNAP="$OUT/snapshot.db"  # an 'etcdctl snapshot save' of the same etcd
ENC="$KUBE/encryption-config.yaml"
echo "etcd serves $ENDPOINT; kube dir $KUBE"

echo
echo "== Off the master: an S3 bucket with object lock (versitygw on loopback stands for AWS S3, Ceph RGW, MinIO...)"
# the first run builds versitygw into .cache/tools
bin/s3server -dir "$PWD/$OUT/s3" -lock-bucket etcd-backups > "$OUT/s3.env" 2> bin/s3server.log &
S3_PID=$!
until grep -q ETCDSAFE_S3_ENDPOINT "$OUT/s3.env"; do
  kill -0 $S3_PID 2>/dev/null || { cat bin/s3server.log; exit 1; }
  sleep 0.2
done
. "$OUT/s3.env"   # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3: the AWS SDK's own variables
echo "bucket etcd-backups (object lock on) at $AWS_ENDPOINT_URL_S3; credentials from the standard AWS environment variables"

echo
echo "== The nightly job. Once: a key pair (post-quantum hybrid age key). Keep key.txt OFF the master."
say "$BIN keygen -o $OUT/key.txt > $OUT/recipients.txt"
"$BIN" keygen -o "$OUT/key.txt" > "$OUT/recipients.txt"
echo "recipient: $(cut -c1-40 "$OUT/recipients.txt")... ($(wc -c < "$OUT/recipients.txt") bytes: ML-KEM-768 + X25519)"

echo
echo "== Every night, on each master: snapshot over TLS + /etc/kubernetes, zstd, age, read once and written to"
echo "   a short local history (fsync, rename, prune) and to the bucket (multipart upload, locked for a day)"
mkdir -p "$OUT/backups"
run "$BIN" backup --cluster prod --endpoints "$ENDPOINT" \
  --cacert "$KUBE/pki/etcd/ca.crt" --cert "$KUBE/pki/etcd/healthcheck-client.crt" --key "$KUBE/pki/etcd/healthcheck-client.key" \
  --kube-dir "$KUBE" -R "$OUT/recipients.txt" --out "$OUT/backups" --keep-last 7 --metrics-file "$OUT/etcdsafe.prom" \
  --out s3://etcd-backups/fleet/ --object-lock governance --lock-for 1d
NIGHT1=$(ls "$OUT/backups"/*.tar.zst.age | tail -1)
run "$BIN" verify "$NIGHT1" -i "$OUT/key.txt"
echo
echo "== A day passes: a rollout, a ConfigMap edit, a rotated Secret, a CronJob deleted by mistake, a new"
echo "   cluster-admin binding and webhook, Events, and a leader Lease renewed every few seconds"
kill -USR1 $ETCD_PID
for _ in $(seq 1 240); do [ -s "$OUT/day-2.json" ] && break; kill -0 $ETCD_PID 2>/dev/null || { cat bin/mkdemo.log; exit 1; }; sleep 0.25; done
[ -s "$OUT/day-2.json" ] || { echo "the next day was not written"; cat bin/mkdemo.log; exit 1; }
grep 'day 2' bin/mkdemo.log
echo
echo "== The next night's backup, the same job"
run "$BIN" backup --cluster prod --endpoints "$ENDPOINT" \
  --cacert "$KUBE/pki/etcd/ca.crt" --cert "$KUBE/pki/etcd/healthcheck-client.crt" --key "$KUBE/pki/etcd/healthcheck-client.key" \
  --kube-dir "$KUBE" -R "$OUT/recipients.txt" --out "$OUT/backups" --keep-last 7 --metrics-file "$OUT/etcdsafe.prom" \
  --out s3://etcd-backups/fleet/ --object-lock governance --lock-for 1d
run "$BIN" list "$OUT/backups"
ARCHIVE=$(ls "$OUT/backups"/*.tar.zst.age | tail -1)
[ "$ARCHIVE" != "$NIGHT1" ] || { echo "no second archive"; exit 1; }
REMOTE=s3://etcd-backups/fleet/prod/$(basename "$ARCHIVE")
echo
echo "== Another cluster's master writes to the same bucket (here the same snapshot and kube dir under another name)"
run "$BIN" backup --cluster staging --from-db "$SNAP" --kube-dir "$KUBE" -R "$OUT/recipients.txt" \
  --out s3://etcd-backups/fleet/ --object-lock governance --lock-for 1d
echo
echo "== The whole fleet from the bucket, each archive locked until a day after its backup"
run "$BIN" list s3://etcd-backups/fleet/
say "cat $OUT/etcdsafe.prom"
grep -v '^#' "$OUT/etcdsafe.prom"

kill $ETCD_PID; wait $ETCD_PID 2>/dev/null || true
ETCD_PID=
sha_before=$(sha256sum "$SNAP" | cut -d' ' -f1)

echo
echo "== The morning after. What is in last night's backup? (read straight from the archive, no etcd running)"
run "$BIN" status "$ARCHIVE" -i "$OUT/key.txt"

echo
echo "== What changed between the two nights? Objects decoded, noise (resourceVersion, managedFields, status)"
echo "   left out, Secret values masked; what needs a look first is flagged on top"
run "$BIN" diff "$NIGHT1" "$ARCHIVE" -A -i "$OUT/key.txt"
run "$BIN" diff "$NIGHT1" "$ARCHIVE" -A -i "$OUT/key.txt" --stat

echo
echo "== One object's whole life across every backup, with the archive to restore each version from"
run "$BIN" timeline "$OUT/backups" deployment/api -n payments -i "$OUT/key.txt"

echo
echo "== What fills the quota (and what a compaction or a defrag would free); the same as a page to look at"
run "$BIN" du "$ARCHIVE" -i "$OUT/key.txt" --html "$OUT/du.html"
[ -s "$OUT/du.html" ] || { echo "no du page"; exit 1; }
echo "(page: $OUT/du.html, $(wc -c < "$OUT/du.html") bytes, no network needed to view it)"

echo
echo "== Which Deployments and Secrets did it hold? (Secrets are encrypted at rest: see ENCRYPTION)"
run "$BIN" ls "$SNAP" deployments -A
run "$BIN" ls "$ARCHIVE" secrets -n payments -i "$OUT/key.txt"

echo
echo "== Custom resources: the tool learns their names from the CRDs inside the snapshot"
run "$BIN" ls "$SNAP" certificates -A

echo
echo "== One Deployment, ready for 'kubectl create -f' (server-set fields removed)"
run "$BIN" get "$SNAP" deployment/api -n payments

echo
echo "== A Secret from the archive, decrypted with the EncryptionConfiguration the archived kube-apiserver manifest names"
run "$BIN" get "$ARCHIVE" secret/stripe -n payments -i "$OUT/key.txt"

echo
echo "== From a bare snapshot without the key, the tool says so and exits 4 (no garbage)"
set +e
say "$BIN get $SNAP secret/stripe -n payments"
"$BIN" get "$SNAP" secret/stripe -n payments
echo "(exit code $?)"
set -e

echo
echo "== One flipped bit in a copy of the snapshot: refused with exit 3, nothing printed as valid"
set +e
cp "$SNAP" "$OUT/damaged.db"
off=$(( $(stat -c %s "$SNAP") / 2 ))
byte=$(od -An -tu1 -j "$off" -N1 "$SNAP" | tr -d ' ')
printf "\\$(printf %o $(( byte ^ 4 )))" | dd of="$OUT/damaged.db" bs=1 seek="$off" conv=notrunc status=none
say "$BIN get $OUT/damaged.db deployment/api -n payments"
"$BIN" get "$OUT/damaged.db" deployment/api -n payments
echo "(exit code $?)"
set -e

echo
echo "== History of the Deployment that was updated twice"
run "$BIN" history "$SNAP" deployment/api -n payments

echo
echo "== Objects deleted after the last compaction are still in the file"
run "$BIN" ls "$SNAP" configmaps --deleted -A
run "$BIN" get "$SNAP" --key compact_rev_key

echo
echo "== Dump a namespace as files for kubectl (controller-owned objects and Events left out)"
run "$BIN" dump "$SNAP" --out "$OUT/dump" -n payments --decryption-config "$ENC"
say "find $OUT/dump -type f | sort"
find "$OUT/dump" -type f | sort

echo
echo "== The same reads work on a stopped etcd's data dir"
run "$BIN" ls "$OUT/etcd-data" deployments -n payments

echo
echo "== The disaster: the master is wiped. Data dir, /etc/kubernetes and the local backups are gone."
run rm -rf "$OUT/etcd-data" "$KUBE" "$OUT/backups"
echo
echo "== Preview the restore from the bucket: what is read, written, moved; which membership and revision"
run "$BIN" restore "$REMOTE" -i "$OUT/key.txt" --data-dir "$OUT/etcd-data" --kube-dir "$KUBE" --dry-run
echo
echo "== Restore both from last night's archive in the bucket (membership from the archived etcd manifest)"
run "$BIN" restore "$REMOTE" -i "$OUT/key.txt" --data-dir "$OUT/etcd-data" --kube-dir "$KUBE"
echo
echo "== etcd starts on the restored data dir: objects back, revision bumped, old revisions compacted"
PEER=$(grep -o -- '--initial-advertise-peer-urls=[^ ]*' "$KUBE/manifests/etcd.yaml" | cut -d= -f2)
say "bin/mkdemo -check-restored $OUT/etcd-data -name etcdtest -peer-url $PEER"
bin/mkdemo -check-restored "$OUT/etcd-data" -name etcdtest -peer-url "$PEER"
run "$BIN" ls "$OUT/etcd-data" deployments -A
echo
echo "== The runbook's manual --force-new-cluster edit, made safe (atomic, previous file kept)"
run "$BIN" manifest force-new-cluster --on "$KUBE/manifests/etcd.yaml"
run "$BIN" manifest force-new-cluster --off "$KUBE/manifests/etcd.yaml"

sha_after=$(sha256sum "$SNAP" | cut -d' ' -f1)
[ "$sha_before" = "$sha_after" ] || { echo "snapshot changed!"; exit 1; }
stop_servers
echo
echo "== Done. Inputs were only read (snapshot sha256 unchanged). Files are in $OUT/."
