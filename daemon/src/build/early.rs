//! Early diagnostics: after a save, the saved crate's own compiler invocation from the last
//! diagnostics job, run again in a scratch dir while the job's cargo starts.
//!
//! Most of a bare `cargo check` on a large workspace is cargo's own start-up (resolving,
//! fingerprinting every unit) before rustc sees the saved crate. cargo prints each
//! compiler command it runs with `-vv` (the program, its arguments, and the environment it
//! sets); the diagnostics stage records the commands of the workspace's own crates
//! (`invocation.rs`), and on the next save of a file that one of them reads, the dispatcher runs
//! that command again ([`run`]), with its outputs in a scratch dir of buildd's (never the
//! isolated dir cargo owns), and shows each diagnostic the moment rustc prints it (rustc
//! still has the crate's metadata and its incremental cache to write then: on buildd's own
//! binary crate, a warning came at 0.17 s of a 0.25 s run). Under clippy it runs rustc
//! itself, with clippy's `--cfg clippy`: clippy's lints are slower to get than rustc's
//! diagnostics, and come with the job. The job's own diagnostics replace the early ones file
//! by file, because those carry an older generation (see `wire/stamped.rs`).
//!
//! **Invariant:** an early run never shows a diagnostic the job would not. So the
//! dispatcher runs one only when the command is the job's own, for the same sources and the
//! same dependencies: the last job succeeded, every changed file is a `.rs` file the
//! crate's dep-info lists, no build script of the package would run again (its
//! `rerun-if-changed` names no changed file, and it has some), the command was recorded
//! since the workspace's last load or, recorded before it under the same build key, the
//! diagnostics job after the load found its unit fresh (cargo's fingerprint covers the
//! arguments, so cargo would run it as it did), and the diagnostics job passes clippy no
//! arguments (they travel in an environment variable cargo does not print). Otherwise the
//! job alone reports, as before.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use cargo_metadata::diagnostic::Diagnostic as RustcDiagnostic;
use nix::unistd::Pid;
use tokio::io::BufReader;
use tokio_util::sync::CancellationToken;

use crate::build::cargo_run::{self, read_line_capped};
use crate::build::invocation::Invocation;
use crate::build::{diagnostics, process};
use crate::wire::protocol::{CargoEnv, Diagnostic};
use crate::wire::status::Severity;

/// The longest stderr line read as a diagnostic (as cargo's stdout in `cargo_run.rs`).
const MAX_LINE: usize = 4 * 1024 * 1024;
/// An early run that takes longer is stopped: the job says the same soon.
const TIMEOUT: Duration = Duration::from_secs(120);
/// rustc's errors about a dependency's metadata rather than the crate's code: can't find
/// crate, found a crate compiled by another rustc or with other hashes, invalid metadata.
/// rustc loads a dependency when name resolution first meets it, before any lint or type
/// check, so what it printed before such an error (the crate's parse errors) did not need
/// the dependency; from the error on, the run shows nothing more and is stopped.
const STALE_DEPENDENCY: &[&str] = &[
    "E0460", "E0461", "E0462", "E0463", "E0464", "E0514", "E0519", "E0523", "E0786",
];

/// What an early run needs besides the candidates.
pub(crate) struct EarlyRun {
    pub(crate) root: PathBuf,
    /// The changed files: the command's own dep-info lists them all.
    pub(crate) files: std::collections::BTreeSet<PathBuf>,
    pub(crate) env: std::sync::Arc<BTreeMap<String, String>>,
    pub(crate) cargo_env: std::sync::Arc<CargoEnv>,
    /// buildd's own dir for the outputs; never the isolated dir.
    pub(crate) scratch: PathBuf,
    pub(crate) nice: i32,
}

/// What an early run found, when it ended: its diagnostics went to `found` as they came.
#[derive(Debug)]
pub(crate) struct EarlyReport {
    pub(crate) package: String,
    pub(crate) crate_name: String,
    pub(crate) errors: u64,
    pub(crate) warnings: u64,
    pub(crate) duration: Duration,
}

/// Runs `invocation` in the scratch dir and hands each diagnostic, placed in the workspace,
/// to `found` as rustc prints it. Returns what it found in all; `None` when the compiler
/// cannot start, fails without a diagnostic (it reports nothing then, as the job will),
/// meets a dependency's stale metadata, or `cancel` fires (a newer edit).
pub(crate) async fn run(
    run: EarlyRun,
    invocation: std::sync::Arc<Invocation>,
    cancel: CancellationToken,
    mut found: impl FnMut(Diagnostic),
) -> Option<EarlyReport> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&run.scratch).ok()?;
    let (program, args) = invocation.scratch_command(&run.scratch);
    let mut cmd = process::command(&program, &run.root, &run.env);
    for name in &run.cargo_env.remove {
        cmd.env_remove(name);
    }
    cmd.envs(&run.cargo_env.set)
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdout(Stdio::null());
    cargo_run::in_own_group(&mut cmd, run.nice);
    let mut child = cmd.spawn().ok()?;
    tracing::debug!(crate_name = %invocation.crate_name, "early run started");
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let (mut shown, mut errors, mut warnings) = (0, 0, 0);
    let deadline = tokio::time::sleep(TIMEOUT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                cargo_run::kill_group(&mut child, pgid).await;
                return None;
            }
            _ = &mut deadline => {
                cargo_run::kill_group(&mut child, pgid).await;
                return None;
            }
            more = read_line_capped(&mut reader, &mut line, MAX_LINE) => match more {
                Ok(true) => {
                    let text = String::from_utf8_lossy(&line);
                    // rustc's JSON diagnostics; its artifact notices are not diagnostics.
                    if let Ok(rustc) = serde_json::from_str::<RustcDiagnostic>(&text)
                        && let Some(d) = diagnostics::convert_rustc(
                            &run.root,
                            &invocation.package,
                            &invocation.src_path,
                            rustc,
                        )
                    {
                        // A dependency's metadata that is missing or not the one recorded
                        // (the dir was evicted, or changed under the command) says nothing
                        // of the code: the job would not say it, nor what follows it.
                        if d.rustc
                            .code
                            .as_ref()
                            .is_some_and(|c| STALE_DEPENDENCY.contains(&c.code.as_str()))
                        {
                            tracing::debug!(
                                crate_name = %invocation.crate_name,
                                "early run stopped: a dependency's metadata is stale"
                            );
                            cargo_run::kill_group(&mut child, pgid).await;
                            return None;
                        }
                        match d.severity {
                            Severity::Error => errors += 1,
                            Severity::Warning => warnings += 1,
                            _ => {}
                        }
                        shown += 1;
                        if shown == 1 {
                            tracing::debug!(
                                ms = started.elapsed().as_millis() as u64,
                                "early run's first diagnostic"
                            );
                        }
                        found(d);
                    }
                    line.clear();
                }
                Ok(false) | Err(_) => break,
            },
        }
    }
    let status = child.wait().await.ok()?;
    tracing::debug!(
        crate_name = %invocation.crate_name,
        ?status,
        errors,
        warnings,
        ms = started.elapsed().as_millis() as u64,
        "early run ended"
    );
    if !status.success() && shown == 0 {
        return None;
    }
    Some(EarlyReport {
        package: invocation.package.clone(),
        crate_name: invocation.crate_name.clone(),
        errors,
        warnings,
        duration: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;

    /// A compiler that prints a diagnostic, then waits for `release` before it exits. `sh`
    /// stands in for rustc here: rustc cannot be made to wait, after a warning, for the test
    /// to let it go on. The real rustc runs in the e2e tests (`early.rs`).
    const COMPILER: &str = r#"touch alive
printf '%s\n' '{"$message_type":"diagnostic","message":"unused variable: `x`","code":null,"level":"warning","spans":[],"children":[],"rendered":"warning: unused variable"}' >&2
n=0
while [ ! -e release ] && [ $n -lt 6000 ]; do sleep 0.01; n=$((n+1)); done
rm alive
"#;

    fn invocation(dir: &std::path::Path, script: &str) -> Arc<Invocation> {
        Arc::new(Invocation {
            env: Vec::new(),
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
            crate_name: "app".into(),
            package: "app".into(),
            src_path: dir.join("src/main.rs"),
            dep_info: dir.join("app.d"),
        })
    }

    fn early_run(dir: &std::path::Path) -> EarlyRun {
        let path = std::env::var("PATH").unwrap_or_default();
        EarlyRun {
            root: dir.to_path_buf(),
            files: BTreeSet::new(),
            env: Arc::new(BTreeMap::from([("PATH".to_owned(), path)])),
            cargo_env: Arc::new(CargoEnv::default()),
            scratch: dir.join("scratch"),
            nice: 0,
        }
    }

    #[tokio::test]
    async fn each_diagnostic_is_handed_on_while_the_compiler_still_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let report = run(
            early_run(dir.path()),
            invocation(dir.path(), COMPILER),
            CancellationToken::new(),
            |d| {
                seen.push((d.message.clone(), dir.path().join("alive").exists()));
                std::fs::write(dir.path().join("release"), "").unwrap();
            },
        )
        .await
        .expect("the run ended with a diagnostic");
        assert_eq!(
            seen,
            [("unused variable: `x`".to_owned(), true)],
            "the warning came before the compiler exited"
        );
        assert_eq!((report.errors, report.warnings), (0, 1));
        assert!(
            !dir.path().join("alive").exists(),
            "the run waited for its end"
        );
    }

    #[tokio::test]
    async fn a_stale_dependency_stops_the_run_and_nothing_after_it_is_shown() {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"printf '%s\n' '{"$message_type":"diagnostic","message":"can'"'"'t find crate for `lib1`","code":{"code":"E0463","explanation":null},"level":"error","spans":[],"children":[],"rendered":"error[E0463]"}' >&2
printf '%s\n' '{"$message_type":"diagnostic","message":"cannot find function `value`","code":{"code":"E0425","explanation":null},"level":"error","spans":[],"children":[],"rendered":"error[E0425]"}' >&2
"#;
        let mut seen = Vec::new();
        let report = run(
            early_run(dir.path()),
            invocation(dir.path(), script),
            CancellationToken::new(),
            |d| seen.push(d.message),
        )
        .await;
        assert!(report.is_none());
        assert!(seen.is_empty(), "shown: {seen:?}");
    }
}
