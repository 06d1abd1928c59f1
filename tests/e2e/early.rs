//! Early diagnostics: after a save, the saved crate's own compiler command from the last job
//! runs again beside the job, and what it finds is what the job finds. The fixture has a
//! build script that generates code, a proc macro, a `cfg` from a feature another member
//! turns on, and a crate whose build script reads its own source (there the job alone may
//! report).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{World, diagnostic_messages, edit, wait_until};

/// Edits `file` and returns the settled status, the events of the job, and its id.
fn edit_and_follow(
    world: &World,
    ws: &Path,
    file: &str,
    from: &str,
    to: &str,
) -> (Value, Vec<Value>, u64) {
    let events = world.spawn(ws, &["events", "--json"]);
    wait_until("the events client to connect", || {
        world.status(ws)["daemon"]["clients"].as_u64() >= Some(2)
    });
    let before = world.last_job_id(ws);
    edit(&ws.join(file), from, to);
    let status = world.wait_settled(ws, before);
    let job = status["last_job"]["id"].as_u64().unwrap();
    events.wait_line("the job's end", |l| {
        l.contains("\"kind\":\"job_finished\"") && l.contains(&format!("\"id\":{job}"))
    });
    let events = events
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (status, events, job)
}

fn diagnostics_of(events: &[Value], job: u64) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == "diagnostic" && e["job"] == job)
        .map(|e| {
            (
                e["diagnostic"]["severity"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
                e["diagnostic"]["message"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
            )
        })
        .collect()
}

/// The `early` fixture, built cold, with the cold job's dep-info read (after its end, with
/// the dir's size): an early run needs it to know which crate reads a file.
fn built(world: &World) -> PathBuf {
    let ws = world.workspace("early", "ws");
    world.ok(&ws, &["wait"]);
    wait_until("the cold job's dep-info", || {
        world
            .workspace_status(&ws)
            .is_some_and(|s| s["target_dir_size"].is_u64())
    });
    ws
}

/// Asserts that what the early run beside `job` showed, if anything came before the job's
/// own diagnostics, is the one warning `message`: never an error the job did not report.
fn assert_shown_early_only(events: &[Value], job: u64, message: &str) {
    let shown = diagnostics_of(events, job - 1);
    assert!(
        shown
            .iter()
            .all(|(severity, shown)| severity == "warning" && shown == message),
        "{shown:?}"
    );
}

/// Asserts that status's last early run ran beside `job` on `crate_name` and found
/// `counts` (errors, warnings).
fn assert_early_beside(status: &Value, job: u64, crate_name: &str, counts: (u64, u64)) {
    let early = &status["early"];
    assert_eq!(
        early["job"],
        job - 1,
        "the early run ran beside job {job}: {status:#}"
    );
    assert_eq!(early["crate"], crate_name, "{early}");
    assert_eq!(
        (&early["errors"], &early["warnings"]),
        (&counts.0.into(), &counts.1.into()),
        "{early}"
    );
}

#[test]
fn a_saved_crate_is_checked_early_with_its_generated_code_its_features_and_its_proc_macros() {
    let world = World::new();
    let ws = built(&world);

    // A library with generated code and a feature another member turns on: an early run
    // without OUT_DIR or the feature would report errors the job does not.
    let (status, events, job) = edit_and_follow(
        &world,
        &ws,
        "core/src/lib.rs",
        "    GENERATED\n",
        "    let early_core = 1;\n    GENERATED\n",
    );
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_early_beside(&status, job, "core_lib", (0, 1));
    let unused = "unused variable: `early_core`";
    assert_shown_early_only(&events, job, unused);
    let messages = diagnostic_messages(&status);
    assert_eq!(
        messages,
        [unused],
        "the job's diagnostics replace the early ones"
    );
    let text = world.ok(&ws, &["status"]);
    assert!(
        text.contains(&format!(
            "early check (beside job #{job}): core_lib, 0 error(s), 1 warning(s) in "
        )),
        "{text}"
    );

    // A binary that uses the proc macro and the library.
    let (status, events, job) = edit_and_follow(
        &world,
        &ws,
        "app/src/main.rs",
        "fn main() {\n",
        "fn main() {\n    let early_app = 1;\n",
    );
    assert_early_beside(&status, job, "app", (0, 1));
    assert_shown_early_only(&events, job, "unused variable: `early_app`");
    let mut messages = diagnostic_messages(&status);
    messages.sort();
    assert_eq!(
        messages,
        [
            "unused variable: `early_app`",
            "unused variable: `early_core`"
        ]
    );

    // An error shows early too, and once after the job.
    let (status, _, job) = edit_and_follow(
        &world,
        &ws,
        "core/src/lib.rs",
        "    let early_core = 1;\n",
        "    let early_core: u32 = \"one\";\n",
    );
    assert_eq!(status["early"]["job"], job - 1, "{status:#}");
    assert_eq!(status["early"]["errors"], 1, "{status:#}");
    let errors: Vec<_> = status["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{status:#}");

    // Fixed again, so that the last job succeeds (an early run needs a clean build).
    edit_and_follow(
        &world,
        &ws,
        "core/src/lib.rs",
        "    let early_core: u32 = \"one\";\n",
        "",
    );

    // gen's build script reads its own source: it runs again before gen compiles, so the
    // code it generates may change, and the job alone reports.
    let (status, events, job) = edit_and_follow(
        &world,
        &ws,
        "gen/src/lib.rs",
        "    LEN\n",
        "    let early_gen = 1;\n    LEN\n",
    );
    assert_ne!(
        status["early"]["job"],
        job - 1,
        "no early run for gen: {status:#}"
    );
    assert!(diagnostics_of(&events, job - 1).is_empty(), "{events:?}");
    assert!(
        diagnostic_messages(&status).contains(&"unused variable: `early_gen`".to_owned()),
        "{status:#}"
    );
}

/// A load clears nothing cargo still agrees with: after a change of a manifest that leaves
/// every unit fresh (a comment), the next save is checked early with the command recorded
/// before the load, which cargo, finding the unit fresh, did not print again.
#[test]
fn a_load_that_leaves_the_saved_crate_fresh_keeps_its_early_run() {
    let world = World::new();
    let ws = built(&world);
    let (status, _, _) = edit_and_follow(
        &world,
        &ws,
        "app/Cargo.toml",
        "[dependencies]\n",
        "# a comment: the workspace is loaded again, and no unit changes\n[dependencies]\n",
    );
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_eq!(status["last_job"]["units_compiled"], 0, "{status:#}");
    assert_eq!(status["last_change"]["full"], true, "{status:#}");

    let (status, events, job) = edit_and_follow(
        &world,
        &ws,
        "app/src/main.rs",
        "fn main() {\n",
        "fn main() {\n    let early_after_load = 1;\n",
    );
    assert_early_beside(&status, job, "app", (0, 1));
    assert_shown_early_only(&events, job, "unused variable: `early_after_load`");
}
