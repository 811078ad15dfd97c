#!/bin/bash
# Redis instructions per FCALL read of a topology (load-independent):
# redis-server under `valgrind --tool=callgrind`, collecting only inside
# `fcallCommand`, while `eddy bench replay --redis` writes the final state of
# EVENTS events over KEYS keys and then reads every key N times in turn
# through the Function at the last event time. Prints the instructions per
# read. Usage:
#   PORT=6397 Benchmarks/fcall-instructions.sh Topologies/fraud.yaml 6000
#   Benchmarks/fcall-instructions.sh clickstream 6000
# (EVENTS 300000 and KEYS 3000 by default: 100 events per key.)
set -euo pipefail
E=${EDDY:-$(dirname "$0")/../.build/release/eddy}
topo=$1; n=$2; port=${PORT:-6397}
out=$(mktemp "${TMPDIR:-/tmp}/eddy-fcall.XXXXXX")
valgrind --tool=callgrind --toggle-collect=fcallCommand --callgrind-out-file="$out" \
  redis-server --port "$port" --save "" --appendonly no --hash-max-listpack-value 1024 >/dev/null 2>&1 &
vpid=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.3; done
"$E" bench replay --topology "$topo" --events "${EVENTS:-300000}" --users "${KEYS:-3000}" --repeats 1 \
  --reads "$n" --redis "redis://127.0.0.1:$port" --json >/dev/null
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
wait "$vpid" || true
total=$(awk '/^summary:/ {print $2}' "$out")
echo "$topo: $((total / n)) Redis instructions per FCALL read ($n reads)"
rm -f "$out"
