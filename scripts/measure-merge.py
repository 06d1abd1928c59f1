#!/usr/bin/env python3
"""Times `cargo build` then `cargo test --no-run` against one `cargo build --lib --bins
--tests --examples`, on a workspace, side by side (docs/benchmarks.md, "One invocation for
build and test"; the reason for daemon/src/build/merge.rs).

    python3 scripts/measure-merge.py WORKSPACE FILE ROUNDS [TARGET_DIRS]

WORKSPACE is a cargo workspace (a copy: FILE, relative to it, is appended to each round and
restored at the end); each way builds in a target dir of its own under TARGET_DIRS (default
/tmp/measure-merge), cold first. After every round the merged dir must leave nothing for
`cargo build --workspace` and `cargo test --no-run --workspace` to compile.
"""
import os
import resource
import statistics
import subprocess
import sys
import time


def run(workspace, args, target_dir):
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    done = subprocess.run(
        ["cargo"] + args + ["--message-format=json"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    wall = time.time() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"cargo {' '.join(args)} failed in {workspace}")
    units = sum(
        1
        for line in done.stdout.decode().splitlines()
        if '"compiler-artifact"' in line and '"fresh":false' in line
    )
    return wall, cpu, units


def main():
    workspace, edited, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    dirs = sys.argv[4] if len(sys.argv) > 4 else "/tmp/measure-merge"
    apart = (os.path.join(dirs, "apart"), [["build", "--workspace"], ["test", "--no-run", "--workspace"]])
    merged = (
        os.path.join(dirs, "merged"),
        [["build", "--workspace", "--lib", "--bins", "--tests", "--examples"]],
    )
    for target_dir, commands in (apart, merged):
        for args in commands:
            run(workspace, args, target_dir)
    path = os.path.join(workspace, edited)
    original = open(path).read()
    results = {"apart": [], "merged": []}
    try:
        for i in range(rounds):
            with open(path, "w") as f:
                f.write(original + f"\npub fn measure_merge_round_{i}() -> u64 {{ {i} }}\n")
            order = [apart, merged] if i % 2 == 0 else [merged, apart]
            for target_dir, commands in order:
                total = [0.0, 0.0, 0]
                for args in commands:
                    total = [a + b for a, b in zip(total, run(workspace, args, target_dir))]
                results["apart" if target_dir == apart[0] else "merged"].append(total)
            left = [run(workspace, args, merged[0])[2] for args in apart[1]]
            print(f"round {i}: apart {results['apart'][-1]}, merged {results['merged'][-1]}, "
                  f"units left for build and test --no-run after merged: {left}", flush=True)
            if left != [0, 0]:
                sys.exit("the merged invocation left units to compile")
    finally:
        with open(path, "w") as f:
            f.write(original)
    for way, rows in results.items():
        print(f"{way}: wall median {statistics.median(r[0] for r in rows):.3f} s, "
              f"CPU median {statistics.median(r[1] for r in rows):.3f} s")


if __name__ == "__main__":
    main()
