#!/usr/bin/env bash
# The one command that runs every test: formatting and lints, then the whole workspace's tests
# against real servers this script installs (when missing) and starts on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
# CI builds from nothing on a disk of unknown size: incremental caches are pure cost there
# (2.5 GiB of a 10 GiB test build), and the free space is printed so a full disk is plain.
if [[ -n "${CI:-}" ]]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi
disk_report() {
    df -h . | sed 's/^/[disk] /'
    if [[ -d target ]]; then du -sh target | sed 's/^/[disk] build: /'; fi
}
disk_report
source scripts/servers.sh
# Stopped servers, and the disk again: a linker killed by SIGBUS is a full disk, and the last
# lines of a failed run are the ones read.
trap 'servers_stop; disk_report' EXIT
servers_start
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -q -- -D warnings
echo "== cargo test"
cargo test --workspace -q --no-fail-fast "$@"
