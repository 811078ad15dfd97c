#!/usr/bin/env bash
# Keys spread over partitions (issue 19): what an item read through the
# Function and an item's hash cost as the number of parts grows.
#
#   Benchmarks/parts.sh            # EDDY=path/to/eddy to pick a build
#
# 128k generated events over ITEMS items (uniform, ~64 events per item), given
# a partition field round robin over P partitions (P = 1, 8, 32: every item
# gets P parts), backfilled with `eddy replay --entity items --partition-field
# partition --emit redis` into a prefix per P. Then per P: Redis bytes per
# item (`MEMORY USAGE` of every item), and the Redis time of an item read
# (`FCALL` of the entity's Function at one T, `INFO commandstats`
# usec_per_call, every item read READS_PER_ITEM times, the Ps alternated).
# Needs: redis-server, redis-cli, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
. Benchmarks/lib.sh
bench_setup parts
ITEMS=${ITEMS:-2000}
READS_PER_ITEM=${READS_PER_ITEM:-10}
ROUNDS=${ROUNDS:-3}
cat >"$WORK/shop.yaml" <<'YAML'
name: shop
source: {brokers: "127.0.0.1:9092", topic: clickstream}
time: {field: ts, unit: ms}
sink: {redis: "redis://127.0.0.1:6379", prefix: "shop:"}
entities:
  - name: items
    key: item_id
    parts: per_partition
    features:
      - {name: views_1h, kind: count, window: 1h, hop: 5m}
      - {name: viewers_1h, kind: distinct_count, field: user_id, window: 1h, hop: 5m}
      - {name: last_viewers, kind: last_n, field: user_id, n: 5}
YAML
"$EDDY" dev generate --population realistic --count 128000 --users 20000 --items "$ITEMS" --item-skew 1 \
  --span-ms 3600000 --out "$WORK/events.jsonl" 2>/dev/null
PORT=$(free_port)
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --hash-max-listpack-value 1024 \
  --logfile "$WORK/redis.log" &
PIDS+=($!)
until redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; do sleep 0.1; done
for P in 1 8 32; do
  python3 - "$WORK/events.jsonl" "$WORK/events-$P.jsonl" "$P" <<'PY'
import sys
src, dst, p = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src) as f, open(dst, "w") as out:
    for i, line in enumerate(f):
        out.write('{"partition":%d,' % (i % p) + line[1:])
PY
  "$EDDY" replay --topology "$WORK/shop.yaml" --entity items --input "$WORK/events-$P.jsonl" --partition-field partition \
    --emit redis --redis "redis://127.0.0.1:$PORT" --prefix "p$P:" --no-progress 2>"$WORK/backfill-$P.txt"
done
T=$(python3 -c 'import json; print(max(json.loads(l)["ts"] for l in open("'"$WORK/events.jsonl"'")))')
# RESP for every item's read, READS_PER_ITEM times, per P.
for P in 1 8 32; do
  python3 - "$WORK/reads-$P.resp" "$P" "$T" "$READS_PER_ITEM" "$PORT" <<'PY'
import sys, subprocess
out, p, t, n, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
keys = subprocess.run(["redis-cli", "-p", port, "--scan", "--pattern", f"p{p}:*"], capture_output=True, text=True).stdout.split()
def resp(args):
    return b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args)])
with open(out, "wb") as f:
    for _ in range(n):
        for k in keys:
            f.write(resp(["FCALL_RO", "eddy_shop_items_features", "1", k, t]))
PY
done
declare -A USEC
for round in $(seq 1 "$ROUNDS"); do
  for P in 1 8 32; do
    redis-cli -p "$PORT" config resetstat >/dev/null
    redis-cli -p "$PORT" --pipe <"$WORK/reads-$P.resp" >/dev/null
    u=$(redis-cli -p "$PORT" info commandstats | tr -d "\r" | awk -F'[=,]' '/^cmdstat_fcall_ro:/ {print $6}')
    failed=$(redis-cli -p "$PORT" info commandstats | tr -d "\r" | awk -F'[=,]' '/^cmdstat_fcall_ro:/ {print $10}')
    [ "${failed:-0}" = 0 ] || { echo "FCALL_RO failed $failed times (P=$P)" >&2; exit 1; }
    USEC[$P]="${USEC[$P]:-} $u"
  done
done
echo "items: $ITEMS, 128000 events; item reads through the Function at T=$T"
for P in 1 8 32; do
  bytes=$(python3 - "$PORT" "$P" <<'PY'
import sys, subprocess
port, p = sys.argv[1], sys.argv[2]
keys = subprocess.run(["redis-cli", "-p", port, "--scan", "--pattern", f"p{p}:*"], capture_output=True, text=True).stdout.split()
total = 0
for k in keys:
    total += int(subprocess.run(["redis-cli", "-p", port, "memory", "usage", k, "samples", "0"], capture_output=True, text=True).stdout.strip() or 0)
print(f"{len(keys)} items, {total // max(len(keys), 1)} B per item")
PY
)
  echo "  $P parts: FCALL_RO µs per read (rounds):${USEC[$P]}; $bytes; backfill: $(tail -1 "$WORK/backfill-$P.txt" | cut -c1-160)"
done
