//! Faults the daemon survives: killed daemons and compilers, vanished workspaces, hanging and
//! noisy build scripts, a missing cargo or toolchain, an unusable cache dir.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::procs;
use crate::support::{World, alive, artifacts, edit, wait_until};

fn sigkill(pid: u32) {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
}

#[test]
fn a_daemon_killed_mid_build_is_replaced_and_its_dir_stays_usable() {
    let world = World::new();
    let ws = world.workspace("slow", "ws");
    world.ok(&ws, &["wait"]);
    let home = world.home();
    let old_daemon = world.status(&ws)["daemon"]["pid"].as_u64().unwrap() as u32;

    let flag = world.dir.path().join("hold");
    procs::block_slow_build(&ws, &flag);
    wait_until("the build script to block", || {
        !procs::build_scripts(&home).is_empty()
    });
    let orphans: Vec<u32> = procs::build_scripts(&home).iter().map(|p| p.pid).collect();
    sigkill(old_daemon);
    wait_until("the daemon to die", || !alive(old_daemon as u64));
    assert!(
        home.join("run/daemon.sock").exists(),
        "the killed daemon left its socket"
    );

    // The next command starts a new daemon, which kills what the old one left running.
    let status = world.status(&ws);
    assert_ne!(status["daemon"]["pid"].as_u64(), Some(old_daemon as u64));
    wait_until("the orphaned build to be killed", || {
        orphans.iter().all(|p| !alive(*p as u64))
    });

    std::fs::remove_file(&flag).unwrap();
    world.ok(&ws, &["wait"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["state"], "idle", "{status:#}");
    // Only the interrupted units were built again.
    let rebuilt: BTreeSet<&str> = status["last_job"]["rebuilt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        rebuilt.is_subset(&BTreeSet::from(["slowdev", "app"])),
        "{rebuilt:?}"
    );
    let stdout = world.ok(&ws, &["cargo", "test", "--no-run", "--message-format=json"]);
    assert!(
        artifacts(&stdout).iter().all(|a| a["fresh"] == true),
        "{stdout}"
    );
}

#[test]
fn cargo_killed_under_a_job_fails_it_cleanly_and_the_next_edit_builds() {
    let world = World::new();
    let ws = world.workspace("slow", "ws");
    world.ok(&ws, &["wait"]);
    let home = world.home();
    let flag = world.dir.path().join("hold");
    procs::block_slow_build(&ws, &flag);
    wait_until("the build script to block", || {
        !procs::build_scripts(&home).is_empty()
    });
    let job = world.workspace_status(&ws).unwrap()["current_job"]["id"]
        .as_u64()
        .unwrap();

    // cargo leads the job's process group.
    let cargo = procs::build_scripts(&home)[0].pgid;
    sigkill(cargo);
    let status = world.wait_settled(&ws, job - 1);
    assert_eq!(status["last_job"]["id"].as_u64(), Some(job));
    assert_eq!(status["last_job"]["result"], "failed", "{status:#}");
    assert!(
        status["last_job"]["failure"]
            .as_str()
            .unwrap()
            .contains("signal"),
        "{status:#}"
    );
    assert_eq!(status["state"], "failed");

    std::fs::remove_file(&flag).unwrap();
    edit(&ws.join("app/src/lib.rs"), "42", "41 + 1");
    let status = world.wait_settled(&ws, job);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert!(procs::build_scripts(&home).is_empty());
}

#[test]
fn a_workspace_moved_away_turns_error_leaves_others_alone_and_can_come_back() {
    let world = World::new();
    let moved = world.workspace("basic", "moved");
    let other = world.workspace("basic", "other");
    world.ok(&moved, &["wait"]);
    world.ok(&other, &["wait"]);

    let elsewhere = world.dir.path().join("elsewhere");
    std::fs::rename(&moved, &elsewhere).unwrap();
    let status = world.wait_for(&moved, "the error state", |ws| ws["state"] == "error");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("removed or moved"),
        "{status:#}"
    );
    assert_eq!(world.workspace_status(&other).unwrap()["state"], "idle");

    // Registered where it is now, it builds; moved back and registered again, too.
    world.ok(&elsewhere, &["wait"]);
    std::fs::rename(&elsewhere, &moved).unwrap();
    world.ok(&moved, &["wait"]);
    assert_eq!(world.workspace_status(&moved).unwrap()["state"], "idle");
    let before = world.last_job_id(&moved);
    edit(&moved.join("util/src/lib.rs"), "\"!\"", "\"!?\"");
    assert_eq!(world.wait_settled(&moved, before)["state"], "idle");
}

#[test]
fn a_hanging_build_script_is_ended_by_the_job_timeout() {
    let world = World::new();
    let ws = world.workspace("slow", "ws");
    world.ok(&ws, &["wait"]);
    // The timeout is set once the workspace is warm: a cold first job (clippy, build, test)
    // on a loaded machine may itself take longer than a short timeout. The settings change
    // runs a job of its own, of fresh units only.
    let warm = world.last_job_id(&ws);
    std::fs::write(ws.join("buildd.toml"), "job_timeout_secs = 15\n").unwrap();
    let status = world.wait_settled(&ws, warm);
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    let home = world.home();
    let flag = world.dir.path().join("hold");
    let before = world.last_job_id(&ws);
    procs::block_slow_build(&ws, &flag);
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["last_job"]["result"], "failed", "{status:#}");
    let failure = status["last_job"]["failure"].as_str().unwrap();
    assert!(
        failure.contains("timeout of 15s") && failure.contains("job_timeout_secs"),
        "{failure}"
    );
    wait_until("the hung build script to be killed", || {
        procs::build_scripts(&home).is_empty()
    });
    std::fs::remove_file(&flag).unwrap();
}

#[test]
fn a_build_script_that_prints_megabytes_builds_and_the_daemon_stays_small() {
    let world = World::new();
    let ws = world.workspace("chatty", "ws");
    let output = world.run(&ws, &["wait"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = world.status(&ws);
    assert_eq!(
        status["workspaces"][0]["last_job"]["result"], "success",
        "{status:#}"
    );
    let daemon = status["daemon"]["pid"].as_u64().unwrap();
    let rss = procs::rss_kib(daemon).unwrap();
    assert!(
        rss < 64 * 1024,
        "the daemon holds {rss} KiB after 16 MiB of build script output"
    );
}

#[test]
fn cargo_missing_from_path_is_a_clear_error_of_that_workspace() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let output = world
        .cmd(&ws, &["wait"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("not found on PATH"), "{stdout}");
    // The daemon serves on, and the workspace recovers with a usable environment.
    world.ok(&ws, &["wait"]);
    assert_eq!(world.workspace_status(&ws).unwrap()["state"], "idle");
}

#[test]
fn a_toolchain_that_is_not_installed_is_a_clear_error() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    std::fs::write(
        ws.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"1.2.3\"\n",
    )
    .unwrap();
    // The harness runs under rustup with RUSTUP_TOOLCHAIN set, which would win over the file.
    let output = world
        .cmd(&ws, &["wait"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6));
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["state"], "error");
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("rustc -vV failed") && error.contains("1.2.3"),
        "{error}"
    );

    // Removing the file recovers the workspace.
    std::fs::remove_file(ws.join("rust-toolchain.toml")).unwrap();
    world.wait_for(&ws, "recovery", |ws| ws["state"] == "idle");
}

#[test]
fn an_unusable_cache_dir_is_an_error_in_status_and_the_daemon_serves_on() {
    let world = World::new();
    let blocked = world.workspace("basic", "blocked");
    let fine = world.workspace("basic", "fine");
    world.ok(&blocked, &["wait"]);
    let target_dir = PathBuf::from(
        world.workspace_status(&blocked).unwrap()["target_dir"]
            .as_str()
            .unwrap(),
    );
    world.ok(&blocked, &["stop"]);
    // A file where the workspace's dir of isolated dirs must be.
    let workspace_dir = target_dir.parent().unwrap();
    std::fs::remove_dir_all(workspace_dir).unwrap();
    std::fs::write(workspace_dir, "in the way").unwrap();

    let output = world.run(&blocked, &["wait"]);
    assert_eq!(output.status.code(), Some(6));
    let status = world.workspace_status(&blocked).unwrap();
    let error = status["error"].as_str().unwrap();
    assert!(error.contains(workspace_dir.to_str().unwrap()), "{error}");
    world.ok(&fine, &["wait"]);
    assert_eq!(world.workspace_status(&fine).unwrap()["state"], "idle");
}

#[test]
fn a_full_disk_fails_the_job_with_a_clear_message_and_the_daemon_lives() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    // The isolated dirs on a 3 MiB file system: too small for the fixture's build.
    let cache = world.home().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs"])
        .arg(&cache)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "this test needs to mount a tmpfs (it runs as root in CI)"
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(cache.clone());

    let output = world.run(&ws, &["wait"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["state"], "failed");
    let failure = status["last_job"]["failure"].as_str().unwrap_or("");
    assert!(
        failure.contains("is full") && failure.contains("free some space"),
        "{status:#}"
    );
    // The daemon lives and answers.
    world.status(&ws);
    world.ok(&ws, &["stop"]);
}

#[test]
fn a_symlink_loop_inside_a_workspace_is_harmless() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    // A directory that contains itself, and a link to the workspace's root.
    std::os::unix::fs::symlink("..", ws.join("util/src/up")).unwrap();
    std::os::unix::fs::symlink(".", ws.join("core-lib/self")).unwrap();
    world.ok(&ws, &["wait"]);
    let before = world.last_job_id(&ws);
    edit(&ws.join("util/src/lib.rs"), "\"!\"", "\"!!\"");
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert!(
        status["last_job"]["rebuilt"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "util")
    );
}

#[test]
fn a_queued_job_says_what_it_waits_for_and_waits_for_a_killed_clients_cargo() {
    let world = World::new();
    let ws = world.workspace("slow", "ws");
    // A debounce long enough for the lease below to be asked for within it.
    std::fs::write(ws.join("buildd.toml"), "debounce_ms = 5000\n").unwrap();
    world.ok(&ws, &["wait"]);
    let home = world.home();
    let started = world.workspace_status(&ws).unwrap()["jobs_started"]
        .as_u64()
        .unwrap();

    // The edit queues a job; the user's cargo gets the dir first and blocks in the script.
    let flag = world.dir.path().join("hold");
    procs::block_slow_build(&ws, &flag);
    let mut client = world.spawn(&ws, &["cargo", "test", "--no-run"]);
    wait_until("the user's build script to block", || {
        !procs::build_scripts(&home).is_empty()
    });
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["state"], "queued", "{status:#}");
    let waiting = status["waiting_for"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        waiting.contains(&format!("`buildd cargo test` (pid {})", client.child.id()))
            && waiting.contains("holds the warm dir"),
        "{status:#}"
    );

    // `kill -9` of the client ends the lease, but its cargo builds on: no job starts.
    sigkill(client.child.id());
    let _ = client.child.wait();
    wait_until("status to name the foreign cargo", || {
        world.workspace_status(&ws).unwrap()["waiting_for"]
            .as_str()
            .is_some_and(|w| w.contains("a cargo outside buildd holds the lock of"))
    });
    let status = world.workspace_status(&ws).unwrap();
    assert!(status["current_job"].is_null(), "{status:#}");
    assert_eq!(status["jobs_started"].as_u64(), Some(started), "{status:#}");
    let text = String::from_utf8(world.cmd(&ws, &["status"]).output().unwrap().stdout).unwrap();
    assert!(
        text.contains("waiting for: a cargo outside buildd"),
        "{text}"
    );

    // Once that cargo finishes, the job runs.
    std::fs::remove_file(&flag).unwrap();
    world.ok(&ws, &["wait"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["state"], "idle", "{status:#}");
    assert!(status["waiting_for"].is_null(), "{status:#}");
    assert_eq!(
        status["jobs_started"].as_u64(),
        Some(started + 1),
        "{status:#}"
    );
}

/// `buildd cargo run` holds the warm dir for the build only: while the program runs (here it
/// waits on a flag file), an edit's job runs and `buildd wait` returns; the program then
/// ends as it would under plain `cargo run`, with its output and its arguments.
#[test]
fn a_running_buildd_cargo_run_program_does_not_hold_back_the_daemons_jobs() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    std::fs::write(
        ws.join("app/src/main.rs"),
        r#"fn main() {
    if let Some(flag) = std::env::args().nth(1) {
        std::fs::write(format!("{flag}.running"), "").unwrap();
        while std::path::Path::new(&flag).exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    println!("{}", core_lib::greeting("buildd"));
}
"#,
    )
    .unwrap();
    world.ok(&ws, &["wait"]);
    let flag = world.dir.path().join("hold");
    std::fs::write(&flag, "").unwrap();
    let running = world.dir.path().join("hold.running");
    let mut client = world.spawn(
        &ws,
        &[
            "cargo",
            "run",
            "-q",
            "-p",
            "app",
            "--",
            flag.to_str().unwrap(),
        ],
    );
    wait_until("the program to run", || running.exists());
    let before = world.last_job_id(&ws);

    edit(&ws.join("core-lib/src/lib.rs"), "hello, ", "hi, ");
    let status = world.wait_for(
        &ws,
        "the edit's job to finish while the program runs",
        |s| s["last_job"]["id"].as_u64().unwrap_or(0) > before && s["state"] == "idle",
    );
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    assert!(status["waiting_for"].is_null(), "{status:#}");
    world.ok(&ws, &["wait"]);
    assert!(
        client.child.try_wait().unwrap().is_none(),
        "the program still runs: {:?}",
        client.lines()
    );

    std::fs::remove_file(&flag).unwrap();
    let exit = client.wait_exit("the program to end once its flag is gone");
    assert!(exit.success(), "{exit:?}: {:?}", client.lines());
    // The program was built before the edit: it greets the old way.
    client.wait_line("the program's greeting", |l| l == "hello, buildd!");
}
