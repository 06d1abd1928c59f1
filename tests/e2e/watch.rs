//! `buildd watch --run/--test` and `buildd events`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use crate::procs;
use crate::support::{World, alive, edit, free_port, wait_until};

pub(crate) fn ask(port: u16, line: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    writeln!(stream, "{line}").ok()?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).ok()?;
    Some(answer.trim().to_owned())
}

/// The pid the bot printed in `listening on ... (pid N)` for `version`.
fn bot_pid(line: &str) -> u32 {
    line.rsplit_once("(pid ")
        .and_then(|(_, rest)| rest.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

#[test]
fn watch_run_restarts_the_bot_on_the_same_port_and_keeps_it_on_a_broken_edit() {
    let world = World::new();
    let ws = world.example("echo-bot", "bot");
    let port = free_port();
    let port_arg = port.to_string();
    let mut watch = world.spawn(
        &ws,
        &["watch", "--run", "--grace", "2s", "--", "--port", &port_arg],
    );

    let first = watch.wait_line("the bot to start", |l| l.contains("echo-bot 1 listening"));
    let old = bot_pid(&first);
    wait_until("the bot to answer", || {
        ask(port, "version").as_deref() == Some("1")
    });

    edit(
        &ws.join("src/main.rs"),
        "const VERSION: &str = \"1\"",
        "const VERSION: &str = \"2\"",
    );
    let second = watch.wait_line("the new bot", |l| l.contains("echo-bot 2 listening"));
    let new = bot_pid(&second);
    assert_ne!(old, new);
    wait_until("the new bot to answer", || {
        ask(port, "version").as_deref() == Some("2")
    });
    assert!(!alive(old as u64), "the old bot still runs");
    assert!(
        procs::group_members(old).is_empty(),
        "the old bot's process group has members left"
    );

    // A broken edit keeps the new bot answering.
    let before = world.last_job_id(&ws);
    edit(&ws.join("src/main.rs"), "fn reply(", "fn reply( broken");
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "failed", "{status:#}");
    watch.wait_line("the keep notice", |l| l.contains("keeping the old process"));
    assert_eq!(ask(port, "version").as_deref(), Some("2"));
    assert!(alive(new as u64));

    // Ctrl-C on the watch stops the bot too.
    assert!(watch.interrupt().success());
    wait_until("the bot to stop with the watch", || !alive(new as u64));
}

#[test]
fn watch_test_reports_passing_and_failing_tests_with_the_failure_place() {
    let world = World::new();
    let ws = world.workspace("mixed", "mixed");
    let watch = world.spawn(&ws, &["watch", "--test"]);
    watch.wait_line("the test summary", |l| l.starts_with("tests: "));
    let summary = watch
        .lines()
        .into_iter()
        .find(|l| l.starts_with("tests: "))
        .unwrap();
    assert!(summary.contains("1 passed, 1 failed"), "{summary}");

    let status = world.wait_for(&ws, "the test result in status", |ws| {
        !ws["last_tests"].is_null()
    });
    let tests = &status["last_tests"];
    assert_eq!(tests["passed"], 1, "{status:#}");
    assert_eq!(tests["failed"], 1, "{status:#}");
    let failing = &tests["failing"][0];
    assert!(
        failing["name"].as_str().unwrap().ends_with("tests::fails"),
        "{failing}"
    );
    assert_eq!(failing["line"], 14, "{failing}");
    // The failure is a diagnostic at its place, for editors.
    let file = ws.join("src/lib.rs");
    let diagnostic = status["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("tests::fails"))
        .unwrap_or_else(|| panic!("no test diagnostic in {status:#}"));
    assert_eq!(diagnostic["file"], file.to_str().unwrap());
    assert_eq!(diagnostic["line"], 14);
    let message = diagnostic["message"].as_str().unwrap();
    assert!(
        message.contains("one is not two") && message.contains("(left: 1, right: 2)"),
        "assert_eq!'s values are part of the message: {message}"
    );
}

#[test]
fn events_json_shows_the_sequence_of_one_edit() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let events = world.spawn(&ws, &["events", "--json"]);
    // The subscription is in place once `events` has registered: wait for the daemon to
    // count its connection.
    wait_until("the events client to connect", || {
        world.status(&ws)["daemon"]["clients"].as_u64() >= Some(2)
    });
    edit(&ws.join("util/src/lib.rs"), "\"!\"", "\"!!\"");
    events.wait_line("the job to finish", |l| {
        l.contains("\"kind\":\"job_finished\"")
    });
    events.wait_line("the idle state", |l| l.contains("\"state\":\"idle\""));

    let parsed: Vec<serde_json::Value> = events
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        parsed
            .iter()
            .all(|e| e["v"] == 1 && e["root"] == ws.to_str().unwrap())
    );
    let kinds: Vec<String> = parsed
        .iter()
        .map(|e| match e["kind"].as_str().unwrap() {
            "state" => format!("state:{}", e["state"].as_str().unwrap()),
            "stage_started" => format!("stage:{}", e["stage"].as_str().unwrap()),
            other => other.to_owned(),
        })
        .collect();
    let position = |kind: &str| {
        kinds
            .iter()
            .position(|k| k == kind)
            .unwrap_or_else(|| panic!("no {kind} in {kinds:?}"))
    };
    let order = [
        position("state:queued"),
        position("job_started"),
        position("state:running"),
        position("stage:clippy"),
        position("unit_finished"),
        position("stage:build"),
        position("job_finished"),
        position("state:idle"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "out of order: {kinds:?}"
    );
    // `build` and `test` run as one cargo invocation, reported as the build stage: the job
    // names both, and no test stage starts on its own.
    let started = parsed.iter().find(|e| e["kind"] == "job_started").unwrap();
    assert_eq!(
        started["stages"],
        serde_json::json!(["clippy", "build", "test"]),
        "{started:#}"
    );
    assert!(!kinds.iter().any(|k| k == "stage:test"), "{kinds:?}");
    let finished = parsed.iter().find(|e| e["kind"] == "job_finished").unwrap();
    assert_eq!(finished["summary"]["result"], "success");
}

#[test]
fn watch_test_run_starts_a_program_that_has_no_tests() {
    // nextest says "no tests to run" with an exit code of its own: zero tests is a pass.
    assert!(
        crate::support::on_path("cargo-nextest").is_some(),
        "this test needs cargo-nextest, which this machine has"
    );
    let world = World::new();
    let ws = world.dir.path().join("notests");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(
        ws.join("Cargo.toml"),
        "[package]\nname = \"notests\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        ws.join("src/main.rs"),
        "fn main() {\n    println!(\"notests up\");\n    std::thread::sleep(std::time::Duration::from_secs(600));\n}\n",
    )
    .unwrap();
    let mut watch = world.spawn(&ws, &["watch", "--test", "--run", "--grace", "1s"]);
    let summary = watch.wait_line("the test summary", |l| l.starts_with("tests: "));
    assert!(
        summary.contains("0 passed, 0 failed") && summary.contains("cargo nextest run"),
        "{summary}"
    );
    watch.wait_line("the program to start", |l| l.contains("notests up"));
    assert!(
        !watch.lines().iter().any(|l| l.contains("not starting")),
        "{:?}",
        watch.lines()
    );
    watch.interrupt();
}

#[test]
fn ctrl_c_while_the_tests_run_stops_the_watch_once_they_end() {
    // The interrupt comes while `watch` waits for the tests, not for the daemon's next
    // message: it must be kept, not lost (the watch then ran on forever).
    let world = World::new();
    let ws = world.dir.path().join("slowtests");
    let started = world.dir.path().join("tests-started");
    let flag = world.dir.path().join("tests-may-end");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(
        ws.join("Cargo.toml"),
        "[package]\nname = \"slowtests\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(&flag, "").unwrap();
    std::fs::write(
        ws.join("src/lib.rs"),
        format!(
            "#[test]\nfn waits_for_the_flag() {{\n    std::fs::write({started:?}, \"\").unwrap();\n    \
             let t = std::time::Instant::now();\n    \
             while std::path::Path::new({flag:?}).exists() && t.elapsed().as_secs() < 300 {{\n        \
             std::thread::sleep(std::time::Duration::from_millis(20));\n    }}\n}}\n"
        ),
    )
    .unwrap();
    let mut watch = world.spawn(&ws, &["watch", "--test"]);
    wait_until("the test to start", || started.exists());
    let pid = nix::unistd::Pid::from_raw(watch.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    std::fs::remove_file(&flag).unwrap();
    let status = watch.wait_exit("the watch to stop after its tests ended");
    assert!(status.success(), "{status:?}: {:?}", watch.lines());
    watch.wait_line("the test summary", |l| {
        l.starts_with("tests: 1 passed, 0 failed")
    });
}

#[test]
fn piped_watch_prints_each_error_as_a_file_line_column_line() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    // `spawn` pipes stdout and stderr: no terminal, no progress bar.
    let watch = world.spawn(&ws, &["watch"]);
    watch.wait_line("the watch to start", |l| l.starts_with("watching "));
    edit(&ws.join("util/src/lib.rs"), "\"!\"", "42");
    let line = watch.wait_line("the error line", |l| {
        l.starts_with("util/src/lib.rs:2:5: error: ")
    });
    assert_eq!(line, "util/src/lib.rs:2:5: error: mismatched types");
    watch.wait_line("the failed job", |l| {
        l.contains(" failed (") && l.contains("1 error(s)")
    });
}
