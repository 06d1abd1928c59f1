#!/usr/bin/env bash
# The whole test suite: unit tests and the end-to-end tests of the real binary with the real
# cargo. README.md and .ci/run both call this. It ends with one line that totals every
# runner's results.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?

# Each cargo test binary closes with "test result: ok. N passed; M failed; ...".
passed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
echo
echo "total: $passed passed, $failed failed"
exit "$status"
