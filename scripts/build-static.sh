#!/usr/bin/env bash
# Build a static, stripped semleak for x86_64 Linux (musl), for copying onto
# CI runners and hosts without a Rust toolchain:
#
#   scripts/build-static.sh            # -> target/x86_64-unknown-linux-musl/release/semleak
#
# Needs the musl target (`rustup target add x86_64-unknown-linux-musl`, done
# here when rustup is available). Rust's musl target links with its own
# self-contained C runtime, so musl-tools is not needed for semleak (it has
# no C dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi
cargo build --locked --release --target "$target"
bin="target/$target/release/semleak"

# Check what was built: a static executable, stripped, that runs.
info=$(file -b "$bin" 2>/dev/null || true)
echo "$bin: ${info:-$(wc -c <"$bin") bytes}"
case "$info" in
    *dynamically\ linked*) echo "error: $bin is dynamically linked" >&2; exit 1 ;;
esac
case "$info" in
    *not\ stripped*) echo "error: $bin is not stripped" >&2; exit 1 ;;
esac
"$bin" --version
echo "size: $(wc -c <"$bin") bytes"
