#!/usr/bin/env bash
# Measures Redis memory per entity for each example topology, for the sizing
# guide: generates events, produces them to a local mock Kafka
# (`eddy dev broker`), backfills a fresh redis-server with
# `eddy replay --from-kafka --emit redis` (the worker's own fenced writes and
# layout), then reads INFO memory and MEMORY USAGE. Two Redis configurations:
# the defaults, and `hash-max-listpack-value 1024` (what Deploy/ ships).
#
#   Deploy/sizing/measure-redis-memory.sh            # 200k events, 20k entities per topology
#   EVENTS=1000000 ENTITIES=100000 Deploy/sizing/measure-redis-memory.sh
#
# Needs: a built eddy (EDDY=path, default .build/release/eddy), redis-server,
# redis-cli, python3. Starts and stops its own processes; nothing else is touched.
set -euo pipefail
cd "$(dirname "$0")/../.."
EDDY=${EDDY:-.build/release/eddy}
EVENTS=${EVENTS:-200000}
ENTITIES=${ENTITIES:-20000}
SAMPLE=${SAMPLE:-500}
PORT=${PORT:-6411}
WORK=$(mktemp -d /tmp/eddy-sizing.XXXXXX)
broker=""
cleanup() {
  [ -n "$broker" ] && kill -TERM "$broker" 2>/dev/null || true
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "==> generating $EVENTS events over $ENTITIES entities per topology (in $WORK)"
"$EDDY" dev generate --count "$EVENTS" --users "$ENTITIES" --out "$WORK/clickstream.jsonl"
python3 Deploy/sizing/gen_payments.py --count "$EVENTS" --cards "$ENTITIES" >"$WORK/payments.jsonl"
python3 Deploy/sizing/gen_engagement.py --count "$EVENTS" --viewers "$ENTITIES" >"$WORK/engagement.jsonl"

# The mock cluster keeps ~5 MB per partition: enough partitions for the whole file.
parts=$(( EVENTS / 4000 + 8 ))
echo "==> mock Kafka with $parts partitions per topic"
"$EDDY" dev broker --partitions "$parts" --topology Topologies/clickstream.yaml --topology Topologies/payments.yaml \
  --topology Topologies/engagement.yaml --bootstrap-file "$WORK/bootstrap" >"$WORK/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
EDDY_BROKERS=$(cat "$WORK/bootstrap")
export EDDY_BROKERS
for t in clickstream payments engagement; do
  "$EDDY" dev produce --topology "Topologies/$t.yaml" --input "$WORK/$t.jsonl" 2>>"$WORK/produce.log"
done

mem() { redis-cli -p "$PORT" info memory | tr -d '\r' | sed -n "s/^$1://p"; }

printf '\n%-12s %-22s %7s %8s %10s %10s %10s %10s %9s %s\n' topology redis keys fields "used/key" "dataset/key" "MEMUSAGE" "_state" "encoding" "(bytes; MEMORY USAGE = mean over $SAMPLE keys)"
for conf in default listpack1024; do
  for t in clickstream payments engagement; do
    extra=()
    [ "$conf" = listpack1024 ] && extra=(--hash-max-listpack-value 1024)
    redis-server --port "$PORT" --save '' --appendonly no --daemonize yes --dir "$WORK" \
      --logfile "$WORK/redis-$t-$conf.log" "${extra[@]}"
    for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    url="redis://127.0.0.1:$PORT"
    before=$(mem used_memory)
    "$EDDY" replay --topology "Topologies/$t.yaml" --from-kafka --emit redis --redis "$url" --no-progress \
      2>"$WORK/replay-$t-$conf.log"
    # The function library and the write script are not per-entity memory.
    after=$(( $(mem used_memory) - $(mem used_memory_scripts) ))
    dataset=$(mem used_memory_dataset)
    keys=$(redis-cli -p "$PORT" dbsize)
    prefix=$(grep -E '^  prefix:' "Topologies/$t.yaml" | sed -E 's/.*"(.*)".*/\1/')
    [ -z "$prefix" ] && prefix="$t:"
    { redis-cli -p "$PORT" --scan --pattern "${prefix}*" || true; } | head -n "$SAMPLE" >"$WORK/sample"
    total=0; n=0; st=0
    while read -r k; do
      total=$(( total + $(redis-cli -p "$PORT" memory usage "$k" samples 0) ))
      st=$(( st + $(redis-cli -p "$PORT" hstrlen "$k" _state) ))
      n=$(( n + 1 ))
    done <"$WORK/sample"
    k1=$(head -n1 "$WORK/sample")
    printf '%-12s %-22s %7d %8d %10d %10d %10d %10d %9s\n' "$t" "$conf" "$keys" "$(redis-cli -p "$PORT" hlen "$k1")" \
      $(( (after - before) / keys )) $(( dataset / keys )) $(( total / n )) $(( st / n )) \
      "$(redis-cli -p "$PORT" object encoding "$k1")"
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    sleep 0.3
  done
done
echo
echo "used/key: (INFO used_memory after the backfill - used_memory_scripts - used_memory before) / DBSIZE; dataset/key: used_memory_dataset / DBSIZE;"
echo "MEMUSAGE: MEMORY USAGE key SAMPLES 0; _state: HSTRLEN key _state (the state blob). Logs in $WORK"
