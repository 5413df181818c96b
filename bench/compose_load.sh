#!/usr/bin/env bash
# Loading and validating a 60-service compose project of three merged files, as users run it:
# `sandbox -f base -f env -f ci validate`, timed by hyperfine (it includes the process start).
# docker-compose 1.29's `config -q` on the same files is timed in the same interleaved rounds for
# reference. Goal (issue 9): ≤ 50 ms for sandbox.
# Usage: bench/compose_load.sh [ROUNDS]   (default 5; prints each round and the medians)
set -euo pipefail
rounds=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 1; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin sandbox
sandbox="${CARGO_TARGET_DIR:-$root/target}/release/sandbox"

# base.yaml: 60 services with the keys real files use; env.yaml and ci.yaml override some of them.
{

  echo 'x-defaults: &defaults'
  echo '  restart: unless-stopped'
  echo '  logging: {driver: json-file, options: {max-size: 10m}}'
  echo '  labels: {team: shop}'
  echo 'services:'
  for i in $(seq 1 60); do
    cat <<SERVICE
  s$i:
    <<: *defaults
    image: registry.example/shop/s$i:\${TAG:-1.0}
    command: ["serve", "--port", "8080", "--name", "s$i"]
    environment:
      - SERVICE=s$i
      - LEVEL=\${LEVEL:-info}
      - DB_URL=postgres://db:5432/s$i
    ports: ["127.0.0.1:$((20000 + i)):8080"]
    expose: ["8080"]
    volumes: ["s$i-data:/data", "./config/s$i:/etc/s$i:ro"]
    networks: [front, back]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://localhost:8080/health || exit 1"]
      interval: 5s
      timeout: 2s
      retries: 3
    cap_drop: [ALL]
    read_only: true
    tmpfs: [/tmp]
    ulimits: {nofile: {soft: 4096, hard: 8192}}
    deploy: {resources: {limits: {cpus: "0.5", memory: 256M}}}
SERVICE
    [ "$i" -gt 1 ] && echo "    depends_on: {s$((i - 1)): {condition: service_healthy}}"
  done
  echo 'networks: {front: {}, back: {internal: true}}'
  echo 'volumes:'
  for i in $(seq 1 60); do echo "  s$i-data: {}"; done
} > "$work/base.yaml"
{
  echo 'services:'
  for i in $(seq 1 60 | awk 'NR % 2 == 0'); do
    printf '  s%s:\n    environment: {LEVEL: debug, EXTRA: "1"}\n    ports: ["127.0.0.1:%s:9229"]\n' "$i" $((30000 + i))
  done
} > "$work/env.yaml"
{
  echo 'services:'
  for i in $(seq 1 60 | awk 'NR % 3 == 0'); do
    printf '  s%s:\n    command: ["serve", "--ci"]\n    labels: [ci=true]\n' "$i"
  done
} > "$work/ci.yaml"
for i in $(seq 1 60); do mkdir -p "$work/config/s$i"; done

cd "$work"
"$sandbox" -p bench-load -f base.yaml -f env.yaml -f ci.yaml validate
docker-compose -p bench-load -f base.yaml -f env.yaml -f ci.yaml config -q
sandbox_times=()
compose_times=()
for round in $(seq 1 "$rounds"); do
  hyperfine -N --warmup 3 --runs 20 --export-json "$work/round.json" --style none \
    "$sandbox -p bench-load -f base.yaml -f env.yaml -f ci.yaml validate" \
    "docker-compose -p bench-load -f base.yaml -f env.yaml -f ci.yaml config -q" >/dev/null
  read -r sandbox_ms compose_ms < <(python3 -c '
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
print(" ".join("%.1f" % (statistics.median(r["times"]) * 1000) for r in results))' "$work/round.json")
  echo "round $round: sandbox validate ${sandbox_ms} ms, docker-compose config ${compose_ms} ms"
  sandbox_times+=("$sandbox_ms")
  compose_times+=("$compose_ms")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo "median of $rounds rounds: sandbox $(median "${sandbox_times[@]}") ms (goal <= 50 ms), docker-compose $(median "${compose_times[@]}") ms"
