//! The buildd side: the daemon warming its own copy, an editor's `buildd lsp` on it, and the
//! user's `buildd cargo` once the daemon is idle.
//!
//! A round writes the edit and tells the daemon the file was saved, as an editor does: with
//! `buildd lsp`, by `textDocument/didSave`; without it, by the socket's `saved` request that
//! `buildd lsp` sends for it. It then times, from the write, the warning published over LSP,
//! the same warning as a `diagnostic` event on the socket (a secondary figure), and the
//! daemon's pipeline going idle; then the warm `buildd cargo build` and
//! `buildd cargo test --no-run`. The daemon's CPU and peak memory cover the whole round.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use buildd_daemon::protocol::{JobResult, WorkspaceSettings};
use serde::Serialize;

use crate::command::{self, Finished};
use crate::daemon::{Daemon, Settled};
use crate::edit::{Edit, EditTarget};
use crate::lsp_client::{LspClient, Unavailable};
use crate::plain::Cost;
use crate::{env, proc_stats};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BuilddRound {
    /// Edit to the warning in `textDocument/publishDiagnostics`; diagnostic rounds with
    /// `buildd lsp` only.
    pub(crate) lsp_diagnostic_secs: Option<f64>,
    /// Edit to the warning's `diagnostic` event on the daemon's socket; diagnostic rounds.
    pub(crate) socket_diagnostic_secs: Option<f64>,
    /// Edit to the state event that says the pipeline is idle after the edit's job.
    pub(crate) pipeline_idle_secs: f64,
    /// The job that covered the edit, as the daemon reported it.
    pub(crate) job: u64,
    pub(crate) job_secs: f64,
    pub(crate) job_units_compiled: u64,
    pub(crate) warm_build: Cost,
    pub(crate) warm_test: Cost,
    /// The daemon's CPU over the round, its children's included.
    pub(crate) daemon_cpu_secs: f64,
    /// Of which the daemon process itself.
    pub(crate) daemon_own_cpu_secs: f64,
    /// The daemon's peak resident size during the round (`VmHWM` after a reset).
    pub(crate) daemon_peak_rss_bytes: u64,
}

/// What a round's edit led to, up to the idle pipeline.
pub(crate) struct Settle {
    /// When the edit was written.
    pub(crate) edited: Instant,
    /// The daemon's CPU just before the edit.
    pub(crate) cpu_before: proc_stats::ProcCpu,
    /// The newest job the harness had seen before the edit.
    pub(crate) job_before: u64,
    /// When the warning arrived over LSP (diagnostic rounds with `buildd lsp`).
    pub(crate) lsp_diagnostic: Option<Instant>,
    pub(crate) settled: Settled,
}

/// The daemon's cost over a round, from just before its edit.
pub(crate) struct Spent {
    /// Its CPU, its children's included.
    pub(crate) cpu_secs: f64,
    /// Of which the daemon process itself.
    pub(crate) own_cpu_secs: f64,
    /// Its peak resident size (`VmHWM` after the round's reset).
    pub(crate) peak_rss_bytes: u64,
}

impl Settle {
    /// The daemon's cost from just before the edit until now.
    pub(crate) fn spent(&self, pid: u32) -> anyhow::Result<Spent> {
        let cpu_after = proc_stats::process_cpu(pid)?;
        let memory = proc_stats::process_memory(pid)?;
        Ok(Spent {
            cpu_secs: cpu_after
                .total()
                .saturating_sub(self.cpu_before.total())
                .as_secs_f64(),
            own_cpu_secs: cpu_after
                .own
                .saturating_sub(self.cpu_before.own)
                .as_secs_f64(),
            peak_rss_bytes: memory.peak,
        })
    }
}

pub(crate) struct BuilddSide {
    pub(crate) daemon: Daemon,
    pub(crate) lsp: Result<LspClient, Unavailable>,
    /// The workspace root as the daemon names it.
    pub(crate) root: PathBuf,
    buildd: PathBuf,
    env: BTreeMap<String, String>,
    timeout: Duration,
    /// Whether `VmHWM` could be reset per round; if not, peaks are the daemon's lifetime's.
    pub(crate) peak_per_round: bool,
}

/// The cold start: registration to idle, and the first `buildd cargo` commands after it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BuilddCold {
    pub(crate) pipeline_idle_secs: f64,
    pub(crate) daemon_cpu_secs: f64,
    pub(crate) warm_build: Cost,
    pub(crate) warm_test: Cost,
}

/// The daemon's start up to the idle pipeline after its cold job.
pub(crate) struct ColdStart {
    /// Registration to the idle pipeline.
    pub(crate) pipeline_idle: Duration,
    /// The daemon's CPU when it had started, before registration.
    pub(crate) cpu_before: proc_stats::ProcCpu,
}

impl BuilddSide {
    /// After [`BuilddSide::start`], the default mode's cold figures: the warm
    /// `buildd cargo build` and `buildd cargo test --no-run` once.
    pub(crate) fn warm_defaults(&self, cold: ColdStart) -> anyhow::Result<BuilddCold> {
        let warm_build = self.buildd_cargo(&["build"])?;
        let warm_test = self.buildd_cargo(&["test", "--no-run"])?;
        let cpu_after = proc_stats::process_cpu(self.daemon.pid)?;
        let cold = BuilddCold {
            pipeline_idle_secs: cold.pipeline_idle.as_secs_f64(),
            daemon_cpu_secs: cpu_after
                .total()
                .saturating_sub(cold.cpu_before.total())
                .as_secs_f64(),
            warm_build: Cost::from(&warm_build),
            warm_test: Cost::from(&warm_test),
        };
        Ok(cold)
    }

    /// Starts the daemon and (when this buildd has it) `buildd lsp` on `root`, registers the
    /// workspace, and waits for its cold job; runs no `buildd cargo` command, which the
    /// daemon would learn from. Fails if `require_lsp` and there is no LSP.
    pub(crate) fn start(
        buildd: &Path,
        env: &BTreeMap<String, String>,
        root: &Path,
        logs: &Path,
        require_lsp: bool,
        timeout: Duration,
        settings: &WorkspaceSettings,
    ) -> anyhow::Result<(BuilddSide, ColdStart)> {
        let daemon = Daemon::start(buildd, env, &logs.join("daemon.stderr"))?;
        let started = Instant::now();
        let cpu_before = proc_stats::process_cpu(daemon.pid)?;
        // The editor comes first, as when a user opens the workspace: its `initialize`
        // registers the workspace with the daemon.
        let lsp = LspClient::start(buildd, env, root, &logs.join("lsp.stderr"), timeout)?;
        if let Err(unavailable) = &lsp
            && require_lsp
        {
            bail!("{} (--require-lsp)", unavailable.reason);
        }
        let mut side = BuilddSide {
            daemon,
            lsp,
            root: root.to_path_buf(),
            buildd: buildd.to_path_buf(),
            env: env.clone(),
            timeout,
            peak_per_round: true,
        };
        side.root = side.daemon.register(root, settings)?;
        let settled = side.daemon.wait_settled(&side.root, 0, None, timeout)?;
        ensure!(
            settled.summary.result == JobResult::Success,
            "the daemon's cold job on {} failed: {}",
            side.root.display(),
            settled.summary.failure.clone().unwrap_or_else(|| format!(
                "{} errors; see `buildd status` with BUILDD_HOME={}",
                settled.summary.errors,
                env.get("BUILDD_HOME").map_or("?", String::as_str)
            ))
        );
        let cold = ColdStart {
            pipeline_idle: settled.idle_at - started,
            cpu_before,
        };
        Ok((side, cold))
    }

    /// Opens the file the rounds edit in the editor.
    pub(crate) fn open(&mut self, target: &EditTarget) -> anyhow::Result<()> {
        if let Ok(lsp) = &mut self.lsp {
            let path = self.root.join(&target.relative);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            lsp.did_open(&path, &text)?;
        }
        Ok(())
    }

    /// `buildd --no-start cargo ARGS` in the copy. With `--no-start` a missing daemon is a
    /// failure, and the notice of buildd's fallback to plain cargo is checked for too: a
    /// fallback would time the user's own target dir, not the warm one.
    pub(crate) fn buildd_cargo(&self, args: &[&str]) -> anyhow::Result<Finished> {
        let mut cmd = env::command(&self.buildd, &self.env);
        cmd.args(["--no-start", "cargo"])
            .args(args)
            .current_dir(&self.root);
        let what = format!("buildd cargo {} in {}", args.join(" "), self.root.display());
        let finished = command::run(cmd, &what, self.timeout)?;
        ensure!(
            !finished.stderr.contains("running plain cargo"),
            "{what} fell back to plain cargo:\n{}",
            finished.stderr
        );
        Ok(finished)
    }

    /// One round: the edit, its diagnostics, the idle pipeline, the warm commands.
    pub(crate) fn round(
        &mut self,
        target: &EditTarget,
        edit: &Edit,
    ) -> anyhow::Result<BuilddRound> {
        let settle = self.edit_and_settle(target, edit)?;
        let warm_build = self.buildd_cargo(&["build"])?;
        let warm_test = self.buildd_cargo(&["test", "--no-run"])?;
        let spent = settle.spent(self.daemon.pid)?;
        let since_edit = |at: Instant| (at - settle.edited).as_secs_f64();
        let settled = &settle.settled;
        Ok(BuilddRound {
            lsp_diagnostic_secs: settle.lsp_diagnostic.map(since_edit),
            socket_diagnostic_secs: settled.first_marked_diagnostic.map(since_edit),
            pipeline_idle_secs: since_edit(settled.idle_at),
            job: settled.summary.id,
            job_secs: settled.summary.duration_ms as f64 / 1000.0,
            job_units_compiled: settled.summary.units_compiled,
            warm_build: Cost::from(&warm_build),
            warm_test: Cost::from(&warm_test),
            daemon_cpu_secs: spent.cpu_secs,
            daemon_own_cpu_secs: spent.own_cpu_secs,
            daemon_peak_rss_bytes: spent.peak_rss_bytes,
        })
    }

    /// The first part of a round: writes the edit and says it was saved, as an editor does,
    /// then waits for the warning (in a diagnostic round) and for the daemon's pipeline to
    /// be idle after a job that covered the edit.
    pub(crate) fn edit_and_settle(
        &mut self,
        target: &EditTarget,
        edit: &Edit,
    ) -> anyhow::Result<Settle> {
        let pid = self.daemon.pid;
        let path = self.root.join(&target.relative);
        let after = self.daemon.last_job(&self.root);
        if let Ok(lsp) = &mut self.lsp {
            lsp.drain();
            // The user typed the change; the clock starts when it is saved.
            lsp.did_change(&path, &edit.text)?;
        }
        if self.peak_per_round && proc_stats::reset_peak(pid).is_err() {
            self.peak_per_round = false;
        }
        let cpu_before = proc_stats::process_cpu(pid)?;

        let edited = Instant::now();
        target.apply(&self.root, edit)?;
        match &mut self.lsp {
            Ok(lsp) => lsp.did_save(&path)?,
            Err(_) => self.daemon.saved(&path)?,
        }
        let marker = edit.warning_marker.as_deref();
        let lsp_diagnostic = match (&mut self.lsp, marker) {
            (Ok(lsp), Some(marker)) => {
                Some(lsp.wait_for_diagnostic(&path, marker, self.timeout)?)
            }
            _ => None,
        };
        let settled = self
            .daemon
            .wait_settled(&self.root, after, marker, self.timeout)?;
        ensure!(
            settled.summary.result == JobResult::Success,
            "the daemon's job #{} after the edit failed: {}",
            settled.summary.id,
            settled
                .summary
                .failure
                .clone()
                .unwrap_or_else(|| format!("{} errors", settled.summary.errors))
        );
        if let Some(marker) = marker {
            ensure!(
                settled.first_marked_diagnostic.is_some(),
                "the daemon's job #{} sent no diagnostic about `{marker}`",
                settled.summary.id
            );
        }
        Ok(Settle {
            edited,
            cpu_before,
            job_before: after,
            lsp_diagnostic,
            settled,
        })
    }

    /// Stops `buildd lsp` as an editor does, then the daemon.
    pub(crate) fn stop(self) -> anyhow::Result<()> {
        let lsp = match self.lsp {
            Ok(lsp) => lsp.stop(),
            Err(_) => Ok(()),
        };
        let daemon = self.daemon.stop();
        lsp.and(daemon)
    }
}
