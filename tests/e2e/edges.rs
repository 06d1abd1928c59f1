//! Odd output, closed pipes and leftovers: what cargo, build scripts and the shell do around
//! the daemon that they normally do not, and what buildd must still get right.

use std::path::{Path, PathBuf};

use crate::support::World;

/// A one-package workspace whose build script writes `build_rs_body` and whose library has
/// one unused variable (one warning).
fn workspace_with_build_script(world: &World, name: &str, build_rs_body: &str) -> PathBuf {
    let dir = world.dir.path().join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("build.rs"), build_rs_body).unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "pub fn f() {\n    let unused_here = 1;\n}\n",
    )
    .unwrap();
    dir.canonicalize().unwrap()
}

/// A build script writes straight into cargo's stdout (the pipe the daemon reads cargo's
/// messages from): bytes that are not UTF-8, a 1 MiB line and a line over the daemon's cap.
/// The daemon reads on past all three: the job ends (it would otherwise hang on a full pipe
/// until its timeout) with cargo's later messages, the library's warning, in place.
#[test]
fn a_build_script_writing_bad_bytes_and_huge_lines_into_cargos_stdout_ends_its_job_normally() {
    let world = World::new();
    let ws = workspace_with_build_script(
        &world,
        "garbled",
        r#"use std::io::Write;

fn main() {
    // Cargo's own stdout, not the build script's (which cargo keeps in a file).
    let cargo = std::os::unix::process::parent_id();
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{cargo}/fd/1"))
        .unwrap();
    out.write_all(b"\xff\xfe not utf-8 \xc3\n").unwrap();
    out.write_all(&vec![b'x'; 1 << 20]).unwrap();
    out.write_all(b"\n").unwrap();
    out.write_all(&vec![b'{'; 5 << 20]).unwrap();
    out.write_all(b"\n").unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
"#,
    );
    world.ok(&ws, &["wait", "--timeout", "170s"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    assert_eq!(status["last_job"]["errors"], 0, "{status:#}");
    let messages: Vec<&str> = status["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("unused_here")),
        "the warning after the build script was lost: {messages:?}"
    );
    assert!(daemon_alive(&world, &ws));
}

fn daemon_alive(world: &World, cwd: &Path) -> bool {
    let pid = world.status(cwd)["daemon"]["pid"].as_u64().unwrap();
    crate::support::alive(pid)
}

/// A pipe whose reader is gone: every write to it fails with `EPIPE`, as after
/// `buildd status | head -1` once `head` has exited.
fn closed_pipe() -> std::process::Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// `buildd status | head -1` and the like: with stdout closed (and stderr too), each command
/// ends quietly with success, as ripgrep does, instead of panicking (exit 101).
#[test]
fn no_command_panics_when_its_stdout_is_closed() {
    let world = World::new();
    let ws = world.workspace("cache", "app");
    world.ok(&ws, &["wait"]);
    let archive = world.dir.path().join("app.tar.zst");
    let archive = archive.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["status"],
        &["status", "--json"],
        &["wait"],
        &["env"],
        &["cache", "list"],
        &["cache", "list", "--json"],
        &["cache", "gc"],
        &["cache", "export", "-o", archive],
        &["cache", "import", archive],
    ];
    for args in commands {
        for stderr_closed in [false, true] {
            let mut cmd = world.cmd(&ws, args);
            cmd.stdout(closed_pipe());
            if stderr_closed {
                cmd.stderr(closed_pipe());
            } else {
                cmd.stderr(std::process::Stdio::piped());
            }
            let output = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!stderr.contains("panicked"), "buildd {args:?}: {stderr}");
            assert_eq!(
                output.status.code(),
                Some(0),
                "buildd {args:?} (stderr closed: {stderr_closed}): {stderr}"
            );
        }
    }
    // The import went through all the same.
    let status = world.workspace_status(&ws).unwrap();
    assert!(status["target_dir"].is_string(), "{status:#}");
    world.ok(&ws, &["stop"]);
    let output = world
        .cmd(&ws, &["stop"])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
}

/// A line of bytes that are not UTF-8 gets the `bad_request` docs/protocol.md promises for
/// any line that is not a message, and the connection goes on.
#[test]
fn a_line_that_is_not_utf8_gets_bad_request_and_the_connection_lives() {
    use std::io::{BufRead, BufReader, Write};
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.status(&ws);
    let mut stream =
        std::os::unix::net::UnixStream::connect(world.home().join("run/daemon.sock")).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut read = || -> serde_json::Value {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    };
    let hello = serde_json::json!({"id": 0, "type": "hello", "protocol": 1,
        "version": env!("CARGO_PKG_VERSION"), "client": "test"});
    stream.write_all(format!("{hello}\n").as_bytes()).unwrap();
    assert_eq!(read()["type"], "hello");
    stream
        .write_all(b"{\"id\":1,\"type\":\"st\xff\xfeatus\"}\n")
        .unwrap();
    let reply = read();
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "bad_request", "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("UTF-8"),
        "{reply}"
    );
    stream
        .write_all(b"{\"id\":2,\"type\":\"status\"}\n")
        .unwrap();
    let reply = read();
    assert_eq!(
        (reply["type"].clone(), reply["id"].clone()),
        ("status".into(), 2.into())
    );
}
