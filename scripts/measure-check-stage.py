#!/usr/bin/env python3
"""Does a separate `check` stage pay for itself?

Generates a workspace (a library with many generic functions, a crate on top of it, and a
binary), makes two copies, and configures one daemon job with `stages = ["check", "build",
"test"]` and the other with `["build", "test"]` (buildd.toml). Each round appends a function
with an unused variable to the library of both copies, one after the other (alternating
which goes first), and measures, from the daemon's own event stream:

  - edit -> the first diagnostic naming the new unused variable;
  - edit -> the job finished (the dir is warm).

Prints medians over the rounds. Usage: measure-check-stage.py BUILDD [ROUNDS]
The script speaks the daemon's socket protocol (docs/protocol.md) directly.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def generate(root, functions=400):
    os.makedirs(root)
    with open(os.path.join(root, "Cargo.toml"), "w") as f:
        f.write('[workspace]\nmembers = ["core", "mid", "app"]\nresolver = "2"\n')
    for name, deps in (("core", []), ("mid", ["core"]), ("app", ["mid"])):
        os.makedirs(os.path.join(root, name, "src"))
        with open(os.path.join(root, name, "Cargo.toml"), "w") as f:
            f.write(f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n')
            for dep in deps:
                f.write(f'{dep} = {{ path = "../{dep}" }}\n')
    body = []
    for i in range(functions):
        body.append(
            f"pub fn f{i}<T: Clone + std::fmt::Debug>(x: &[T]) -> Vec<String> {{\n"
            f"    x.iter().cycle().take({i % 7 + 3}).map(|v| format!(\"{{v:?}}-{i}\")).collect()\n}}\n"
        )
        body.append(f"pub fn use{i}() -> usize {{ f{i}(&[{i}u32, 2, 3]).len() + f{i}(&[\"a\"]).len() }}\n")
    with open(os.path.join(root, "core", "src", "lib.rs"), "w") as f:
        f.write("".join(body))
    with open(os.path.join(root, "mid", "src", "lib.rs"), "w") as f:
        f.write("pub fn total() -> usize { " + " + ".join(f"core::use{i}()" for i in range(0, functions, 10)) + " }\n")
    with open(os.path.join(root, "app", "src", "main.rs"), "w") as f:
        f.write("fn main() { println!(\"{}\", mid::total()); }\n")


class Daemon:
    def __init__(self, buildd, home):
        self.buildd = buildd
        self.env = dict(os.environ, BUILDD_HOME=home)
        # Starts the daemon.
        subprocess.run([buildd, "status"], env=self.env, check=True, capture_output=True)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(os.path.join(home, "run", "daemon.sock"))
        self.file = self.sock.makefile("rw")
        self.id = 0
        version = subprocess.run([buildd, "--version"], capture_output=True, text=True).stdout.split()[-1]
        self.call({"type": "hello", "protocol": 1, "version": version, "client": "measure"})

    def send(self, message):
        self.id += 1
        message["id"] = self.id
        self.file.write(json.dumps(message) + "\n")
        self.file.flush()
        return self.id

    def call(self, message):
        id = self.send(message)
        while True:
            reply = json.loads(self.file.readline())
            if reply.get("id") == id:
                return reply

    def next_event(self):
        while True:
            message = json.loads(self.file.readline())
            if message["type"] == "event":
                return message["event"]

    def stop(self):
        subprocess.run([self.buildd, "stop"], env=self.env, capture_output=True)


def wait_idle(daemon, root):
    subprocess.run([daemon.buildd, "wait", root], env=daemon.env, check=True, capture_output=True)


def round_trip(daemon, root, n):
    """Edits the library, returns (first diagnostic, job finished) in seconds."""
    path = os.path.join(root, "core", "src", "lib.rs")
    marker = f"unused_round_{n}"
    start = time.monotonic()
    with open(path, "a") as f:
        f.write(f"\npub fn round_{n}() {{ let {marker} = {n}; }}\n")
    first = None
    while True:
        event = daemon.next_event()
        if event["root"] != root:
            continue
        if event["kind"] == "diagnostic" and first is None and marker in event["diagnostic"]["message"]:
            first = time.monotonic() - start
        if event["kind"] == "job_finished" and event["summary"]["result"] == "success" and first is not None:
            return first, time.monotonic() - start


def main():
    buildd = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    tmp = tempfile.mkdtemp(prefix="measure-check")
    try:
        template = os.path.join(tmp, "template")
        generate(template)
        roots = {}
        for name, stages in (("check-first", '["check", "build", "test"]'), ("build-only", '["build", "test"]')):
            root = os.path.join(tmp, name)
            shutil.copytree(template, root)
            with open(os.path.join(root, "buildd.toml"), "w") as f:
                f.write(f"stages = {stages}\n")
            roots[name] = os.path.realpath(root)
        daemon = Daemon(buildd, os.path.join(tmp, "home"))
        for root in roots.values():
            daemon.call({"type": "register", "path": root, "env": dict(os.environ)})
            wait_idle(daemon, root)
        daemon.call({"type": "subscribe"})
        results = {name: [] for name in roots}
        for n in range(rounds):
            order = list(roots.items())
            if n % 2:
                order.reverse()
            for name, root in order:
                results[name].append(round_trip(daemon, root, n))
                wait_idle(daemon, root)
        daemon.stop()
        print(f"{rounds} rounds, load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
        print(f"{'design':<12} {'first diagnostic (s)':>22} {'warm (s)':>10}")
        for name, values in results.items():
            first = statistics.median(v[0] for v in values)
            warm = statistics.median(v[1] for v in values)
            print(f"{name:<12} {first:>22.2f} {warm:>10.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
