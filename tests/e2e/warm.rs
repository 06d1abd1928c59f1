//! The daemon keeps workspaces warm, reports diagnostics, and survives broken manifests.

use crate::support::{World, append, artifacts, edit};

#[test]
fn after_an_edit_buildd_cargo_build_and_test_compile_nothing() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let before = world.last_job_id(&ws);

    edit(
        &ws.join("core-lib/src/lib.rs"),
        "pub fn greeting",
        "pub fn shout(s: &str) -> String {\n    s.to_uppercase()\n}\n\npub fn greeting",
    );
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert!(
        status["last_job"]["units_compiled"].as_u64().unwrap() > 0,
        "the job after the edit compiled the edited crate: {status:#}"
    );

    for args in [
        &["cargo", "build", "--message-format=json"][..],
        &["cargo", "test", "--no-run", "--message-format=json"][..],
    ] {
        let stdout = world.ok(&ws, args);
        let artifacts = artifacts(&stdout);
        assert!(!artifacts.is_empty(), "{args:?} reported no artifacts");
        let stale: Vec<_> = artifacts
            .iter()
            .filter(|a| a["fresh"] != true)
            .map(|a| a["target"]["name"].clone())
            .collect();
        assert!(stale.is_empty(), "{args:?} compiled {stale:?}");
    }
    assert!(
        !ws.join("target").exists(),
        "buildd wrote into the workspace's own target/"
    );
    let target_dir = status["target_dir"].as_str().unwrap();
    assert!(target_dir.starts_with(world.home().to_str().unwrap()));
}

#[test]
fn a_type_error_is_listed_with_its_place_and_cleared_when_fixed() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let before = world.last_job_id(&ws);

    let file = ws.join("util/src/lib.rs");
    edit(&file, "\"!\"", "42");
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "failed", "{status:#}");
    let diagnostics = status["diagnostics"].as_array().unwrap();
    let error = diagnostics
        .iter()
        .find(|d| d["severity"] == "error")
        .unwrap_or_else(|| panic!("no error in {status:#}"));
    assert_eq!(error["file"], file.to_str().unwrap());
    assert_eq!(error["line"], 2);
    assert_eq!(error["column"], 5);
    assert_eq!(error["message"], "mismatched types");
    assert!(status["last_job"]["errors"].as_u64().unwrap() >= 1);

    let failed = status["last_job"]["id"].as_u64().unwrap();
    edit(&file, "42", "\"!\"");
    let status = world.wait_settled(&ws, failed);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_eq!(status["diagnostics"], serde_json::json!([]), "{status:#}");
    assert_eq!(status["last_job"]["errors"], 0);
}

#[test]
fn a_malformed_manifest_is_an_error_of_that_workspace_only_and_recovers() {
    let world = World::new();
    let good = world.workspace("basic", "good");
    let bad = world.workspace("basic", "bad");
    world.ok(&good, &["wait"]);
    world.ok(&bad, &["wait"]);

    let manifest = bad.join("core-lib/Cargo.toml");
    edit(&manifest, "[dependencies]", "[dependencies\n");
    let status = world.wait_for(&bad, "the error state", |ws| ws["state"] == "error");
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("Cargo.toml"),
        "the error names the manifest: {error}"
    );
    assert_eq!(world.workspace_status(&good).unwrap()["state"], "idle");

    // `buildd wait` says so with its documented exit code.
    let output = world.run(&bad, &["wait"]);
    assert_eq!(output.status.code(), Some(6));

    let before = world.last_job_id(&bad);
    edit(&manifest, "[dependencies\n", "[dependencies]");
    let status = world.wait_settled(&bad, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert!(status["error"].is_null());
}

/// Issue 15: the daemon keeps the root `cargo locate-project` found for a dir, so that the
/// next `buildd cargo` there runs no cargo to find it. A manifest on the way up that changes
/// makes it ask cargo again: a member that becomes a workspace of its own is registered as
/// one, and as a member again once it is not.
#[test]
fn a_member_that_becomes_a_workspace_of_its_own_is_registered_as_one_at_once() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let util = ws.join("util");
    let target_dir_of = |root: &std::path::Path| {
        let status = world
            .workspace_status(root)
            .unwrap_or_else(|| panic!("{} is not registered", root.display()));
        format!(
            "export CARGO_TARGET_DIR={}\n",
            status["target_dir"].as_str().unwrap()
        )
    };
    // Twice from the member's dir (the second time from what the daemon kept): the
    // workspace's dir.
    for _ in 0..2 {
        let exports = world.ok(&util, &["env"]);
        assert!(exports.contains(&target_dir_of(&ws)), "{exports}");
    }
    let manifest = util.join("Cargo.toml");
    append(&manifest, "\n[workspace]\n");
    let exports = world.ok(&util, &["env"]);
    assert!(exports.contains(&target_dir_of(&util)), "{exports}");
    assert_ne!(target_dir_of(&util), target_dir_of(&ws));

    edit(&manifest, "\n[workspace]\n", "");
    let exports = world.ok(&util, &["env"]);
    assert!(exports.contains(&target_dir_of(&ws)), "{exports}");
}

#[test]
fn two_workspaces_are_warmed_side_by_side_in_separate_dirs() {
    let world = World::new();
    let first = world.workspace("basic", "first");
    let second = world.workspace("basic", "second");
    world.ok(&first, &["wait"]);
    world.ok(&second, &["wait"]);
    let status = world.status(&first);
    let workspaces = status["workspaces"].as_array().unwrap();
    assert_eq!(workspaces.len(), 2, "{status:#}");
    assert!(
        workspaces.iter().all(|w| w["state"] == "idle"),
        "{status:#}"
    );
    assert_ne!(workspaces[0]["target_dir"], workspaces[1]["target_dir"]);

    // `status PATH` narrows to the workspace containing PATH.
    let narrowed: serde_json::Value =
        serde_json::from_str(&world.ok(&first, &["status", "--json", "app/src"])).unwrap();
    assert_eq!(narrowed["workspaces"].as_array().unwrap().len(), 1);
    assert_eq!(narrowed["workspaces"][0]["root"], first.to_str().unwrap());
}

#[test]
fn buildd_env_points_plain_cargo_at_the_warm_dir() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let exports = world.ok(&ws, &["env"]);
    let target_dir = world.workspace_status(&ws).unwrap()["target_dir"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        exports.contains(&format!("export CARGO_TARGET_DIR={target_dir}")),
        "{exports}"
    );

    // A plain cargo in a shell that evaluated the exports finds everything fresh.
    let script = format!(
        "eval \"$({} env)\" && cargo build --message-format=json",
        crate::support::buildd_bin().display()
    );
    let output = std::process::Command::new("sh")
        .args(["-c", &script])
        .current_dir(&ws)
        .env("BUILDD_HOME", world.home())
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let artifacts = artifacts(&stdout);
    assert!(!artifacts.is_empty());
    assert!(artifacts.iter().all(|a| a["fresh"] == true), "{stdout}");
    assert!(!ws.join("target").exists());
}

#[test]
fn paths_outside_a_workspace_get_a_clear_error() {
    let world = World::new();
    let empty = world.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = world.run(&empty, &["env"]);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not inside a cargo workspace"), "{stderr}");
    assert!(
        stderr.contains(empty.file_name().unwrap().to_str().unwrap()),
        "{stderr}"
    );

    let output = world.run(&empty, &["status", "--json", "."]);
    assert_eq!(output.status.code(), Some(3));

    // The cause once (issue 19: `buildd status nosuchdir` said it twice).
    for command in ["wait", "status"] {
        let missing = world.run(&empty, &[command, "no/such/dir"]);
        assert_eq!(missing.status.code(), Some(3));
        let stderr = String::from_utf8_lossy(&missing.stderr);
        assert!(stderr.contains("no/such/dir"), "{stderr}");
        assert_eq!(
            stderr.matches("No such file or directory").count(),
            1,
            "{command}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{command}: {stderr}");
    }
}

/// Issue 19: `buildd cargo build` with a broken `buildd.toml` ran without a word. It says so
/// in one line naming the file and what is wrong, and the build runs.
#[test]
fn buildd_cargo_with_a_broken_buildd_toml_says_so_in_one_line_and_builds() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let file = ws.join("buildd.toml");
    std::fs::write(&file, "nice = 5\nstages = [check\n").unwrap();
    let output = world.run(&ws, &["cargo", "build"]);
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // (A "waiting for the daemon's job" line may come first, as the new dir is prepared.)
    let notices: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("buildd:") && !l.contains("waiting for"))
        .collect();
    assert_eq!(notices.len(), 1, "{stderr}");
    assert!(
        notices[0].contains(&format!("{}: line 2, column 16: ", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("Finished"), "{stderr}");
    let target_dir = world.workspace_status(&ws).unwrap()["target_dir"]
        .as_str()
        .map(std::path::PathBuf::from)
        .unwrap();
    assert!(
        target_dir.join("debug/app").exists(),
        "the build ran in the isolated dir"
    );

    // Fixed: nothing to say.
    std::fs::write(&file, "nice = 5\n").unwrap();
    world.wait_for(&ws, "the fixed file to be read", |s| s["error"].is_null());
    let output = world.run(&ws, &["cargo", "build"]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("has an error"), "{stderr}");
}

#[test]
fn the_first_wait_shows_the_job_that_did_the_work() {
    // Without a Cargo.lock, cargo writes one in the first job, and the daemon runs a second
    // job of fresh units after it: the summary must not hide the first.
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let _ = std::fs::remove_file(ws.join("Cargo.lock"));
    let out = world.ok(&ws, &["wait"]);
    let compiled: Vec<u64> = out
        .lines()
        .filter_map(|l| {
            let (before, _) = l.split_once(" unit(s) compiled")?;
            before.rsplit(' ').next()?.parse().ok()
        })
        .collect();
    assert!(
        compiled.iter().any(|&n| n > 0),
        "no job line with the units the cold build compiled:\n{out}"
    );
}

/// The `cargo` commands' units that cargo compiled (not fresh).
fn stale_units(stdout: &str) -> Vec<serde_json::Value> {
    artifacts(stdout)
        .into_iter()
        .filter(|a| a["fresh"] != true)
        .map(|a| a["target"]["name"].clone())
        .collect()
}

/// An editor on one set of flags and a terminal on another (or on another toolchain): after
/// an edit both keys are warm, so switching between them compiles nothing, and status lists
/// the other key. Before, the key followed the last client and every switch compiled again.
#[test]
fn two_keys_used_in_turn_both_stay_warm_after_an_edit() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let other = [("RUSTFLAGS", "--cfg buildd_other_key")];
    world.ok(&ws, &["wait"]);
    let plain_key = world.workspace_status(&ws).unwrap()["key"]["hash"].clone();
    world.ok_with(&ws, &other, &["cargo", "build"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_ne!(status["key"]["hash"], plain_key, "{status:#}");
    assert_eq!(
        status["other_keys"][0]["key"]["hash"], plain_key,
        "{status:#}"
    );

    let before = world.last_job_id(&ws);
    edit(
        &ws.join("core-lib/src/lib.rs"),
        "pub fn greeting",
        "pub fn whisper(s: &str) -> String {\n    s.to_lowercase()\n}\n\npub fn greeting",
    );
    let status = world.wait_settled(&ws, before);
    assert_eq!(status["state"], "idle", "{status:#}");
    assert_eq!(
        status["other_keys"][0]["last_result"], "success",
        "{status:#}"
    );
    let text = world.ok(&ws, &["status"]);
    assert!(
        text.contains(&format!("also warm: key {}", plain_key.as_str().unwrap())),
        "{text}"
    );

    // Back to the plain key: warm. Then the other one again: warm too.
    for env in [&[][..], &other[..]] {
        for args in [
            &["cargo", "build", "--message-format=json"][..],
            &["cargo", "test", "--no-run", "--message-format=json"][..],
        ] {
            let stale = stale_units(&world.ok_with(&ws, env, args));
            assert!(stale.is_empty(), "{env:?} {args:?} compiled {stale:?}");
        }
    }
    let status = world.workspace_status(&ws).unwrap();
    assert_ne!(status["key"]["hash"], plain_key);
    assert_eq!(
        status["other_keys"][0]["key"]["hash"], plain_key,
        "{status:#}"
    );
    assert_eq!(
        status["other_keys"].as_array().unwrap().len(),
        1,
        "{status:#}"
    );
}

/// `buildd cargo +TOOLCHAIN` builds in that toolchain's own key, not in the default one's.
#[test]
fn buildd_cargo_plus_toolchain_gets_a_key_of_its_own() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    world.ok(&ws, &["wait"]);
    let plain = world.workspace_status(&ws).unwrap();
    // The machine's one toolchain, by a name other than the one rustup's proxy put into
    // this test's environment (`stable-x86_64-unknown-linux-gnu` or `stable`): another
    // `RUSTUP_TOOLCHAIN` is another key, as a real other toolchain is.
    let active = std::process::Command::new("rustup")
        .args(["show", "active-toolchain"])
        .output()
        .expect("rustup");
    let active = String::from_utf8_lossy(&active.stdout);
    let full = active.split_whitespace().next().expect("a toolchain name");
    let short = full.split('-').next().unwrap();
    let inherited = std::env::var("RUSTUP_TOOLCHAIN").unwrap_or_default();
    let toolchain = if inherited == short { full } else { short };
    world.ok(&ws, &["cargo", &format!("+{toolchain}"), "build"]);
    let status = world.workspace_status(&ws).unwrap();
    assert_eq!(
        status["key"]["env"]["RUSTUP_TOOLCHAIN"], toolchain,
        "{status:#}"
    );
    assert_ne!(status["target_dir"], plain["target_dir"], "{status:#}");
    assert_eq!(status["other_keys"][0]["key"]["hash"], plain["key"]["hash"]);
}
