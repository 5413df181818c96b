#!/usr/bin/env sh
# Installs the real gRPC peers the proxy and end-to-end tests drive: Python's grpcio (client and
# server) and grpcio-health-checking. CI calls this once before the tests. By default it creates a
# virtualenv beside this script (`tests/peers/grpc/.venv`), which the tests find on their own
# (a test that needs it fails, naming this script, when it is missing).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
venv="${SANDBOX_GRPC_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet grpcio grpcio-health-checking
echo "gRPC peers installed in $venv"
