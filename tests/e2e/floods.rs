//! Forged reports and floods of connections: refused with a clear error, and the daemon goes
//! on building.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{World, append, wait_until};

fn connect(world: &World) -> UnixStream {
    let stream = UnixStream::connect(world.home().join("run/daemon.sock")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
}

/// Sends `line` and reads one line back. A daemon that refuses a connection may write why
/// and close before the line is written: the answer is read whether or not the write failed.
fn ask(stream: &mut UnixStream, line: &Value) -> Value {
    let _ = writeln!(stream, "{line}");
    let mut answer = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut answer)
        .unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}

fn hello() -> Value {
    json!({"id": 0, "type": "hello", "protocol": 1,
        "version": env!("CARGO_PKG_VERSION"), "client": "test"})
}

fn tests_report(root: &Path, job: u64, file: &str) -> Value {
    json!({"id": 1, "type": "report", "root": root, "report": {
        "report": "tests", "job": job, "runner": "cargo test", "passed": 0, "failed": 1,
        "ignored": 0, "duration_ms": 1, "exit_code": 101,
        "failing": [{"name": "tests::forged", "file": file, "line": 1, "column": 1,
            "message": "forged"}]}})
}

#[test]
fn forged_reports_are_refused_and_a_later_job_clears_every_diagnostic() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let job = world.last_job_id(&ws);
    std::os::unix::fs::symlink("/etc/passwd", ws.join("util/src/passwd.rs")).unwrap();
    let mut raw = connect(&world);
    assert_eq!(ask(&mut raw, &hello())["type"], "hello");

    let forged = [
        (job + 1000, "util/src/lib.rs", "job"),
        (job, "/etc/passwd", "outside the workspace"),
        (job, "util/../../outside.rs", "outside the workspace"),
        (job, "util/src/passwd.rs", "outside the workspace"),
    ];
    for (forged_job, file, says) in forged {
        let answer = ask(&mut raw, &tests_report(&ws, forged_job, file));
        assert_eq!(answer["type"], "error", "{file}: {answer}");
        assert_eq!(answer["code"], "bad_request", "{file}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(says), "{file}: {message}");
    }
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["diagnostics"], json!([]), "{status:#}");
    assert!(status["last_tests"].is_null(), "{status:#}");

    // The report of the job that ran is taken, and the next job clears what it placed.
    let answer = ask(&mut raw, &tests_report(&ws, job, "util/src/lib.rs"));
    assert_eq!(answer["type"], "ok", "{answer}");
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(
        status["diagnostics"].as_array().unwrap().len(),
        1,
        "{status:#}"
    );
    std::fs::remove_file(ws.join("util/src/passwd.rs")).unwrap();
    append(&ws.join("util/src/lib.rs"), "\npub fn after_reports() {}\n");
    let status = world.wait_settled(&ws, job);
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    assert_eq!(status["diagnostics"], json!([]), "{status:#}");
    assert_eq!(status["last_job"]["errors"], 0, "{status:#}");
}

#[test]
fn connections_past_the_cap_are_refused_and_the_daemon_still_serves_and_builds() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok_with(&ws, &[("BUILDD_MAX_CONNECTIONS", "50")], &["wait"]);
    let job = world.last_job_id(&ws);

    // Idle connections after their hello; the hello of those past the cap gets the refusal.
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..60 {
        let mut stream = connect(&world);
        let answer = ask(&mut stream, &hello());
        if answer["type"] == "hello" {
            open.push(stream);
        } else {
            refused.push(answer);
        }
    }
    assert_eq!(open.len(), 50, "refused: {refused:?}");
    assert_eq!(refused.len(), 10);
    for answer in &refused {
        assert_eq!(answer["code"], "busy", "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("close idle clients"),
            "{answer}"
        );
    }
    // The CLI says so and what to do, at once, with the refusal's exit code.
    let output = world.run(&ws, &["status"]);
    assert_eq!(output.status.code(), Some(5), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("too many connections"), "{stderr}");
    assert!(stderr.contains("close idle clients"), "{stderr}");

    // Once some close, a normal command works, and an edit still starts cargo.
    open.truncate(40);
    wait_until("a free connection", || {
        world.run(&ws, &["status"]).status.success()
    });
    append(
        &ws.join("util/src/lib.rs"),
        "\npub fn after_the_flood() {}\n",
    );
    let status = world.wait_settled(&ws, job);
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    assert!(
        status["last_job"]["units_compiled"].as_u64() > Some(0),
        "{status:#}"
    );
    drop(open);
}
