#!/usr/bin/env bash
# Compares two eddy builds on one benchmark, alternating them so that the
# machine's drift over minutes falls on both alike:
#
#   Benchmarks/ab.sh OLD_EDDY NEW_EDDY ROUNDS METRICS -- bench replay --events 1000000
#
# Runs `OLD bench ...` and `NEW bench ...` ROUNDS times each (old, new, old,
# new, ...) with --json, reads METRICS (comma-separated top-level numbers of
# the JSON, e.g. events_per_cpu_s,events_per_s) from each, and prints every
# run, both medians and new/old per metric. Build each binary first, e.g.
# `swift build -c release` in two worktrees.
set -euo pipefail
[ $# -ge 6 ] && [ "$5" == "--" ] || { sed -n 2,11p "$0" >&2; exit 2; }
old=$1 new=$2 rounds=$3 metrics=$4
shift 5
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
for ((i = 1; i <= rounds; i++)); do
  for side in old new; do
    bin=$old; [ "$side" == new ] && bin=$new
    line=$("$bin" "$@" --json 2>/dev/null | tail -1)
    for metric in ${metrics//,/ }; do
      value=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$line" "$metric")
      echo "round $i $side $metric $value"
      echo "$side $metric $value" >>"$runs"
    done
  done
done
python3 - "$runs" <<'EOF'
import statistics, sys
values = {}
for line in open(sys.argv[1]):
    side, metric, value = line.split()
    values.setdefault(metric, {"old": [], "new": []})[side].append(float(value))
spread = lambda v: (max(v) - min(v)) / statistics.median(v) * 100
for metric, v in values.items():
    old, new = statistics.median(v["old"]), statistics.median(v["new"])
    print(f"{metric}: old median {old:.6g} (spread {spread(v['old']):.1f}%), "
          f"new median {new:.6g} (spread {spread(v['new']):.1f}%), new/old {new / old:.3f}")
EOF
