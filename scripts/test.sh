#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/integration/snapshot tests, the benchmark
# in quick mode, and the comparison of flowc's step graphs with Metaflow's own.
set -euo pipefail
cd "$(dirname "$0")/.."

export INSTA_UPDATE="${INSTA_UPDATE:-no}"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "benchmark smoke run (each bench once)"
cargo bench -p flowc --bench check --locked -- --test

step "fidelity to Metaflow's own graph"
cargo build -p flowc --locked
tests/fidelity/run.sh
