//! `buildd watch --run` restarts the program as soon as the job's build stage linked its
//! binary, while the rest of the job (the test build) goes on, and says so when the job then
//! fails. The `held` fixture's test build waits while a file next to the workspace exists, so
//! the test knows the job is still running when the new program announces itself.

use std::path::{Path, PathBuf};

use crate::support::{Spawned, World, alive, edit};

/// The pid in the line `heldbot N up (pid P)` of version `version`, once it is printed.
fn program_up(watch: &Spawned, version: &str) -> u32 {
    let wanted = format!("heldbot {version} up (pid ");
    let line = watch.wait_line(&format!("heldbot {version} to start"), |l| {
        l.contains(&wanted)
    });
    line.rsplit_once("(pid ")
        .and_then(|(_, rest)| rest.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// The `held` fixture under `buildd watch ARGS`, its first program up and its first job
/// done; returns the workspace, the hold file, `src/main.rs` and the watch.
fn held_watch(world: &World, args: &[&str]) -> (PathBuf, PathBuf, PathBuf, Spawned, u32) {
    let ws = world.workspace("held", "held");
    let hold = world.dir.path().join("hold");
    let main = ws.join("src/main.rs");
    let watch = world.spawn(&ws, args);
    let first = program_up(&watch, "1");
    // The first job may still run its test build: the hold is for the next one.
    world.wait_settled(&ws, 0);
    (ws, hold, main, watch, first)
}

/// Changes the program's version from `from` to `to`.
fn set_version(main: &Path, from: &str, to: &str) {
    edit(
        main,
        &format!("const VERSION: &str = \"{from}\""),
        &format!("const VERSION: &str = \"{to}\""),
    );
}

fn count(watch: &Spawned, text: &str) -> usize {
    watch.lines().iter().filter(|l| l.contains(text)).count()
}

#[test]
fn watch_run_restarts_the_program_once_its_binary_is_linked_before_the_job_ends() {
    let world = World::new();
    let (ws, hold, main, mut watch, first) =
        held_watch(&world, &["watch", "--run", "--grace", "2s"]);

    // The test build of the next job waits for the hold: the job cannot end before the
    // test removes it.
    std::fs::write(&hold, "").unwrap();
    let before = world.last_job_id(&ws);
    set_version(&main, "1", "2");
    let second = program_up(&watch, "2");
    assert_ne!(first, second);
    assert!(!alive(first as u64), "the old program still runs");
    let status = world.status(&ws);
    let ws_status = &status["workspaces"][0];
    assert_eq!(ws_status["state"], "running", "{status:#}");
    // The build stage may still be reporting its last units: what matters is that the job
    // runs on, and its test build cannot end while the hold exists.
    let job = ws_status["current_job"]["id"].as_u64().unwrap();
    assert!(job > before, "{status:#}");
    assert_eq!(world.last_job_id(&ws), before, "a job finished: {status:#}");
    let restarted = watch.wait_line("the restart notice", |l| l.contains("restarted with"));
    assert!(
        restarted.contains(&format!("(pid {second};"))
            && restarted.contains(&format!("linked by job #{job}, which goes on")),
        "{restarted}"
    );

    // The test stage finds the binary up to date: no second restart when the job ends.
    std::fs::remove_file(&hold).unwrap();
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_eq!(status["last_job"]["id"], job, "{status:#}");
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    watch.wait_line("the job line", |l| l.starts_with(&format!("#{job} ")));
    assert_eq!(count(&watch, "restarted with"), 1, "{:#?}", watch.lines());
    assert_eq!(count(&watch, "heldbot 2 up"), 1, "{:#?}", watch.lines());
    assert!(alive(second as u64));

    // A job that fails after the link: the program runs the new build, and says so, to
    // the daemon too (a subscriber sees the report).
    let events = world.events(&ws);
    std::fs::write(fail_flag(&hold), "").unwrap();
    set_version(&main, "2", "3");
    let third = program_up(&watch, "3");
    let status = world.wait_settled(&ws, job);
    assert_eq!(status["state"], "failed", "{status:#}");
    let failed = status["last_job"]["id"].as_u64().unwrap();
    let notice = watch.wait_line("the notice of the failure after the link", |l| {
        l.contains(&format!("job #{failed} failed after it linked the binary"))
    });
    assert!(
        notice.contains(&format!("the program runs that new build (pid {third})")),
        "{notice}"
    );
    assert!(
        !watch.lines().iter().any(|l| l.contains("keeping the old")),
        "{:#?}",
        watch.lines()
    );
    assert!(alive(third as u64));
    let report = events.wait_line("the kept report", |l| {
        l.contains("\"kind\":\"process\"") && l.contains("failed after it linked")
    });
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["report"]["action"], "kept", "{report:#}");
    assert_eq!(report["report"]["pid"], third, "{report:#}");
    // The event the restart came from: the build stage's binary, in place in the warm dir.
    let target_dir = status["target_dir"].as_str().unwrap();
    let linked = events
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["kind"] == "executable" && e["job"] == failed && e["test"] == false)
        .unwrap_or_else(|| {
            panic!(
                "no executable event of job #{failed}: {:#?}",
                events.lines()
            )
        });
    assert_eq!(linked["stage"], "build", "{linked:#}");
    assert_eq!(linked["target"], "heldbot", "{linked:#}");
    assert_eq!(linked["kinds"], serde_json::json!(["bin"]), "{linked:#}");
    assert_eq!(linked["fresh"], false, "{linked:#}");
    assert_eq!(
        linked["path"],
        Path::new(target_dir)
            .join("debug/heldbot")
            .to_str()
            .unwrap(),
        "{linked:#}"
    );
    assert!(watch.interrupt().success());
    assert!(!alive(third as u64));
}

fn fail_flag(hold: &Path) -> PathBuf {
    let mut fail = hold.as_os_str().to_owned();
    fail.push(".fail");
    fail.into()
}

#[test]
fn watch_run_with_tests_still_waits_for_the_tests_before_the_restart() {
    let world = World::new();
    let (ws, hold, main, watch, _) =
        held_watch(&world, &["watch", "--run", "--test", "--grace", "2s"]);

    std::fs::write(&hold, "").unwrap();
    let before = world.last_job_id(&ws);
    set_version(&main, "1", "2");
    // The job reaches its held test build: the binary is linked, and no restart follows.
    world.wait_for(&ws, "the held test stage", |ws| {
        ws["current_job"]["stage"] == "test"
            && ws["current_job"]["id"]
                .as_u64()
                .is_some_and(|id| id > before)
    });
    assert_eq!(count(&watch, "heldbot 2 up"), 0, "{:#?}", watch.lines());
    std::fs::remove_file(&hold).unwrap();
    program_up(&watch, "2");
    let summary = watch.wait_line("the test summary", |l| l.starts_with("tests: 1 passed"));
    let lines = watch.lines();
    let tests_at = lines.iter().position(|l| *l == summary).unwrap();
    let up_at = lines
        .iter()
        .position(|l| l.contains("heldbot 2 up"))
        .unwrap();
    assert!(tests_at < up_at, "{lines:#?}");
}

#[test]
fn while_a_watch_runs_a_program_its_build_goes_first_and_reports_the_errors() {
    let world = World::new();
    let (ws, _hold, main, mut watch, _) = held_watch(&world, &["watch", "--run", "--grace", "2s"]);

    // Status lists the build first, as the next job runs it, and says why.
    let status = world.workspace_status(&ws).unwrap();
    let jobs = status["jobs"].as_array().unwrap();
    assert_eq!(jobs[0]["name"], "build", "{status:#}");
    assert_eq!(jobs[0]["diagnostics"], true, "{status:#}");
    assert!(
        jobs[0]["note"]
            .as_str()
            .is_some_and(|n| n.contains("runs first") && n.contains("`heldbot`")),
        "{status:#}"
    );
    let events = world.events(&ws);

    // The program restarts from the build stage, which links it before clippy starts.
    let before = world.last_job_id(&ws);
    set_version(&main, "1", "2");
    program_up(&watch, "2");
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    let job = status["last_job"]["id"].as_u64().unwrap();
    assert_eq!(
        status["last_job"]["stages"],
        serde_json::json!(["build", "clippy", "test"]),
        "{status:#}"
    );
    let of_job = events.job_events(job);
    let linked = of_job
        .iter()
        .position(|e| e["kind"] == "executable" && e["target"] == "heldbot" && e["test"] == false)
        .unwrap_or_else(|| panic!("no executable event of job #{job}: {of_job:#?}"));
    let clippy = of_job
        .iter()
        .position(|e| e["kind"] == "stage_started" && e["stage"] == "clippy")
        .unwrap_or_else(|| panic!("clippy did not run in job #{job}: {of_job:#?}"));
    assert!(linked < clippy, "{of_job:#?}");
    assert_eq!(of_job[linked]["stage"], "build", "{of_job:#?}");

    // An error that stops the build is shown, although clippy never runs: the build
    // reported it (what an early run found is cleared at the job's end unless the job said
    // it too). The program keeps running.
    edit(
        &main,
        "fn main() {\n",
        "fn main() {\n    let broken: u32 = \"not a number\";\n",
    );
    let status = world.wait_settled(&ws, job);
    assert_eq!(status["state"], "failed", "{status:#}");
    let failed = status["last_job"]["id"].as_u64().unwrap();
    let messages = crate::support::diagnostic_messages(&status);
    assert!(
        messages.iter().any(|m| m.contains("mismatched types")),
        "{messages:?}\n{status:#}"
    );
    let of_failed = events.job_events(failed);
    assert!(
        !of_failed
            .iter()
            .any(|e| e["kind"] == "stage_started" && e["stage"] == "clippy"),
        "{of_failed:#?}"
    );
    assert!(
        of_failed.iter().any(|e| e["kind"] == "diagnostic"
            && e["diagnostic"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("mismatched types"))),
        "the build stage sent the error: {of_failed:#?}"
    );
    assert_eq!(count(&watch, "heldbot 3 up"), 0, "{:#?}", watch.lines());

    // Once the watch is gone, clippy goes first again.
    assert!(watch.interrupt().success());
    world.wait_for(&ws, "clippy to be the first job again", |ws| {
        ws["jobs"][0]["name"] == "clippy"
    });
    edit(&main, "    let broken: u32 = \"not a number\";\n", "");
    let status = world.wait_settled(&ws, failed);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_eq!(
        status["last_job"]["stages"],
        serde_json::json!(["clippy", "build", "test"]),
        "{status:#}"
    );
}
