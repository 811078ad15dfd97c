#!/bin/bash
# Redis instructions per FCALL read of a topology: redis-server under
# callgrind, `eddy bench replay --redis` with --reads 0 and with --reads N;
# (difference) / N. Usage: PORT=6397 Benchmarks/fcall-instructions.sh TOPOLOGY N

E=${EDDY:-$(dirname "$0")/../.build/release/eddy}
topo=$1; n=$2
for reads in 0 $n; do
  out=${TMPDIR:-/tmp}/eddy-cgr.$(basename $topo .yaml).$reads
  rm -f $out
  valgrind --tool=callgrind --callgrind-out-file=$out redis-server --port ${PORT:-6397} --save "" --appendonly no --hash-max-listpack-value 1024 > /dev/null 2>&1 &
  vpid=$!
  for i in $(seq 50); do redis-cli -p ${PORT:-6397} ping >/dev/null 2>&1 && break; sleep 0.5; done
  $E bench replay --topology $topo --events 300000 --users 3000 --repeats 1 --reads $reads --redis redis://127.0.0.1:${PORT:-6397} --json > /dev/null 2>&1
  redis-cli -p ${PORT:-6397} shutdown nosave >/dev/null 2>&1
  wait $vpid
  echo "$topo reads=$reads $(grep -E '^summary|^totals' $out)"
done
base=$(grep -E '^summary' ${TMPDIR:-/tmp}/eddy-cgr.$(basename $topo .yaml).0 | awk '{print $2}')
with=$(grep -E '^summary' ${TMPDIR:-/tmp}/eddy-cgr.$(basename $topo .yaml).$n | awk '{print $2}')
echo "$topo: $(( (with - base) / n )) instructions per FCALL read"
