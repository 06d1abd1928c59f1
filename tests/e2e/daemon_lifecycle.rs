//! The daemon's life: started on demand, exactly one per user, replaced by a client of
//! another version, stopped cleanly, and closed to other users.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use crate::support::{World, alive, wait_until};

fn daemon_pid(status: &serde_json::Value) -> u64 {
    status["daemon"]["pid"].as_u64().unwrap()
}

/// `BUILDD_NO_START` as README and docs/editors/lsp.md spell it (`1`), and every other
/// spelling of a boolean: the true ones keep the daemon down (exit 4), the false ones start
/// it, and a word that is neither is an error naming the value.
#[test]
fn buildd_no_start_takes_every_spelling_of_a_boolean() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let socket = world.home().join("run/daemon.sock");
    let status = |value: &str| {
        let mut cmd = world.cmd(&ws, &["status"]);
        cmd.env("BUILDD_NO_START", value);
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    };
    for value in ["1", "true", "yes", "on", "TRUE"] {
        let (code, stderr) = status(value);
        assert_eq!(code, Some(4), "BUILDD_NO_START={value}: {stderr}");
        assert!(stderr.contains("not running"), "{stderr}");
        assert!(!socket.exists());
    }
    let (code, stderr) = status("maybe");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("'maybe'"), "{stderr}");
    for value in ["0", "false", "no", "off"] {
        let (code, stderr) = status(value);
        assert_eq!(code, Some(0), "BUILDD_NO_START={value}: {stderr}");
        assert!(socket.exists());
        world.ok(&ws, &["stop"]);
    }
}

#[test]
fn a_client_starts_the_daemon_and_stop_ends_it_cleanly() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let socket = world.home().join("run/daemon.sock");

    // --no-start fails with the documented code while nothing runs.
    let output = world.run(&ws, &["--no-start", "status"]);
    assert_eq!(output.status.code(), Some(4));
    assert!(!socket.exists());

    let status = world.status(&ws);
    let pid = daemon_pid(&status);
    assert!(alive(pid));
    assert_eq!(status["daemon"]["version"], env!("CARGO_PKG_VERSION"));
    let log = status["daemon"]["log_path"].as_str().unwrap();
    assert!(
        Path::new(log).starts_with(world.home().join("state/logs")),
        "{log}"
    );

    // The socket is private to the user.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(&world.home().join("run")), 0o700);

    world.ok(&ws, &["wait"]);
    let stdout = world.ok(&ws, &["stop"]);
    assert!(stdout.contains(&pid.to_string()), "{stdout}");
    wait_until("the daemon to exit", || !alive(pid));
    assert!(!socket.exists(), "stop removes the socket");
    let stdout = world.ok(&ws, &["stop"]);
    assert!(stdout.contains("not running"), "{stdout}");
}

#[test]
fn racing_clients_end_with_exactly_one_daemon() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let spawned: Vec<_> = (0..6)
        .map(|_| {
            world
                .cmd(&ws, &["status", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let pids: Vec<u64> = spawned
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            daemon_pid(&status)
        })
        .collect();
    assert!(
        pids.windows(2).all(|w| w[0] == w[1]),
        "clients talked to several daemons: {pids:?}"
    );
    wait_until("the losing daemons to exit", || {
        daemons_of(&world.home()).len() == 1
    });
    assert_eq!(daemons_of(&world.home()), vec![pids[0]]);
}

/// The `buildd daemon` processes whose BUILDD_HOME is `home`.
fn daemons_of(home: &Path) -> Vec<u64> {
    let needle = format!("BUILDD_HOME={}", home.display());
    crate::procs::processes()
        .into_iter()
        .filter(|p| p.cmdline.split(' ').nth(1) == Some("daemon"))
        .filter(|p| {
            let environ = std::fs::read(format!("/proc/{}/environ", p.pid)).unwrap_or_default();
            environ.split(|b| *b == 0).any(|v| v == needle.as_bytes())
        })
        .map(|p| u64::from(p.pid))
        .collect()
}

#[test]
fn a_client_of_another_version_replaces_the_daemon() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let old = world
        .cmd(&ws, &["status", "--json"])
        .env("BUILDD_TEST_FAKE_VERSION", "0.0.1-old")
        .output()
        .unwrap();
    assert!(old.status.success());
    let old: serde_json::Value = serde_json::from_slice(&old.stdout).unwrap();
    assert_eq!(old["daemon"]["version"], "0.0.1-old");
    let old_pid = daemon_pid(&old);

    let new = world.status(&ws);
    assert_eq!(new["daemon"]["version"], env!("CARGO_PKG_VERSION"));
    assert_ne!(daemon_pid(&new), old_pid);
    wait_until("the old daemon to exit", || !alive(old_pid));
}

#[test]
fn a_peer_of_another_uid_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        // Switching uid needs root; CI runs as root, so there this test always runs.
        eprintln!("not root: cannot switch uid to test the peer check");
        return;
    }
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.status(&ws);
    let as_nobody = |world: &World| {
        let mut cmd = world.cmd(Path::new("/"), &["--no-start", "status", "--json"]);
        // std drops the supplementary groups when root switches uid.
        cmd.uid(65534).gid(65534);
        let output = cmd.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    // buildd's own client, as another user, refuses a home that is not theirs before it
    // reaches for the socket (see home_dir.rs for the user's side of that check).
    let (code, stderr) = as_nobody(&world);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(
        stderr.contains(&world.home().display().to_string()),
        "{stderr}"
    );

    // With the directories opened up, the daemon's own peer check still refuses.
    let open = |p: &Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    open(world.dir.path(), 0o755);
    open(&world.home(), 0o755);
    open(&world.home().join("run"), 0o755);
    open(&world.home().join("run/daemon.sock"), 0o666);
    // A raw client of the other user's, which checks nothing, reaches the socket now: the
    // daemon's own peer check refuses it.
    // (It says why at once, before any hello.)
    let raw = "import socket, sys\n\
        s = socket.socket(socket.AF_UNIX)\n\
        s.connect(sys.argv[1])\n\
        print(s.makefile().readline())\n";
    let output = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            raw,
        ])
        .arg(world.home().join("run/daemon.sock"))
        .output()
        .unwrap();
    let reply = String::from_utf8_lossy(&output.stdout);
    assert!(
        reply.contains("forbidden") && reply.contains("uid 65534"),
        "{reply}{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // And the daemon serves its own user as before.
    world.status(&ws);
}

#[test]
fn without_a_daemon_buildd_cargo_falls_back_to_plain_cargo() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let output = world.run(&ws, &["--no-start", "cargo", "build"]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("running plain cargo"), "{stderr}");
    assert_eq!(
        stderr.matches("buildd:").count(),
        1,
        "a one-line notice: {stderr}"
    );
    assert!(
        ws.join("target/debug/app").exists(),
        "plain cargo builds in the workspace"
    );

    // cargo's exit code passes through.
    let output = world.run(&ws, &["--no-start", "cargo", "no-such-subcommand"]);
    assert_eq!(output.status.code(), Some(101));
}

/// Issue 19: `buildd cargo --version` started a daemon in the default home and waited for a
/// cold build. Commands that compile nothing are plain cargo, and leave the home untouched.
#[test]
fn buildd_cargo_version_and_help_start_no_daemon() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let plain = |args: &[&str]| {
        let output = std::process::Command::new("cargo")
            .args(args)
            .current_dir(&ws)
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    for args in [
        &["--version"][..],
        &["-V"],
        &["help"],
        &["--help"],
        &["--list"],
        &["build", "--help"],
    ] {
        let mut full = vec!["cargo"];
        full.extend(args);
        let started = std::time::Instant::now();
        let stdout = world.ok(&ws, &full);
        assert_eq!(stdout, plain(args), "{args:?}");
        assert!(!stdout.is_empty(), "{args:?}");
        assert!(
            !world.home().exists(),
            "buildd {full:?} touched the home ({:?})",
            started.elapsed()
        );
    }
    let output = world.run(&ws, &["cargo", "--version"]);
    assert!(output.stderr.is_empty(), "no notice: {output:?}");
    // A command that builds still goes through the daemon.
    world.ok(&ws, &["cargo", "build"]);
    assert!(world.home().join("run/daemon.sock").exists());
}

#[test]
fn an_idle_daemon_shuts_down_by_itself_after_its_idle_timeout() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let output = world
        .cmd(&ws, &["wait"])
        .env("BUILDD_IDLE_TIMEOUT", "2s")
        .output()
        .unwrap();
    assert!(output.status.success());
    let socket = world.home().join("run/daemon.sock");
    let log = world.home().join("state/logs");
    // No client and no work: the daemon leaves, and takes its socket with it.
    wait_until("the idle daemon to exit", || !socket.exists());
    // The log is written in the background: wait for the line rather than read once.
    let says_why = || {
        std::fs::read_dir(&log).unwrap().flatten().any(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains("no clients or work for 2s")
        })
    };
    wait_until("the log to say why the daemon left", says_why);
}
