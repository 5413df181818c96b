#!/usr/bin/env bash
# Instructions per ingested span, counted rather than timed, so a machine shared with other work
# gives the same figure run after run: the release server (`sandbox zipkin`) runs under valgrind
# (cachegrind without cache simulation: every user-space instruction of every thread), the load
# tool (`bench/otlp_load.rs --ingest-only`) sends N spans into one server and 2N into another, and
# (count(2N) − count(N)) / N is the cost of one span with the fixed costs (start, shutdown,
# connections) cancelled out. Hardware counters (`perf stat -e instructions`) are not needed.
# Usage: bench/otlp_instructions.sh [otlp|zipkin] [N]   (default: otlp 10000)
#   SANDBOX_BIN=path counts another build of the server (a baseline) instead of building this one.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-otlp}"
spans="${2:-10000}"
if [ -z "${SANDBOX_BIN:-}" ]; then
  cargo build --release --quiet --bin sandbox --example otlp_load
fi
server_bin="${SANDBOX_BIN:-target/release/sandbox}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

count() {
  local n="$1"
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    "$server_bin" zipkin --port 19511 --otlp-http-port 14418 --otlp-grpc-port 14417 \
    --max-spans $((n * 2)) >/dev/null 2>"$out/valgrind-$n" &
  local server=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:19511/health" >/dev/null 2>&1 && break
    sleep 0.2
  done
  "${LOAD_BIN:-target/release/examples/otlp_load}" "$mode" 127.0.0.1:19511 127.0.0.1:14418 "$server" "$n" \
    --ingest-only >/dev/null
  kill -INT "$server"
  wait "$server" 2>/dev/null || true
  grep -E 'I *refs' "$out/valgrind-$n" | tr -d , | awk '{print $NF}'
}

one="$(count "$spans")"
two="$(count $((spans * 2)))"
echo "$mode: $spans spans: $one instructions; $((spans * 2)) spans: $two instructions"
echo "$mode: $(((two - one) / spans)) instructions per span"
