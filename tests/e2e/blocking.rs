//! Odd files and stuck peers block nothing: a FIFO where buildd or cargo reads a file is a
//! clear error of that workspace while the daemon serves everyone else and stops when told
//! (by `buildd stop` or SIGTERM), and the CLI gives up on a socket that never says hello.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::output_within;
use crate::support::{World, alive, wait_until, write_script};

/// Long enough for a register that loads a fixture; far shorter than a hang.
const LIMIT: Duration = Duration::from_secs(120);

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

/// `buildd status --json` in `cwd`, bounded.
fn status_within(world: &World, cwd: &Path) -> serde_json::Value {
    let output = output_within(&mut world.cmd(cwd, &["status", "--json"]), LIMIT);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `buildd wait` in `cwd`, bounded: registers the workspace and waits until it settles.
fn wait_within(world: &World, cwd: &Path) -> std::process::Output {
    output_within(&mut world.cmd(cwd, &["wait"]), LIMIT)
}

fn workspace<'a>(status: &'a serde_json::Value, root: &Path) -> &'a serde_json::Value {
    status["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["root"].as_str() == Some(root.to_str().unwrap()))
        .unwrap_or_else(|| panic!("{} is not in the status:\n{status:#}", root.display()))
}

/// The attack of issue 12: `mkfifo buildd.toml` and one command there froze every client of
/// the daemon, and the daemon ignored SIGTERM.
#[test]
fn blocking_fifo_buildd_toml_is_an_error_and_blocks_no_one() {
    let world = World::new();
    let fifo_ws = world.workspace("basic", "fifo");
    let other = world.workspace("basic", "other");
    mkfifo(&fifo_ws.join("buildd.toml"));
    // Nothing is opened for writing, so a reader of the FIFO would wait forever.
    let fifo_error = format!(
        "{} is a FIFO, not a regular file",
        fifo_ws.join("buildd.toml").display()
    );
    let waited = wait_within(&world, &fifo_ws);
    assert_eq!(
        waited.status.code(),
        Some(6),
        "the workspace's error exit code"
    );
    let stdout = String::from_utf8_lossy(&waited.stdout);
    assert!(stdout.contains(&fifo_error), "{stdout}");
    let status = status_within(&world, &fifo_ws);
    assert!(
        workspace(&status, &fifo_ws)["error"]
            .as_str()
            .is_some_and(|e| e.contains(&fifo_error)),
        "{status:#}"
    );
    let pid = status["daemon"]["pid"].as_u64().unwrap();
    // Meanwhile another workspace is served: registered, built and asked again.
    assert!(wait_within(&world, &other).status.success());
    for _ in 0..3 {
        let status = status_within(&world, &other);
        assert_eq!(workspace(&status, &other)["state"], "idle", "{status:#}");
    }
    let stop = output_within(&mut world.cmd(&other, &["stop"]), LIMIT);
    assert!(stop.status.success());
    wait_until("the daemon to exit after buildd stop", || !alive(pid));

    // Again, stopped by SIGTERM this time.
    assert_eq!(wait_within(&world, &fifo_ws).status.code(), Some(6));
    let status = status_within(&world, &other);
    let pid = status["daemon"]["pid"].as_u64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_until("the daemon to exit after SIGTERM", || !alive(pid));
}

/// A FIFO where cargo reads a manifest is a clear error, not a cargo that hangs: the root's
/// `Cargo.toml`, and a member's when registering from inside it.
#[test]
fn blocking_fifo_cargo_toml_is_an_error_naming_it() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let member = ws.join("util");
    assert!(member.join("Cargo.toml").is_file());
    mkfifo(&member.join("Cargo.toml"));
    let output = wait_within(&world, &member);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains(&format!(
            "{} is a FIFO, not a regular file",
            member.join("Cargo.toml").display()
        )),
        "{err}"
    );
    mkfifo(&ws.join("Cargo.toml"));
    let output = wait_within(&world, &ws);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains(&format!(
            "{} is a FIFO, not a regular file",
            ws.join("Cargo.toml").display()
        )),
        "{err}"
    );
}

/// A socket that accepts but never says hello (a stuck daemon) makes the CLI give up with
/// what to do, instead of hanging.
#[test]
fn blocking_socket_without_hello_times_out_in_the_cli() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let run = world.home().join("run");
    std::fs::create_dir_all(&run).unwrap();
    for dir in [world.home(), run.clone()] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let listener = UnixListener::bind(run.join("daemon.sock")).unwrap();
    // Accepts and holds every connection, saying nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    for args in [&["--no-start", "status"][..], &["status"]] {
        let started = Instant::now();
        let output = output_within(&mut world.cmd(&ws, args), LIMIT);
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            err.contains("accepted the connection but did not say hello within 10s")
                && err.contains("buildd stop"),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "took {:?}",
            started.elapsed()
        );
    }
}

/// A shutdown stuck on something (here an sccache whose `--stop-server` never returns, as on
/// a hung network backend) does not make the daemon deaf: a second SIGTERM ends it at once.
#[test]
fn blocking_shutdown_is_cut_short_by_a_second_sigterm() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let stopping = world.dir.path().join("stop-server-running");
    let listener_pid = world.dir.path().join("listener.pid");
    let stopper_pid = world.dir.path().join("stopper.pid");
    let fake = world.dir.path().join("sccache");
    // `--start-server` leaves a listener on buildd's socket, so that buildd sees a server
    // and asks it to stop at shutdown; `--stop-server` then hangs.
    write_script(
        &fake,
        &format!(
            "#!/bin/sh\n\
             case \"$1\" in\n\
             --version) echo 'sccache 0.16.0' ;;\n\
             --start-server)\n\
             \x20 /usr/bin/python3 -c 'import os, socket, time\n\
             s = socket.socket(socket.AF_UNIX)\n\
             s.bind(os.environ[\"SCCACHE_SERVER_UDS\"])\n\
             s.listen(16)\n\
             time.sleep(3600)' </dev/null >/dev/null 2>&1 &\n\
             \x20 echo $! > {pid}\n\
             \x20 sleep 1 ;;\n\
             --stop-server) echo $$ > {stopper}; touch {stopping}; exec sleep 3600 ;;\n\
             *) echo '{{}}' ;;\n\
             esac\n",
            pid = listener_pid.display(),
            stopper = stopper_pid.display(),
            stopping = stopping.display()
        ),
    );
    let output = output_within(
        world
            .cmd(&ws, &["status", "--json"])
            .env("BUILDD_SCCACHE", &fake),
        LIMIT,
    );
    assert!(output.status.success());
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let pid = status["daemon"]["pid"].as_u64().unwrap();
    let daemon = nix::unistd::Pid::from_raw(pid as i32);
    wait_until("the fake sccache server", || {
        world.home().join("run/sccache.sock").exists()
    });
    nix::sys::signal::kill(daemon, nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_until("the shutdown to wait on --stop-server", || {
        stopping.exists()
    });
    assert!(alive(pid), "the daemon should still be stopping sccache");
    nix::sys::signal::kill(daemon, nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_until("the daemon to exit after a second SIGTERM", || !alive(pid));
    let stderr = std::fs::read_to_string(world.home().join("state/logs/daemon.stderr")).unwrap();
    assert!(stderr.contains("a second signal came"), "{stderr}");
    assert!(
        !world.home().join("run/daemon.sock").exists(),
        "the socket of a daemon that left is removed"
    );
    // The fake's processes outlive a daemon that left without finishing: end them.
    for file in [&listener_pid, &stopper_pid] {
        if let Ok(pid) = std::fs::read_to_string(file) {
            let pid = nix::unistd::Pid::from_raw(pid.trim().parse().unwrap());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
