#!/usr/bin/env bash
# Trace server benchmark, one run, release build:
#   ingest rate over HTTP (JSON v2 and proto3, batches of 100 spans, 8 connections),
#   RSS of the standalone server holding 500 000 typical spans (6 tags each),
#   /api/v2/traces latency p50/p99 over those spans.
# Usage: bench/zipkin.sh [PORT] [SPANS]
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:-19411}"
spans="${2:-500000}"
cargo build --release --quiet --example zipkin_server --example zipkin_load
target/release/examples/zipkin_server "$port" "$spans" 2>/dev/null &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "machine: $(nproc) cores; server pid $server; max-spans $spans"
target/release/examples/zipkin_load "127.0.0.1:$port" "$server" "$spans"
