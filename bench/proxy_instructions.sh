#!/usr/bin/env bash
# The gateway's CPU work per HTTP/1.1 request, counted rather than timed, so a machine shared with
# other work gives the same figures run after run (bench/proxy.sh's wall-clock figures need a quiet
# machine; this needs none, and no hardware counters):
# - instructions: the release binary runs as users run it (`sandbox up` of a manifest whose one
#   service is `external:`, an nginx on this host answering a 100-byte 200; one data-plane worker;
#   tracing at RATE) under valgrind (cachegrind without cache simulation: every user-space
#   instruction of every thread); h2load sends N requests over CONNECTIONS keep-alive
#   connections to one run and 2N to another, and (count(2N) − count(N)) / N is the cost of one
#   request with the fixed costs (start, manifest, shutdown, connections) cancelled out;
# - system calls: the same gateway without valgrind, counted by perf's syscall tracepoints (not
#   strace: its slow-down hides the reads that find nothing) for N requests over
#   SYSCALL_CONNECTIONS connections (bench/proxy.sh's wrk uses 32), each call's count / N. The
#   floor (bytes forwarded, bench/forward_floor.rs) needs about four: a read and a write on each
#   side. Needs tracefs (`mount -t tracefs nodev /sys/kernel/tracing` if perf finds no events).
# Usage: bench/proxy_instructions.sh [N]   (default 20000)
#   RATE=1.0 counts the traced gateway (every request sampled into the store);
#   SANDBOX_BIN=path counts another build (a baseline) instead of building this one;
#   PARTS="instructions" or PARTS="syscalls" runs one part.
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-20000}"
RATE="${RATE:-0.0}"
CONNECTIONS="${CONNECTIONS:-4}"
SYSCALL_CONNECTIONS="${SYSCALL_CONNECTIONS:-32}"
PARTS="${PARTS:-instructions syscalls}"
UP_PORT="${UP_PORT:-18180}"
PORT="${PORT:-18183}"
if [ -z "${SANDBOX_BIN:-}" ]; then
  cargo build --release --quiet --bin sandbox
fi
sandbox="$(realpath "${SANDBOX_BIN:-target/release/sandbox}")"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in valgrind perf h2load "$NGINX"; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install valgrind linux-perf nghttp2-client nginx-light)" >&2; exit 1; }
done
work="$(mktemp -d /tmp/sandbox-proxy-instructions.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
part() { [[ " $PARTS " == *" $1 "* ]]; }
wait_port() {
  for _ in $(seq 600); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 did not open" >&2
  return 1
}

body=$(printf 'x%.0s' $(seq 1 100))
mkdir -p "$work/up" "$work/project"
cat >"$work/up/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $work/up/nginx.pid; error_log $work/up/error.log;
events { worker_connections 4096; }
http { access_log off;
  server { listen 127.0.0.1:$UP_PORT; keepalive_requests 10000000;
    location / { default_type text/plain; return 200 "$body"; } } }
CONF
"$NGINX" -p "$work/up" -c "$work/up/nginx.conf" &
pids+=($!)
cat >"$work/project/sandbox.yaml" <<CONF
name: sandbox-proxy-instructions
services:
  up:
    external: http://127.0.0.1:$UP_PORT
gateway:
  port: $PORT
  workers: 1
  routes:
    - match: {prefix: /}
      service: up
tracing: {sample_rate: $RATE}
CONF
wait_port "$UP_PORT"

# load N: N requests through the gateway; fails unless every one got a 2xx.
load() {
  local out
  out=$(h2load --h1 -n "$1" -c "$2" "http://127.0.0.1:$PORT/")
  grep -qE "^status codes: $1 2xx" <<<"$out" || { echo "h2load: $(grep -E '^(requests|status codes):' <<<"$out" | tr '\n' ' ')" >&2; return 1; }
}

# up [runner...]: `sandbox up` in the foreground under runner; sets GATEWAY to its pid.
up() {
  (cd "$work/project" && SANDBOX_LOG=warn exec "$@" "$sandbox" up >"$work/up.log" 2>&1) &
  GATEWAY=$!
  wait_port "$PORT"
  # One request first: the route, the upstream connection and the gateway's lazy state.
  load 1 1
}
down() {
  kill -INT "$GATEWAY"
  wait "$GATEWAY" 2>/dev/null || true
}

count() {
  up valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null
  load "$1" "$CONNECTIONS"
  down
  grep -E 'I *refs' "$work/up.log" | tr -d , | awk '{print $NF}'
}

if part instructions; then
  one="$(count "$requests")"
  two="$(count $((requests * 2)))"
  echo "instructions: $requests requests: $one; $((requests * 2)) requests: $two"
  echo "instructions per request (sample_rate $RATE, $CONNECTIONS connections): $(((two - one) / requests))"
fi

if part syscalls; then
  up
  load 2000 "$SYSCALL_CONNECTIONS"
  # perf's tracepoint counters (no ptrace: strace's slow-down hides the reads that find nothing).
  events=(-e raw_syscalls:sys_enter)
  for call in recvfrom sendto epoll_wait read write writev readv setsockopt futex; do
    events+=(-e "syscalls:sys_enter_$call")
  done
  events+=(-e syscalls:sys_exit_recvfrom --filter 'ret == -11')
  perf stat -x, -o "$work/perf" "${events[@]}" -p "$GATEWAY" &
  tracer=$!
  sleep 1
  load "$requests" "$SYSCALL_CONNECTIONS"
  kill -INT "$tracer"
  wait "$tracer" 2>/dev/null || true
  down
  echo "system calls per request (sample_rate $RATE, $SYSCALL_CONNECTIONS connections, all threads):"
  awk -F, -v n="$requests" '$1 ~ /^[0-9]+$/ {
      name = $3; sub(/^raw_syscalls:sys_enter$/, "all", name); sub(/^syscalls:sys_enter_/, "", name)
      sub(/^syscalls:sys_exit_recvfrom$/, "recvfrom EAGAIN", name)
      printf "  %-16s %8.3f\n", name, $1 / n }' "$work/perf"
fi
