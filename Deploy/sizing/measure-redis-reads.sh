#!/usr/bin/env bash
# Measures what one Redis core serves for reads (the feature-read path of the
# sizing guide): backfills ENTITIES entities per topology into a fresh
# redis-server (hash-max-listpack-value 1024), then runs redis-benchmark on
#   FCALL_RO eddy_<topology>_features 1 <key> T   (T = the data's latest key time)
# over random entities, with HGETALL and PING for comparison, and reports the
# throughput, the latency percentiles and Redis's own time per call
# (INFO commandstats usec_per_call, which client load on this machine does not skew).
#
#   Deploy/sizing/measure-redis-reads.sh        # 1M events, 100k entities per topology
#
# Needs: a built eddy (EDDY=path, default .build/release/eddy), redis-server,
# redis-cli, redis-benchmark, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
EDDY=${EDDY:-.build/release/eddy}
EVENTS=${EVENTS:-1000000}
ENTITIES=${ENTITIES:-100000}
REQUESTS=${REQUESTS:-300000}
CLIENTS=${CLIENTS:-50}
PORT=${PORT:-6421}
TOPOLOGIES=${TOPOLOGIES:-clickstream payments engagement}
WORK=$(mktemp -d /tmp/eddy-reads.XXXXXX)
broker=""
cleanup() {
  [ -n "$broker" ] && kill -TERM "$broker" 2>/dev/null || true
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

"$EDDY" dev generate --count "$EVENTS" --users "$ENTITIES" --out "$WORK/clickstream.jsonl"
python3 Deploy/sizing/gen_payments.py --count "$EVENTS" --cards "$ENTITIES" >"$WORK/payments.jsonl"
python3 Deploy/sizing/gen_engagement.py --count "$EVENTS" --viewers "$ENTITIES" >"$WORK/engagement.jsonl"
topo_args=()
for t in $TOPOLOGIES; do topo_args+=(--topology "Topologies/$t.yaml"); done
"$EDDY" dev broker --partitions $(( EVENTS / 4000 + 8 )) "${topo_args[@]}" --bootstrap-file "$WORK/bootstrap" >"$WORK/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
EDDY_BROKERS=$(cat "$WORK/bootstrap")
export EDDY_BROKERS
redis-server --port "$PORT" --save '' --appendonly no --daemonize yes --dir "$WORK" --logfile "$WORK/redis.log" \
  --hash-max-listpack-value 1024
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
rc() { redis-cli -p "$PORT" "$@"; }

bench() {  # label, command... (PIPE=N: pipeline N requests per client)
  local label=$1; shift
  rc config resetstat >/dev/null
  local out; out=$(redis-benchmark -p "$PORT" -n "$REQUESTS" -c "$CLIENTS" -r "$ENTITIES" -P "${PIPE:-1}" "$@" 2>&1 | tr -d '\r')
  local rps; rps=$(sed -n 's/.*throughput summary: \([0-9.]*\).*/\1/p' <<<"$out")
  local lat; lat=$(grep -A2 'latency summary' <<<"$out" | tail -1 | awk '{print $3, $4, $5}')
  local cmd; cmd=$(tr '[:upper:]' '[:lower:]' <<<"$1")
  local usec; usec=$(rc info commandstats | tr -d '\r' | sed -n "s/^cmdstat_$cmd:.*usec_per_call=\([0-9.]*\).*/\1/p")
  printf '%-12s %-34s %10.0f %18s %10s %12.0f\n' "$topo" "$label" "$rps" "$lat" "$usec" "$(python3 -c "print(1e6/$usec if $usec else 0)")"
}

printf '%-12s %-34s %10s %18s %10s %12s\n' topology "request ($CLIENTS clients)" "req/s" "p50/p95/p99 ms" "usec/call" "1e6/usec"
for topo in $TOPOLOGIES; do
  "$EDDY" dev produce --topology "Topologies/$topo.yaml" --input "$WORK/$topo.jsonl" 2>>"$WORK/produce.log"
  "$EDDY" replay --topology "Topologies/$topo.yaml" --from-kafka --emit redis --redis "redis://127.0.0.1:$PORT" \
    --no-progress 2>"$WORK/replay-$topo.log"
  prefix=$(python3 -c "import yaml,sys; t=yaml.safe_load(open(sys.argv[1])); print((t.get('sink') or {}).get('prefix') or t['name'] + ':')" "Topologies/$topo.yaml")
  # redis-benchmark draws keys as __rand_int__ (12 digits): rename the entities to <prefix>#<12 digits>.
  rc eval "local ks = redis.call('KEYS', ARGV[1] .. '*') for i, k in ipairs(ks) do redis.call('RENAME', k, string.format('%s#%012d', ARGV[1], i - 1)) end return #ks" 0 "$prefix" >/dev/null
  # T: the latest key time of the data (so windows are folded over live tiles, as in production).
  T=$(rc eval "local m = 0 for i = 0, 999 do local k = redis.call('HGET', string.format('%s#%012d', ARGV[1], i), '_K') if k and tonumber(k) > m then m = tonumber(k) end end return m" 0 "$prefix")
  bench "FCALL_RO ${topo}_features T=data" FCALL_RO "eddy_${topo}_features" 1 "${prefix}#__rand_int__" "$T"
  PIPE=16 bench "FCALL_RO ${topo}_features P=16" FCALL_RO "eddy_${topo}_features" 1 "${prefix}#__rand_int__" "$T"
  bench "HGETALL (point features only)" HGETALL "${prefix}#__rand_int__"
  rc flushall >/dev/null
done
topo=-
bench "PING (network/loop baseline)" PING
echo "(the P=16 row pipelines 16 requests per client; usec/call is Redis's own time per command;"
echo " 1e6/usec is the ceiling for one Redis core before network I/O. Logs in $WORK)"
