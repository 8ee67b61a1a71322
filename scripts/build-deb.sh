#!/usr/bin/env bash
# Build a Debian package of semleak with cargo-deb: the binary (release
# profile: stripped, no debug info), the man page, shell completions and the
# docs; metadata in Cargo.toml under [package.metadata.deb].
#
#   cargo install cargo-deb      # once
#   scripts/build-deb.sh         # -> target/debian/semleak_<version>-1_<arch>.deb
#
# Extra arguments go to cargo-deb (e.g. --target x86_64-unknown-linux-musl
# for a package with the static binary).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "error: cargo-deb is not installed: cargo install cargo-deb" >&2
    exit 1
fi
# The completions come from a host build (they are the same for every target).
cargo build --locked --release
mkdir -p target/completions
for shell in bash zsh fish; do
    target/release/semleak completions "$shell" >"target/completions/$(
        case $shell in bash) echo semleak.bash ;; zsh) echo _semleak ;; fish) echo semleak.fish ;; esac
    )"
done
cargo deb --locked "$@"
