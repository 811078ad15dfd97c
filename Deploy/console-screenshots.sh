#!/usr/bin/env bash
# PNG screenshots of the `eddy serve` console (/ui), taken with headless Chromium.
#
#   Deploy/console-screenshots.sh [OUT_DIR]
#       starts a demo (redis-server, the mock Kafka of `eddy dev broker`, `eddy run` with
#       /metrics, a drift baseline, `eddy serve --worker-metrics ...`), streams generated
#       clickstream events, and writes topologies.png, entity.png, distributions.png and
#       workers.png to OUT_DIR (default docs/console), then stops everything.
#   CONSOLE_URL=http://127.0.0.1:8080 Deploy/console-screenshots.sh [OUT_DIR]
#       only screenshots an `eddy serve` already running there (ENTITY=key picks the entity).
#
# Needs Debian's chromium (.ci/install-deps installs it) and a built eddy (built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/console}
mkdir -p "$OUT"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "chromium is not installed: apt-get install chromium (or .ci/install-deps)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/eddy-console-shots.XXXXXX)
pids=()
REDIS_PORT=""
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  [ -n "$REDIS_PORT" ] && redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ -z "${CONSOLE_URL:-}" ]; then
  EDDY=${EDDY:-.build/debug/eddy}
  [ -x "$EDDY" ] || swift build --product eddy
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --save '' --appendonly no --hash-max-listpack-value 1024 --daemonize yes \
    --dir "$WORK" --logfile "$WORK/redis.log"
  export EDDY_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  "$EDDY" dev broker --partitions 8 --topology clickstream --bootstrap-file "$WORK/bootstrap" >"$WORK/broker.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
  export EDDY_BROKERS=$(cat "$WORK/bootstrap")
  WORKER_PORT=$(free_port)
  "$EDDY" run clickstream --http "127.0.0.1:$WORKER_PORT" --stats-interval 0 >"$WORK/worker.log" 2>&1 &
  pids+=($!)
  # A first batch, saved as the drift baseline; then more events with a different user mix.
  "$EDDY" dev produce --topology clickstream --generate 40000 --users 2000 --seed 1 2>"$WORK/produce1.log"
  sleep 4
  "$EDDY" drift --topology clickstream --save-baseline "$WORK/baseline.json" --sample 2000
  SERVE_PORT=$(free_port)
  "$EDDY" serve --topology clickstream --listen "127.0.0.1:$SERVE_PORT" \
    --worker-metrics "http://127.0.0.1:$WORKER_PORT/metrics" --scrape-interval 1 \
    --drift-baseline "$WORK/baseline.json" >"$WORK/serve.log" 2>&1 &
  pids+=($!)
  "$EDDY" dev produce --topology clickstream --generate 60000 --users 300 --seed 2 --rate 6000 2>"$WORK/produce2.log"
  sleep 3
  CONSOLE_URL="http://127.0.0.1:$SERVE_PORT"
  # An entity's features at its key time, so its windows are full.
  K=$("$EDDY" get --topology clickstream u0000042 | python3 -c 'import json,sys; print(json.load(sys.stdin)["key_time"])')
  ENTITY_QUERY="topology=clickstream&key=u0000042&at=$K"
else
  ENTITY_QUERY="topology=${TOPOLOGY:-clickstream}&key=${ENTITY:-u0000042}"
fi

shot() {
  timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --hide-scrollbars \
    --user-data-dir="$WORK/profile" --window-size=1280,"$3" --screenshot="$OUT/$1.png" "$CONSOLE_URL$2" >/dev/null 2>&1
  echo "wrote $OUT/$1.png"
}
shot topologies "/ui/topologies" 900
shot entity "/ui/entity?$ENTITY_QUERY" 1500
shot distributions "/ui/distributions?topology=clickstream" 1000
shot workers "/ui/workers" 1300
