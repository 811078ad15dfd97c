#!/usr/bin/env bash
# Freshness of a stream worker in its own process, against any Kafka: events
# produced at a steady rate, and the worker's own histograms from /metrics.
#
#   Benchmarks/freshness.sh                          # mock broker (eddy dev broker), 50k events/s for 30 s
#   BROKERS=kafka1:9092 TOPIC=eddy-freshness Benchmarks/freshness.sh   # a real cluster
#   RATE=5000 SECONDS_AT_RATE=60 LINGER_MS=1 Benchmarks/freshness.sh
#   WORKER_PROPERTIES="fetch.wait.max.ms=1" Benchmarks/freshness.sh   # consumer properties for the worker
#
# `eddy bench worker` measures freshness against librdkafka's mock broker
# only, which answers a fetch that finds no data after fetch.wait.max.ms
# instead of when data arrives (see Benchmarks/README.md, "What limits the worker"). Point
# this script at a real cluster to see the worker without that. It starts
# redis-server (or uses REDIS_URL), `eddy run clickstream --http`, then
# `eddy dev produce --rate RATE`, and prints the quantiles of, over the
# measured window (the first WARM_SECONDS left out):
#   eddy_worker_kafka_freshness_seconds       Kafka timestamp -> Redis ack
#   eddy_worker_kafka_consume_delay_seconds   Kafka timestamp -> handed to the shard (producer linger, broker, fetch)
#   eddy_worker_pipeline_latency_seconds      handed to the shard -> Redis ack (the worker's own part)
#   eddy_worker_flush_duration_seconds, eddy_worker_flush_entities
# and the worker's resident memory. Needs redis-server and python3. The
# redis-server it starts runs with REDIS_OPTIONS (default
# `--hash-max-listpack-value 1024`, as Deploy/ configures Redis; set
# REDIS_OPTIONS= for Redis's defaults).
#
# The events go to TOPIC (default: clickstream) with the clickstream
# topology. A new consumer group reads a topic from its start, so on a real
# cluster give a topic that is empty (or new, where topics are created on
# first use) with a few partitions: an old backlog would be measured too.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-50000}
SECONDS_AT_RATE=${SECONDS_AT_RATE:-30}
WARM_SECONDS=${WARM_SECONDS:-8}
LINGER_MS=${LINGER_MS:-5}
USERS=${USERS:-100000}

# shellcheck source=Benchmarks/lib.sh
. Benchmarks/lib.sh
bench_setup freshness

# The clickstream topology, on TOPIC.
TOPIC=${TOPIC:-clickstream}
sed "s/^  topic: clickstream\$/  topic: $TOPIC/" Topologies/clickstream.yaml >"$WORK/clickstream.yaml"
grep -q "^  topic: $TOPIC\$" "$WORK/clickstream.yaml" || { echo "cannot set the topic in Topologies/clickstream.yaml" >&2; exit 1; }
# WORKER_PROPERTIES="k=v ...": librdkafka properties for the worker's consumer
# (the topology's source.properties), e.g. fetch.wait.max.ms=1.
if [ -n "${WORKER_PROPERTIES:-}" ]; then
  props="  properties:"
  for kv in $WORKER_PROPERTIES; do props="$props\n    ${kv%%=*}: \"${kv#*=}\""; done
  sed -i "s/^  format: json\$/  format: json\n$props/" "$WORK/clickstream.yaml"
  grep -q "^  properties:" "$WORK/clickstream.yaml" || { echo "cannot set WORKER_PROPERTIES" >&2; exit 1; }
fi

if [ -z "${REDIS_URL:-}" ]; then
  REDIS_PORT=$(free_port)
  # As Deploy/ ships it: entity hashes stay listpacks (half the memory, and
  # about a quarter less Redis CPU per update than the hashtable encoding).
  # shellcheck disable=SC2086
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" \
    ${REDIS_OPTIONS---hash-max-listpack-value 1024} &
  PIDS+=($!)
  until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
  REDIS_URL=redis://127.0.0.1:$REDIS_PORT
fi
if [ -z "${BROKERS:-}" ]; then
  "$EDDY" dev broker --topology "$WORK/clickstream.yaml" --partitions 4 --bootstrap-file "$WORK/bootstrap" >"$WORK/broker.log" 2>&1 &
  PIDS+=($!)
  until [ -s "$WORK/bootstrap" ]; do sleep 0.1; done
  BROKERS=$(head -1 "$WORK/bootstrap")
fi

HTTP_PORT=$(free_port)
GROUP=eddy-freshness-$$
"$EDDY" run "$WORK/clickstream.yaml" --brokers "$BROKERS" --redis "$REDIS_URL" --group "$GROUP" --http "127.0.0.1:$HTTP_PORT" \
  --stats-interval 0 >"$WORK/run.log" 2>&1 &
RUN_PID=$!
PIDS+=($RUN_PID)
for _ in $(seq 1 300); do grep -q "assigned" "$WORK/run.log" && break; sleep 0.1; done
grep -q "assigned" "$WORK/run.log" || { echo "the worker got no partitions in 30 s:" >&2; tail -20 "$WORK/run.log" >&2; exit 1; }

redis_cpu() { redis-cli -u "$REDIS_URL" info cpu 2>/dev/null | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {print s + 0}'; }
echo "producing $RATE events/s for $SECONDS_AT_RATE s to $BROKERS (linger $LINGER_MS ms); the worker writes to $REDIS_URL" >&2
"$EDDY" dev produce --topology "$WORK/clickstream.yaml" --brokers "$BROKERS" --generate $((RATE * SECONDS_AT_RATE)) --users "$USERS" \
  --rate "$RATE" --linger-ms "$LINGER_MS" >"$WORK/produce.log" 2>&1 &
PRODUCE_PID=$!
PIDS+=($PRODUCE_PID)
sleep "$WARM_SECONDS"
curl -s "127.0.0.1:$HTTP_PORT/metrics" >"$WORK/before.txt"
CPU_WARM=$(redis_cpu)
T_WARM=$(date +%s.%N)
wait "$PRODUCE_PID" || { echo "the producer failed:" >&2; grep -v '^%' "$WORK/produce.log" | tail -5 >&2; exit 1; }
sleep 1  # the last flushes
curl -s "127.0.0.1:$HTTP_PORT/metrics" >"$WORK/after.txt"
REDIS_SHARE=$(awk -v a="$CPU_WARM" -v b="$(redis_cpu)" -v t0="$T_WARM" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.0f", 100 * (b - a) / (t1 - t0) }')
RSS=$(awk '/^VmRSS/ {print $2 / 1024}' "/proc/$RUN_PID/status")
grep -v '^%' "$WORK/produce.log" | tail -1 >&2

python3 - "$WORK/before.txt" "$WORK/after.txt" "$RSS" "$REDIS_SHARE" <<'EOF'
import re, sys
def histograms(path):
    h = {}
    for line in open(path):
        m = re.match(r'(eddy_worker_\w+)_bucket\{le="([^"]+)"\} (\S+)', line)
        if m: h.setdefault(m.group(1), []).append((float(m.group(2)), float(m.group(3))))
    return h
before, after = histograms(sys.argv[1]), histograms(sys.argv[2])
names = ["eddy_worker_kafka_freshness_seconds", "eddy_worker_kafka_consume_delay_seconds",
         "eddy_worker_pipeline_latency_seconds", "eddy_worker_flush_duration_seconds", "eddy_worker_flush_entities"]
for name in names:
    if name not in after: continue
    earlier = dict(before.get(name, []))
    buckets = [(le, c - earlier.get(le, 0)) for le, c in after[name]]
    total = buckets[-1][1]
    if total <= 0: continue
    def quantile(p):  # interpolated within the bucket, as Prometheus' histogram_quantile does
        rank, lower, below = p * total, 0.0, 0.0
        for le, c in buckets:
            if c >= rank:
                return lower if le == float("inf") else lower + (le - lower) * (rank - below) / max(c - below, 1e-9)
            lower, below = le, c
    scale, unit = (1000, "ms") if name.endswith("seconds") else (1, "")
    print(f"{name:44s} n={int(total):<9d} p50 {quantile(.5) * scale:8.2f}{unit}  p90 {quantile(.9) * scale:8.2f}{unit}  p99 {quantile(.99) * scale:8.2f}{unit}")
def counter(path, name):
    for line in open(path):
        if line.startswith(name + " ") or line.startswith(name + "{"): return float(line.split()[-1])
    return 0.0
writes = counter(sys.argv[2], "eddy_worker_entities_written_total") - counter(sys.argv[1], "eddy_worker_entities_written_total")
print(f"entity writes in the window: {int(writes)}; Redis used {sys.argv[4]}% of a core (INFO cpu)")
print(f"worker resident memory at the end: {float(sys.argv[3]):.0f} MiB")
EOF
