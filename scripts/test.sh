#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/integration/snapshot tests (with every
# cargo feature, so the S3 datastore is linted and tested too), the Python client and
# Runner tests, the benchmarks in quick mode, and the comparison of flowc's step graphs
# with Metaflow's own.
#
# Tests that need a service skip with a note when it is missing, unless told to fail:
# FLOWC_REQUIRE_S3_TESTS=1 (moto's S3 server, `pip install 'moto[server]'`) and
# FLOWC_REQUIRE_CHROMIUM=1 (Debian's `chromium`). `.ci/run` installs both and sets both.
set -euo pipefail
cd "$(dirname "$0")/.."

export INSTA_UPDATE="${INSTA_UPDATE:-no}"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all features)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo check (default features)"
cargo check --workspace --all-targets --locked

step "cargo test (all features)"
cargo test --workspace --all-features --locked

step "benchmark smoke run (each bench once)"
cargo bench -p flowc --locked -- --test

step "build flowc and flowc-shim (default features)"
cargo build --workspace --locked

step "Python client and Runner tests"
FLOWC_BIN="$PWD/target/debug/flowc" python3 -m pytest tests/python -q

step "benchmark script tests"
python3 -m unittest discover -s bench/compile -q

step "fidelity to Metaflow's own graph"
tests/fidelity/run.sh
