#!/usr/bin/env bash
# Benchmark of the transparent mesh as users get it: a real `sandbox up -d` project whose services
# call each other by name (through their forwarder container and the control plane's intake),
# against the same calls made directly (to the callee container's own IP, past the mesh), and
# `up --wait` of the 10-service project of bench/lifecycle.sh with the mesh on against `mesh: false`.
#
# Layout (one project, `sandbox-bench-mesh`, on its own network; nothing pinned):
#   item    the demo image (demo/build.sh, FROM scratch), `ROUTES="GET /ping => text pong"`, port 8080
#   echo    bench/mesh_client.rs (static, FROM scratch) as a TCP echo server on 7000 (`expose`)
#   client  the same image, idle; each measurement is `docker exec client /mesh_client ...`, so the
#           load starts inside a container on the project's network.
# Direct: client → item's (echo's) container IP. Mesh: client → `item:8080` (`echo:7000`), i.e.
# client → forwarder container → intake (control plane on the host, L7 pipeline with its default
# tracing) → item's container; at L4 the intake only decides (over a control connection) and the
# forwarder splices client → echo's container itself. Parts (`PARTS`):
#   latency    one keep-alive HTTP/1.1 connection (L7, `GET /ping`) and one TCP connection (L4,
#              64-byte ping-pong) at a steady RATE (1000/s) for SECONDS (10) after 1 s of warm-up;
#              p50/p99 of each request (write to last byte read). Goal: p50 +100 us, p99 +500 us.
#   bulk       10 MiB written to the echo server while read back (checked byte for byte), BULK
#              (3) transfers per target per round, the round's median MiB/s. Goal: mesh >= 0.8x.
#   lifecycle  `up --wait` and `down` of bench/lifecycle.sh's 10 health-checked services (chain 4
#              deep), mesh on (10 forwarders) and `mesh: false`. Goal: on within 10 % of off.
# Targets are measured in ROUNDS (5) interleaved rounds, the order flipped every round; medians
# are reported. The machine may be shared: the load average is printed beside the figures.
# RESULTS=FILE appends the run's output to FILE under a dated heading.
#
#   bench/mesh.sh                                            # every part, ROUNDS=5
#   ROUNDS=2 SECONDS_PER_RUN=3 PARTS=latency bench/mesh.sh   # a short run of one part
#   RESULTS=bench/mesh-results.txt bench/mesh.sh             # the full run, recorded
set -euo pipefail

ROUNDS=${ROUNDS:-5}
RATE=${RATE:-1000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
PING_SIZE=${PING_SIZE:-64}
BULK_BYTES=${BULK_BYTES:-10485760}
BULK=${BULK:-3}
PARTS=${PARTS:-latency bulk lifecycle}
RESULTS=${RESULTS:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/sandbox-mesh-bench.XXXXXX)
PROJECT=sandbox-bench-mesh
CLIENT_IMAGE=sandbox-bench-mesh-client:1
DEMO_IMAGE=sandbox-bench-mesh-demo:1
HTTPD_IMAGE=sandbox-bench-httpd:1
UP=()
cleanup() {
    trap - EXIT INT TERM
    for dir in "${UP[@]}"; do
        [ -n "$dir" ] || continue
        (cd "$WORK/$dir" && "$SANDBOX" down -t 0 >/dev/null 2>&1) || echo "sandbox down in $dir failed" >&2
    done
    docker image rm "$CLIENT_IMAGE" "$DEMO_IMAGE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
part() { [[ " $PARTS " == *" $1 "* ]]; }
[ -z "$RESULTS" ] || RESULTS=$(realpath "$RESULTS")
out() { tee -a "$WORK/output"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
median() { sort -n | awk '{ v[NR]=$1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR+1)/2]; else printf "%.4g\n", (v[NR/2] + v[NR/2+1]) / 2 }'; }
[ -x /bin/busybox ] || { echo "needs busybox-static (apt-get install busybox-static)" >&2; exit 1; }

# --- builds and images -------------------------------------------------------------------------
(cd "$ROOT" && cargo build -q --release --bin sandbox)
SANDBOX="$ROOT/target/release/sandbox"
# The client is std only: rustc alone builds it static, as build.rs does the forwarder.
mkdir -p "$WORK/client" "$WORK/demo" "$WORK/httpd"
rustc --edition 2021 -O -C target-feature=+crt-static --target x86_64-unknown-linux-gnu \
    "$ROOT/bench/mesh_client.rs" -o "$WORK/client/mesh_client"
printf 'FROM scratch\nCOPY mesh_client /mesh_client\nENTRYPOINT ["/mesh_client"]\n' > "$WORK/client/Dockerfile"
docker build -q -t "$CLIENT_IMAGE" "$WORK/client" >/dev/null
cp "$(sh "$ROOT/demo/build.sh")" "$ROOT/demo/image/Dockerfile" "$WORK/demo/"
docker build -q -t "$DEMO_IMAGE" "$WORK/demo" >/dev/null
# bench/lifecycle.sh's image: busybox httpd serving /health.
cp /bin/busybox "$WORK/httpd/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' > "$WORK/httpd/Dockerfile"
docker build -q -t "$HTTPD_IMAGE" "$WORK/httpd" >/dev/null

# sandbox_in DIR ARGS...: sandbox in a project's folder.
sandbox_in() { local dir=$1; shift; (cd "$WORK/$dir" && "$SANDBOX" "$@"); }
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | awk '{print $1}'; }

{
    echo "sandbox $(git -C "$ROOT" rev-parse --short HEAD) ($(nproc) CPUs, $(uname -r), docker $(docker version -f '{{.Server.Version}}'))"
    echo "ROUNDS=$ROUNDS RATE=$RATE/s SECONDS_PER_RUN=$SECONDS_PER_RUN PING_SIZE=$PING_SIZE BULK_BYTES=$BULK_BYTES BULK=$BULK parts: $PARTS"
    echo "load average at start: $(load)"
} | out

# --- latency and bulk --------------------------------------------------------------------------
if part latency || part bulk; then
    mkdir -p "$WORK/mesh"
    cat > "$WORK/mesh/sandbox.yaml" <<CONF
name: $PROJECT
services:
  item:
    image: $DEMO_IMAGE
    environment:
      ROUTES: "GET /ping => text pong"
    port: 8080
  echo:
    image: $CLIENT_IMAGE
    command: ["echo", "7000"]
    expose: ["7000"]
  client:
    image: $CLIENT_IMAGE
    command: ["idle"]
CONF
    sandbox_in mesh down -t 0 >/dev/null 2>&1 || true
    UP+=(mesh)
    sandbox_in mesh up -d >"$WORK/mesh/up.log" 2>&1 || { echo "sandbox up -d failed:" >&2; cat "$WORK/mesh/up.log" >&2; exit 1; }
    CLIENT=$PROJECT-client-1
    ITEM_IP=$(ip_of "$PROJECT-item-1")
    ECHO_IP=$(ip_of "$PROJECT-echo-1")
    for forwarder in item echo; do
        [ -n "$(ip_of "$PROJECT-$forwarder-mesh")" ] || { echo "no forwarder for $forwarder: is the mesh on?" >&2; exit 1; }
    done
    echo "item $ITEM_IP (forwarder $(ip_of "$PROJECT-item-mesh")), echo $ECHO_IP (forwarder $(ip_of "$PROJECT-echo-mesh"))" | out
    declare -A ADDRESS=([l7-direct]="$ITEM_IP:8080" [l7-mesh]="item:8080" [l4-direct]="$ECHO_IP:7000" [l4-mesh]="echo:7000")
    client() { docker exec "$CLIENT" /mesh_client "$@"; }
    # Every target answers before anything is measured (the client retries its connection 10 s).
    for target in l7-direct l7-mesh; do client http "${ADDRESS[$target]}" /ping 100 1 >/dev/null; done
    for target in l4-direct l4-mesh; do client ping "${ADDRESS[$target]}" "$PING_SIZE" 100 1 >/dev/null; done

    field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
    measure_latency() { # TARGET
        local target=$1 line
        if [ "${target%%-*}" = l7 ]; then
            line=$(client http "${ADDRESS[$target]}" /ping "$RATE" "$SECONDS_PER_RUN")
        else
            line=$(client ping "${ADDRESS[$target]}" "$PING_SIZE" "$RATE" "$SECONDS_PER_RUN")
        fi
        echo "$(field p50_us <<<"$line") $(field p99_us <<<"$line")" >> "$WORK/latency-$target"
        printf '  round %s %-10s %6s us p50 %6s us p99 %6s us max (%s requests, load %s)\n' "$round" "$target" \
            "$(field p50_us <<<"$line")" "$(field p99_us <<<"$line")" "$(field max_us <<<"$line")" "$(field requests <<<"$line")" "$(load)" | out
    }
    measure_bulk() { # ROUND
        local runs=() order
        for target in direct mesh; do : > "$WORK/bulk-round-$target"; done
        for repeat in $(seq 1 "$BULK"); do
            order=(direct mesh); [ $(( (repeat + $1) % 2 )) = 0 ] || order=(mesh direct)
            for target in "${order[@]}"; do
                client bulk "${ADDRESS[l4-$target]}" "$BULK_BYTES" | field mib_per_s >> "$WORK/bulk-round-$target"
            done
        done
        for target in direct mesh; do
            median < "$WORK/bulk-round-$target" >> "$WORK/bulk-$target"
            runs+=("$target $(median < "$WORK/bulk-round-$target") MiB/s ($(tr '\n' ' ' < "$WORK/bulk-round-$target"| sed 's/ $//'))")
        done
        printf '  round %s bulk %s, %s (load %s)\n' "$1" "${runs[0]}" "${runs[1]}" "$(load)" | out
    }
    # Warm-up: one bulk transfer each way through both paths.
    client bulk "${ADDRESS[l4-direct]}" "$BULK_BYTES" >/dev/null
    client bulk "${ADDRESS[l4-mesh]}" "$BULK_BYTES" >/dev/null
    for round in $(seq 1 "$ROUNDS"); do
        if part latency; then
            if [ $((round % 2)) = 1 ]; then targets=(l7-direct l7-mesh l4-direct l4-mesh); else targets=(l4-mesh l4-direct l7-mesh l7-direct); fi
            for target in "${targets[@]}"; do measure_latency "$target"; done
        fi
        if part bulk; then measure_bulk "$round"; fi
    done
    {
        if part latency; then
            echo "latency    target        p50 us   p99 us   (medians of $ROUNDS rounds, $RATE req/s for ${SECONDS_PER_RUN}s each)"
            for target in l7-direct l7-mesh l4-direct l4-mesh; do
                printf 'latency    %-10s %9s %8s\n' "$target" "$(awk '{print $1}' "$WORK/latency-$target" | median)" \
                    "$(awk '{print $2}' "$WORK/latency-$target" | median)"
            done
            for path in l7 l4; do
                # Added latency: the median over rounds of (mesh - direct) in the same round.
                added() { paste -d' ' "$WORK/latency-$path-mesh" "$WORK/latency-$path-direct" | awk -v c="$1" '{ print $c - $(c+2) }' | median; }
                printf 'latency    %s added per hop: p50 %+d us (goal <= +100), p99 %+d us (goal <= +500)\n' "$path" "$(added 1)" "$(added 2)"
            done
        fi
        if part bulk; then
            direct=$(median < "$WORK/bulk-direct"); mesh=$(median < "$WORK/bulk-mesh")
            echo "bulk       10 MiB each way over L4: direct $direct MiB/s, mesh $mesh MiB/s (medians of $ROUNDS rounds)"
            echo "bulk       mesh/direct: $(awk -v a="$mesh" -v b="$direct" 'BEGIN { printf "%.2f", a / b }') (goal >= 0.80)"
        fi
        echo "load average after latency/bulk: $(load)"
    } | out
    sandbox_in mesh down -t 0 >/dev/null 2>&1
    UP=("${UP[@]/mesh}")
fi

# --- lifecycle ---------------------------------------------------------------------------------
if part lifecycle; then
    # bench/lifecycle.sh's 10 services in sandbox's words; MESH_LINE turns the mesh off or not.
    manifest() {
        echo "name: $1"; echo "$2"; echo "services:"
        for i in $(seq 1 10); do
            echo "  s$i:"
            echo "    image: $HTTPD_IMAGE"
            echo "    command: [\"sh\", \"-c\", \"mkdir -p /www && echo ok > /www/health && exec httpd -f -p 8080 -h /www\"]"
            echo "    port: 8080"
            echo "    healthcheck: {http: /health, interval: 1s}"
            if [ "$i" -ge 2 ]; then
                echo "    depends_on: {s$([ "$i" -le 4 ] && echo $((i-1)) || echo 1): {condition: healthy}}"
            fi
        done
    }
    mkdir -p "$WORK/on" "$WORK/off"
    manifest benchmesh-on "mesh: true" > "$WORK/on/sandbox.yaml"
    manifest benchmesh-off "mesh: false" > "$WORK/off/sandbox.yaml"
    now() { date +%s.%N; }
    for mode in on off; do sandbox_in "$mode" down -t 0 >/dev/null 2>&1 || true; done
    UP+=(on off)
    # Warm-up: the first meshed up may build the forwarder image.
    for mode in on off; do sandbox_in "$mode" up --wait >/dev/null 2>&1; sandbox_in "$mode" down >/dev/null 2>&1; done
    for round in $(seq 1 "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then modes=(on off); else modes=(off on); fi
        for mode in "${modes[@]}"; do
            t=$(now); sandbox_in "$mode" up --wait >"$WORK/$mode/up.log" 2>&1 \
                || { echo "up --wait ($mode) failed:" >&2; cat "$WORK/$mode/up.log" >&2; exit 1; }
            up=$(echo "$(now) - $t" | bc)
            containers=$(docker ps -q --filter "label=dev.sandbox.project=benchmesh-$mode" | wc -l)
            t=$(now); sandbox_in "$mode" down >/dev/null 2>&1; down=$(echo "$(now) - $t" | bc)
            echo "$up $down" >> "$WORK/lifecycle-$mode"
            printf '  round %s mesh %-3s up --wait %5.2fs  down %5.2fs  (%s containers, load %s)\n' "$round" "$mode" "$up" "$down" "$containers" "$(load)" | out
        done
    done
    {
        for mode in on off; do
            printf 'lifecycle  mesh %-3s up --wait %5.2fs  down %5.2fs  (medians of %s rounds, 10 services)\n' "$mode" \
                "$(awk '{print $1}' "$WORK/lifecycle-$mode" | median)" "$(awk '{print $2}' "$WORK/lifecycle-$mode" | median)" "$ROUNDS"
        done
        on=$(awk '{print $1}' "$WORK/lifecycle-on" | median); off=$(awk '{print $1}' "$WORK/lifecycle-off" | median)
        echo "lifecycle  up --wait mesh on/off: $(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.2f", a / b }') (goal <= 1.10)"
        echo "load average at the end: $(load)"
    } | out
fi

if [ -n "$RESULTS" ]; then
    { echo; echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), bench/mesh.sh, ROUNDS=$ROUNDS"; cat "$WORK/output"; } >> "$RESULTS"
fi
