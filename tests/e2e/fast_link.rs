//! `fast_link = true`: what it sets reaches cargo for the daemon's jobs and `buildd cargo`
//! alike, it is part of the build key, and a binary built with it still shows file and line
//! in a panic backtrace and in a debugger (gdb, installed as CI on a fresh machine must).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{World, apt_install, artifacts};

/// The lines of `tests/fixtures/fastlink/app/src/main.rs` the assertions name.
const PANIC_LINE: u32 = 4;
const CALL_LINE: u32 = 11;
/// And of `parts/src/lib.rs`: the library frame between them.
const LIB_LINE: u32 = 3;

/// The key dir's `debug/` of a workspace whose key is known.
fn debug_dir(status: &serde_json::Value) -> PathBuf {
    PathBuf::from(status["target_dir"].as_str().unwrap()).join("debug")
}

/// Files under `dir` (not recursing) whose name ends in `suffix`.
fn count_with_suffix(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .count()
}

#[test]
fn fast_link_keeps_file_and_line_in_a_panic_backtrace_and_in_gdb() {
    apt_install("gdb", &["gdb"]);
    let world = World::new();
    let ws = world.workspace("fastlink", "fl");
    world.ok(&ws, &["wait"]);
    world.ok(&ws, &["cargo", "build"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["key"]["fast_link"], true, "{status:#}");
    assert_eq!(status["fast_link"]["enabled"], true, "{status:#}");
    let debug = debug_dir(&status);
    // The DWARF stayed beside the objects: the setting reached cargo.
    let dwo = count_with_suffix(&debug.join("deps"), ".dwo");
    assert!(dwo > 0, "no .dwo files in {}", debug.join("deps").display());
    let binary = debug.join("app");

    let out = Command::new(&binary)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the fixture's binary did not panic");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (place, what) in [
        (format!("src/main.rs:{PANIC_LINE}"), "the panicking line"),
        (format!("src/main.rs:{CALL_LINE}"), "main's call"),
        (
            format!("parts/src/lib.rs:{LIB_LINE}"),
            "the library's frame",
        ),
    ] {
        assert!(
            stderr.contains(&place),
            "{what} ({place}) is not in the backtrace:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("app::check") && stderr.contains("parts::through"),
        "{stderr}"
    );

    // gdb stops at the file and line, with the crate's variables (full debug info, from the
    // .dwo files), and its backtrace names every frame's file and line.
    let out = Command::new("gdb")
        .args(["-batch", "-nx"])
        .args(["-ex", &format!("break main.rs:{PANIC_LINE}")])
        .args(["-ex", "run", "-ex", "bt", "-ex", "print limit"])
        .arg(&binary)
        .current_dir(&ws)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let all = format!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains(&format!("app::check (n=4) at app/src/main.rs:{PANIC_LINE}"))
            || text.contains(&format!("app::check (n=4) at src/main.rs:{PANIC_LINE}")),
        "gdb did not stop at main.rs:{PANIC_LINE}:\n{all}"
    );
    assert!(
        text.contains(&format!("parts/src/lib.rs:{LIB_LINE}"))
            && text.contains(&format!("src/main.rs:{CALL_LINE}")),
        "gdb's backtrace lacks a file:line:\n{all}"
    );
    assert!(
        text.contains("$1 = 3"),
        "gdb could not read `limit`:\n{all}"
    );
}

/// Turning `fast_link` on makes a new key (its artifacts are never mixed with the old
/// key's), the daemon's jobs warm it, and the user's `buildd cargo build` then compiles
/// nothing, because it runs with the very same settings.
#[test]
fn fast_link_changes_the_key_and_buildd_cargo_build_is_warm_with_it() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let before = world.workspace_status(&ws).unwrap();
    assert_eq!(before["key"]["fast_link"], false, "{before:#}");
    assert_eq!(before["fast_link"]["enabled"], false, "{before:#}");
    let text = world.ok(&ws, &["status"]);
    assert!(text.contains("fast_link: off"), "{text}");

    std::fs::write(ws.join("buildd.toml"), "fast_link = true\n").unwrap();
    let last_job = world.last_job_id(&ws);
    let after = world.wait_for(&ws, "a job in the key of fast_link = true", |s| {
        s["key"]["fast_link"] == true
            && s["state"] == "idle"
            && s["last_job"]["id"].as_u64() > Some(last_job)
    });
    assert_eq!(after["last_job"]["result"], "success", "{after:#}");
    assert_ne!(after["key"]["hash"], before["key"]["hash"], "{after:#}");
    assert_ne!(after["target_dir"], before["target_dir"]);
    let sets = after["fast_link"]["sets"].as_array().unwrap();
    assert!(
        sets.iter()
            .any(|s| s == "CARGO_PROFILE_DEV_SPLIT_DEBUGINFO=unpacked"),
        "{after:#}"
    );
    assert_eq!(
        after["cargo_env"]["set"]["CARGO_PROFILE_DEV_SPLIT_DEBUGINFO"], "unpacked",
        "{after:#}"
    );
    let text = world.ok(&ws, &["status"]);
    assert!(
        text.contains("fast_link: on (CARGO_PROFILE_DEV_SPLIT_DEBUGINFO=unpacked)"),
        "{text}"
    );

    let stdout = world.ok(&ws, &["cargo", "build", "--message-format=json"]);
    let artifacts = artifacts(&stdout);
    assert!(!artifacts.is_empty(), "{stdout}");
    let stale: Vec<_> = artifacts
        .iter()
        .filter(|a| a["fresh"] != true)
        .map(|a| a["target"]["name"].clone())
        .collect();
    assert!(stale.is_empty(), "buildd cargo build compiled {stale:?}");
    assert!(count_with_suffix(&debug_dir(&after).join("deps"), ".dwo") > 0);

    // The exports of `buildd env` carry it too, for plain cargo in a shell.
    let exports = world.ok(&ws, &["env"]);
    assert!(
        exports.contains("export CARGO_PROFILE_DEV_SPLIT_DEBUGINFO=unpacked"),
        "{exports}"
    );
}
