#!/bin/bash
# Container HEALTHCHECK: GET /healthz on 127.0.0.1 at the port of EDDY_HTTP
# (HOST:PORT, default 0.0.0.0:9100), or EDDY_HEALTH_PORT when set (8080 for
# `eddy serve`); EDDY_HEALTH_PATH overrides the path. Exit 0 only on HTTP 2xx.
# Uses bash's /dev/tcp, so the image needs no curl or wget.
set -u
http=${EDDY_HTTP:-0.0.0.0:9100}
port=${EDDY_HEALTH_PORT:-${http##*:}}
path=${EDDY_HEALTH_PATH:-/healthz}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 2 status <&3 || exit 1
case "$status" in
  "HTTP/1."[01]" 2"*) exit 0 ;;
  *) echo "unhealthy: $path on port $port answered: ${status%$'\r'}"; exit 1 ;;
esac
