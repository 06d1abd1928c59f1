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
