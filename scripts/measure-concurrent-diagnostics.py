#!/usr/bin/env python3
"""Times the daemon's job after an edit two ways: the diagnostics job (`cargo clippy
--workspace --all-targets`) then the one build invocation (`cargo build --workspace --lib
--bins --tests --examples`), one after the other as the daemon runs them, against the two
at once, clippy in a build dir of its own (`CARGO_BUILD_BUILD_DIR`: cargo locks the build
dir, so that is what running them at once takes); and plain `cargo build` then `cargo test
--no-run` as the user's reference (docs/benchmarks.md, "Clippy beside the build").

    python3 scripts/measure-concurrent-diagnostics.py WORKSPACE FILE ROUNDS [DIRS]

WORKSPACE is a cargo workspace; it is copied three times under DIRS (default
/tmp/measure-concurrent), one copy per way, each built cold first. Each round appends a new
function to FILE (relative to the workspace) in every copy and times each way from spawn to
exit, the ways in alternating order. The daemon's cargo runs at nice 10, as the daemon's
jobs do; plain cargo at the script's own priority.
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

CLIPPY = ["cargo", "clippy", "--workspace", "--all-targets"]
MERGED = ["cargo", "build", "--workspace", "--lib", "--bins", "--tests", "--examples"]
PLAIN = [["cargo", "build"], ["cargo", "test", "--no-run"]]


def spawn(args, cwd, env, nice):
    prefix = ["nice", "-n", "10"] if nice else []
    return subprocess.Popen(
        prefix + args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_ok(process, what):
    if process.wait() != 0:
        sys.exit(f"{' '.join(process.args)} failed in {what}")


def sequential(copy):
    for args in (CLIPPY, MERGED):
        wait_ok(spawn(args, copy, dict(os.environ), True), copy)


def concurrent(copy):
    diag = dict(os.environ, CARGO_BUILD_BUILD_DIR=os.path.join(copy, "target", "diagnostics"))
    both = [spawn(CLIPPY, copy, diag, True), spawn(MERGED, copy, dict(os.environ), True)]
    for process in both:
        wait_ok(process, copy)


def plain(copy):
    for args in PLAIN:
        wait_ok(spawn(args, copy, dict(os.environ), False), copy)


def edit(copy, file, original, round_no):
    with open(os.path.join(copy, file), "w") as f:
        f.write(original)
        f.write(f"\n#[allow(dead_code)]\nfn measure_round_{round_no}() -> u32 {{ {round_no} }}\n")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    workspace, file, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    dirs = sys.argv[4] if len(sys.argv) > 4 else "/tmp/measure-concurrent"
    with open(os.path.join(workspace, file)) as f:
        original = f.read()
    ways = {"one after the other": sequential, "at once": concurrent, "plain": plain}
    copies = {}
    for name in ways:
        copy = os.path.join(dirs, name.replace(" ", "-"))
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(workspace, copy, ignore=shutil.ignore_patterns("target", ".git"))
        copies[name] = copy
        ways[name](copy)
    times = {name: [] for name in ways}
    names = list(ways)
    for round_no in range(rounds):
        order = names if round_no % 2 == 0 else list(reversed(names))
        for name in order:
            edit(copies[name], file, original, round_no)
            start = time.time()
            ways[name](copies[name])
            times[name].append(time.time() - start)
    plain_median = statistics.median(times["plain"])
    for name in names:
        t = times[name]
        print(
            f"{name:22} median {statistics.median(t):.3f} s (min {min(t):.3f}, max {max(t):.3f}),"
            f" {statistics.median(t) / plain_median:.2f} of plain"
        )


if __name__ == "__main__":
    main()
