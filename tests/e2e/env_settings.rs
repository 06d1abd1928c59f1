//! The settings in the environment, as README.md documents them: every variable of its table,
//! with the spellings it shows, takes effect where it can be seen (issue 19: a documented
//! `BUILDD_NO_START=1` broke every command).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{World, alive, wait_until, write_script};

/// The variables of README.md's "Settings in the environment" table.
fn documented_variables() -> BTreeSet<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `BUILDD_"))
        .map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            format!("BUILDD_{name}")
        })
        .collect()
}

/// Everything the daemons of `home` logged so far.
fn log_of(home: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(home.join("state/logs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

/// One daemon per setting: started by a command with the variable set, looked at, stopped.
struct Daemons<'w> {
    world: &'w World,
    ws: PathBuf,
    tested: BTreeSet<String>,
}

impl Daemons<'_> {
    /// Starts a daemon with `env` by running `buildd ARGS` (which must succeed), and returns
    /// its `status --json` and what it logged, once stopped.
    fn with(&mut self, env: &[(&str, &str)], args: &[&str]) -> (Value, String) {
        for (name, _) in env.iter().filter(|(n, _)| n.starts_with("BUILDD_")) {
            self.tested.insert((*name).to_owned());
        }
        let before = log_of(&self.world.home()).len();
        self.world.ok_with(&self.ws, env, args);
        let status = self.world.status(&self.ws);
        self.world.ok(&self.ws, &["stop"]);
        // The log is complete once the daemon has exited.
        let pid = status["daemon"]["pid"].as_u64().unwrap();
        wait_until("the daemon to exit", || !alive(pid));
        let log = log_of(&self.world.home())[before..].to_owned();
        (status, log)
    }

    /// `buildd wait` with `env`: the workspace's status and the daemon's log.
    fn registered(&mut self, env: &[(&str, &str)]) -> (Value, String) {
        let (mut status, log) = self.with(env, &["wait"]);
        let ws = status["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["root"].as_str() == Some(self.ws.to_str().unwrap()))
            .cloned()
            .unwrap_or_else(|| panic!("the workspace is not in\n{status:#}"));
        status = ws;
        (status, log)
    }

    /// A command with `env` that must fail at once, as the daemon refuses the value.
    fn refused(&mut self, env: &[(&str, &str)]) -> String {
        let mut cmd = self.world.cmd(&self.ws, &["status"]);
        cmd.envs(env.iter().copied());
        let started = std::time::Instant::now();
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(4), "{env:?}: {stderr}");
        // Not the 20 s of a daemon that never answers: the client saw it exit.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{env:?} took {:?}",
            started.elapsed()
        );
        assert!(!self.world.home().join("run/daemon.sock").exists());
        stderr
    }
}

#[test]
fn every_documented_variable_takes_its_documented_spellings() {
    let world = World::new();
    let ws = world.workspace("basic", "ws");
    let mut d = Daemons {
        world: &world,
        ws: ws.clone(),
        tested: BTreeSet::new(),
    };

    // BUILDD_HOME: everything under the dir given, nothing in another home.
    let other = world.dir.path().join("other-home");
    let other_s = other.to_str().unwrap();
    let stdout = world.ok_with(&ws, &[("BUILDD_HOME", other_s)], &["status", "--json"]);
    let status: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        status["daemon"]["socket"].as_str(),
        Some(other.join("run/daemon.sock").to_str().unwrap())
    );
    assert!(!world.home().join("run/daemon.sock").exists());
    world.ok_with(&ws, &[("BUILDD_HOME", other_s)], &["stop"]);
    d.tested.insert("BUILDD_HOME".into());

    // BUILDD_LOG: the filter; `debug` logs each client's connection, `info` does not.
    let (_, log) = d.with(&[("BUILDD_LOG", "info")], &["status"]);
    assert!(
        log.contains("daemon started") && !log.contains("client connected"),
        "{log}"
    );
    for filter in ["debug", "buildd_daemon=trace"] {
        let (_, log) = d.with(&[("BUILDD_LOG", filter)], &["status"]);
        assert!(
            log.contains("client connected"),
            "BUILDD_LOG={filter}:\n{log}"
        );
    }

    // BUILDD_IDLE_TIMEOUT: shown by status; a bare number is seconds.
    for (value, secs) in [("3h", 10_800), ("90s", 90), ("90", 90), ("10m", 600)] {
        let (status, _) = d.with(&[("BUILDD_IDLE_TIMEOUT", value)], &["status"]);
        assert_eq!(status["daemon"]["idle_timeout_secs"], secs, "{value}");
    }

    // BUILDD_DEBOUNCE: in the daemon's settings line.
    for (value, shown) in [("150ms", "debounce=150ms"), ("2s", "debounce=2s")] {
        let (_, log) = d.with(&[("BUILDD_DEBOUNCE", value)], &["status"]);
        assert!(log.contains(shown), "BUILDD_DEBOUNCE={value}:\n{log}");
    }

    // BUILDD_NO_START=1: no daemon is started; one that runs is used.
    let mut cmd = world.cmd(&ws, &["status"]);
    cmd.env("BUILDD_NO_START", "1");
    assert_eq!(cmd.output().unwrap().status.code(), Some(4));
    assert!(!world.home().join("run/daemon.sock").exists());
    world.ok(&ws, &["status"]);
    world.ok_with(&ws, &[("BUILDD_NO_START", "1")], &["status"]);
    world.ok(&ws, &["stop"]);
    d.tested.insert("BUILDD_NO_START".into());

    // BUILDD_WATCHER: `poll` polls from the start and says so; the names of the default
    // watch with inotify; anything else is refused, naming the variable and the choices.
    let (ws_status, _) = d.registered(&[("BUILDD_WATCHER", "poll")]);
    assert_eq!(ws_status["watcher"]["kind"], "poll", "{ws_status:#}");
    assert!(
        ws_status["watcher"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("BUILDD_WATCHER=poll")),
        "{ws_status:#}"
    );
    for value in ["inotify", "native", "auto"] {
        let (ws_status, _) = d.registered(&[("BUILDD_WATCHER", value)]);
        assert_eq!(ws_status["watcher"]["kind"], "native", "{value}");
        assert!(ws_status["watcher"]["note"].is_null(), "{ws_status:#}");
    }
    let stderr = d.refused(&[("BUILDD_WATCHER", "fanotify")]);
    assert!(
        stderr.contains("BUILDD_WATCHER: `fanotify` is not a watcher")
            && stderr.contains("poll")
            && stderr.contains("inotify"),
        "{stderr}"
    );

    // BUILDD_MAX_CONNECTIONS and BUILDD_MAX_FRAME: in the daemon's log; a bad one is refused.
    let (_, log) = d.with(&[("BUILDD_MAX_CONNECTIONS", "64")], &["status"]);
    assert!(log.contains("max_connections=64"), "{log}");
    let stderr = d.refused(&[("BUILDD_MAX_CONNECTIONS", "none")]);
    assert!(
        stderr.contains("BUILDD_MAX_CONNECTIONS: `none`"),
        "{stderr}"
    );
    let (_, log) = d.with(&[("BUILDD_MAX_FRAME", "65536")], &["status"]);
    assert!(log.contains("max_frame=65536"), "{log}");

    // BUILDD_CACHE_BUDGET: the budget status shows, once the dirs are measured.
    for (value, bytes) in [("30GiB", 30u64 << 30), ("500MB", 500_000_000)] {
        d.tested.insert("BUILDD_CACHE_BUDGET".into());
        world.ok_with(&ws, &[("BUILDD_CACHE_BUDGET", value)], &["status"]);
        wait_until("the cache to be measured", || {
            !world.status(&ws)["cache"].is_null()
        });
        assert_eq!(world.status(&ws)["cache"]["budget_bytes"], bytes, "{value}");
        world.ok(&ws, &["stop"]);
    }

    // BUILDD_SCCACHE, with an sccache on PATH too old to use, which the workspace's status
    // names when buildd looks for one: by default and with the true spellings, and as a
    // binary given by path. The false spellings turn it off: no sccache, nothing to say.
    let bin = world.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("sccache");
    write_script(&fake, "#!/bin/sh\necho 'sccache 0.4.0'\n");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let fake_s = fake.to_str().unwrap();
    // (Empty is unset: the default.)
    for value in ["", "1", "true", "yes", "on", "ON", "auto", fake_s] {
        let (ws_status, _) = d.registered(&[("BUILDD_SCCACHE", value), ("PATH", &path)]);
        let note = ws_status["sccache"]["note"].as_str().unwrap_or("");
        assert!(
            note.contains(fake_s) && note.contains("0.4.0"),
            "BUILDD_SCCACHE={value}: {ws_status:#}"
        );
    }
    // Issue 19: the note filled three lines of every `status`, `wait` and `watch`; it is one
    // short line with the fix.
    for command in ["wait", "status"] {
        let stdout = world.ok_with(&ws, &[("BUILDD_SCCACHE", ""), ("PATH", &path)], &[command]);
        let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("sccache")).collect();
        assert_eq!(lines.len(), 1, "{command}:\n{stdout}");
        assert!(
            lines[0].contains("BUILDD_SCCACHE") && lines[0].len() < 150 + fake_s.len(),
            "{command}: {}",
            lines[0]
        );
    }
    world.ok(&ws, &["stop"]);
    for value in ["0", "false", "no", "off", "False"] {
        let (ws_status, log) = d.registered(&[("BUILDD_SCCACHE", value), ("PATH", &path)]);
        assert_eq!(ws_status["sccache"]["enabled"], false, "{value}");
        assert!(
            ws_status["sccache"]["note"].is_null(),
            "{value}: {ws_status:#}"
        );
        assert!(log.contains("sccache=Off"), "{value}:\n{log}");
    }

    assert_eq!(
        d.tested,
        documented_variables(),
        "README's table and this test differ"
    );
}
