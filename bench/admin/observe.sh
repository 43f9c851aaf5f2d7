#!/usr/bin/env bash
# What the metrics and the access log cost per request: the same LB (one core, CPU 1) with nothing,
# metrics only, the access log only, and both, in front of two nginx targets; wrk on CPU 0.
# Reports requests/s and LB CPU µs per request (utime+stime from /proc, all threads), median of ROUNDS.
# Usage: npm run build && bash bench/admin/observe.sh   (ROUNDS=3 DURATION=5 CONNS=64)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-64}
VARIANTS=${VARIANTS:-"none metrics log-file both-file both-stdout"}
LB_PORT=8190
TMP=$(mktemp -d)
NGINX_PID=""
LB_PID=""
cleanup() {
  [[ -n "$LB_PID" ]] && kill "$LB_PID" 2>/dev/null || true
  [[ -n "$NGINX_PID" ]] && kill "$NGINX_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

cat >"$TMP/nginx.conf" <<CONF
pid $TMP/nginx.pid; error_log $TMP/error.log warn; worker_processes 1; daemon off;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 120s;
  client_body_temp_path $TMP/cb; proxy_temp_path $TMP/p; fastcgi_temp_path $TMP/f; uwsgi_temp_path $TMP/u; scgi_temp_path $TMP/s;
  server { listen 127.0.0.1:9191; location / { return 200 "ok\n"; } }
  server { listen 127.0.0.1:9192; location / { return 200 "ok\n"; } }
}
CONF
taskset -c 0 nginx -p "$TMP/" -c "$TMP/nginx.conf" &
NGINX_PID=$!
sleep 0.5

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK=$(getconf CLK_TCK)

echo "variant rps cpu_us_per_req" >"$TMP/results"
for round in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    taskset -c 1 node bench/admin/lb-child.mjs "$v" "$LB_PORT" 127.0.0.1:9191,127.0.0.1:9192 "$TMP" \
      >/dev/null 2>"$TMP/lb-$round-$v.err" &
    LB_PID=$!
    for _ in $(seq 300); do grep -q ready "$TMP/lb-$round-$v.err" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$TMP/lb-$round-$v.err" || { echo "LB ($v) did not start:"; cat "$TMP/lb-$round-$v.err"; exit 1; }
    taskset -c 0 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$LB_PORT/" >/dev/null
    out=$(flock /tmp/scaleout-bench.lock bash -c "
      before=\$(awk '{print \$14 + \$15}' /proc/$LB_PID/stat)
      taskset -c 0 wrk -t1 -c$CONNS -d${DURATION}s http://127.0.0.1:$LB_PORT/
      after=\$(awk '{print \$14 + \$15}' /proc/$LB_PID/stat)
      echo TICKS \$((after - before))")
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    t=$(echo "$out" | awk '/TICKS/ {print $2}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    errs=$(echo "$out" | grep -E "Non-2xx|Socket errors" || true)
    cpu=$(awk -v t="$t" -v r="$reqs" -v c="$CLK" 'BEGIN { printf "%.1f", t / c * 1e6 / r }')
    echo "round $round $v: $rps req/s, $cpu µs CPU/request ${errs:+($errs)}"
    echo "$v $rps $cpu" >>"$TMP/results"
    kill "$LB_PID"
    wait "$LB_PID" 2>/dev/null || true
    LB_PID=""
  done
done
echo
echo "| variant | req/s (median) | LB CPU µs/request (median) |"
echo "|---|---|---|"
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
for v in $VARIANTS; do
  rps=$(awk -v v="$v" '$1 == v { print $2 }' "$TMP/results" | median)
  cpu=$(awk -v v="$v" '$1 == v { print $3 }' "$TMP/results" | median)
  printf '| %s | %.0f | %s |\n' "$v" "$rps" "$cpu"
done
