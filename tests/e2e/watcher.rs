//! The file watcher's limits: links out of the workspace, removed directories, and running out
//! of inotify watches or instances.
//!
//! Watches are counted where the kernel keeps them, in `/proc/<daemon>/fdinfo` of its inotify
//! descriptors, and compared with a model: one watch per real directory of the workspace.
//! The inotify limits are lowered for real, not simulated: `unshare --user --map-root-user`
//! gives the daemon a user namespace of its own, whose `/proc/sys/user/max_inotify_*` limits
//! it may lower without touching the machine's (Linux 4.9 and later).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{World, append, wait_until};

/// The inotify watches the daemon holds, over all its inotify descriptors.
fn watches(pid: u64) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let info = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        count += info
            .lines()
            .filter(|l| l.starts_with("inotify wd:"))
            .count();
    }
    count
}

/// The watches the workspace should need: its real directories, links not followed.
fn real_dirs(dir: &Path) -> usize {
    let mut count = 1;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() && entry.file_name() != "target" {
            count += real_dirs(&entry.path());
        }
    }
    count
}

fn daemon_pid(world: &World, ws: &Path) -> u64 {
    world.status(ws)["daemon"]["pid"].as_u64().unwrap()
}

/// A tree of 50 directories and files outside the workspace.
fn big_tree(world: &World) -> PathBuf {
    let big = world.dir.path().join("big");
    for n in 0..50 {
        std::fs::create_dir_all(big.join(format!("d{n}/e"))).unwrap();
        std::fs::write(big.join(format!("d{n}/f.rs")), "// outside\n").unwrap();
    }
    big
}

/// Waits for a job after `before` that the edit of `file` started; returns its id.
fn edit_and_settle(world: &World, ws: &Path, file: &Path, before: u64) -> u64 {
    append(file, &format!("\npub fn edited_{before}() {{}}\n"));
    let status = world.wait_settled(ws, before);
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    status["last_job"]["id"].as_u64().unwrap()
}

#[test]
fn a_link_out_of_the_workspace_adds_no_watch_and_its_files_start_no_job() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let big = big_tree(&world);
    // One link before the daemon first walks the workspace, one after.
    std::os::unix::fs::symlink(&big, ws.join("util/src/at_start")).unwrap();
    world.ok(&ws, &["wait"]);
    let pid = daemon_pid(&world, &ws);
    assert_eq!(watches(pid), real_dirs(&ws), "a link was followed at start");

    let before = world.last_job_id(&ws);
    std::os::unix::fs::symlink(&big, ws.join("util/src/later")).unwrap();
    // Events arrive in order: once an edit made after the link has run its job, the link's
    // event has been handled too.
    let before = edit_and_settle(&world, &ws, &ws.join("util/src/lib.rs"), before);
    assert_eq!(watches(pid), real_dirs(&ws), "a new link was followed");

    // Edits behind the links: none may reach the daemon. A file nothing reads, written after
    // them, is the sign that the watcher is past them.
    append(&big.join("d3/f.rs"), "// edited outside\n");
    std::fs::write(big.join("d4/e/new.rs"), "// created outside\n").unwrap();
    std::fs::write(ws.join("NOTES.txt"), "read by no target\n").unwrap();
    let status = world.wait_for(&ws, "the notes file in last_change", |s| {
        s["last_change"]["files"].as_array().is_some_and(|files| {
            files
                .iter()
                .any(|f| f.as_str().unwrap().ends_with("NOTES.txt"))
        })
    });
    let files = status["last_change"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "files behind a link were seen: {status:#}");
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_eq!(status["last_job"]["id"], before, "{status:#}");

    // Removing the links leaves the count where it was.
    std::fs::remove_file(ws.join("util/src/later")).unwrap();
    std::fs::remove_file(ws.join("util/src/at_start")).unwrap();
    edit_and_settle(&world, &ws, &ws.join("util/src/lib.rs"), before);
    assert_eq!(watches(pid), real_dirs(&ws));
}

#[test]
fn removing_a_watched_directory_drops_its_watches() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let pid = daemon_pid(&world, &ws);
    let start = watches(pid);
    assert_eq!(start, real_dirs(&ws));

    let made = ws.join("util/src/generated");
    std::fs::create_dir_all(made.join("a/b/c")).unwrap();
    wait_until("watches on the new directories", || {
        watches(pid) == start + 4
    });
    // Moved out of the workspace, and deleted: both take their watches along.
    let outside = world.dir.path().join("moved-away");
    std::fs::rename(&made, &outside).unwrap();
    wait_until("the moved directories' watches to go", || {
        watches(pid) == start
    });
    std::fs::create_dir_all(made.join("x/y")).unwrap();
    wait_until("watches on the new directories", || {
        watches(pid) == start + 3
    });
    std::fs::remove_dir_all(&made).unwrap();
    wait_until("the removed directories' watches to go", || {
        watches(pid) == start
    });
    assert_eq!(watches(pid), real_dirs(&ws));
}

/// `buildd ARGS` in a user namespace of its own whose inotify `limit` is `value`; the daemon
/// it starts stays in that namespace.
fn run_with_inotify_limit(world: &World, cwd: &Path, limit: &str, value: usize) -> Output {
    let inner = world.cmd(cwd, &["wait"]);
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "sh", "-c"])
        .arg(format!(
            "echo {value} > /proc/sys/user/{limit} && exec \"$0\" \"$@\""
        ))
        .arg(inner.get_program())
        .args(inner.get_args())
        .current_dir(cwd);
    for (name, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    let output = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run unshare (util-linux) to lower the inotify limits: {e}")
    });
    assert!(
        output.status.success(),
        "buildd wait in a user namespace (this test needs `unshare --user`) failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The workspace polls, the note says why, and an edit is still seen.
fn assert_polls_and_sees_edits(world: &World, ws: &Path, says: &str) {
    let status = world.wait_for(ws, "the polling watcher", |s| {
        s["watcher"]["kind"] == "poll"
    });
    let note = status["watcher"]["note"].as_str().unwrap();
    assert!(note.contains(says), "{note}");
    assert!(note.contains("sudo sysctl"), "{note}");
    let before = world.last_job_id(ws);
    let file = ws.join("util/src/lib.rs");
    append(&file, "\npub fn polled() {}\n");
    let status = world.wait_for(ws, "a job with the edit", |s| {
        s["last_job"]["id"].as_u64() > Some(before)
            && s["state"] == "idle"
            && s["last_change"]["files"]
                .as_array()
                .is_some_and(|files| files.iter().any(|f| f.as_str() == file.to_str()))
    });
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
}

#[test]
fn no_inotify_instance_left_falls_back_to_polling_and_edits_are_seen() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    run_with_inotify_limit(&world, &ws, "max_inotify_instances", 0);
    assert_polls_and_sees_edits(&world, &ws, "fs.inotify.max_user_instances = 0");
}

#[test]
fn running_out_of_inotify_watches_falls_back_to_polling_and_edits_are_seen() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let limit = real_dirs(&ws) + 2;
    run_with_inotify_limit(&world, &ws, "max_inotify_watches", limit);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["watcher"]["kind"], "native", "{status:#}");
    // More new directories than watches are left.
    for n in 0..5 {
        std::fs::create_dir_all(ws.join(format!("util/src/more{n}"))).unwrap();
    }
    assert_polls_and_sees_edits(
        &world,
        &ws,
        &format!("fs.inotify.max_user_watches = {limit}"),
    );
}
