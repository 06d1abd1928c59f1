#!/usr/bin/env bash
# The VS Code extension's part of scripts/test.sh: npm ci, lint, unit tests (node --test),
# the .vsix (vsce, offline), and the end-to-end test in code-server + headless Chromium
# against the real `buildd lsp`. The e2e setup installs what it needs itself (apt-get, npm)
# and caches code-server in ~/.cache/buildd-vscode-e2e.
#
# Every step runs even when an earlier one failed (but not without dependencies); the exit
# code is non-zero when any failed. With BUILDD_TEST_COUNTS=FILE, it appends one line
# "NAME PASSED FAILED" per test runner to FILE, for the total that scripts/test.sh prints.
# BUILDD_BIN picks another buildd binary for the e2e test.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
counts=${BUILDD_TEST_COUNTS:-/dev/null}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

step() { echo; echo "==> vscode-extension: $*"; }

# Reads node's spec reporter summary ("ℹ pass N", "ℹ fail N", "ℹ cancelled N") from $log.
# A runner that failed without reporting a failed test (a crash, a failed hook) counts one.
record() {
    local name=$1 rc=$2 p f c
    p=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | tail -1)
    c=$(sed -n 's/^ℹ cancelled \([0-9]*\)$/\1/p' "$log" | tail -1)
    p=${p:-0}
    f=$(( ${f:-0} + ${c:-0} ))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    echo "$name $p $f" >>"$counts"
}

fail_step() {
    echo "$1 0 1" >>"$counts"
    status=1
}

if ! command -v npm >/dev/null; then
    echo "scripts/test-vscode.sh: npm is missing; the VS Code extension needs Node 20 and npm" >&2
    fail_step extension-unit
    fail_step extension-e2e
    exit 1
fi

cd "$repo/vscode-extension"
# npm ci unless node_modules already matches package-lock.json (.ci/run installs it for the lint).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    step "npm ci"
    if ! npm ci --no-audit --no-fund; then
        fail_step extension-unit
        fail_step extension-e2e
        exit 1
    fi
fi

step "lint"
npm run --silent lint || status=1

step "unit tests"
rc=0
npm run --silent test 2>&1 | tee "$log" || rc=$?
record extension-unit "$rc"
[ "$rc" -eq 0 ] || status=1

step "package"
if ! npm run --silent package; then
    status=1
    fail_step extension-e2e
    exit "$status"
fi

step "e2e (code-server, headless Chromium, the real buildd lsp)"
if ! (cd "$repo" && cargo build -p buildd --locked); then
    status=1
    fail_step extension-e2e
    exit "$status"
fi
rc=0
# A hang nobody foresaw must not eat CI's budget (the e2e takes about 3 minutes).
BUILDD_BIN="${BUILDD_BIN:-$repo/target/debug/buildd}" timeout --kill-after=30 20m npm run --silent e2e </dev/null 2>&1 | tee "$log" || rc=$?
[ "$rc" -ne 124 ] || echo "scripts/test-vscode.sh: the e2e did not finish within 20 minutes" >&2
record extension-e2e "$rc"
[ "$rc" -eq 0 ] || status=1

exit "$status"
