//! Jobs: the default clippy, build and test jobs warm what the user runs and give the editor
//! clippy's lints; `[jobs.NAME]` adds jobs and refuses commands that do more than compile;
//! the shapes of the user's own `buildd cargo` commands are learned and kept warm.

use std::path::Path;

use serde_json::Value;

use crate::support::{World, append, diagnostic_messages, edit, job, job_names, write_script};

/// An edit, and the job after it settled.
fn edit_and_settle(world: &World, ws: &Path) -> Value {
    let before = world.last_job_id(ws);
    append(&ws.join("core-lib/src/lib.rs"), "\npub fn added() {}\n");
    world.wait_settled(ws, before)
}

#[test]
fn by_default_clippy_build_and_test_are_warm_after_an_edit_and_clippy_lints_are_diagnostics() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    // A lint of clippy's only (rustc says nothing of it), and a warning both clippy and
    // cargo build report.
    edit(
        &ws.join("util/src/lib.rs"),
        "pub fn bang() -> &'static str {\n    \"!\"\n}",
        "pub fn bang() -> &'static str {\n    return \"!\";\n}\n\npub fn unused() {\n    let spare = 1;\n}",
    );
    world.ok(&ws, &["wait"]);
    let status = edit_and_settle(&world, &ws);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_eq!(
        job_names(&status),
        ["clippy", "build", "test"],
        "{status:#}"
    );
    let clippy = job(&status, "clippy").unwrap();
    assert_eq!(clippy["origin"], "default");
    assert_eq!(clippy["diagnostics"], true);
    assert_eq!(clippy["last_result"], "success", "{status:#}");
    assert!(clippy["last_duration_ms"].is_u64());
    assert_eq!(
        status["last_job"]["stages"],
        serde_json::json!(["clippy", "build", "test"])
    );

    let messages = diagnostic_messages(&status);
    assert!(
        messages.iter().any(|m| m == "unneeded `return` statement"),
        "clippy's needless_return is a diagnostic: {messages:?}"
    );
    let unused: Vec<_> = messages
        .iter()
        .filter(|m| m.starts_with("unused variable"))
        .collect();
    assert_eq!(
        unused.len(),
        1,
        "the warning clippy and build both report is listed once: {messages:?}"
    );

    for args in [
        &["clippy"][..],
        &["clippy", "--all-targets"][..],
        &["build"][..],
        &["test", "--no-run"][..],
    ] {
        let stale = world.compiled(&ws, args);
        assert!(stale.is_empty(), "`cargo {args:?}` compiled {stale:?}");
    }
    assert!(!ws.join("target").exists());
}

#[test]
fn learned_shapes_are_warm_after_an_edit_and_survive_a_daemon_restart() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    append(
        &ws.join("core-lib/Cargo.toml"),
        "\n[features]\nextra = []\n",
    );
    // Deterministic: no learned job is held back for a quiet workspace here.
    std::fs::write(ws.join("buildd.toml"), "expensive_secs = 3600\n").unwrap();
    world.ok(&ws, &["wait"]);
    assert!(!world.compiled(&ws, &["build", "--release"]).is_empty());
    assert!(
        !world
            .compiled(
                &ws,
                &["test", "-p", "core-lib", "--features", "extra", "--no-run"]
            )
            .is_empty()
    );
    // `run` is learned as the build it needs, from a member's dir as that package.
    world.ok(
        &ws.join("app"),
        &["cargo", "run", "--release", "--", "ignored"],
    );

    let status = edit_and_settle(&world, &ws);
    assert_eq!(status["state"], "idle", "{status:#}");
    let learned = [
        "build --release --package app",
        "test --no-run --package core-lib --features extra",
        "build --release --workspace",
    ];
    // After the editor's diagnostics job, what the user ran most recently first; the
    // default build and test, which no command of the user's used, last.
    assert_eq!(
        job_names(&status)[1..],
        [&learned[..], &["build", "test"]].concat(),
        "most recently used first: {status:#}"
    );
    for name in learned {
        let job = job(&status, name).unwrap();
        assert_eq!(job["origin"], "learned", "{job:#}");
        assert_eq!(job["last_result"], "success", "{job:#}");
        assert!(job["last_used"].is_u64(), "{job:#}");
    }
    for args in [
        &["build", "--release"][..],
        &["test", "-p", "core-lib", "--features", "extra", "--no-run"][..],
    ] {
        let stale = world.compiled(&ws, args);
        assert!(stale.is_empty(), "`cargo {args:?}` compiled {stale:?}");
    }

    // Those two ran again: they come first now.
    let learned = [learned[1], learned[2], learned[0]];
    world.ok(&ws, &["stop"]);
    world.ok(&ws, &["wait"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(job_names(&status)[1..4], learned, "{status:#}");
    let text = world.ok(&ws, &["status"]);
    assert!(
        text.contains("build --release --workspace (learned), last success"),
        "{text}"
    );

    let listed: Value = serde_json::from_str(&world.ok(&ws, &["jobs", "list", "--json"])).unwrap();
    assert_eq!(
        listed, status["jobs"],
        "`buildd jobs list --json` is status's list"
    );

    world.ok(&ws, &["jobs", "forget"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(
        job_names(&status),
        ["clippy", "build", "test"],
        "{status:#}"
    );
}

#[test]
fn dedupe_learned_vs_configured_a_command_a_job_already_runs_is_not_learned_as_a_second_job() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    // The configured job and the user's command below are the same command with their
    // options in another order and spelling.
    std::fs::write(
        ws.join("buildd.toml"),
        "expensive_secs = 3600\n[jobs.release]\ncommand = [\"build\", \"--workspace\", \"--release\"]\n",
    )
    .unwrap();
    world.ok(&ws, &["wait"]);
    // `build --release --workspace` (the root of a virtual workspace selects it), the
    // default `clippy --workspace --all-targets` and `test --no-run --workspace`.
    for args in [
        &["cargo", "build", "-r"][..],
        &["cargo", "clippy", "--all-targets"][..],
        &["cargo", "test", "--no-run"][..],
    ] {
        world.ok(&ws, args);
    }
    let status = edit_and_settle(&world, &ws);
    assert_eq!(status["state"], "idle", "{status:#}");
    let mut names = job_names(&status);
    names.sort();
    assert_eq!(
        names,
        ["build", "clippy", "release", "test"],
        "no learned job besides the jobs that run the same commands: {status:#}"
    );
    assert_eq!(
        status["last_job"]["stages"].as_array().unwrap().len(),
        4,
        "each command ran once: {status:#}"
    );
    for args in [
        &["build", "--release"][..],
        &["clippy", "--all-targets"][..],
        &["test", "--no-run"][..],
    ] {
        let stale = world.compiled(&ws, args);
        assert!(stale.is_empty(), "`cargo {args:?}` compiled {stale:?}");
    }
}

#[test]
fn with_learn_false_nothing_is_learned() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    std::fs::write(ws.join("buildd.toml"), "learn = false\n").unwrap();
    world.ok(&ws, &["wait"]);
    world.ok(&ws, &["cargo", "build", "--release"]);
    let status = edit_and_settle(&world, &ws);
    assert_eq!(
        job_names(&status),
        ["clippy", "build", "test"],
        "{status:#}"
    );
}

#[test]
fn an_expensive_rarely_used_learned_job_waits_for_a_quiet_workspace() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    // Every learned job counts as expensive; the workspace is quiet after 2 s.
    std::fs::write(
        ws.join("buildd.toml"),
        "expensive_secs = 0\nquiet_secs = 2\n",
    )
    .unwrap();
    world.ok(&ws, &["wait"]);
    world.ok(&ws, &["cargo", "build", "--release"]);
    let name = "build --release --workspace";
    // Its first run measures it.
    let status = edit_and_settle(&world, &ws);
    assert_eq!(
        job(&status, name).unwrap()["last_result"],
        "success",
        "{status:#}"
    );
    assert!(job(&status, name).unwrap()["waiting"].is_null());

    // Now known to be expensive, and used once: the next edit's job goes without it...
    let status = edit_and_settle(&world, &ws);
    assert!(
        !status["last_job"]["stages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == name),
        "{status:#}"
    );
    let waiting = job(&status, name).unwrap()["waiting"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(waiting.contains("quiet for 2s"), "{status:#}");
    // ...and it runs on its own once the workspace has been quiet.
    let after = status["last_job"]["id"].as_u64().unwrap();
    let status = world.wait_settled(&ws, after);
    assert_eq!(
        status["last_job"]["stages"],
        serde_json::json!([name]),
        "{status:#}"
    );
    assert!(
        job(&status, name).unwrap()["waiting"].is_null(),
        "{status:#}"
    );
}

#[test]
fn a_default_job_the_users_commands_do_not_need_waits_while_their_learned_jobs_run() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    // No learned job counts as expensive, and the quiet waits outlast the test: what is
    // held back here is held back by the default jobs' rule alone.
    std::fs::write(
        ws.join("buildd.toml"),
        "expensive_secs = 3600\nquiet_secs = 3600\nunused_quiet_secs = 7200\n",
    )
    .unwrap();
    world.ok(&ws, &["wait"]);
    // The user runs one program and one library's tests, never the whole workspace's build
    // or test build.
    let run = ["run", "-p", "app"];
    let test = ["test", "-p", "core-lib", "--no-run"];
    for args in [&run[..], &test[..]] {
        let mut full = vec!["cargo"];
        full.extend_from_slice(args);
        world.ok(&ws, &full);
    }
    let learned = ["test --no-run --package core-lib", "build --package app"];

    let status = edit_and_settle(&world, &ws);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_eq!(
        status["last_job"]["stages"],
        serde_json::json!(["clippy", learned[0], learned[1]]),
        "the editor's job and the learned ones ran, the wide defaults did not: {status:#}"
    );
    for name in ["build", "test"] {
        let waiting = waiting_of(&status, name);
        assert!(
            waiting.starts_with("not needed by your recent commands")
                && waiting.contains(&format!("`{}`", learned[0]))
                && waiting.contains("quiet for 7200s"),
            "{name}: {status:#}"
        );
    }
    assert!(
        waiting_of(&status, "build").contains(&format!("`{}`", learned[1])),
        "{status:#}"
    );
    for name in ["clippy", learned[0], learned[1]] {
        assert!(
            job(&status, name).unwrap()["waiting"].is_null(),
            "{status:#}"
        );
    }
    let text = world.ok(&ws, &["status"]);
    assert!(
        text.contains("not needed by your recent commands"),
        "{text}"
    );
    for args in [&run[..], &test[..]] {
        let stale = world.compiled(&ws, args);
        assert!(stale.is_empty(), "`cargo {args:?}` compiled {stale:?}");
    }

    // Once the user runs the wide build itself, it runs after each change again; the
    // workspace's test build still waits.
    world.ok(&ws, &["cargo", "build"]);
    let before = world.last_job_id(&ws);
    append(
        &ws.join("core-lib/src/lib.rs"),
        "\npub fn added_again() {}\n",
    );
    let status = world.wait_settled(&ws, before);
    assert_eq!(
        status["last_job"]["stages"],
        serde_json::json!(["clippy", "build", learned[0], learned[1]]),
        "{status:#}"
    );
    assert!(
        job(&status, "build").unwrap()["waiting"].is_null(),
        "{status:#}"
    );
    assert!(
        waiting_of(&status, "test").starts_with("not needed"),
        "{status:#}"
    );
    let stale = world.compiled(&ws, &["build"]);
    assert!(stale.is_empty(), "`cargo build` compiled {stale:?}");
}

fn waiting_of(status: &Value, name: &str) -> String {
    job(status, name).unwrap()["waiting"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_configured_pedantic_job_runs_and_a_job_that_publishes_is_refused() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    std::fs::write(
        ws.join("buildd.toml"),
        "[jobs.pedantic]\ncommand = [\"clippy\", \"--workspace\", \"--\", \"-W\", \"clippy::pedantic\"]\n",
    )
    .unwrap();
    world.ok(&ws, &["wait"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(
        job_names(&status),
        ["clippy", "pedantic", "build", "test"],
        "{status:#}"
    );
    let pedantic = job(&status, "pedantic").unwrap();
    assert_eq!(pedantic["origin"], "config");
    assert_eq!(pedantic["diagnostics"], true);
    assert_eq!(pedantic["last_result"], "success", "{status:#}");
    let messages = diagnostic_messages(&status);
    assert!(
        messages.iter().any(|m| m.contains("#[must_use]")),
        "clippy::must_use_candidate (pedantic) is a diagnostic: {messages:?}"
    );

    let jobs_before = status["jobs_started"].as_u64().unwrap();
    std::fs::write(
        ws.join("buildd.toml"),
        "[jobs.release]\ncommand = [\"publish\"]\n",
    )
    .unwrap();
    let status = world.wait_for(&ws, "the refused job", |s| s["state"] == "error");
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("buildd.toml")
            && error.contains("job `release`")
            && error.contains("cargo publish"),
        "{error}"
    );
    assert_eq!(
        status["jobs_started"].as_u64().unwrap(),
        jobs_before,
        "nothing ran"
    );
    assert_eq!(world.run(&ws, &["wait"]).status.code(), Some(6));
}

#[test]
fn without_clippy_the_diagnostics_job_is_check_and_status_says_so() {
    // A real toolchain without clippy: cargo, rustc and rustdoc of this one, on a PATH
    // without rustup's proxies, and a CARGO_HOME without cargo-clippy.
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let sysroot = String::from_utf8(
        std::process::Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let bin = world.dir.path().join("toolchain-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["cargo", "rustc", "rustdoc"] {
        std::os::unix::fs::symlink(
            Path::new(sysroot.trim()).join("bin").join(tool),
            bin.join(tool),
        )
        .unwrap();
    }
    let cargo_home = world.dir.path().join("cargo-home");
    std::fs::create_dir_all(&cargo_home).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let env = [
        ("PATH", path.as_str()),
        ("CARGO_HOME", cargo_home.to_str().unwrap()),
    ];
    world.ok_with(&ws, &env, &["wait"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(job_names(&status), ["check", "build", "test"], "{status:#}");
    let check = job(&status, "check").unwrap();
    assert_eq!(
        check["command"],
        serde_json::json!(["check", "--workspace", "--all-targets"])
    );
    assert_eq!(check["last_result"], "success", "{status:#}");
    assert!(
        check["note"]
            .as_str()
            .unwrap_or_default()
            .contains("rustup component add clippy"),
        "{check:#}"
    );
    let text = world.ok_with(&ws, &env, &["status"]);
    assert!(text.contains("clippy is not installed"), "{text}");
}

#[test]
fn a_job_for_another_target_runs_when_its_std_is_installed_and_says_so_when_not() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    // This machine's toolchain has the host's std and no other (no network to add one).
    std::fs::write(
        ws.join("buildd.toml"),
        "[jobs.host]\ncommand = [\"build\", \"--workspace\", \"--target\", \"x86_64-unknown-linux-gnu\"]\n\
         [jobs.wasm]\ncommand = [\"build\", \"--workspace\", \"--target=wasm32-unknown-unknown\"]\n",
    )
    .unwrap();
    world.ok(&ws, &["wait"]);
    let status = world.workspace_status(&ws).unwrap();
    let host = job(&status, "host").unwrap();
    assert_eq!(host["last_result"], "success", "{status:#}");
    let wasm = job(&status, "wasm").unwrap();
    assert!(wasm["last_result"].is_null(), "{status:#}");
    assert!(
        wasm["note"]
            .as_str()
            .unwrap_or_default()
            .contains("rustup target add wasm32-unknown-unknown"),
        "{wasm:#}"
    );
    assert!(
        !status["last_job"]["stages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "wasm"),
        "{status:#}"
    );
    let stale = world.compiled(
        &ws,
        &[
            "build",
            "--workspace",
            "--target",
            "x86_64-unknown-linux-gnu",
        ],
    );
    assert!(stale.is_empty(), "{stale:?}");
}

/// No diagnostic of the `vendored` fixture's status is in its vendored dependency.
fn none_in_vendor(status: &Value) {
    let files: Vec<&str> = status["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["file"].as_str())
        .collect();
    assert!(
        !files.iter().any(|f| f.contains("/vendor/")),
        "a dependency's warnings are not the workspace's: {status:#}"
    );
}

#[test]
fn a_dependencys_warnings_are_never_diagnostics_though_the_diagnostics_job_runs_cargo_vv() {
    let world = World::new();
    let ws = world.workspace("vendored", "ws");
    // The diagnostics job records compiler commands with `cargo -vv`, which prints the
    // warnings of dependencies too (`--cap-lints warn`): the first job checks `noisy`.
    world.ok(&ws, &["wait"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["state"], "idle", "{status:#}");
    none_in_vendor(&status);
    assert!(
        status["last_job"]["rebuilt"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "noisy"),
        "{status:#}"
    );
    // Later jobs find it fresh, and cargo -vv replays its warning.
    for round in 0..2 {
        let before = world.last_job_id(&ws);
        append(
            &ws.join("src/lib.rs"),
            &format!("\npub fn added_{round}() {{}}\n"),
        );
        let status = world.wait_settled(&ws, before);
        assert_eq!(status["state"], "idle", "{status:#}");
        none_in_vendor(&status);
    }
    let stale = world.compiled(&ws, &["build"]);
    assert!(stale.is_empty(), "`cargo build` compiled {stale:?}");
}

/// cargo caches what the compiler says about itself under a fingerprint that includes
/// clippy's wrapper, so clippy and the build in one dir throw each other's cache away; buildd
/// keeps one copy per kind of command (`rustc_info.rs`). Seen through a `RUSTC` that logs
/// every call: with the cache, cargo does not ask `rustc -vV` again.
#[test]
fn after_the_jobs_clippy_and_build_the_users_clippy_and_build_do_not_probe_rustc_again() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let log = world.dir.path().join("rustc-calls.log");
    // Named `rustc`: clippy-driver takes its first argument for the compiler only then.
    let logging = world.dir.path().join("logging");
    std::fs::create_dir(&logging).unwrap();
    let rustc = logging.join("rustc");
    write_script(
        &rustc,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec rustc \"$@\"\n",
            log.display()
        ),
    );
    let env = [("RUSTC", rustc.to_str().unwrap())];
    world.ok_with(&ws, &env, &["wait"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(status["last_job"]["result"], "success", "{status:#}");
    let probes = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split_whitespace().any(|w| w == "-vV"))
            .count()
    };
    // The logging compiler is the one cargo runs: the first job asked it.
    assert!(probes() > 0, "the first job never ran the logging rustc");

    for args in [
        &["cargo", "clippy", "--workspace", "--all-targets"][..],
        &["cargo", "build", "--workspace"][..],
        &["cargo", "clippy", "--workspace", "--all-targets"][..],
    ] {
        std::fs::write(&log, "").unwrap();
        world.ok_with(&ws, &env, args);
        assert_eq!(probes(), 0, "{args:?} asked rustc -vV again");
    }
}
