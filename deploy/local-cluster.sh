#!/usr/bin/env bash
# A local stand-in for the cluster: two `thumbd api` and two `thumbd worker` processes on
# loopback against the local RabbitMQ and PostgreSQL (and a shared blob directory), uploads
# through each api, a check that every job succeeded, then everything it started is stopped
# and removed. Run by tests/local_cluster.rs.
#
#   deploy/local-cluster.sh [UPLOADS_PER_API]      (default 10)
#
# Environment: THUMBD_BIN (default: target/debug/thumbd, built if missing),
# THUMBD_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/%2f),
# THUMBD_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
# Needs curl, psql and Python 3 with pika (to remove its queues and exchanges at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

uploads=${1:-10}
bin=${THUMBD_BIN:-target/debug/thumbd}
[ -x "$bin" ] || cargo build -q --bin thumbd
amqp=${THUMBD_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
db=${THUMBD_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
run_id="lc$$$(date +%s)"
schema="thumbd_cluster_${run_id}"
work=$(mktemp -d)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql -q "$db" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  # The namespace's queues and exchanges (pika, as in the README's producer example).
  python3 - "$amqp" "thumbd-$run_id" >/dev/null 2>&1 <<'PY' || true
import sys, pika
conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
ch = conn.channel()
# Each lane's queues: image jobs, webhook deliveries (their own retry waits), renditions.
jobs = (1000, 2000, 4000, 8000, 16000, 32000, 60000, 300000)
hooks = (5000, 30000, 120000, 600000, 3600000, 21600000)
for lane, waits in [(sys.argv[2], jobs), (sys.argv[2] + ".webhooks", hooks), (sys.argv[2] + ".renditions", jobs)]:
    for q in ["jobs", "dead"] + [f"retry.{ms}ms" for ms in waits]:
        ch.queue_delete(f"{lane}.{q}")
    for e in [lane, f"{lane}.dlx"]:
        ch.exchange_delete(e)
conn.close()
PY
  rm -rf "$work"
}
trap cleanup EXIT

psql -q "$db" -c "CREATE SCHEMA $schema" >/dev/null
sep='?'; case "$db" in *\?*) sep='&';; esac
export THUMBD_DATABASE_URL="${db}${sep}options=-c%20search_path%3D${schema}"
export THUMBD_AMQP_URL="$amqp"
export THUMBD_AMQP_NAMESPACE="thumbd-$run_id"
export THUMBD_STORAGE_URL="file://$work/blobs"
export THUMBD_JWT_SECRET="local-cluster-secret-$run_id-0123456789"
export RUST_LOG=${RUST_LOG:-warn}

# start NAME ROLE: runs `thumbd ROLE` on a free port, in this shell (so `cleanup` knows its
# pid: not inside `$(…)`, whose subshell would keep the pid to itself).
start() {
  "$bin" "$2" --listen 127.0.0.1:0 --workers 1 --data-dir "$work/$1" >"$work/$1.out" 2>"$work/$1.log" &
  pids+=($!)
}

# url_of NAME: waits for NAME to listen; prints its base URL.
url_of() {
  for _ in $(seq 1 100); do
    url=$(grep -o 'http://[0-9.:]*' "$work/$1.out" 2>/dev/null | head -1 || true)
    if [ -n "$url" ]; then echo "$url"; return 0; fi
    sleep 0.1
  done
  echo "$1 did not start:" >&2; cat "$work/$1.log" >&2; return 1
}

for name in api-1 api-2; do start "$name" api; done
for name in worker-1 worker-2; do start "$name" worker; done
apis=("$(url_of api-1)" "$(url_of api-2)")
url_of worker-1 >/dev/null
url_of worker-2 >/dev/null
token=$("$bin" token --scope thumbnails:write --scope thumbnails:read)
echo "cluster: ${apis[*]} + 2 workers (namespace $THUMBD_AMQP_NAMESPACE, schema $schema, dir $work)"

# A small PNG (the thumbnail service needs at least 80×80): made with Python's zlib.
python3 - "$work/photo.png" <<'PY'
import struct, sys, zlib
w, h = 320, 240
raw = b"".join(b"\0" + bytes((x * 7 + y * 3) % 256 for x in range(w * 3)) for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY

jobs=()
for i in $(seq 1 "$uploads"); do
  for a in 0 1; do
    body=$(curl -sS -X PUT "${apis[$a]}/v1/thumbnails/lc-$a-$i?environment=development" \
      -H "authorization: Bearer $token" -H "content-type: image/png" \
      -H "prefer: respond-async" --data-binary @"$work/photo.png")
    jobs+=("$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')")
  done
done

deadline=$((SECONDS + 120))
for job in "${jobs[@]}"; do
  while :; do
    # Ask either api: they share the store.
    status=$(curl -sS "${apis[$((RANDOM % 2))]}/v1/status/$job" -H "authorization: Bearer $token" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    case "$status" in
      succeeded) break ;;
      failed) echo "job $job failed" >&2; exit 1 ;;
    esac
    if [ $SECONDS -gt $deadline ]; then echo "job $job still $status after 120 s" >&2; exit 1; fi
    sleep 0.2
  done
done
echo "all ${#jobs[@]} uploads succeeded (through 2 apis, 2 workers)"
