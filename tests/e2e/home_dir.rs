//! A home another user could change is refused, as ssh refuses such a `~/.ssh`: a
//! `BUILDD_HOME` of another user's or open to others, a `config.toml` others can write, and a
//! socket served by a process of another uid. The refusals name the path and the fix, and
//! nothing the home says is obeyed (its sccache is never run).
//!
//! Another uid needs root: CI runs as root. As another user these tests check what they can
//! (the modes) and say that they skipped the rest.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{World, output_within, wait_until};

/// The uid tests give files away to: `nobody`.
const OTHER_UID: u32 = 65534;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A home whose `config.toml` names an sccache that leaves a marker when it runs.
fn home_with_marking_sccache(world: &World) -> PathBuf {
    let home = world.home();
    std::fs::create_dir_all(&home).unwrap();
    let marker = world.dir.path().join("sccache-ran");
    let script = world.dir.path().join("their-sccache");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch {}\necho 'sccache 0.16.0'\n",
            marker.display()
        ),
    )
    .unwrap();
    chmod(&script, 0o755);
    std::fs::write(
        home.join("config.toml"),
        format!("[sccache]\npath = {:?}\n", script.to_str().unwrap()),
    )
    .unwrap();
    chmod(&home.join("config.toml"), 0o600);
    marker
}

/// `buildd ARGS` in `cwd` that must fail, with the home's own sccache setting in force.
fn refused(world: &World, cwd: &Path, args: &[&str]) -> String {
    let mut cmd = world.cmd(cwd, args);
    cmd.env_remove("BUILDD_SCCACHE");
    let output = output_within(&mut cmd, Duration::from_secs(120));
    assert!(
        !output.status.success(),
        "buildd {args:?} was not refused:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The attack of issue 12: another user made a 0777 `BUILDD_HOME` whose `config.toml` names
/// their script as sccache; buildd ran it as the invoking user.
#[test]
fn home_dir_of_another_user_open_to_all_is_refused_and_its_sccache_never_runs() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let marker = home_with_marking_sccache(&world);
    let home = world.home();
    chmod(&home, 0o777);
    if is_root() {
        nix::unistd::chown(&home, Some(OTHER_UID.into()), None).unwrap();
        for args in [&["status"][..], &["daemon"]] {
            let err = refused(&world, &ws, args);
            assert!(
                err.contains(&format!("{} is owned by uid {OTHER_UID}", home.display()))
                    && err.contains(&format!("chown -R 0 {}", home.display())),
                "{err}"
            );
        }
        nix::unistd::chown(&home, Some(0.into()), None).unwrap();
    } else {
        eprintln!("not root: cannot give the home to another uid; checking the mode only");
    }
    // The user's own home, but open to all, is refused as well, by the client and the daemon.
    for args in [&["status"][..], &["daemon"]] {
        let err = refused(&world, &ws, args);
        assert!(
            err.contains(&format!(
                "{} is writable by its group and others",
                home.display()
            )) && err.contains(&format!("chmod go-w {}", home.display())),
            "{err}"
        );
    }
    assert!(
        !home.join("run").exists(),
        "nothing was created in the home"
    );
    assert!(!marker.exists(), "the home's sccache ran");
}

/// A `config.toml` the group can write, and `run/`, `state/`, `cache/` others can write, are
/// refused with the `chmod` that fixes them; once fixed, the same home works.
#[test]
fn home_dir_with_a_group_writable_config_or_dirs_open_to_others_is_refused() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let marker = home_with_marking_sccache(&world);
    let home = world.home();
    chmod(&home, 0o700);
    let config = home.join("config.toml");
    chmod(&config, 0o620);
    for args in [&["status"][..], &["daemon"]] {
        let err = refused(&world, &ws, args);
        assert!(
            err.contains(&format!("{} is writable by its group", config.display()))
                && err.contains(&format!("chmod go-w {}", config.display())),
            "{err}"
        );
    }
    assert!(
        !marker.exists(),
        "the sccache of a config.toml others can write ran"
    );
    chmod(&config, 0o600);
    // A config.toml that is not a file at all is refused too, not read.
    std::fs::remove_file(&config).unwrap();
    nix::unistd::mkfifo(&config, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let err = refused(&world, &ws, &["status"]);
    assert!(
        err.contains(&format!("{} is a FIFO", config.display())),
        "{err}"
    );
    std::fs::remove_file(&config).unwrap();
    for dir in ["run", "state", "cache"] {
        let dir = home.join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        chmod(&dir, 0o707);
        let err = refused(&world, &ws, &["status"]);
        assert!(
            err.contains(&format!("{} is writable by others", dir.display()))
                && err.contains(&format!("chmod go-w {}", dir.display())),
            "{err}"
        );
        chmod(&dir, 0o700);
    }
    world.ok(&ws, &["status"]);
}

/// A process of another uid serving the home's socket is not the user's daemon: the client
/// refuses it before it uses anything it sends (here, a hello that would otherwise be taken).
#[test]
fn home_dir_socket_served_by_another_uid_is_refused_by_the_client() {
    if !is_root() {
        eprintln!("not root: cannot run a listener as another uid; skipped");
        return;
    }
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let run = world.home().join("run");
    std::fs::create_dir_all(&run).unwrap();
    chmod(&world.home(), 0o700);
    chmod(&run, 0o700);
    // The other user's listener lives in a dir of theirs; the home's socket links to it.
    let theirs = tempfile::Builder::new()
        .prefix("bd-other")
        .tempdir()
        .unwrap();
    nix::unistd::chown(
        theirs.path(),
        Some(OTHER_UID.into()),
        Some(OTHER_UID.into()),
    )
    .unwrap();
    let socket = theirs.path().join("daemon.sock");
    let ready = theirs.path().join("ready");
    let listener = "import socket, sys\n\
        s = socket.socket(socket.AF_UNIX)\n\
        s.bind(sys.argv[1])\n\
        s.listen(16)\n\
        open(sys.argv[2], 'w').close()\n\
        while True:\n\
        \x20   c, _ = s.accept()\n\
        \x20   c.sendall(b'{\"type\":\"hello\",\"id\":1,\"protocol\":1,\"version\":\"0.0.0\",\"pid\":1}\\n')\n\
        \x20   c.close()\n";
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={OTHER_UID}"),
            &format!("--regid={OTHER_UID}"),
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            listener,
        ])
        .arg(&socket)
        .arg(&ready)
        .spawn()
        .unwrap();
    wait_until("the other user's listener", || ready.exists());
    std::os::unix::fs::symlink(&socket, run.join("daemon.sock")).unwrap();
    let output = output_within(
        &mut world.cmd(&ws, &["--no-start", "status"]),
        Duration::from_secs(120),
    );
    let _ = child.kill();
    let _ = child.wait();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains(&format!(
            "is served by uid {OTHER_UID}, not by this user (uid 0)"
        )) && err.contains("daemon.sock"),
        "{err}"
    );
}
