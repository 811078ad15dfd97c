#!/usr/bin/env bash
# Eddy on a fresh Debian machine, on the embedded defaults (Topologies/clickstream.yaml):
# installs what is missing, builds, starts redis-server and a local mock Kafka,
# streams demo clickstream events through the worker, shows a few users'
# features changing in Redis, then stops everything cleanly.
#   Deploy/quickstart.sh --avro      the same with an Avro topic and a local schema registry
#   Deploy/quickstart.sh --protobuf  ... a Protobuf topic
set -euo pipefail
FORMAT=json
case "${1:-}" in --avro) FORMAT=avro ;; --protobuf) FORMAT=protobuf ;; "") ;; *) echo "usage: $0 [--avro|--protobuf]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."

REDIS_PORT=${REDIS_PORT:-6390}
EVENTS=${EVENTS:-300000}
RATE=${RATE:-20000}
WORK=$(mktemp -d /tmp/eddy-quickstart.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "==> installing system packages (if missing)"
.ci/install-deps
echo "==> building (release)"
swift build -c release --product eddy 2>&1 | grep -E "error|warning: unre|Compiling eddy|Build complete" || true
EDDY=.build/release/eddy

echo "==> starting redis-server on port $REDIS_PORT"
redis-server --port "$REDIS_PORT" --save '' --appendonly no --hash-max-listpack-value 1024 --daemonize yes --dir "$WORK" --logfile "$WORK/redis.log"
export EDDY_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

echo "==> starting a local mock Kafka cluster (eddy dev broker)"
$EDDY dev broker --partitions 8 --topology clickstream --bootstrap-file "$WORK/bootstrap" >"$WORK/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
export EDDY_BROKERS=$(cat "$WORK/bootstrap")
echo "    Kafka at $EDDY_BROKERS"

TOPOLOGY=clickstream
PRODUCE_FORMAT=()
if [ "$FORMAT" != json ]; then
  echo "==> starting a local schema registry (eddy dev registry)"
  $EDDY dev registry --port 0 --url-file "$WORK/registry" >"$WORK/registry.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do [ -s "$WORK/registry" ] && break; sleep 0.1; done
  REGISTRY=$(cat "$WORK/registry")
  echo "    registry at $REGISTRY"
  TOPOLOGY="$WORK/clickstream-$FORMAT.yaml"
  sed "s|^  format: json|  format: $FORMAT\n  schema_registry: {url: \"$REGISTRY\"}|" Topologies/clickstream.yaml >"$TOPOLOGY"
  PRODUCE_FORMAT=(--format "$FORMAT" --registry "$REGISTRY")
fi

echo "==> the topology"
$EDDY check "$TOPOLOGY"

echo "==> starting the worker (eddy run $TOPOLOGY)"
$EDDY run "$TOPOLOGY" --stats-interval 5 >"$WORK/worker.log" 2>&1 &
worker=$!
pids+=($worker)

echo "==> producing $EVENTS demo events at $RATE events/s"
$EDDY dev produce --topology "$TOPOLOGY" --generate "$EVENTS" --users 1000 --rate "$RATE" "${PRODUCE_FORMAT[@]}" 2>"$WORK/produce.log" &
pids+=($!)

for round in 1 2 3 4 5 6; do
  sleep 2
  echo "--- features of three users, round $round (eddy get clickstream u0000001 u0000002 u0000003)"
  $EDDY get --topology "$TOPOLOGY" u0000001 u0000002 u0000003 | cut -c1-240
done
echo "--- the same entity with redis-cli: point features are plain hash fields"
redis-cli -p "$REDIS_PORT" hmget clickstream:u0000001 last_items session_events _K
echo "--- and windows decayed at read time, in one FCALL:"
redis-cli -p "$REDIS_PORT" fcall eddy_clickstream_features 1 clickstream:u0000001 | cut -c1-240

echo "==> stopping the worker (SIGTERM: flush, commit, leave the group)"
kill -TERM "$worker"
status=0; wait "$worker" || status=$?
grep -v DEBUG "$WORK/worker.log" | tail -n 3
echo "    worker exited with status $status"
echo "==> logs in $WORK"
