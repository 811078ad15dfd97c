#!/usr/bin/env bash
# The full-size benchmarks (not part of CI). Each reports its result against a
# baseline measured in the same run on the same machine.
#   replay:        1M clickstream events, 100k users, one core, vs line split and Foundation JSON
#   replay-kafka:  1M events from the mock broker, vs a bare consume loop
#   worker:        1M events preloaded in 32 partitions, vs a bare consume loop; freshness at 50k/s
#   serve:         HTTP reads vs redis-benchmark round trips (Benchmarks/serve.sh)
#   freshness:     a worker in its own process at a steady rate, any Kafka (Benchmarks/freshness.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product eddy
EDDY=.build/release/eddy
which="${1:-all}"
if [[ $which == all || $which == replay ]]; then $EDDY bench replay; fi
if [[ $which == all || $which == replay-kafka ]]; then $EDDY bench replay-kafka; fi
if [[ $which == all || $which == worker ]]; then $EDDY bench worker --steady-seconds "${STEADY_SECONDS:-20}"; fi
if [[ $which == all || $which == serve ]]; then EDDY=$EDDY Benchmarks/serve.sh; fi
if [[ $which == all || $which == freshness ]]; then EDDY=$EDDY Benchmarks/freshness.sh; fi
