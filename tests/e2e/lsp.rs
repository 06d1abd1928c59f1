//! `buildd lsp` over stdio: real LSP conversations with the real binary, its real daemon and
//! the real cargo on the `lsp-*` fixtures.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::lsp_client::{Caps, LspClient, file_uri, init_params};
use crate::support::{World, alive, append, edit, wait_until};

/// Fast jobs for tests that only look at diagnostics.
fn check_only() -> Value {
    json!({"stages": ["check"]})
}

/// Writes the workspace's `Cargo.lock` before the daemon sees it. Without one, cargo writes
/// it during the first job and the daemon, seeing a manifest change, runs a second job: a
/// test that counts jobs or progresses must not meet that one by surprise.
fn lock(ws: &Path) {
    let status = std::process::Command::new("cargo")
        .args(["generate-lockfile", "--offline", "--quiet"])
        .current_dir(ws)
        .status()
        .unwrap();
    assert!(status.success());
}

fn save(client: &mut LspClient, file: &Path) {
    client.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": file_uri(file)}}),
    );
}

fn range(l1: u64, c1: u64, l2: u64, c2: u64) -> Value {
    json!({"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}})
}

fn with_message<'a>(diagnostics: &'a [Value], start: &str) -> &'a Value {
    diagnostics
        .iter()
        .find(|d| d["message"].as_str().unwrap_or("").starts_with(start))
        .unwrap_or_else(|| panic!("no diagnostic starting with {start:?} in {diagnostics:#?}"))
}

fn has_message(start: &str) -> impl Fn(&[Value]) -> bool + '_ {
    move |ds: &[Value]| {
        ds.iter()
            .any(|d| d["message"].as_str().unwrap_or("").starts_with(start))
    }
}

/// The error the tests put on the fixture's line, after an emoji and an accented letter.
const FACE: &str = "let face = \"😀é\";";
const FACE_ERROR: &str = "let face = \"😀é\"; let _n: u32 = \"ü\";";

#[test]
fn an_error_after_an_emoji_has_its_exact_utf16_range_and_is_cleared_when_fixed() {
    let world = World::new();
    let ws = world.workspace("lsp-unicode", "ws");
    let file = ws.join("src/lib.rs");
    let mut client = LspClient::start(&world, &ws, "editor", &[]);
    let init = client.initialize(init_params(&[&ws], check_only(), Caps::default()));
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-16");
    assert_eq!(init["serverInfo"]["name"], "buildd");
    let first = client.wait_state(&ws, "the first job to end", |s| {
        s["state"] == "idle" && s["job"].is_u64() && s["daemon"] == "up"
    });

    client.mark();
    edit(&file, FACE, FACE_ERROR);
    save(&mut client, &file);
    let diagnostics =
        client.wait_diagnostics(&file, "the type error", has_message("mismatched types"));
    let error = with_message(&diagnostics, "mismatched types");
    // rustc says columns 36..39 in characters; the emoji before them is two UTF-16 units.
    assert_eq!(error["range"], range(4, 36, 4, 39), "{error:#}");
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .nth(4)
        .unwrap()
        .to_owned();
    let start = line.find("\"ü\"").unwrap();
    assert_eq!(
        error["range"]["start"]["character"],
        line[..start].encode_utf16().count()
    );
    assert_eq!(error["severity"], 1);
    assert_eq!(error["source"], "buildd");
    assert_eq!(error["code"], "E0308");
    assert_eq!(
        error["codeDescription"]["href"],
        "https://doc.rust-lang.org/error_codes/E0308.html"
    );
    let failed = client.wait_state(&ws, "the failed job", |s| {
        s["state"] == "failed" && s["job"].as_u64() > first["job"].as_u64()
    });
    assert_eq!(failed["errors"], 1, "{failed:#}");

    client.mark();
    edit(&file, FACE_ERROR, FACE);
    save(&mut client, &file);
    client.wait_diagnostics(&file, "the error to clear", |ds| ds.is_empty());
    let fixed = client.wait_state(&ws, "the fixed job", |s| s["state"] == "idle");
    assert_eq!(fixed["errors"], 0, "{fixed:#}");
    assert!(client.exit().success());
}

/// The `lsp-unicode` fixture under an editor that sets nothing, so the default jobs run
/// (clippy first), after the first job's end: the workspace, its `src/lib.rs`, the client.
fn with_default_jobs(world: &World) -> (PathBuf, PathBuf, LspClient) {
    let ws = world.workspace("lsp-unicode", "ws");
    lock(&ws);
    let file = ws.join("src/lib.rs");
    let mut client = LspClient::start(world, &ws, "editor", &[]);
    client.initialize(init_params(&[&ws], json!({}), Caps::default()));
    client.wait_state(&ws, "the first job to end", |s| {
        s["state"] == "idle" && s["job"].is_u64() && s["daemon"] == "up"
    });
    (ws, file, client)
}

#[test]
fn by_default_clippy_lints_reach_the_editor_with_their_code_and_link() {
    let world = World::new();
    let (_, file, mut client) = with_default_jobs(&world);
    client.mark();
    append(&file, "\npub fn one() -> u8 {\n    return 1;\n}\n");
    save(&mut client, &file);
    let diagnostics = client.wait_diagnostics(
        &file,
        "clippy's needless_return",
        has_message("unneeded `return` statement"),
    );
    let lint = with_message(&diagnostics, "unneeded `return` statement");
    assert_eq!(lint["code"], "clippy::needless_return", "{lint:#}");
    assert_eq!(
        lint["codeDescription"]["href"],
        "https://rust-lang.github.io/rust-clippy/master/index.html#needless_return"
    );
    assert_eq!(lint["severity"], 2, "a warning: {lint:#}");
    assert!(client.exit().success());
}

#[test]
fn the_jobs_diagnostics_that_repeat_the_early_runs_are_not_published_again() {
    let world = World::new();
    // The default jobs: clippy records the crate's compiler command for the early run.
    let (ws, file, mut client) = with_default_jobs(&world);
    // An early run needs the cold job's dep-info, read after its end with the dir's size.
    wait_until("the cold job's dep-info", || {
        world
            .workspace_status(&ws)
            .is_some_and(|s| s["target_dir_size"].is_u64())
    });

    client.mark();
    edit(&file, "    face\n", "    let unused_here = 1;\n    face\n");
    save(&mut client, &file);
    let warning = "unused variable: `unused_here`";
    client.wait_diagnostics(&file, "the warning", has_message(warning));
    let done = client.wait_state(&ws, "the job to end", |s| {
        s["state"] == "idle" && s["warnings"] == 1
    });
    let job = done["job"].as_u64().unwrap();
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(
        status["early"]["job"],
        job - 1,
        "an early run ran beside the job, so both reported the warning: {status:#}"
    );
    let uri = file_uri(&file);
    let publishes: Vec<Value> = client
        .since_mark()
        .iter()
        .filter(|m| m["method"] == "textDocument/publishDiagnostics")
        .filter(|m| m["params"]["uri"] == uri.as_str())
        .cloned()
        .collect();
    assert_eq!(
        publishes.len(),
        1,
        "one publish, the early run's; the job's same warning changed nothing: {publishes:#?}"
    );
    let shown = publishes[0]["params"]["diagnostics"].as_array().unwrap();
    assert!(has_message(warning)(shown), "{shown:#?}");
    // cargo strips rustc's colours from the job's rendered text; the early run's is as plain.
    let rendered = shown[0]["data"]["rendered"].as_str().unwrap();
    assert!(
        rendered.starts_with("warning: unused variable"),
        "{rendered:?}"
    );
    assert!(client.exit().success());
}

#[test]
fn an_error_inside_a_macro_rules_expansion_points_at_the_call_and_the_definition() {
    let world = World::new();
    let ws = world.workspace("lsp-macro", "ws");
    let file = ws.join("src/lib.rs");
    let mut client = LspClient::start(&world, &ws, "editor", &[]);
    client.initialize(init_params(&[&ws], check_only(), Caps::default()));
    let diagnostics =
        client.wait_diagnostics(&file, "the macro's error", has_message("mismatched types"));
    let error = with_message(&diagnostics, "mismatched types");
    // `"forty-two"` in the body of `make_answer!`: in the workspace, so the error stays there.
    assert_eq!(error["range"], range(5, 12, 5, 23), "{error:#}");
    let related = error["relatedInformation"].as_array().unwrap();
    let at = |r: Value, message: &str| {
        related.iter().any(|info| {
            info["location"]["uri"] == file_uri(&file).as_str()
                && info["location"]["range"] == r
                && info["message"] == message
        })
    };
    assert!(
        at(range(10, 0, 10, 20), "in this expansion of `make_answer!`"),
        "{related:#?}"
    );
    assert!(
        at(range(2, 0, 2, 24), "`make_answer!` is defined here"),
        "{related:#?}"
    );
}

#[test]
fn a_borrow_check_error_relates_the_move_and_keeps_the_suggested_clone() {
    let world = World::new();
    let ws = world.workspace("lsp-borrow", "ws");
    let file = ws.join("src/lib.rs");
    let mut client = LspClient::start(&world, &ws, "editor", &[]);
    client.initialize(init_params(&[&ws], check_only(), Caps::default()));
    let diagnostics = client.wait_diagnostics(
        &file,
        "the borrow error",
        has_message("borrow of moved value"),
    );
    let error = with_message(&diagnostics, "borrow of moved value");
    assert_eq!(error["range"], range(10, 12, 10, 18), "{error:#}");
    assert_eq!(error["code"], "E0382");
    assert_eq!(
        error["codeDescription"]["href"],
        "https://doc.rust-lang.org/error_codes/E0382.html"
    );
    let related = error["relatedInformation"].as_array().unwrap();
    let moved = related
        .iter()
        .find(|r| r["message"] == "value moved here")
        .unwrap_or_else(|| panic!("no move in {related:#?}"));
    assert_eq!(moved["location"]["uri"], file_uri(&file).as_str());
    assert_eq!(moved["location"]["range"], range(9, 24, 9, 30));
    assert!(
        related.iter().any(|r| r["message"]
            .as_str()
            .unwrap()
            .starts_with("move occurs because `values` has type `Vec<u32>`")),
        "{related:#?}"
    );
    let clone = &error["data"]["suggestions"][0];
    assert_eq!(clone["applicability"], "MachineApplicable", "{error:#}");
    assert_eq!(clone["edits"][0]["newText"], ".clone()");
    assert_eq!(clone["edits"][0]["range"], range(9, 30, 9, 30));
}

/// The `$/progress` notifications of one token, in order.
fn progress_of(messages: &[Value], token: &Value) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m["method"] == "$/progress" && m["params"]["token"] == *token)
        .map(|m| m["params"]["value"].clone())
        .collect()
}

/// Checks a job's progress: created, then begin with the stages, reports whose percentage
/// only grows, an end with the result. Returns the reports' percentages.
fn check_progress(messages: &[Value], token: &Value, stages: &[&str], end: &str) -> Vec<u64> {
    let created = messages
        .iter()
        .position(|m| {
            m["method"] == "window/workDoneProgress/create" && m["params"]["token"] == *token
        })
        .unwrap_or_else(|| panic!("{token} was never created"));
    let first = messages
        .iter()
        .position(|m| m["method"] == "$/progress" && m["params"]["token"] == *token)
        .unwrap();
    assert!(created < first, "progress before its token was created");
    let values = progress_of(messages, token);
    let (begin, rest) = values.split_first().unwrap();
    let (last, reports) = rest.split_last().unwrap();
    assert_eq!(begin["kind"], "begin", "{values:#?}");
    assert_eq!(begin["title"], "buildd");
    for stage in stages {
        assert!(
            begin["message"].as_str().unwrap().contains(stage),
            "{begin:#}"
        );
    }
    assert_eq!(last["kind"], "end", "{values:#?}");
    assert!(
        last["message"].as_str().unwrap().starts_with(end),
        "{last:#}"
    );
    assert!(reports.iter().all(|r| r["kind"] == "report"), "{values:#?}");
    let percentages: Vec<u64> = reports
        .iter()
        .map(|r| r["percentage"].as_u64().unwrap())
        .collect();
    assert!(
        percentages.windows(2).all(|w| w[0] <= w[1]),
        "the percentage went down: {percentages:?}"
    );
    percentages
}

#[test]
fn every_job_has_a_progress_from_its_stages_to_its_result_with_a_growing_percentage() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    lock(&ws);
    let mut client = LspClient::start(&world, &ws, "editor", &[]);
    // The default stages: build, then test.
    client.initialize(init_params(&[&ws], json!({}), Caps::default()));
    let first = client.wait_notification("$/progress", "the first job's end", |p| {
        p["value"]["kind"] == "end"
    });
    let first_token = first["token"].clone();
    let percentages = check_progress(client.seen(), &first_token, &["build", "test"], "done");
    assert!(
        percentages.last() > percentages.first(),
        "the percentage did not grow: {percentages:?}"
    );

    // The next job knows how many units the last one had: its estimate is exact.
    let file = ws.join("core-lib/src/lib.rs");
    client.mark();
    edit(
        &file,
        "pub fn greeting",
        "pub fn shout(s: &str) -> String {\n    s.to_uppercase()\n}\n\npub fn greeting",
    );
    save(&mut client, &file);
    let token = client.wait_notification("$/progress", "a new job's end", |p| {
        p["value"]["kind"] == "end" && p["token"] != first_token
    })["token"]
        .clone();
    let percentages = check_progress(client.seen(), &token, &["build", "test"], "done");
    assert!(percentages.len() >= 2, "{percentages:?}");
    // Status bars follow the progress too, through buildd/state.
    let running = client.wait_state(&ws, "a state with the job's progress", |s| {
        s["state"] == "running" && s["percentage"].as_u64() > Some(0)
    });
    assert!(
        running["message"].as_str().unwrap().contains('/'),
        "{running:#}"
    );
    assert!(
        *percentages.last().unwrap() >= 90,
        "a known total ends near 100: {percentages:?}"
    );
    let reports = progress_of(client.seen(), &token);
    assert!(
        reports.iter().any(|r| r["message"]
            .as_str()
            .unwrap_or("")
            .contains("core-lib compiled")),
        "no report named the crate compiled: {reports:#?}"
    );
}

#[test]
fn a_cancelled_job_ends_its_progress_and_a_rebuild_runs_again() {
    let world = World::new();
    let ws = world.workspace("lsp-gate", "ws");
    let gate = world.dir.path().join("gate");
    let mut client = LspClient::start(
        &world,
        &ws,
        "editor",
        &[("BUILDD_TEST_GATE", gate.to_str().unwrap())],
    );
    client.initialize(init_params(&[&ws], check_only(), Caps::default()));
    // The build script holds the job until the gate opens: it is surely running.
    let begin = client.wait_notification("$/progress", "the job to begin", |p| {
        p["value"]["kind"] == "begin"
    });
    client.mark();
    let response = client.request(
        "workspace/executeCommand",
        json!({"command": "buildd.cancel", "arguments": [file_uri(&ws)]}),
    );
    assert_eq!(response["result"], Value::Null, "{response}");
    let end = client.wait_notification("$/progress", "the cancelled job's end", |p| {
        p["token"] == begin["token"] && p["value"]["kind"] == "end"
    });
    assert_eq!(end["value"]["message"], "cancelled");
    let state = client.wait_state(&ws, "the cancelled state", |s| {
        s["message"] == "cancelled" && s["state"] != "running"
    });
    assert_eq!(state["percentage"], Value::Null);

    std::fs::write(&gate, "open").unwrap();
    client.mark();
    let response = client.request(
        "workspace/executeCommand",
        json!({"command": "buildd.rebuild", "arguments": []}),
    );
    assert_eq!(response["result"], Value::Null, "{response}");
    let end = client.wait_notification("$/progress", "the rebuild's end", |p| {
        p["token"] != begin["token"] && p["value"]["kind"] == "end"
    });
    assert!(
        end["value"]["message"]
            .as_str()
            .unwrap()
            .starts_with("done"),
        "{end:#}"
    );
    client.wait_state(&ws, "idle after the rebuild", |s| s["state"] == "idle");
}

#[test]
fn two_editors_on_one_workspace_both_get_diagnostics_and_one_leaving_disturbs_neither() {
    let world = World::new();
    let ws = world.workspace("lsp-unicode", "ws");
    let file = ws.join("src/lib.rs");
    edit(&file, FACE, FACE_ERROR);
    let mut first = LspClient::start(&world, &ws, "first", &[]);
    first.initialize(init_params(&[&ws], check_only(), Caps::default()));
    let diagnostics =
        first.wait_diagnostics(&file, "the first editor's error", has_message("mismatched"));
    assert_eq!(
        with_message(&diagnostics, "mismatched")["range"],
        range(4, 36, 4, 39)
    );
    let failed = first.wait_state(&ws, "the failed job", |s| s["state"] == "failed");

    // The second editor comes after the job: the daemon's snapshot gives it the error, in
    // the UTF-8 columns it asked for (the emoji is four bytes, the accent two).
    let mut second = LspClient::start(&world, &ws, "second", &[]);
    let init = second.initialize(init_params(
        &[&ws],
        check_only(),
        Caps {
            utf8: true,
            ..Caps::default()
        },
    ));
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-8");
    let diagnostics = second.wait_diagnostics(
        &file,
        "the second editor's error",
        has_message("mismatched"),
    );
    assert_eq!(
        with_message(&diagnostics, "mismatched")["range"],
        range(4, 39, 4, 43)
    );
    let state = second.wait_state(&ws, "the second editor's state", |s| s["state"] == "failed");
    assert_eq!(
        state["job"], failed["job"],
        "no new job ran for the second editor"
    );
    assert_eq!(state["errors"], 1);

    // Both follow a new job.
    first.mark();
    second.mark();
    edit(&file, "let _n: u32", "let _m: u64");
    save(&mut second, &file);
    for client in [&mut first, &mut second] {
        client.wait_diagnostics(&file, "the changed error", |ds| {
            ds.iter().any(|d| {
                d["relatedInformation"][0]["message"] == "expected due to this"
                    && d["message"].as_str().unwrap().contains("expected `u64`")
            })
        });
    }

    let daemon = world.status(&ws)["daemon"]["pid"].as_u64().unwrap();
    assert!(first.exit().success());
    assert!(alive(daemon), "the daemon stopped with the first editor");
    // The daemon counts the second editor and each `buildd status` while it asks.
    wait_until("the first editor's connection to close", || {
        world.status(&ws)["daemon"]["clients"] == 2
    });
    second.mark();
    edit(&file, "let _m: u64 = \"ü\";", "let _m: u64 = 7;");
    save(&mut second, &file);
    second.wait_diagnostics(&file, "the fix after the first editor left", |ds| {
        ds.is_empty()
    });
    assert_eq!(world.status(&ws)["daemon"]["pid"], daemon);
}

#[test]
fn a_daemon_that_dies_is_restarted_and_the_workspace_registered_again() {
    let world = World::new();
    let ws = world.workspace("lsp-unicode", "ws");
    let file = ws.join("src/lib.rs");
    edit(&file, FACE, FACE_ERROR);
    let mut client = LspClient::start(&world, &ws, "editor", &[]);
    client.initialize(init_params(&[&ws], check_only(), Caps::default()));
    client.wait_diagnostics(&file, "the error", has_message("mismatched"));
    client.wait_state(&ws, "the failed job", |s| s["state"] == "failed");
    let old = world.status(&ws)["daemon"]["pid"].as_u64().unwrap();

    client.mark();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let down = client.wait_state(&ws, "the daemon to be down", |s| s["daemon"] == "down");
    assert_eq!(
        down["errors"], 1,
        "diagnostics stay while the daemon is away"
    );
    client.wait_state(&ws, "the daemon to be back", |s| {
        s["daemon"] == "up" && s["state"] == "failed"
    });
    let status = world.status(&ws);
    let new = status["daemon"]["pid"].as_u64().unwrap();
    assert_ne!(new, old);
    assert!(
        status["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["root"] == ws.to_str().unwrap()),
        "the workspace was registered again: {status:#}"
    );

    // The new daemon serves the editor as the old one did.
    client.mark();
    edit(&file, FACE_ERROR, FACE);
    save(&mut client, &file);
    client.wait_diagnostics(&file, "the fix, through the new daemon", |ds| ds.is_empty());
}

#[test]
fn status_commands_and_bad_input_are_answered_without_harm() {
    let world = World::new();
    let ws = world.workspace("lsp-unicode", "ws");
    let mut client = LspClient::start(&world, &ws, "editor", &[]);
    client.initialize(init_params(
        &[&ws],
        json!({"stages": ["check"], "colour": "blue", "jobs": "two"}),
        Caps::default(),
    ));
    let warning = client.wait_notification("window/showMessage", "the options warning", |p| {
        p["message"].as_str().unwrap().contains("`colour`")
    });
    assert_eq!(warning["type"], 2, "a warning: {warning:#}");
    client.wait_notification("window/showMessage", "the jobs warning", |p| {
        p["message"]
            .as_str()
            .unwrap()
            .contains("initializationOptions.jobs")
    });
    let idle = client.wait_state(&ws, "the first job", |s| {
        s["state"] == "idle" && s["job"].is_u64()
    });

    // buildd/status: the same JSON as `buildd status --json`, narrowed to this workspace.
    let status = client.request("buildd/status", Value::Null);
    let workspaces = status["result"]["workspaces"].as_array().unwrap();
    assert_eq!(workspaces.len(), 1, "{status:#}");
    assert_eq!(workspaces[0]["root"], ws.to_str().unwrap());
    assert_eq!(workspaces[0]["last_job"]["stages"], json!(["check"]));
    assert!(status["result"]["daemon"]["pid"].is_u64());
    let file = ws.join("src/lib.rs");
    let by_uri = client.request("buildd/status", json!({"uri": file_uri(&file)}));
    assert_eq!(
        by_uri["result"]["workspaces"][0]["root"],
        ws.to_str().unwrap()
    );

    // Bad input gets an error or is ignored, and the server carries on.
    let outside = client.request("buildd/status", json!({"uri": "file:///nowhere/x.rs"}));
    assert!(outside["error"]["message"].is_string(), "{outside:#}");
    let bad = client.request("buildd/status", json!({"uri": 42}));
    assert_eq!(bad["error"]["code"], -32602, "{bad:#}");
    let unknown = client.request("workspace/executeCommand", json!({"command": "buildd.fly"}));
    assert_eq!(unknown["error"]["code"], -32602, "{unknown:#}");
    let bad_arg = client.request(
        "workspace/executeCommand",
        json!({"command": "buildd.rebuild", "arguments": [42]}),
    );
    assert_eq!(bad_arg["error"]["code"], -32602, "{bad_arg:#}");
    for uri in [
        "untitled:Untitled-1",
        "file:///tmp/%FF%FEnot-utf8.rs",
        "file:///nowhere/else.rs",
        "file://remote-host/x.rs",
    ] {
        client.notify(
            "textDocument/didSave",
            json!({"textDocument": {"uri": uri}}),
        );
    }
    client.notify("textDocument/didSave", json!({"nonsense": true}));
    // A method the server does not implement, and a path far over PATH_MAX.
    let unknown_method = client.request(
        "textDocument/hover",
        json!({
        "textDocument": {"uri": file_uri(&file)}, "position": {"line": 0, "character": 0}}),
    );
    assert!(
        unknown_method["error"]["code"].is_i64(),
        "{unknown_method:#}"
    );
    let long = format!("file:///{}/x.rs", "d/".repeat(5000));
    client.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": long}}),
    );
    client.notify(
        "workspace/didChangeWorkspaceFolders",
        json!({"event": {"added": [{"uri": "untitled:x", "name": "x"}], "removed": []}}),
    );
    // A folder whose path is not UTF-8 cannot cross the daemon's JSON protocol: its state
    // says so.
    client.notify(
        "workspace/didChangeWorkspaceFolders",
        json!({"event": {"added": [{"uri": "file:///tmp/%FF%FEdir", "name": "bad"}], "removed": []}}),
    );
    let bad = client.wait_notification("buildd/state", "the non-UTF-8 folder's state", |p| {
        p["uri"] == "file:///tmp/%FF%FEdir"
    });
    assert_eq!(bad["state"], "error", "{bad:#}");
    assert!(
        bad["error"].as_str().unwrap().contains("cannot register"),
        "{bad:#}"
    );

    // buildd.rebuild runs a job now.
    client.mark();
    let rebuilt = client.request(
        "workspace/executeCommand",
        json!({"command": "buildd.rebuild"}),
    );
    assert_eq!(rebuilt["result"], Value::Null, "{rebuilt:#}");
    client.wait_state(&ws, "the rebuild", |s| {
        s["state"] == "idle" && s["job"].as_u64() > idle["job"].as_u64()
    });
    assert!(client.exit().success());
}

#[test]
fn workspace_folders_come_and_go_and_a_root_uri_is_enough_for_older_clients() {
    let world = World::new();
    let borrow = world.workspace("lsp-borrow", "borrow");
    let macros = world.workspace("lsp-macro", "macros");
    let mut client = LspClient::start(&world, &borrow, "editor", &[]);
    let mut params = init_params(&[&borrow], check_only(), Caps::default());
    params["workspaceFolders"] = Value::Null;
    client.initialize(params);
    let borrow_file = borrow.join("src/lib.rs");
    client.wait_diagnostics(
        &borrow_file,
        "the borrow error",
        has_message("borrow of moved"),
    );

    client.mark();
    client.notify(
        "workspace/didChangeWorkspaceFolders",
        json!({"event": {
            "added": [{"uri": file_uri(&macros), "name": "macros"}],
            "removed": [{"uri": file_uri(&borrow), "name": "borrow"}]
        }}),
    );
    client.wait_diagnostics(
        &macros.join("src/lib.rs"),
        "the added folder's error",
        has_message("mismatched"),
    );
    client.wait_diagnostics(
        &borrow_file,
        "the removed folder's diagnostics to clear",
        |ds| ds.is_empty(),
    );
    let status = client.request("buildd/status", Value::Null);
    let roots: Vec<&Value> = status["result"]["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["root"])
        .collect();
    assert_eq!(roots, vec![macros.to_str().unwrap()], "{status:#}");
}

#[test]
fn with_no_start_the_server_waits_for_a_daemon_instead_of_starting_one() {
    let world = World::new();
    let ws = world.workspace("lsp-unicode", "ws");
    let mut client = LspClient::start(&world, &ws, "editor", &[]);
    client.initialize(init_params(
        &[&ws],
        json!({"noStart": true, "stages": ["check"]}),
        Caps::default(),
    ));
    let down = client.wait_state(&ws, "the daemon to be reported down", |s| {
        s["daemon"] == "down"
    });
    assert_eq!(down["state"], "error", "{down:#}");
    assert!(
        down["error"].as_str().unwrap().contains("not running"),
        "{down:#}"
    );
    let refused = world.run(&ws, &["--no-start", "status"]);
    assert!(!refused.status.success(), "the server started a daemon");

    // A daemon started by someone else is found and the folder registered.
    world.ok(&ws, &["wait"]);
    client.wait_state(&ws, "the daemon to be found", |s| {
        s["daemon"] == "up" && s["state"] == "idle"
    });
}
