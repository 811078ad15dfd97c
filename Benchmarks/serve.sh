#!/usr/bin/env bash
# Benchmark of `eddy serve`: single-key GET latency over HTTP on loopback,
# against redis-benchmark on the same Redis in the same run (the baseline).
#
#   Benchmarks/serve.sh            # USERS=20000 EVENTS=200000 RATE=10000 DURATION=10
#   SERVE_ARGS="--event-loops 1" Benchmarks/serve.sh   # extra `eddy serve` options
#   Benchmarks/serve.sh --tls      # HTTPS: a self-signed certificate made with openssl,
#                                  # `eddy serve --tls-cert --tls-key`, wrk over https
#                                  # (keep-alive: one handshake per connection)
#
# Steps: build release; start redis-server and the mock Kafka broker; fill
# Redis through the real path (dev produce -> eddy run --http, which also
# shows the worker's /metrics); start eddy serve; then
#   1. redis-benchmark -n 100000 -c 16 -P 1: PING, GET, and the FCALL the
#      server makes (the Redis-side cost of one feature read);
#   2. wrk -t1 -c16 --latency, saturated: the server's throughput and latency;
#   3. wrk at RATE: the fewest connections (no pause) whose 2-second trial
#      reaches RATE requests/s, then the measured run. This is wrk's own
#      closed loop: a connection sends its next request when the reply is
#      in, so the rate is connections / latency (the target's measurement);
#   4. wrk paced to about RATE requests/s with more connections: Debian's
#      wrk has no -R (that is wrk2), so each connection waits 1 ms between
#      requests. wrk's timers fire on whole milliseconds, so the paused
#      connections send in bursts: a harsher, burstier load than run 3.
#      The connection count is corrected twice from trial runs to land near
#      RATE.
# Both 3 and 4 are closed loops: the percentiles do not correct for
# coordinated omission the way wrk2 does. The server's CPU time and context
# switches per request in runs 3 and 4 are reported too (from /proc; they
# depend less on the machine's load than latency).
# Keys are drawn uniformly from the USERS generated users (about 1 in 10
# may not exist yet: those are 404s, also a full read).
# Needs: wrk, redis-server, redis-benchmark (apt-get install -y wrk redis-server redis-tools).
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-20000}
EVENTS=${EVENTS:-200000}
RATE=${RATE:-10000}
DURATION=${DURATION:-10}
TLS=0
for arg in "$@"; do
  case "$arg" in
    --tls) TLS=1 ;;
    *) echo "unknown option $arg (only --tls)" >&2; exit 2 ;;
  esac
done

for tool in wrk redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y wrk redis-server redis-tools)" >&2; exit 2; }
done

# shellcheck source=Benchmarks/lib.sh
. Benchmarks/lib.sh
bench_setup serve-bench

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" &
PIDS+=($!)
export EDDY_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done

# Fill Redis through the worker.
"$EDDY" dev broker --topology clickstream --partitions 4 --bootstrap-file "$WORK/bootstrap" >"$WORK/broker.log" 2>&1 &
PIDS+=($!)
until [ -s "$WORK/bootstrap" ]; do sleep 0.1; done
BROKERS=$(head -1 "$WORK/bootstrap")
METRICS_PORT=$(free_port)
"$EDDY" run clickstream --brokers "$BROKERS" --http "127.0.0.1:$METRICS_PORT" --stats-interval 0 >"$WORK/run.log" 2>&1 &
RUN_PID=$!
PIDS+=($RUN_PID)
"$EDDY" dev produce --topology clickstream --brokers "$BROKERS" --generate "$EVENTS" --users "$USERS" >&2
echo "waiting for the worker to write $EVENTS events..." >&2
for _ in $(seq 1 600); do
  applied=$(curl -s "127.0.0.1:$METRICS_PORT/metrics" | awk '/^eddy_worker_events_consumed_total/ {print $2}')
  [ "${applied:-0}" -ge "$EVENTS" ] && break
  sleep 0.2
done
sleep 1  # the last flushes (5 ms apart)
curl -s "127.0.0.1:$METRICS_PORT/metrics" | grep -E '^eddy_worker_(events_consumed|events_applied|entities_written)_total|^eddy_worker_flush_duration_seconds_count' >&2 || true
kill -TERM "$RUN_PID"
for _ in $(seq 1 50); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.2; done
kill -KILL "$RUN_PID" 2>/dev/null && echo "(the worker ignored SIGTERM; killed)" >&2 || true
wait "$RUN_PID" 2>/dev/null || true
ENTITIES=$(redis-cli -p "$REDIS_PORT" dbsize)
echo "Redis holds $ENTITIES keys" >&2

HTTP_PORT=$(free_port)
SCHEME=http
TLS_ARGS=()
CURL_TLS=()
if [ "$TLS" = 1 ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/tls.key" -out "$WORK/tls.crt" -days 2 \
    -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null
  SCHEME=https
  TLS_ARGS=(--tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key")
  CURL_TLS=(--cacert "$WORK/tls.crt")
  echo "serving HTTPS (TLS through swift-nio-ssl)" >&2
fi
URL="$SCHEME://127.0.0.1:$HTTP_PORT"
"$EDDY" serve --topology clickstream --listen "127.0.0.1:$HTTP_PORT" --log-level warning "${TLS_ARGS[@]}" ${SERVE_ARGS:-} >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
PIDS+=($SERVE_PID)
until curl -sf "${CURL_TLS[@]}" "$URL/readyz" >/dev/null; do sleep 0.1; done
FIRST_KEY=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'clickstream:*' | head -1 || true)
curl -s "${CURL_TLS[@]}" "$URL/v1/features/clickstream/${FIRST_KEY#clickstream:}" >/dev/null  # installs the library

cat >"$WORK/get.lua" <<EOF
local users = $USERS
local delayMs = tonumber(os.getenv("DELAY_MS") or "0")
math.randomseed(42)
request = function()
  return wrk.format("GET", string.format("/v1/features/clickstream/u%07d", math.random(0, users - 1)))
end
if delayMs > 0 then
  delay = function() return delayMs end
end
EOF

echo
echo "== redis-benchmark -n 100000 -c 16 -P 1 (baseline, same Redis)"
redis-benchmark -p "$REDIS_PORT" -n 100000 -c 16 -P 1 --csv -t ping_mbulk,get | tee "$WORK/redis.csv"
redis-benchmark -p "$REDIS_PORT" -n 100000 -c 16 -P 1 --csv \
  FCALL eddy_clickstream_features 1 "$FIRST_KEY" | sed 's/^"FCALL[^"]*"/"FCALL eddy_clickstream_features"/' | tail -1 | tee -a "$WORK/redis.csv"

echo
echo "== wrk -t1 -c16 -d${DURATION}s --latency (saturated)"
wrk -t1 -c16 -d"${DURATION}s" --latency -s "$WORK/get.lua" "$URL" | tee "$WORK/wrk-sat.txt"

rps_of() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
# The server's CPU time (clock ticks) and context switches, all threads, from /proc:
# per request, these do not depend on the machine's load the way latency does.
serve_usage() {
  local ticks=0 switches=0 task
  for task in /proc/"$SERVE_PID"/task/*; do
    ticks=$((ticks + $(awk '{print $14 + $15}' "$task/stat")))
    switches=$((switches + $(awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {n += $2} END {print n}' "$task/status")))
  done
  echo "$ticks $switches"
}

# 3. The fewest connections that reach RATE without pauses (at most 32).
CLOSED=1
while :; do
  wrk -t1 -c"$CLOSED" -d2s -s "$WORK/get.lua" "$URL" >"$WORK/wrk-trial.txt"
  awk -v got="$(rps_of "$WORK/wrk-trial.txt")" -v r="$RATE" 'BEGIN { exit !(got >= r) }' && break
  [ "$CLOSED" -ge 32 ] && break
  CLOSED=$((CLOSED + 1))
done
echo
echo "== redis-benchmark -c $CLOSED: the same FCALL at the same concurrency (baseline for run 3)"
redis-benchmark -p "$REDIS_PORT" -n 100000 -c "$CLOSED" -P 1 --csv \
  FCALL eddy_clickstream_features 1 "$FIRST_KEY" | sed "s/^\"FCALL[^\"]*\"/\"FCALL eddy_clickstream_features c$CLOSED\"/" | tail -1 | tee -a "$WORK/redis.csv"
echo
echo "== wrk -t1 -c$CLOSED -d${DURATION}s --latency (the fewest connections reaching $RATE req/s)"
serve_usage >"$WORK/usage-closed-before"
wrk -t1 -c"$CLOSED" -d"${DURATION}s" --latency -s "$WORK/get.lua" "$URL" | tee "$WORK/wrk-closed.txt"
serve_usage >"$WORK/usage-closed-after"

# 4. Connections for ~RATE req/s with a 1 ms pause per request (rate = c / (pause + latency)):
# start from RATE/1000 and correct twice from 3-second trial runs.
CONNS=$(( RATE / 1000 > 0 ? RATE / 1000 : 1 ))
for _ in 1 2; do
  DELAY_MS=1 wrk -t1 -c"$CONNS" -d3s -s "$WORK/get.lua" "$URL" >"$WORK/wrk-trial.txt"
  CONNS=$(awk -v c="$CONNS" -v r="$RATE" -v got="$(rps_of "$WORK/wrk-trial.txt")" 'BEGIN { n = int(c * r / got + 0.5); print (n < 1 ? 1 : n) }')
done
echo
echo "== wrk -t1 -c$CONNS -d${DURATION}s --latency, 1 ms pause per request (target ~$RATE req/s)"
serve_usage >"$WORK/usage-paced-before"
DELAY_MS=1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/get.lua" "$URL" | tee "$WORK/wrk-paced.txt"
serve_usage >"$WORK/usage-paced-after"
echo "$(getconf CLK_TCK) $(cat /proc/loadavg | cut -d' ' -f1-3)" >"$WORK/machine"

echo
echo "== summary"
python3 - "$WORK" <<'EOF'
import csv, re, sys
work = sys.argv[1]
rows = {r[0]: r for r in csv.reader(open(f"{work}/redis.csv")) if r and r[0] != "test"}
def wrk(path):
    text = open(path).read()
    def ms(v):
        n = float(re.match(r"[\d.]+", v).group())
        return n / 1000 if v.endswith("us") else n * 1000 if v.endswith("s") and not v.endswith("ms") else n
    pct = {p: ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rps, pct, int(non2xx.group(1)) if non2xx else 0
for name, r in rows.items():
    print(f"redis-benchmark {name:32s} {float(r[1]):>10,.0f} req/s  p50 {float(r[4]):.3f} ms  p99 {float(r[6]):.3f} ms")
fcall = rows.get("FCALL eddy_clickstream_features")
fcall_same = next((r for n, r in rows.items() if re.fullmatch(r"FCALL eddy_clickstream_features c\d+", n)), None)
for label, path in [("HTTP GET saturated (c16)", "wrk-sat.txt"), ("HTTP GET at the rate (fewest connections)", "wrk-closed.txt"),
                    ("HTTP GET paced (1 ms pauses, bursty)", "wrk-paced.txt")]:
    rps, pct, non2xx = wrk(f"{work}/{path}")
    line = f"{label:48s} {rps:>10,.0f} req/s  p50 {pct['50']:.3f} ms  p99 {pct['99']:.3f} ms  ({non2xx} 404s)"
    print(line)
    if fcall:
        print(f"  ratio to redis-benchmark FCALL c16: throughput {rps / float(fcall[1]):.2f}x, p99 {pct['99'] / float(fcall[6]):.2f}x")
    if fcall_same and path == "wrk-closed.txt":
        print(f"  ratio to redis-benchmark FCALL at the same concurrency: p50 {pct['50'] / float(fcall_same[4]):.2f}x, p99 {pct['99'] / float(fcall_same[6]):.2f}x")
hz, *load = open(f"{work}/machine").read().split()
for label, run in [("at the rate", "closed"), ("paced", "paced")]:
    t0, s0 = map(int, open(f"{work}/usage-{run}-before").read().split())
    t1, s1 = map(int, open(f"{work}/usage-{run}-after").read().split())
    n = int(re.search(r"(\d+) requests in", open(f"{work}/wrk-{run}.txt").read()).group(1))
    print(f"eddy serve per request, {label}: {(t1 - t0) / int(hz) / n * 1e6:.0f} us CPU, {(s1 - s0) / n:.2f} context switches")
print(f"load average {' '.join(load)}")
EOF
