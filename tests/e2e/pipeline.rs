//! Prediction, cancellation, file storms, yielding to the user, and the polling watcher.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::procs;
use crate::support::{World, alive, edit, job, job_names, wait_until};

fn names(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn append(path: &Path, text: &str) {
    let mut content = std::fs::read_to_string(path).unwrap();
    content.push_str(text);
    std::fs::write(path, content).unwrap();
}

#[test]
fn the_predicted_set_equals_what_cargo_rebuilt_for_each_kind_of_edit() {
    let world = World::new();
    let ws = world.workspace("graph", "ws");
    world.ok(&ws, &["wait"]);

    let all_of_base = &["base", "left", "right", "top"][..];
    let cases: &[(&str, &str, &[&str])] = &[
        ("base/src/lib.rs", "lib", all_of_base),
        ("base/data/words.txt", " delta", all_of_base),
        ("left/src/lib.rs", "lib", &["left", "top"]),
        ("right/src/lib.rs", "lib", &["right", "top"]),
        ("top/src/main.rs", "bin", &["top"]),
        ("solo/src/lib.rs", "lib", &["solo"]),
        ("solo/examples/demo.rs", "bin", &["solo"]),
        ("solo/tests/it.rs", "bin", &["solo"]),
        ("base/nested/src/lib.rs", "lib", &["nested"]),
        ("gen/schema.txt", "field\n", &["gen"]),
        ("gen/build.rs", "bin", &["gen"]),
    ];
    for (n, (file, kind, expected)) in cases.iter().enumerate() {
        let text = match *kind {
            "lib" => format!("\npub fn added_{n}() -> usize {{ {n} }}\n"),
            "bin" => format!("\n#[allow(dead_code)]\nfn added_{n}() -> usize {{ {n} }}\n"),
            text => text.to_owned(),
        };
        let before = world.last_job_id(&ws);
        append(&ws.join(file), &text);
        let status = world.wait_settled(&ws, before);
        assert_eq!(status["state"], "idle", "{file}: {status:#}");
        let predicted = names(&status["last_change"]["predicted"]);
        let rebuilt = names(&status["last_job"]["rebuilt"]);
        assert_eq!(predicted, set(expected), "predicted for {file}: {status:#}");
        assert_eq!(rebuilt, set(expected), "rebuilt for {file}: {status:#}");
    }
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["prediction"]["precision"], 1.0, "{status:#}");
    assert_eq!(status["prediction"]["recall"], 1.0, "{status:#}");
    assert_eq!(status["prediction"]["jobs"], cases.len() as u64);

    // A file no target reads starts no job.
    let jobs = status["jobs_started"].as_u64().unwrap();
    append(&ws.join("NOTES.md"), "more notes\n");
    let status = world.wait_for(&ws, "the notes change to be seen", |ws| {
        ws["last_change"]["files"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f.as_str().unwrap().ends_with("NOTES.md")))
    });
    assert_eq!(status["last_change"]["predicted"], serde_json::json!([]));
    assert_eq!(status["jobs_started"].as_u64().unwrap(), jobs, "{status:#}");
    assert_eq!(status["state"], "idle");

    // Nor does the lock file of another workspace under it (a fixture's, an example's, which
    // its own build writes): cargo reads the root's alone, so it is no reason to load again.
    let nested = ws.join("other-ws");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(nested.join("Cargo.lock"), "version = 4\n").unwrap();
    let status = world.wait_for(&ws, "the nested lock file to be seen", |ws| {
        ws["last_change"]["files"].as_array().is_some_and(|f| {
            f.iter()
                .any(|f| f.as_str().unwrap().ends_with("other-ws/Cargo.lock"))
        })
    });
    assert_eq!(status["last_change"]["predicted"], serde_json::json!([]));
    assert_eq!(status["jobs_started"].as_u64().unwrap(), jobs, "{status:#}");
    assert_eq!(status["state"], "idle");
}

/// `sed -i` (and many editors) writes a temp file beside the one it changes and renames it
/// over it: a file that is gone again before the job starts is no change, and status does
/// not list it.
#[test]
fn a_temp_file_that_vanished_before_the_job_is_not_a_changed_file() {
    let world = World::new();
    let ws = world.workspace("graph", "ws");
    world.ok(&ws, &["wait"]);
    let before = world.last_job_id(&ws);
    let lib = ws.join("left/src/lib.rs");
    append(&lib, "\npub fn before_sed() {}\n");
    let sed = std::process::Command::new("sed")
        .args(["-i", "s/before_sed/after_sed/"])
        .arg(&lib)
        .status()
        .unwrap();
    assert!(sed.success());
    let status = world.wait_settled(&ws, before);
    let files: Vec<&str> = status["last_change"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(files, vec![lib.to_str().unwrap()], "{status:#}");
    assert_eq!(names(&status["last_job"]["rebuilt"]), set(&["left", "top"]));
}

#[test]
fn an_edit_during_a_long_job_kills_it_and_only_the_last_edit_counts() {
    let world = World::new();
    let ws = world.workspace("slow", "ws");
    world.ok(&ws, &["wait"]);
    let daemon = world.status(&ws)["daemon"]["pid"].as_u64().unwrap() as u32;
    let home = world.home();

    // Make the next build of slowdev's build script block.
    let flag = world.dir.path().join("hold");
    std::fs::write(&flag, "").unwrap();
    append(
        &ws.join("app/src/lib.rs"),
        "\npub fn first() { let unused_first = 1; }\n",
    );
    std::fs::write(ws.join("slowdev/delay.txt"), flag.to_str().unwrap()).unwrap();
    wait_until("the blocking build script to run", || {
        !procs::build_scripts(&home).is_empty()
    });
    let blocked: Vec<u32> = procs::build_scripts(&home).iter().map(|p| p.pid).collect();
    // Builds ahead of time run at low priority.
    assert_eq!(procs::build_scripts(&home)[0].nice, 10);
    let cancelled_job = world.workspace_status(&ws).unwrap()["current_job"]["id"]
        .as_u64()
        .unwrap();

    // The newer edit makes the running job stale.
    std::fs::write(ws.join("slowdev/delay.txt"), "").unwrap();
    let lib = ws.join("app/src/lib.rs");
    let text = std::fs::read_to_string(&lib)
        .unwrap()
        .replace("unused_first", "unused_second");
    std::fs::write(&lib, text).unwrap();
    wait_until("the blocked build script to be killed", || {
        blocked.iter().all(|p| !alive(*p as u64))
    });

    let status = world.wait_settled(&ws, cancelled_job);
    assert_eq!(status["state"], "idle", "{status:#}");
    let warnings: Vec<&str> = status["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|m| m.contains("unused_second")),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|m| m.contains("unused_first")),
        "{warnings:?}"
    );
    // Nothing of the cancelled job survives: no rustc, no build script.
    let left: Vec<String> = procs::naming(&home, daemon)
        .into_iter()
        .map(|p| p.cmdline)
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    std::fs::remove_file(flag).unwrap();
}

#[test]
fn a_storm_of_two_thousand_writes_starts_exactly_one_job() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let before = world.workspace_status(&ws).unwrap();
    let jobs = before["jobs_started"].as_u64().unwrap();
    let last = before["last_job"]["id"].as_u64().unwrap();

    // As a `git checkout` would: a thousand new files in a new directory, then a thousand
    // rewrites of one file.
    let storm = ws.join("util/src/storm");
    std::fs::create_dir(&storm).unwrap();
    for i in 0..1000 {
        std::fs::write(storm.join(format!("m{i}.rs")), format!("// {i}\n")).unwrap();
    }
    let lib = ws.join("util/src/lib.rs");
    let original = std::fs::read_to_string(&lib).unwrap();
    for i in 0..1000 {
        std::fs::write(&lib, format!("{original}\n// write {i}\n")).unwrap();
    }
    let status = world.wait_settled(&ws, last);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_eq!(
        status["jobs_started"].as_u64().unwrap(),
        jobs + 1,
        "{status:#}"
    );
    assert!(names(&status["last_change"]["predicted"]).contains("util"));
}

#[test]
fn buildd_cargo_build_does_not_wait_for_the_test_build_it_does_not_need() {
    let world = World::new();
    let ws = world.workspace("slow", "ws");
    world.ok(&ws, &["wait"]);
    let home = world.home();

    // The first job checked that `build` and `test` may run as one invocation: the stage
    // that blocks is that one, reported as `build` (a merged stage is what this test stops
    // half-way; with them apart, the test stage would block).
    let status = world.workspace_status(&ws).unwrap();
    let test_job = job(&status, "test").unwrap();
    assert!(
        test_job["note"]
            .as_str()
            .is_some_and(|n| n.contains("as one cargo invocation") && n.contains("checked")),
        "{status:#}"
    );
    let flag = world.dir.path().join("hold");
    procs::block_slow_build(&ws, &flag);
    let running = world.wait_for(&ws, "the merged stage to run", |ws| {
        ws["current_job"]["stage"] == "build"
    });
    let job = running["current_job"]["id"].as_u64().unwrap();
    wait_until("the blocking build script", || {
        !procs::build_scripts(&home).is_empty()
    });
    let blocked: Vec<u32> = procs::build_scripts(&home).iter().map(|p| p.pid).collect();

    // The user's build needs the build stage only: the daemon stops the merged stage, builds
    // what `cargo build` needs alone, and makes way before the test build.
    let output = world.run(&ws, &["cargo", "build", "--message-format=json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        blocked.iter().all(|p| !alive(*p as u64)),
        "the test stage still runs"
    );
    let status = world.wait_for(&ws, "the yielded job", |ws| {
        ws["last_job"]["id"].as_u64() >= Some(job)
    });
    assert_eq!(status["last_job"]["id"].as_u64(), Some(job));
    assert_eq!(status["last_job"]["result"], "yielded", "{status:#}");

    // After the command, the daemon resumes and finishes the work.
    std::fs::remove_file(&flag).unwrap();
    let status = world.wait_settled(&ws, job);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
}

#[test]
fn the_polling_watcher_sees_edits_and_says_so() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let output = world
        .cmd(&ws, &["wait"])
        .env("BUILDD_WATCHER", "poll")
        .output()
        .unwrap();
    assert!(output.status.success());
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["watcher"]["kind"], "poll", "{status:#}");
    assert!(
        status["watcher"]["note"]
            .as_str()
            .unwrap()
            .contains("BUILDD_WATCHER")
    );

    let before = status["last_job"]["id"].as_u64().unwrap();
    append(&ws.join("util/src/lib.rs"), "\npub fn polled() {}\n");
    let status = world.wait_settled(&ws, before);
    assert_eq!(
        names(&status["last_change"]["predicted"]),
        set(&["util", "core-lib", "app"])
    );
}

/// The note status gives job `name`.
fn note_of(status: &Value, name: &str) -> String {
    job(status, name)
        .and_then(|j| j["note"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// `buildd cargo build` and `buildd cargo test --no-run` at the root of `ws` compile
/// nothing.
fn assert_root_commands_warm(world: &World, ws: &Path) {
    for args in [&["build"][..], &["test", "--no-run"][..]] {
        let stale = world.compiled(ws, args);
        assert!(stale.is_empty(), "`cargo {args:?}` compiled {stale:?}");
    }
}

/// The stages job `job` started, in order, from `buildd events --json`.
fn started_stages(events: &crate::support::Spawned, job: u64) -> Vec<String> {
    events
        .job_events(job)
        .iter()
        .filter(|e| e["kind"] == "stage_started")
        .map(|e| e["stage"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn build_and_test_run_as_one_cargo_invocation_that_leaves_what_each_command_looks_for() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let status = world.workspace_status(&ws).unwrap();
    for name in ["build", "test"] {
        let note = note_of(&status, name);
        assert!(
            note.contains("as one cargo invocation")
                && note.contains("--workspace --lib --bins --tests --examples")
                && note.contains("checked since the workspace was loaded"),
            "{name}: {status:#}"
        );
    }
    let events = world.events(&ws);

    let before = world.last_job_id(&ws);
    append(
        &ws.join("core-lib/src/lib.rs"),
        "\npub fn merged_edit() {}\n",
    );
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    let job = status["last_job"]["id"].as_u64().unwrap();
    assert_eq!(
        status["last_job"]["stages"],
        serde_json::json!(["clippy", "build", "test"]),
        "{status:#}"
    );
    // One cargo for both: the test stage never started on its own.
    assert_eq!(started_stages(&events, job), ["clippy", "build"]);
    let build = crate::support::job(&status, "build");
    let test = crate::support::job(&status, "test");
    assert_eq!(build.unwrap()["last_result"], "success", "{status:#}");
    assert_eq!(test.unwrap()["last_result"], "success", "{status:#}");
    // What the user runs finds everything fresh.
    assert_root_commands_warm(&world, &ws);
}

#[test]
fn a_dev_dependency_feature_keeps_build_and_test_apart_and_both_warm() {
    let world = World::new();
    let ws = world.workspace("devfeat", "ws");
    world.ok(&ws, &["wait"]);
    // The first job tried one invocation and found that `cargo build` still compiled the
    // variant without the dev-dependency's feature.
    let status = world.workspace_status(&ws).unwrap();
    for (name, other) in [("build", "`test`"), ("test", "`build`")] {
        let note = note_of(&status, name);
        assert!(
            note.starts_with(&format!("runs apart from {other}"))
                && note.contains("did not leave")
                && note.contains("shared"),
            "{name}: {status:#}"
        );
    }
    let events = world.events(&ws);

    // A load checks again. The target dir now holds both variants of `shared`, so running
    // the two apart after one invocation finds every unit fresh: the check must see that
    // `cargo build`'s variant is not one the invocation left.
    let before = world.last_job_id(&ws);
    append(&ws.join("app/Cargo.toml"), "\n# a load\n");
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    let job = status["last_job"]["id"].as_u64().unwrap();
    assert_eq!(
        started_stages(&events, job),
        ["clippy", "build", "build", "test"],
        "one invocation, then the check"
    );
    for name in ["build", "test"] {
        let note = note_of(&status, name);
        assert!(
            note.contains("did not leave") && note.contains("shared"),
            "{name}: {status:#}"
        );
    }

    let before = world.last_job_id(&ws);
    append(&ws.join("shared/src/lib.rs"), "\npub fn apart_edit() {}\n");
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    let job = status["last_job"]["id"].as_u64().unwrap();
    assert_eq!(started_stages(&events, job), ["clippy", "build", "test"]);
    assert_root_commands_warm(&world, &ws);
}

#[test]
fn a_root_package_s_first_build_and_test_compile_nothing_when_another_member_turns_on_a_feature() {
    let world = World::new();
    let ws = world.workspace("rootsel", "ws");
    world.ok(&ws, &["wait"]);
    // The first job checked the root's own selection after the `--workspace` jobs: it needs
    // `shared` without the feature `tool` turns on, so the commands run as jobs of their own.
    let status = world.workspace_status(&ws).unwrap();
    for name in ["build (default members)", "test (default members)"] {
        let note = note_of(&status, name);
        assert!(
            note.starts_with("runs without `--workspace`") && note.contains("shared"),
            "{name}: {status:#}"
        );
    }
    // What the user runs first at the root finds everything fresh.
    assert_root_commands_warm(&world, &ws);
    let events = world.events(&ws);

    // Later jobs keep the root's selection warm; the user's commands just used it and not
    // `--workspace`, so the workspace-wide build and test wait for a quiet workspace.
    let before = world.last_job_id(&ws);
    append(&ws.join("shared/src/lib.rs"), "\npub fn edited() {}\n");
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    let job = status["last_job"]["id"].as_u64().unwrap();
    assert_eq!(
        started_stages(&events, job),
        [
            "clippy",
            "build (default members)",
            "test (default members)"
        ],
        "{status:#}"
    );
    for name in ["build", "test"] {
        let waiting = crate::support::job(&status, name).unwrap()["waiting"]
            .as_str()
            .unwrap_or_default();
        assert!(
            waiting.contains("ran as the jobs `build (default members)`"),
            "{name}: {status:#}"
        );
    }
    assert_root_commands_warm(&world, &ws);

    // Without the feature, `--workspace` leaves what the root's commands look for: the
    // load checks again and finds it covered, and the extra jobs go.
    let before = world.last_job_id(&ws);
    edit(&ws.join("tool/Cargo.toml"), r#", features = ["extra"]"#, "");
    edit(
        &ws.join("tool/src/lib.rs"),
        "shared::base() + shared::extra()",
        "shared::base()",
    );
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    for name in ["build", "test"] {
        let note = note_of(&status, name);
        assert!(
            note.contains("also leaves the units of `cargo")
                && note.contains("checked since the workspace was loaded"),
            "{name}: {status:#}"
        );
    }
    let jobs = job_names(&status);
    assert!(
        !jobs.iter().any(|j| j.contains("default members")),
        "{jobs:?}"
    );
    assert_root_commands_warm(&world, &ws);
}
