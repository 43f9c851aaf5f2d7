#!/usr/bin/env bash
# How fast can `scaleout load` itself go on this box? One nginx worker serves a tiny 200 (far faster
# than the generator); the generator runs at rising fixed rates for DURATION each, and we record what
# it achieved, how late it ever was against its own schedule (maxSendLagMs), the latency it measured
# and its CPU time per request. Each run holds the box-wide benchmark lock.
# Usage: bash bench/loadgen/run.sh [DURATION=10s] [RATES="1000 2000 4000 8000"]
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10s}
RATES=${2:-"1000 2000 4000 8000"}
DIR=$(mktemp -d /tmp/scaleout-bench-loadgen.XXXXXX)
PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
cat >"$DIR/nginx.conf" <<CONF
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
worker_processes 1;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $DIR/cb; proxy_temp_path $DIR/px; fastcgi_temp_path $DIR/fc; uwsgi_temp_path $DIR/uw; scgi_temp_path $DIR/sc;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$PORT;
    location / { add_header X-Scaleout-Instance nginx always; return 200 "ok\n"; }
  }
}
CONF
taskset -c 1 nginx -c "$DIR/nginx.conf"   # the target on CPU 1, the generator on CPU 0
trap 'kill $(cat "$DIR/nginx.pid") 2>/dev/null; rm -rf "$DIR"' EXIT
echo "$(date -u +%FT%TZ) commit $(git rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg), $DURATION per rate"
printf '%-8s %-10s %-12s %-9s %-9s %-9s %-10s %s\n' rate achieved max-lag-ms p50-ms p99-ms max-ms failed cpu-us/req
for RATE in $RATES; do
  flock /tmp/scaleout-bench.lock taskset -c 0 /usr/bin/time -f '%U %S' -o "$DIR/time" \
    node dist/cli.js load "http://127.0.0.1:$PORT/" --rate "$RATE" --duration "$DURATION" --json "$DIR/r.json" >/dev/null
  node bench/loadgen/row.mjs "$DIR/r.json" "$DIR/time"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
