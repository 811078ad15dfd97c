#!/usr/bin/env bash
# The seed's scenario at size: a realistic population of USERS users
# (10M), EVENTS events (34M: every user appears by ~33.7M) produced at a steady RATE while the worker
# consumes them with --max-keys well below USERS (keys are evicted and
# reloaded), HTTP reads of existing users through `eddy serve` at the same
# time, then `eddy verify` and the backfill of the same events.
#
#   Benchmarks/scenario.sh                      # the full size (~45 min, ~14 GB of RAM)
#   USERS=200000 EVENTS=640000 Benchmarks/scenario.sh   # a quick run
#
# Settings (environment): USERS, EVENTS, RATE (events/s produced),
# PARTITIONS (64), MAX_KEYS (USERS/10), READ_CONNECTIONS (wrk -c, 4),
# READ_WINDOW (seconds per wrk run, 30), VERIFY_SAMPLE (100000), BACKFILL
# (1: also run the backfill), LINGER_MS (the producer's linger, 100: the mock
# broker serves one producer batch per partition per fetch, so small batches
# cap what a worker that fell behind can drain), DATA (a folder to keep the generated events in
# between runs; default the run's temporary folder), RESULTS (a folder for
# the samples and logs; default the temporary folder, removed at exit),
# WORKER_PROPERTIES ("k=v ...": librdkafka properties for the worker's
# consumer, e.g. queued.max.messages.kbytes=16384), INGEST_NICE (0: a
# `nice` level for the ingest side — the mock broker, the producer and the
# worker — so that on a machine they share with `eddy serve` and Redis,
# reads get the CPU first), WORKER_FLAGS (more `eddy run` flags, e.g.
# "--fence entity"), INGEST_CPUS, SERVE_CPUS, WRK_CPUS (CPU lists for
# `taskset -c`, default none: the ingest side; Redis and `eddy serve`; wrk —
# e.g. INGEST_CPUS=0 SERVE_CPUS=1 WRK_CPUS=0 keeps the reads' core apart).
#
# The mock broker keeps only ~5 MB of batches per partition, so the events
# are produced while the worker consumes, over PARTITIONS partitions; the
# script fails if the worker falls so far behind that the broker dropped
# events (verify would then differ).
#
# Reports: ingest events/s and freshness p50/p99 (the worker's histograms
# over the run); reads req/s and p50/p99/p99.9 of every wrk window during
# ingest; Redis memory per entity and in total; the worker's RSS over time
# (every 10 s, in samples.csv); evictions and reloads; verify's result; the
# backfill's events/s and its verify.
# Needs: wrk, redis-server, redis-cli, python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-10000000}
EVENTS=${EVENTS:-34000000}
RATE=${RATE:-25000}
PARTITIONS=${PARTITIONS:-64}
MAX_KEYS=${MAX_KEYS:-$((USERS / 10))}
READ_CONNECTIONS=${READ_CONNECTIONS:-4}
READ_WINDOW=${READ_WINDOW:-30}
VERIFY_SAMPLE=${VERIFY_SAMPLE:-100000}
BACKFILL=${BACKFILL:-1}
SEED=${SEED:-42}
LINGER_MS=${LINGER_MS:-100}
INGEST_NICE=${INGEST_NICE:-0}
INGEST=()
if [ -n "${INGEST_CPUS:-}" ]; then INGEST=(taskset -c "$INGEST_CPUS"); fi
if [ "$INGEST_NICE" != 0 ]; then INGEST+=(nice -n "$INGEST_NICE"); fi
SERVING=()
if [ -n "${SERVE_CPUS:-}" ]; then SERVING=(taskset -c "$SERVE_CPUS"); fi
READER=()
if [ -n "${WRK_CPUS:-}" ]; then READER=(taskset -c "$WRK_CPUS"); fi

for tool in wrk redis-server redis-cli python3 curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y wrk redis-server redis-tools python3 curl)" >&2; exit 2; }
done

# shellcheck source=Benchmarks/lib.sh
. Benchmarks/lib.sh
bench_setup scenario
DATA=${DATA:-$WORK}
RESULTS=${RESULTS:-$WORK}
mkdir -p "$DATA" "$RESULTS"
say() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# 1. The events, generated once per settings.
EVENTS_FILE="$DATA/events-u$USERS-e$EVENTS-s$SEED.jsonl"
if [ ! -s "$EVENTS_FILE" ]; then
  say "generating $EVENTS events for $USERS users -> $EVENTS_FILE"
  "$EDDY" dev generate --population realistic --users "$USERS" --count "$EVENTS" --seed "$SEED" --out "$EVENTS_FILE.tmp"
  mv "$EVENTS_FILE.tmp" "$EVENTS_FILE"
fi
python3 - "$EVENTS_FILE" "$RESULTS/population.txt" <<'EOF'
import sys, collections
counts = collections.Counter()
with open(sys.argv[1], 'rb') as f:
    for line in f:
        counts[line[12:20]] += 1  # "user_id":"u0000000" at a fixed place
v = sorted(counts.values(), reverse=True); n = len(v); total = sum(v)
text = (f"population: {n} distinct users in {total} events; events per user: median {v[n//2]}, "
        f"p90 {v[n//10]}, p99 {v[n//100]}, max {v[0]}; the top 1% of users have {100*sum(v[:n//100])/total:.1f}% of events; "
        f"{100*sum(1 for x in v if x <= 3)/n:.1f}% of users are seen at most 3 times")
print(text); open(sys.argv[2], 'w').write(text + "\n")
EOF
DISTINCT=$(awk '{print $2}' "$RESULTS/population.txt")

# 2. Redis, the mock broker, the worker, the server.
REDIS_PORT=$(free_port)
"${SERVING[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  --hash-max-listpack-value 1024 --logfile "$RESULTS/redis.log" &
PIDS+=($!)
REDIS_PID=$!
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
export EDDY_REDIS_URL=redis://127.0.0.1:$REDIS_PORT

"${INGEST[@]}" "$EDDY" dev broker --topology clickstream --partitions "$PARTITIONS" --bootstrap-file "$WORK/bootstrap" >"$RESULTS/broker.log" 2>&1 &
PIDS+=($!)
until [ -s "$WORK/bootstrap" ]; do sleep 0.1; done
BROKERS=$(head -1 "$WORK/bootstrap")

# WORKER_PROPERTIES="k=v ...": librdkafka properties for the worker's consumer
# (a copy of the topology with them in source.properties), e.g.
# queued.max.messages.kbytes=16384.
WORKER_TOPOLOGY=clickstream
if [ -n "${WORKER_PROPERTIES:-}" ]; then
  WORKER_TOPOLOGY=$WORK/clickstream.yaml
  props="  properties:"
  for kv in $WORKER_PROPERTIES; do props="$props\n    ${kv%%=*}: \"${kv#*=}\""; done
  sed "s/^  format: json\$/  format: json\n$props/" Topologies/clickstream.yaml >"$WORKER_TOPOLOGY"
  grep -q "^  properties:" "$WORKER_TOPOLOGY" || { echo "cannot set WORKER_PROPERTIES" >&2; exit 1; }
fi

METRICS_PORT=$(free_port)
"${INGEST[@]}" "$EDDY" run "$WORKER_TOPOLOGY" --brokers "$BROKERS" --max-keys "$MAX_KEYS" --http "127.0.0.1:$METRICS_PORT" \
  --stats-interval 60 ${WORKER_FLAGS:-} >"$RESULTS/worker.log" 2>&1 &
WORKER_PID=$!
PIDS+=($WORKER_PID)
HTTP_PORT=$(free_port)
"${SERVING[@]}" "$EDDY" serve --topology clickstream --listen "127.0.0.1:$HTTP_PORT" --log-level warning >"$RESULTS/serve.log" 2>&1 &
SERVE_PID=$!
PIDS+=($SERVE_PID)
until curl -sf "127.0.0.1:$METRICS_PORT/healthz" >/dev/null; do sleep 0.2; done
until curl -sf "127.0.0.1:$HTTP_PORT/healthz" >/dev/null; do sleep 0.2; done
# A metric's value summed over its label sets (consumed is per topic).
sum_metric() { awk -v m="$1" '{ n = $1; sub(/\{.*/, "", n) } n == m { s += $2; f = 1 } END { if (f) printf "%.0f\n", s }'; }
metric() { curl -s "127.0.0.1:$METRICS_PORT/metrics" | sum_metric "$1"; }
consumed() { local v; v=$(metric eddy_worker_events_consumed_total); v=${v%%.*}; echo "${v:-0}"; }

# 3. Produce at RATE while the worker consumes; sample every 10 s.
say "producing $EVENTS events at $RATE/s over $PARTITIONS partitions; worker --max-keys $MAX_KEYS"
curl -s "127.0.0.1:$METRICS_PORT/metrics" >"$RESULTS/metrics-start.txt"
START=$(date +%s.%N)
"${INGEST[@]}" "$EDDY" dev produce --topology clickstream --brokers "$BROKERS" --input "$EVENTS_FILE" --rate "$RATE" \
  --linger-ms "$LINGER_MS" >"$RESULTS/produce.log" 2>&1 &
PRODUCER_PID=$!
PIDS+=($PRODUCER_PID)
echo "seconds,consumed,applied,keys_in_memory,evicted,loaded,worker_rss_kib,redis_keys,redis_used_bytes,serve_rss_kib" >"$RESULTS/samples.csv"
sample() {
  local m; m=$(curl -s "127.0.0.1:$METRICS_PORT/metrics")
  get() { sum_metric "$1" <<<"$m"; }
  echo "$(python3 -c "import time; print(round(time.time() - $START))"),$(get eddy_worker_events_consumed_total),$(get eddy_worker_events_applied_total),$(get eddy_worker_keys_in_memory),$(get eddy_worker_keys_evicted_total),$(get eddy_worker_keys_loaded_total),$(awk '/VmRSS/ {print $2}' /proc/$WORKER_PID/status),$(redis-cli -p "$REDIS_PORT" dbsize),$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ {printf "%.0f", $2}'),$(awk '/VmRSS/ {print $2}' /proc/$SERVE_PID/status)" >>"$RESULTS/samples.csv"
}
( while kill -0 "$WORKER_PID" 2>/dev/null; do sample; sleep 10; done ) &
SAMPLER_PID=$!
PIDS+=($SAMPLER_PID)

# 4. Reads during ingest: users from the first fifth of the file (they
# exist once the worker is past it), wrk windows until ingest ends.
READ_KEYS=$(( EVENTS / 5 ))
head -n "$READ_KEYS" "$EVENTS_FILE" | cut -c13-20 | sort -u | shuf -n 200000 --random-source=<(yes) >"$WORK/keys.txt"
python3 - "$WORK/keys.txt" "$WORK/reads.lua" <<'EOF'
import sys
keys = [k.strip() for k in open(sys.argv[1]) if k.strip()]
with open(sys.argv[2], 'w') as f:
    f.write("local keys = {" + ",".join('"%s"' % k for k in keys) + "}\n")
    f.write("""local n = #keys
math.randomseed(7)
request = function()
  return wrk.format("GET", "/v1/features/clickstream/" .. keys[math.random(n)])
end
done = function(summary, latency, requests)
  io.write(string.format("WINDOW %.0f req/s p50 %.3f p99 %.3f p99.9 %.3f ms errors %d non2xx %d\\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
""")
EOF
say "waiting for the worker to pass the first fifth of the events before reading"
while [ "$(consumed)" -lt "$READ_KEYS" ]; do
  kill -0 "$PRODUCER_PID" 2>/dev/null || break
  sleep 2
done
: >"$RESULTS/reads.txt"
while kill -0 "$PRODUCER_PID" 2>/dev/null; do
  before=$(metric eddy_worker_events_consumed_total)
  t0=$(date +%s.%N)
  "${READER[@]}" wrk -t2 -c"$READ_CONNECTIONS" -d"${READ_WINDOW}s" -s "$WORK/reads.lua" "http://127.0.0.1:$HTTP_PORT" 2>&1 \
    | awk -v b="$before" '/^WINDOW/' >>"$RESULTS/reads.txt" || true
  after=$(metric eddy_worker_events_consumed_total)
  t1=$(date +%s.%N)
  python3 -c "print('  ingest during that window: %.0f events/s' % (($after - $before) / ($t1 - $t0)))" >>"$RESULTS/reads.txt"
  tail -2 "$RESULTS/reads.txt" | tr '\n' ' ' >&2; echo >&2
done
wait "$PRODUCER_PID" || { echo "the producer failed: $(tail -3 "$RESULTS/produce.log")" >&2; exit 1; }
PRODUCE_END=$(date +%s.%N)
CONSUMED_AT_PRODUCE_END=$(consumed)
say "produced: $(tail -1 "$RESULTS/produce.log")"

# 5. Drain, then stop the worker (it flushes and commits on SIGTERM).
last=-1; still=0
while [ "$(consumed)" -lt "$EVENTS" ]; do
  kill -0 "$WORKER_PID" 2>/dev/null || { echo "the worker died: $(tail -5 "$RESULTS/worker.log")" >&2; exit 1; }
  now=$(consumed)
  if [ "$now" = "$last" ]; then still=$((still + 1)); else still=0; last=$now; fi
  if [ "$still" -ge 60 ]; then
    echo "the worker consumed $now of $EVENTS events and nothing more for 60 s: the mock broker dropped the oldest batches of a partition the worker had not read yet (it keeps ~5 MB per partition). Lower RATE or raise PARTITIONS." >&2
    exit 1
  fi
  sleep 1
done
INGEST_END=$(date +%s.%N)
GAPS=$(metric eddy_worker_offset_gaps_total)
if [ "${GAPS:-0}" != 0 ]; then
  echo "warning: the worker found ${GAPS} holes in partition offsets: the mock broker dropped batches it had not read (it keeps ~5 MB per partition; the worker fell behind). verify will differ for the keys of those events; lower RATE or raise PARTITIONS." >&2
fi
sleep 1
sample
curl -s "127.0.0.1:$METRICS_PORT/metrics" >"$RESULTS/metrics-end.txt"
kill -TERM "$WORKER_PID"; wait "$WORKER_PID" || true
kill "$SAMPLER_PID" 2>/dev/null || true

# 6. Verify the worker's keys.
say "verify --sample $VERIFY_SAMPLE"
VERIFY_START=$(date +%s.%N)
set +e
"$EDDY" verify --topology clickstream --input "$EVENTS_FILE" --sample "$VERIFY_SAMPLE" --no-progress >"$RESULTS/verify.txt" 2>&1
VERIFY_RC=$?
set -e
VERIFY_SECONDS=$(python3 -c "print(round($(date +%s.%N) - $VERIFY_START))")
REDIS_KEYS=$(redis-cli -p "$REDIS_PORT" dbsize)
REDIS_USED=$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ {printf "%.0f", $2}')
REDIS_EMPTY=$(head -1 "$RESULTS/samples.csv" >/dev/null; sed -n 2p "$RESULTS/samples.csv" | cut -d, -f9)

# 7. The backfill of the same events into an empty Redis, then its verify.
BACKFILL_LINE="not run (BACKFILL=0)"
if [ "$BACKFILL" = 1 ]; then
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  say "backfill: eddy replay --emit redis --prefix backfill:"
  b0=$(date +%s.%N)
  "$EDDY" replay --topology clickstream --input "$EVENTS_FILE" --emit redis --prefix backfill: --no-progress >"$RESULTS/backfill.txt" 2>&1
  b1=$(date +%s.%N)
  set +e
  "$EDDY" verify --topology clickstream --input "$EVENTS_FILE" --prefix backfill: --sample "$VERIFY_SAMPLE" --no-progress >"$RESULTS/backfill-verify.txt" 2>&1
  BACKFILL_RC=$?
  set -e
  BACKFILL_LINE=$(python3 -c "print('%d events in %.0f s = %.0f events/s; %s keys; verify exit %d: %s' % ($EVENTS, $b1 - $b0, $EVENTS / ($b1 - $b0), '$(redis-cli -p "$REDIS_PORT" dbsize)', $BACKFILL_RC, '''$(tail -1 "$RESULTS/backfill-verify.txt")'''))")
fi

# 8. The report.
python3 - "$RESULTS" "$START" "$PRODUCE_END" "$INGEST_END" "$EVENTS" "$RATE" "$MAX_KEYS" "$REDIS_KEYS" "$REDIS_USED" "${REDIS_EMPTY:-0}" \
  "$VERIFY_RC" "$VERIFY_SECONDS" "$DISTINCT" "$BACKFILL_LINE" "$CONSUMED_AT_PRODUCE_END" <<'EOF'
import sys, re
(res, start, pend, iend, events, rate, max_keys, rkeys, rused, rempty, vrc, vsec, distinct, backfill, at_pend) = sys.argv[1:]
start, pend, iend = float(start), float(pend), float(iend)
events, rkeys, rused, rempty, at_pend = int(events), int(rkeys), int(float(rused)), int(float(rempty)), int(at_pend or 0)
def hist(path, name):
    b = {}
    for line in open(path):
        m = re.match(name + r'_bucket\{le="([^"]+)"\} (\S+)', line)
        if m: b[float('inf') if m.group(1) == '+Inf' else float(m.group(1))] = float(m.group(2))
    return b
def quantile(b0, b1, q):
    les = sorted(b1); total = b1[les[-1]] - b0.get(les[-1], 0)
    if total <= 0: return float('nan')
    for le in les:
        if b1[le] - b0.get(le, 0) >= q * total: return le
def fresh(name):
    a, b = hist(f"{res}/metrics-start.txt", name), hist(f"{res}/metrics-end.txt", name)
    return "p50 <= %g s, p99 <= %g s" % (quantile(a, b, .5), quantile(a, b, .99))
rows = [l.strip().split(',') for l in open(f"{res}/samples.csv")][1:]
rss = [int(r[6]) for r in rows if r[6]]
warm = rss[len(rss) // 5:] or rss
evicted = rows[-1][4]; loaded = rows[-1][5]
windows = [l.strip() for l in open(f"{res}/reads.txt")]
print("== scenario:", open(f"{res}/population.txt").read().strip())
print(f"ingest: {events} events in {iend - start:.0f} s = {events / (iend - start):.0f} events/s (produced at {rate}/s; producer done after {pend - start:.0f} s)")
print(f"  while producing: {at_pend} consumed in {pend - start:.0f} s = {at_pend / (pend - start):.0f} events/s; the rest "
      f"({events - at_pend}) drained in {iend - pend:.0f} s (the mock broker serves one producer batch per partition per fetch)")
print("freshness, Kafka timestamp -> Redis ack:", fresh("eddy_worker_kafka_freshness_seconds"))
print("  the worker's own part:", fresh("eddy_worker_pipeline_latency_seconds"))
print("reads during ingest (wrk windows):"); [print("  " + w) for w in windows]
print(f"Redis: {rkeys} keys ({distinct} distinct users generated), used_memory {rused / 2**30:.2f} GiB, {(rused - rempty) / max(rkeys, 1):.0f} bytes per entity")
print(f"worker RSS (KiB, every 10 s): min {min(rss)} max {max(rss)}; after the first fifth: {min(warm)}..{max(warm)} ({100 * (max(warm) - min(warm)) / min(warm):.1f}% spread); --max-keys {max_keys}")
print(f"evictions {evicted}; loads {loaded} (keys brought into memory, new ones included), so ~{int(loaded) - int(distinct)} reloads of evicted keys")
print(f"verify (exit {vrc}, {vsec} s): " + open(f"{res}/verify.txt").read().strip().splitlines()[-1])
print("backfill:", backfill)
EOF
echo "(samples, logs: $RESULTS)" >&2
[ "$VERIFY_RC" = 0 ]
