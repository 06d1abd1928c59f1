#!/usr/bin/env bash
# The whole test suite: unit tests and the end-to-end tests of the real binary with the real
# cargo, then the VS Code extension's lint, unit tests, packaging and end-to-end test in a real
# VS Code (scripts/test-vscode.sh). README.md and .ci/run both call this. It ends with one line
# that totals every runner's results.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
counts=$(mktemp)
trap 'rm -f "$log" "$counts"' EXIT

status=0
# --no-fail-fast: a failing test binary must not hide the results of the others.
# Every wait in the tests has its own deadline; the limit here only keeps a hang nobody
# foresaw from eating CI's whole budget (the suite takes about 15 minutes on two cores).
# timeout signals its whole process group: cargo, the test binaries and what they started.
limit=${BUILDD_TEST_LIMIT:-50m}
timeout --kill-after=60 "$limit" cargo test --workspace --locked --no-fail-fast </dev/null 2>&1 | tee "$log" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "scripts/test.sh: cargo test did not finish within $limit (BUILDD_TEST_LIMIT); the test still running is the last one named above" >&2
fi

# Each cargo test binary closes with "test result: ok. N passed; M failed; ...".
passed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
# A cargo that failed before any test binary reported (a compile error) counts as one failure.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
fi
echo "cargo $passed $failed" >"$counts"

BUILDD_TEST_COUNTS="$counts" bash scripts/test-vscode.sh || status=$?

echo
total_passed=0
total_failed=0
while read -r name p f; do
    echo "$name: $p passed, $f failed"
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
done <"$counts"
echo "total: $total_passed passed, $total_failed failed"
exit "$status"
