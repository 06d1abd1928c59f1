#!/usr/bin/env bash
# The whole test suite: unit tests and the end-to-end tests of the real binary with the real
# cargo. README.md and .ci/run both call this.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
