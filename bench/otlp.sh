#!/usr/bin/env bash
# OTLP ingest benchmark against the product (`sandbox zipkin`, release build), one run per path:
#   OTLP/HTTP protobuf, batches of 100 spans, 8 connections, into a fresh server;
#   the same spans as Zipkin JSON v2 into another fresh server;
# each followed by the server's RSS with the spans stored and /api/v2/trace/{id} latency.
# Usage: bench/otlp.sh [SPANS]   (default 500 000; the servers' max-spans is set to hold them all)
set -euo pipefail
cd "$(dirname "$0")/.."
spans="${1:-500000}"
cargo build --release --quiet --bin sandbox --example otlp_load
echo "machine: $(nproc) cores; $spans spans per run"
for mode in otlp zipkin; do
  target/release/sandbox zipkin --port 19411 --otlp-http-port 14318 --otlp-grpc-port 14317 \
    --max-spans "$spans" 2>/dev/null &
  server=$!
  trap 'kill "$server" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:19411/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "== $mode (server pid $server)"
  target/release/examples/otlp_load "$mode" 127.0.0.1:19411 127.0.0.1:14318 "$server" "$spans"
  kill "$server"
  wait "$server" 2>/dev/null || true
done
