#!/bin/sh
# /usr/local/bin/eddy in the image: runs the real binary, adding
# `--http "$EDDY_HTTP"` to `eddy run` unless the arguments already give --http
# (EDDY_HTTP empty: no HTTP listener). Everything else passes through unchanged.
set -eu
EDDY_BIN=${EDDY_BIN:-/usr/local/libexec/eddy/eddy}
if [ "${1:-}" = run ] && [ -n "${EDDY_HTTP:-}" ]; then
  for arg in "$@"; do
    case "$arg" in --http|--http=*) exec "$EDDY_BIN" "$@" ;; esac
  done
  shift
  exec "$EDDY_BIN" run --http "$EDDY_HTTP" "$@"
fi
exec "$EDDY_BIN" "$@"
