//! One benchmark run, start to end: the copies, the cold builds, the rounds alternating
//! which side goes first, and the idle window.
//!
//! The workspace is copied once per side (plus the extra idle workspaces), so the daemon
//! never sees the baseline's edits and plain cargo never shares a target dir with buildd.
//! The two sides never run at the same time: each measures a machine the other leaves
//! alone. Which side goes first alternates in a pattern (plain, buildd, buildd, plain, ...)
//! that alternates within diagnostic rounds and within code rounds alike, so a slow drift of
//! the machine's load hits both sides of every figure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::buildd_side::{BuilddCold, BuilddRound, BuilddSide};
use crate::copy::copy_workspace;
use crate::edit::EditTarget;
use crate::env;
use crate::idle::{self, Idle};
use crate::machine::{self, Machine};
use crate::plain::{PlainRound, PlainSide};

/// What a run measures, resolved from the command line.
pub(crate) struct Setup {
    pub(crate) buildd: PathBuf,
    /// The workspace root to copy (never written).
    pub(crate) source: PathBuf,
    /// What to call the workspace in the report.
    pub(crate) label: String,
    /// Relative to the root.
    pub(crate) edit: PathBuf,
    pub(crate) runs: u32,
    pub(crate) idle: Duration,
    pub(crate) idle_workspaces: u32,
    pub(crate) require_lsp: bool,
    pub(crate) timeout: Duration,
    /// The temporary dir for copies, logs and buildd's home.
    pub(crate) dir: PathBuf,
    /// The settings the harness registers its workspaces with (as an editor's).
    pub(crate) settings: buildd_daemon::protocol::WorkspaceSettings,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Round {
    pub(crate) round: u32,
    /// Whether the edit added a warning that both sides waited for.
    pub(crate) diagnostic: bool,
    /// `plain` or `buildd`.
    pub(crate) first: &'static str,
    pub(crate) plain: PlainRound,
    pub(crate) buildd: BuilddRound,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cold {
    pub(crate) plain: PlainRound,
    pub(crate) buildd: BuilddCold,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Results {
    pub(crate) machine: Machine,
    pub(crate) workspace: String,
    pub(crate) edit: PathBuf,
    pub(crate) buildd_binary: PathBuf,
    pub(crate) buildd_version: String,
    /// The buildd side ran with `fast_link = true` (`--fast-link`).
    #[serde(default)]
    pub(crate) fast_link: bool,
    /// Why there is no LSP figure, when there is none.
    pub(crate) lsp_unavailable: Option<String>,
    /// Whether each round's peak RSS is that round's (else the daemon's lifetime peak).
    pub(crate) peak_rss_per_round: bool,
    pub(crate) cold: Cold,
    pub(crate) rounds: Vec<Round>,
    pub(crate) idle: Idle,
}

/// Whether round `round` (1-based) is a diagnostic round: the odd ones, so a single round is.
pub(crate) fn is_diagnostic(round: u32) -> bool {
    round % 2 == 1
}

/// Whether the buildd side goes first in round `round`: plain, buildd, buildd, plain, plain,
/// buildd, ... which alternates both among odd (diagnostic) and even (code) rounds.
pub(crate) fn buildd_first(round: u32) -> bool {
    (round / 2) % 2 == 1
}

/// The copies a run works on, and what every child process gets.
pub(crate) struct Prepared {
    pub(crate) plain_root: PathBuf,
    pub(crate) buildd_root: PathBuf,
    /// The extra copies for the idle measurement.
    pub(crate) idle_roots: Vec<PathBuf>,
    pub(crate) logs: PathBuf,
    pub(crate) child_env: std::collections::BTreeMap<String, String>,
    pub(crate) target: EditTarget,
}

/// Copies the workspace once per side (and `idle_workspaces - 1` more times), with one
/// lockfile for all, and reads the file to edit.
pub(crate) fn prepare(setup: &Setup, idle_workspaces: u32) -> anyhow::Result<Prepared> {
    let name = setup
        .source
        .file_name()
        .map_or_else(|| "workspace".into(), |n| n.to_owned());
    let copy_at = |side: &str| setup.dir.join(side).join(&name);
    let plain_root = copy_at("plain");
    progress(&format!(
        "copying {} into {}",
        setup.source.display(),
        setup.dir.display()
    ));
    copy_workspace(&setup.source, &plain_root)?;
    let home = setup.dir.join("home");
    let logs = setup.dir.join("logs");
    std::fs::create_dir_all(&logs)
        .with_context(|| format!("failed to create {}", logs.display()))?;
    let child_env = env::child_env(&home);
    // The one resolution both sides build with.
    ensure_lockfile(&plain_root, &child_env, setup.timeout)?;
    let buildd_root = copy_at("buildd");
    copy_workspace(&plain_root, &buildd_root)?;
    let idle_roots: Vec<PathBuf> = (2..=idle_workspaces)
        .map(|i| copy_at(&format!("idle-{i}")))
        .collect();
    for root in &idle_roots {
        copy_workspace(&plain_root, root)?;
    }
    let canonical = |p: &Path| {
        std::fs::canonicalize(p).with_context(|| format!("failed to resolve {}", p.display()))
    };
    let (plain_root, buildd_root) = (canonical(&plain_root)?, canonical(&buildd_root)?);
    let target = EditTarget::read(&plain_root, &setup.edit)?;
    Ok(Prepared {
        plain_root,
        buildd_root,
        idle_roots,
        logs,
        child_env,
        target,
    })
}

pub(crate) fn run(setup: &Setup) -> anyhow::Result<Results> {
    let Prepared {
        plain_root,
        buildd_root,
        idle_roots,
        logs,
        child_env,
        target,
    } = prepare(setup, setup.idle_workspaces)?;

    let mut machine = Machine::describe(&child_env);
    let plain = PlainSide::new(&plain_root, &child_env, setup.timeout);
    progress("cold: plain cargo check, build, test --no-run");
    let plain_cold = plain.cold()?;
    progress("cold: the daemon's first job, then buildd cargo build, test --no-run");
    let (mut buildd, cold) = BuilddSide::start(
        &setup.buildd,
        &child_env,
        &buildd_root,
        &logs,
        setup.require_lsp,
        setup.timeout,
        &setup.settings,
    )?;
    let buildd_cold = buildd.warm_defaults(cold)?;
    if let Err(unavailable) = &buildd.lsp {
        progress(&format!(
            "LSP figure missing: {}; measuring the rest",
            unavailable.reason
        ));
    }
    buildd.open(&target)?;

    let mut rounds = Vec::new();
    for round in 1..=setup.runs {
        let diagnostic = is_diagnostic(round);
        let edit = target.edit(round, diagnostic);
        let kind = if diagnostic { "diagnostic" } else { "code" };
        let (plain_result, buildd_result) = if buildd_first(round) {
            progress(&format!(
                "round {round}/{} ({kind}): buildd, then plain",
                setup.runs
            ));
            let b = buildd.round(&target, &edit)?;
            (plain.round(&target, &edit)?, b)
        } else {
            progress(&format!(
                "round {round}/{} ({kind}): plain, then buildd",
                setup.runs
            ));
            let p = plain.round(&target, &edit)?;
            (p, buildd.round(&target, &edit)?)
        };
        rounds.push(Round {
            round,
            diagnostic,
            first: if buildd_first(round) {
                "buildd"
            } else {
                "plain"
            },
            plain: plain_result,
            buildd: buildd_result,
        });
    }

    progress(&format!(
        "idle: {} workspaces registered, {:?} with no edits",
        setup.idle_workspaces, setup.idle
    ));
    let idle = idle::measure(&mut buildd.daemon, &idle_roots, setup.idle, setup.timeout)?;
    machine.load_after = machine::load_average();

    let results = Results {
        machine,
        workspace: setup.label.clone(),
        edit: setup.edit.clone(),
        buildd_binary: setup.buildd.clone(),
        buildd_version: buildd.daemon.version.clone(),
        fast_link: setup.settings.fast_link == Some(true),
        lsp_unavailable: buildd.lsp.as_ref().err().map(|u| u.reason.clone()),
        peak_rss_per_round: buildd.peak_per_round,
        cold: Cold {
            plain: plain_cold,
            buildd: buildd_cold,
        },
        rounds,
        idle,
    };
    buildd.stop()?;
    Ok(results)
}

/// Writes `Cargo.lock` when the workspace has none, so that every copy resolves the same
/// versions. The cached index is tried first, so a machine that built this workspace before
/// needs no network.
fn ensure_lockfile(
    root: &Path,
    child_env: &std::collections::BTreeMap<String, String>,
    timeout: Duration,
) -> anyhow::Result<()> {
    if root.join("Cargo.lock").is_file() {
        return Ok(());
    }
    let attempt = |offline: bool| {
        let mut cmd = env::command("cargo", child_env);
        cmd.arg("generate-lockfile").current_dir(root);
        if offline {
            cmd.arg("--offline");
        }
        crate::command::run(cmd, "cargo generate-lockfile", timeout)
    };
    attempt(true).or_else(|_| attempt(false))?;
    Ok(())
}

/// A line on stderr about what the run is doing; stdout carries only the results.
pub(crate) fn progress(message: &str) {
    eprintln!("buildd-bench: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_kinds_and_order() {
        let pattern: Vec<(bool, bool)> = (1..=8)
            .map(|r| (is_diagnostic(r), buildd_first(r)))
            .collect();
        assert_eq!(
            pattern,
            [
                (true, false),
                (false, true),
                (true, true),
                (false, false),
                (true, false),
                (false, true),
                (true, true),
                (false, false)
            ]
        );
    }
}
