#!/usr/bin/env bash
# The one command that runs every test: formatting and lints, then the whole workspace's tests
# against real servers this script installs (when missing) and starts on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
# CI builds from nothing on a disk of unknown size: incremental caches are pure cost there
# (2.5 GiB of a 10 GiB test build), and the free space is printed so a full disk is plain.
if [[ -n "${CI:-}" ]]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi
df -h . | sed 's/^/[disk] /'
source scripts/servers.sh
trap servers_stop EXIT
servers_start
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -q -- -D warnings
echo "== cargo test"
cargo test --workspace -q --no-fail-fast "$@"
