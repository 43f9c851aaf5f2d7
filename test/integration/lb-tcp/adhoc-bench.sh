#!/bin/bash
# Ad-hoc TCP forwarding cost, until bench/ gets a tcp harness (not part of the test suite):
#   wrk -t1 -c64 → (direct | haproxy `mode tcp` | scaleout TcpListener) → nginx (1 worker, 4 ports).
# The proxy is pinned to CPU 1, wrk and nginx to CPU 0; proxy CPU per request comes from
# /proc/PID/stat (utime+stime). "keepalive" = many small requests per connection (forwarding cost);
# "close" = one request per connection (accept + connect + teardown cost). Needs nginx, haproxy, wrk.
# Run from the project root: flock /tmp/scaleout-bench.lock test/integration/lb-tcp/adhoc-bench.sh
set -u
ROOT=$PWD
W=$(mktemp -d /tmp/scaleout-tcpbench-XXXXXX)
mkdir -p "$W/tmp"
cat >"$W/nginx.conf" <<CONF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/tmp/body; proxy_temp_path $W/tmp/proxy;
  fastcgi_temp_path $W/tmp/fcgi; uwsgi_temp_path $W/tmp/uwsgi; scgi_temp_path $W/tmp/scgi;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:19101; listen 127.0.0.1:19102; listen 127.0.0.1:19103; listen 127.0.0.1:19104;
    location / { return 200 "ok\n"; } }
}
CONF
cat >"$W/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 8000
defaults
  mode tcp
  timeout connect 3s
  timeout client 350s
  timeout server 350s
frontend fe
  bind 127.0.0.1:19080
  default_backend be
backend be
  balance roundrobin
  server s1 127.0.0.1:19101
  server s2 127.0.0.1:19102
  server s3 127.0.0.1:19103
  server s4 127.0.0.1:19104
CONF
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
TICK=$(getconf CLK_TCK)
measure() { # name port pid mode
  local name=$1 port=$2 pid=$3 mode=$4 hdr=()
  [ "$mode" = close ] && hdr=(-H 'Connection: close')
  taskset -c 0 wrk -t1 -c64 -d2s "${hdr[@]}" http://127.0.0.1:$port/ >/dev/null 2>&1 # warm-up
  local c0=0; [ "$pid" != - ] && c0=$(cpu $pid)
  local out; out=$(taskset -c 0 wrk -t1 -c64 -d6s "${hdr[@]}" http://127.0.0.1:$port/ 2>&1)
  local c1=0; [ "$pid" != - ] && c1=$(cpu $pid)
  local reqs rps lat us=-
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  lat=$(echo "$out" | awk '/Latency/ {print $2}')
  [ "$pid" != - ] && us=$(awk -v d=$((c1 - c0)) -v t=$TICK -v r=$reqs 'BEGIN{printf "%.1f", d/t*1e6/r}')
  echo "| $name | $mode | $rps | $lat | $us |"
}
taskset -c 0 nginx -p "$W/" -c "$W/nginx.conf" -g 'daemon off;' &
NGX=$!
taskset -c 1 haproxy -f "$W/haproxy.cfg" -db >/dev/null 2>&1 &
HAP=$!
SCALEOUT_LOG_LEVEL=warn taskset -c 1 node --import tsx "$ROOT/test/integration/lb-tcp/standalone.ts" \
  --listen 127.0.0.1:19081 --target 127.0.0.1:19101 --target 127.0.0.1:19102 \
  --target 127.0.0.1:19103 --target 127.0.0.1:19104 &
OURS=$!
trap 'kill $OURS $HAP 2>/dev/null; kill -QUIT $NGX 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
sleep 2
echo "| path | connections | rps | avg latency | proxy CPU µs/req |"
echo "|---|---|--:|--:|--:|"
for mode in keepalive close; do
  measure direct 19101 - $mode
  measure haproxy-tcp 19080 $HAP $mode
  measure scaleout-tcp 19081 $OURS $mode
done
