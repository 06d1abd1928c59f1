#!/usr/bin/env bash
# Builds buildd, then shows its main job on the bundled example workspace: the daemon warms a
# copy of examples/demo in its own target dir, an edit is rebuilt in the background, and
# `buildd cargo run` finds nothing left to compile. The copy and buildd's state live in a temp
# dir that is removed at the end; the repository is not touched.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

echo "==> building buildd"
cargo build --quiet --manifest-path "$repo/Cargo.toml" -p buildd
buildd="$repo/target/debug/buildd"

tmp=$(mktemp -d)
export BUILDD_HOME="$tmp/home"
cleanup() {
    "$buildd" --no-start stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
cp -r "$repo/examples/demo" "$tmp/demo"
cd "$tmp/demo"

echo "==> buildd wait: the daemon starts, registers the workspace and warms it"
"$buildd" wait

echo "==> editing greeter/src/lib.rs; the daemon rebuilds in the background"
cat >>greeter/src/lib.rs <<'RUST'

/// Added by the demo.
pub fn farewell(name: &str) -> String {
    format!("Goodbye, {name}.")
}
RUST
# The watcher sees the edit within milliseconds; give it a moment before asking.
sleep 1
"$buildd" wait

echo "==> buildd cargo run: cargo finds everything fresh"
output=$("$buildd" cargo run 2>&1)
echo "$output"
if grep -q "Compiling" <<<"$output"; then
    echo "unexpected: buildd cargo run compiled something" >&2
    exit 1
fi

echo "==> buildd status"
"$buildd" status
echo "==> no target/ in the workspace: $(ls)"
