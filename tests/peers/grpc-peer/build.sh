#!/bin/sh
# Builds the static grpc-peer binary and copies it next to image/Dockerfile.
# Uses $CARGO_TARGET_DIR when set, else the workspace's target/. Prints the copied binary's path.
set -eu
peer_dir=$(cd "$(dirname "$0")" && pwd)
workspace_dir=$(cd "$peer_dir/../../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$workspace_dir/target}
triple=x86_64-unknown-linux-gnu

RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$target_dir" \
    cargo build --quiet --release -p sandbox-grpc-peer --target "$triple" --manifest-path "$workspace_dir/Cargo.toml"

built="$target_dir/$triple/release/grpc-peer"
copy="$peer_dir/image/grpc-peer"
if ! cmp -s "$built" "$copy" 2>/dev/null; then
    # Several builds may run at once (parallel tests): each copies to its own temporary name and
    # renames, which is atomic.
    cp "$built" "$copy.$$.tmp"
    mv "$copy.$$.tmp" "$copy"
fi
echo "$copy"
