#!/bin/sh
# Builds the static sandbox-demo binary and copies it next to demo/image/Dockerfile.
# Uses $CARGO_TARGET_DIR when set, else the workspace's target/. Prints the copied binary's path.
set -eu
demo_dir=$(cd "$(dirname "$0")" && pwd)
workspace_dir=$(dirname "$demo_dir")
target_dir=${CARGO_TARGET_DIR:-$workspace_dir/target}
triple=x86_64-unknown-linux-gnu

RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$target_dir" \
    cargo build --quiet --release -p sandbox-demo --target "$triple" --manifest-path "$workspace_dir/Cargo.toml"

built="$target_dir/$triple/release/sandbox-demo"
copy="$demo_dir/image/sandbox-demo"
if ! cmp -s "$built" "$copy" 2>/dev/null; then
    # Several builds may run at once (parallel tests): each copies to its own temporary name and
    # renames, which is atomic.
    cp "$built" "$copy.$$.tmp"
    mv "$copy.$$.tmp" "$copy"
fi
echo "$copy"
