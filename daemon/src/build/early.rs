//! Early diagnostics: after a save, the saved crate's own compiler invocation from the last
//! diagnostics job, run again in a scratch dir while the job's cargo starts.
//!
//! Most of a bare `cargo check` on a large workspace is cargo's own start-up (resolving,
//! fingerprinting every unit) before rustc sees the saved crate. cargo prints each
//! compiler command it runs with `-vv` (the program, its arguments, and the environment it
//! sets); the diagnostics stage records the commands of the workspace's own crates
//! (`invocation.rs`), and on the next save of a file that one of them reads, the dispatcher runs
//! that command again ([`run`]), with its outputs in a scratch dir of buildd's (never the
//! isolated dir cargo owns), and shows what it reports at once. Under clippy it runs rustc
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

/// The longest stderr line read as a diagnostic (as cargo's stdout in `cargo_run.rs`).
const MAX_LINE: usize = 4 * 1024 * 1024;
/// An early run that takes longer is stopped: the job says the same soon.
const TIMEOUT: Duration = Duration::from_secs(120);
/// rustc's errors about a dependency's metadata rather than the crate's code: can't find
/// crate, found a crate compiled by another rustc or with other hashes, invalid metadata.
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

/// What an early run found.
#[derive(Debug)]
pub(crate) struct EarlyReport {
    pub(crate) package: String,
    pub(crate) crate_name: String,
    /// Placed in the workspace.
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) duration: Duration,
}

/// Runs `invocation` in the scratch dir and returns its diagnostics, placed in the
/// workspace; `None` when the compiler cannot start, fails without a diagnostic (it reports
/// nothing then, as the job will), or `cancel` fires (a newer edit).
pub(crate) async fn run(
    run: EarlyRun,
    invocation: std::sync::Arc<Invocation>,
    cancel: CancellationToken,
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
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut found = Vec::new();
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
                        found.push(d);
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
        diagnostics = found.len(),
        ms = started.elapsed().as_millis() as u64,
        "early run ended"
    );
    if !status.success() && found.is_empty() {
        return None;
    }
    // A dependency's metadata that is missing or not the one recorded (the dir was evicted,
    // or changed under the command) says nothing of the code: the job would not say it.
    if found.iter().any(|d| {
        d.rustc
            .code
            .as_ref()
            .is_some_and(|c| STALE_DEPENDENCY.contains(&c.code.as_str()))
    }) {
        return None;
    }
    Some(EarlyReport {
        package: invocation.package.clone(),
        crate_name: invocation.crate_name.clone(),
        diagnostics: found,
        duration: started.elapsed(),
    })
}
