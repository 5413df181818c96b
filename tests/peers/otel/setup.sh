#!/usr/bin/env sh
# Installs the real OpenTelemetry exporters that `tests/trace/otlp.rs` drives as peers: the Python
# SDK with its OTLP/HTTP (protobuf) and OTLP/gRPC exporters, for traces and logs. CI calls this once
# before the tests. By default it creates a virtualenv beside this script (`tests/peers/otel/.venv`),
# which the tests find on their own (a test that needs it fails, naming this script, when it is
# missing); set SANDBOX_OTEL_VENV to put it elsewhere.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
venv="${SANDBOX_OTEL_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet \
  opentelemetry-sdk \
  opentelemetry-exporter-otlp-proto-http \
  opentelemetry-exporter-otlp-proto-grpc
echo "OpenTelemetry exporters installed in $venv"
