#!/usr/bin/env bash
# Times, in one run, for 10 services from pre-built images: `up --wait` (health-checked), a second
# `up` with nothing changed, and `down` — for sandbox and for docker-compose on an equivalent file.
# Usage: bench/lifecycle.sh [ROUNDS]   (default 3; prints each round and the medians)
set -euo pipefail
rounds=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'cd "$work"; "$sandbox" -p benchsb down -t 0 >/dev/null 2>&1 || true; docker-compose -p benchdc down -t 0 >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin sandbox
sandbox="$root/target/release/sandbox"
[ -x /bin/busybox ] || { echo "needs busybox-static (apt-get install busybox-static)"; exit 1; }

# One pre-built image: busybox httpd serving /health.
mkdir -p "$work/image"
cp /bin/busybox "$work/image/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' > "$work/image/Dockerfile"
docker build -q -t sandbox-bench-httpd:1 "$work/image" >/dev/null

# 10 services: a dependency chain 4 deep (s1 <- s2 <- s3 <- s4) plus 6 leaves on s1, all health-checked.
# manifest HEADER PORT_LINE HEALTH_LINE CONDITION: the same 10 services in either tool's words.
manifest() {
  echo "$1"; echo "services:"
  for i in $(seq 1 10); do
    echo "  s$i:"
    echo "    image: sandbox-bench-httpd:1"
    echo "    command: [\"sh\", \"-c\", \"mkdir -p /www && echo ok > /www/health && exec httpd -f -p 8080 -h /www\"]"
    echo "    $2"
    echo "    $3"
    if [ "$i" -ge 2 ]; then
      dep=$([ "$i" -le 4 ] && echo "s$((i-1))" || echo s1)
      echo "    depends_on: {$dep: {condition: $4}}"
    fi
  done
}
manifest "name: benchsb" "port: 8080" "healthcheck: {http: /health, interval: 1s}" healthy > "$work/sandbox.yaml"
manifest "version: '2.4'" 'ports: ["127.0.0.1::8080"]' \
  'healthcheck: {test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"], interval: 1s, timeout: 1s, retries: 10}' \
  service_healthy > "$work/docker-compose.yml"

cd "$work"
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
declare -a sb_up sb_again sb_down dc_up dc_again dc_down
for round in $(seq 1 "$rounds"); do
  t=$(now); "$sandbox" up --wait >/dev/null 2>&1; sb_up+=("$(elapsed "$t")")
  t=$(now); "$sandbox" up --wait >/dev/null 2>&1; sb_again+=("$(elapsed "$t")")
  t=$(now); "$sandbox" down >/dev/null 2>&1; sb_down+=("$(elapsed "$t")")
  t=$(now); docker-compose -p benchdc up -d >/dev/null 2>&1; dc_up+=("$(elapsed "$t")")
  t=$(now); docker-compose -p benchdc up -d >/dev/null 2>&1; dc_again+=("$(elapsed "$t")")
  t=$(now); docker-compose -p benchdc down >/dev/null 2>&1; dc_down+=("$(elapsed "$t")")
  printf 'round %d: sandbox up %.2fs, again %.2fs, down %.2fs | compose up %.2fs, again %.2fs, down %.2fs\n' \
    "$round" "${sb_up[-1]}" "${sb_again[-1]}" "${sb_down[-1]}" "${dc_up[-1]}" "${dc_again[-1]}" "${dc_down[-1]}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m() { printf '%.2f' "$(median "$@")"; }
echo "median of $rounds rounds (10 services, chain 4 deep, health-checked):"
echo "  up --wait:       sandbox $(m "${sb_up[@]}")s   compose $(m "${dc_up[@]}")s   ratio $(echo "scale=2; $(median "${sb_up[@]}") / $(median "${dc_up[@]}")" | bc)"
echo "  unchanged up:    sandbox $(m "${sb_again[@]}")s   compose $(m "${dc_again[@]}")s"
echo "  down:            sandbox $(m "${sb_down[@]}")s   compose $(m "${dc_down[@]}")s"
