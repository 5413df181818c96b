#!/usr/bin/env sh
# Installs the real Zipkin/OpenTelemetry client libraries that `tests/trace` drives as peers.
# CI calls this once before `cargo test`. By default it creates a virtualenv beside this script
# (`tests/trace/peers/.venv`), which the test finds on its own; set SANDBOX_PEERS_PYTHON to use another
# interpreter instead.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
venv="${SANDBOX_PEERS_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet \
  py-zipkin \
  opentelemetry-exporter-zipkin-json \
  opentelemetry-exporter-zipkin-proto-http \
  opentelemetry-sdk
echo "peers installed in $venv"
