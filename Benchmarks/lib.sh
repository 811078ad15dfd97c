# Shared by the benchmark scripts (source it after `cd` to the repository):
#   bench_setup NAME   WORK (a temporary directory) and PIDS (processes to
#                      stop), both cleaned up on exit; EDDY (the release
#                      binary, built unless EDDY is set)
#   free_port          a free loopback TCP port

bench_setup() {
  WORK=$(mktemp -d "/tmp/eddy-$1.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
  if [ -z "${EDDY:-}" ]; then
    swift build -c release --product eddy >&2
    EDDY=$(swift build -c release --show-bin-path)/eddy
  fi
}

bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # KEEP_WORK=1 keeps the folder (events, Redis's AOF) to look at afterwards.
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
