#!/usr/bin/env bash
# What one entity write costs inside Redis, for several ways of writing it:
# instructions counted by callgrind (reproducible on a noisy machine) while
# redis-cli --pipe feeds N new clickstream-sized entities (a 180-byte state
# blob and the point fields of the full layout; 3 fields for lean).
#
#   Benchmarks/write-variants.sh [N]      # N = 20000 by default
#
# Variants: cur (the fenced script FencedBatchWrite, read from
# Sources/EddyStore/EntityLayout.swift, 32 entities per call,
# HGET of the offset then HSET then PEXPIRE), epoch (the same script with no
# per-entity HGET: one check per call), lean (cur with sink.layout: lean's
# fields), multi (WATCH/GET then MULTI of plain HSET + PEXPIRE, 256 per
# transaction), multilean, hset (plain pipelined HSET + PEXPIRE, no fence),
# hsetnoexp, set (a single string per entity with PX: the floor).
# Needs: redis-server, redis-cli, valgrind, python3.
set -euo pipefail
N=${1:-20000}
WORK=$(mktemp -d /tmp/eddy-write-variants.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/gen.py" <<'PY'
import sys, random, hashlib
variant, n, out = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], 'wb')
random.seed(7)
def resp(args):
    b = [b'*%d\r\n' % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        b.append(b'$%d\r\n%s\r\n' % (len(a), a))
    return b''.join(b)
# The worker's script itself, read from its one definition (FencedBatchWrite).
import re, textwrap
layout = open(sys.argv[4]).read()
FENCED = textwrap.dedent(re.search(r'enum FencedBatchWrite \{\s*public static let source = """\n(.*?)"""', layout, re.S).group(1)).strip()
EPOCH = """local expiry = ARGV[1]
local i = 3
local written = 0
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return -1 end
for k = 2, #KEYS do
  local key = KEYS[k]
  local n = tonumber(ARGV[i + 3])
  redis.call('HSET', key, '_o:' .. ARGV[i], ARGV[i + 1], unpack(ARGV, i + 4, i + 3 + 2 * n))
  if ARGV[i + 2] == '1' then redis.call('PEXPIRE', key, expiry) end
  written = written + 1
  i = i + 4 + 2 * n
end
return written"""
def fields(lean):
    f = [b'_state', bytes(random.getrandbits(8) for _ in range(180)), b'_fp', b'8a7c2d9e11f0a3b4']
    if lean: return f
    return f + [b'_K', b'1796595799656', b'last_items', b'["item_123456","item_99"]',
                b'session_start', b'1796595799000', b'session_last', b'1796595799656',
                b'session_events', b'2', b'session_duration', b'656']
key = lambda k: b'clickstream:u%08d' % k
if variant == 'set':
    for k in range(n): out.write(resp([b'SET', key(k), bytes(random.getrandbits(8) for _ in range(300)), b'PX', b'605000000']))
elif variant in ('hset', 'hsetnoexp'):
    for k in range(n):
        out.write(resp([b'HSET', key(k), b'_o:clickstream:3', b'%d' % k] + fields(False)))
        if variant == 'hset': out.write(resp([b'PEXPIRE', key(k), b'605000000']))
elif variant in ('multi', 'multilean'):
    for c in range(0, n, 256):
        out.write(resp([b'WATCH', b'clickstream:_fence:clickstream:3']) + resp([b'GET', b'clickstream:_fence:clickstream:3']) + resp([b'MULTI']))
        for k in range(c, min(c + 256, n)):
            out.write(resp([b'HSET', key(k), b'_o:clickstream:3', b'%d' % k] + fields(variant == 'multilean')))
            out.write(resp([b'PEXPIRE', key(k), b'605000000']))
        out.write(resp([b'EXEC']))
else:
    script = EPOCH if variant == 'epoch' else FENCED
    sha = hashlib.sha1(script.encode()).hexdigest().encode()
    out.write(resp([b'SCRIPT', b'LOAD', script.encode()]))
    if variant == 'epoch': out.write(resp([b'SET', b'clickstream:_fence:clickstream:3', b'7']))
    for c in range(0, n, 32):
        keys = [key(k) for k in range(c, min(c + 32, n))]
        args = [b'605000000'] + ([b'7'] if variant == 'epoch' else [])
        for k in keys:
            fl = fields(variant == 'lean')
            args += [b'clickstream:3', b'%d' % c, b'1', b'%d' % (len(fl) // 2)] + fl
        ks = ([b'clickstream:_fence:clickstream:3'] if variant == 'epoch' else []) + keys
        out.write(resp([b'EVALSHA', sha, b'%d' % len(ks)] + ks + args))
PY
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '*1\r\n$4\r\nPING\r\n' >"$WORK/empty.resp"
count() {  # instructions redis-server runs for one input file
  rm -f "$WORK"/cg.out.*
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out.%p" redis-server --port "$PORT" --save '' \
    --appendonly no --hash-max-listpack-value 1024 >/dev/null 2>&1 &
  local pid=$!
  until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.2; done
  redis-cli -p "$PORT" --pipe <"$1" >/dev/null
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" || true
  grep -h '^summary\|^totals' "$WORK"/cg.out.* | awk '{print $2}' | head -1
}
base=$(count "$WORK/empty.resp")
echo "instructions in redis-server per entity write ($N new entities; start-up and shutdown subtracted):"
for v in cur epoch lean multi multilean hset hsetnoexp set; do
  python3 "$WORK/gen.py" "$v" "$N" "$WORK/$v.resp" "$(dirname "$0")/../Sources/EddyStore/EntityLayout.swift"
  total=$(count "$WORK/$v.resp")
  printf '  %-10s %6d\n' "$v" $(( (total - base) / N ))
done
