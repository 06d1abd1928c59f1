//! One day-mode run: the copies, a cold pass of the script on both sides (which teaches the
//! daemon the script's shapes), then rounds of edit -> the script's commands, alternating
//! which side goes first as the default mode does.
//!
//! Plain cargo runs the commands in its copy's own `target/`. On the buildd side the round's
//! edit is saved as an editor saves it, the harness waits for the daemon's pipeline to be
//! idle (as the default mode does before its warm commands), and then runs each command as
//! `buildd --no-start cargo ...`. Both sides run each command with `--message-format=json`,
//! so the units it compiled are counted from cargo's `fresh` flags.
//!
//! The daemon may hold jobs back until the workspace has been quiet for a while (an
//! expensive, rarely used learned job; a default job the user's commands did not need):
//! those run when no edit came for that long, which in this harness is while plain cargo
//! takes its turn. Their CPU is counted all the same: each round also carries the daemon's
//! CPU between the previous buildd window and its own, and after the last round the harness
//! waits for what is still held back to run and reports that CPU as the tail.

use std::time::{Duration, Instant};

use anyhow::ensure;
use serde::Serialize;

use crate::buildd_side::BuilddSide;
use crate::day::script::DayCommand;
use crate::edit::{Edit, EditTarget};
use crate::machine::{self, Machine};
use crate::measure::{self, Prepared, Setup, buildd_first, is_diagnostic, progress};
use crate::plain::{Cost, PlainSide};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DayResults {
    pub(crate) machine: Machine,
    pub(crate) workspace: String,
    pub(crate) edit: std::path::PathBuf,
    pub(crate) buildd_binary: std::path::PathBuf,
    pub(crate) buildd_version: String,
    pub(crate) lsp_unavailable: Option<String>,
    /// The script's commands, as the report names them.
    pub(crate) commands: Vec<String>,
    /// The index of the first diagnostics command (`clippy`, `check`), if any.
    pub(crate) diagnostics_command: Option<usize>,
    pub(crate) cold: DayCold,
    pub(crate) rounds: Vec<DayRound>,
    pub(crate) tail: DayTail,
}

/// After the last round: the jobs the daemon still held back for a quiet workspace, run
/// once it was quiet.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct DayTail {
    /// The jobs that waited when the last round ended (none: nothing to wait for).
    pub(crate) waited_for: Vec<String>,
    /// From the end of the last round's window until they had run.
    pub(crate) secs: f64,
    /// The daemon's CPU over that time, its children's included.
    pub(crate) daemon_cpu_secs: f64,
    /// The jobs that ran meanwhile, as `#id [stages] N units`.
    pub(crate) jobs: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DayCold {
    /// Plain cargo's first run of each command.
    pub(crate) plain: Vec<Cost>,
    /// Registration to the idle pipeline.
    pub(crate) pipeline_idle_secs: f64,
    /// Each `buildd cargo` command's first run, once the default jobs were done: this is
    /// where the daemon learns its shape.
    pub(crate) buildd: Vec<Cost>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DayRound {
    pub(crate) round: u32,
    pub(crate) diagnostic: bool,
    /// `plain` or `buildd`.
    pub(crate) first: &'static str,
    /// One per command, in the script's order.
    pub(crate) plain: Vec<Cost>,
    pub(crate) buildd: DayBuilddRound,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DayBuilddRound {
    pub(crate) lsp_diagnostic_secs: Option<f64>,
    pub(crate) socket_diagnostic_secs: Option<f64>,
    pub(crate) pipeline_idle_secs: f64,
    /// The job that covered the edit: its id, its stages and the units it compiled.
    pub(crate) job: u64,
    pub(crate) job_stages: Vec<String>,
    pub(crate) job_units_compiled: u64,
    /// One per command, in the script's order, run once the pipeline was idle.
    pub(crate) commands: Vec<Cost>,
    /// The daemon's CPU from the edit until after the commands, its children's included.
    pub(crate) daemon_cpu_secs: f64,
    /// The daemon's CPU from the end of the previous round's window (or of the learning
    /// pass) until this round's edit: jobs held back for a quiet workspace that ran while
    /// plain cargo took its turn.
    pub(crate) daemon_between_cpu_secs: f64,
    /// The jobs that started in that time.
    pub(crate) jobs_between: u64,
    pub(crate) daemon_own_cpu_secs: f64,
    pub(crate) daemon_peak_rss_bytes: u64,
}

impl DayBuilddRound {
    /// The CPU of the user's `buildd cargo` commands themselves (the client and the cargo
    /// it runs, which find everything fresh when the daemon did its work).
    pub(crate) fn commands_cpu(&self) -> f64 {
        self.commands.iter().map(|c| c.cpu_secs).sum()
    }

    /// The daemon's CPU charged to the round: its window and what ran before it since the
    /// previous window.
    pub(crate) fn charged_cpu(&self) -> f64 {
        self.daemon_cpu_secs + self.daemon_between_cpu_secs
    }
}

/// Where the previous buildd window ended: the daemon's CPU and the newest job seen.
struct Mark {
    cpu: crate::proc_stats::ProcCpu,
    job: u64,
    at: Instant,
}

impl Mark {
    fn now(buildd: &mut BuilddSide) -> anyhow::Result<Mark> {
        let root = buildd.root.clone();
        Ok(Mark {
            job: buildd.daemon.last_job(&root),
            cpu: crate::proc_stats::process_cpu(buildd.daemon.pid)?,
            at: Instant::now(),
        })
    }
}

/// The CPU of plain cargo over a round's commands.
pub(crate) fn plain_cpu(costs: &[Cost]) -> f64 {
    costs.iter().map(|c| c.cpu_secs).sum()
}

pub(crate) fn run(setup: &Setup, script: &[DayCommand]) -> anyhow::Result<DayResults> {
    // No idle measurement in this mode: one copy per side.
    let Prepared {
        plain_root,
        buildd_root,
        logs,
        child_env,
        target,
        ..
    } = measure::prepare(setup, 1)?;
    let diagnostics_command = script.iter().position(DayCommand::is_diagnostics);
    let mut machine = Machine::describe(&child_env);
    let plain = PlainSide::new(&plain_root, &child_env, setup.timeout);
    let run_plain = |edit: Option<&Edit>| -> anyhow::Result<Vec<Cost>> {
        let mut costs = Vec::new();
        for (i, command) in script.iter().enumerate() {
            let args = command.with_json();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let finished = plain.cargo(&args)?;
            let marker = edit.and_then(|e| e.warning_marker.as_deref());
            if let Some(marker) = marker
                && Some(i) == diagnostics_command
            {
                ensure!(
                    finished.stdout.contains(marker),
                    "{} printed no warning about `{marker}` after the edit: does the edited \
                     crate allow unused variables? Choose another --edit file.",
                    command.label()
                );
            }
            costs.push(Cost::from(&finished));
        }
        Ok(costs)
    };

    progress("cold: the script with plain cargo");
    let plain_cold = run_plain(None)?;
    progress("cold: the daemon's first job, then the script with buildd cargo (it learns it)");
    // No `buildd cargo build` and `test --no-run` of the default mode's: they are not the
    // script's, and the daemon would learn from them that this user runs the default jobs.
    let (mut buildd, buildd_cold) = BuilddSide::start(
        &setup.buildd,
        &child_env,
        &buildd_root,
        &logs,
        setup.require_lsp,
        setup.timeout,
        &setup.settings,
    )?;
    if let Err(unavailable) = &buildd.lsp {
        progress(&format!(
            "LSP figure missing: {}; measuring the rest",
            unavailable.reason
        ));
    }
    let learned = buildd_commands(&buildd, script)?;
    buildd.open(&target)?;
    let mut mark = Mark::now(&mut buildd)?;

    let mut rounds = Vec::new();
    for round in 1..=setup.runs {
        let diagnostic = is_diagnostic(round);
        let edit = target.edit(round, diagnostic);
        let kind = if diagnostic { "diagnostic" } else { "code" };
        let first = if buildd_first(round) {
            "buildd"
        } else {
            "plain"
        };
        progress(&format!(
            "round {round}/{} ({kind}): {first} first",
            setup.runs
        ));
        let (plain_costs, buildd_round) = if buildd_first(round) {
            let b = buildd_round(&mut buildd, &target, &edit, script, &mut mark)?;
            target.apply(&plain.root, &edit)?;
            (run_plain(Some(&edit))?, b)
        } else {
            target.apply(&plain.root, &edit)?;
            let p = run_plain(Some(&edit))?;
            (
                p,
                buildd_round(&mut buildd, &target, &edit, script, &mut mark)?,
            )
        };
        rounds.push(DayRound {
            round,
            diagnostic,
            first,
            plain: plain_costs,
            buildd: buildd_round,
        });
    }
    let tail = tail(&mut buildd, &mark, setup.timeout)?;
    machine.load_after = machine::load_average();
    let results = DayResults {
        machine,
        workspace: setup.label.clone(),
        edit: setup.edit.clone(),
        buildd_binary: setup.buildd.clone(),
        buildd_version: buildd.daemon.version.clone(),
        lsp_unavailable: buildd.lsp.as_ref().err().map(|u| u.reason.clone()),
        commands: script.iter().map(DayCommand::label).collect(),
        diagnostics_command,
        cold: DayCold {
            plain: plain_cold,
            pipeline_idle_secs: buildd_cold.pipeline_idle.as_secs_f64(),
            buildd: learned,
        },
        rounds,
        tail,
    };
    buildd.stop()?;
    Ok(results)
}

/// The script's commands as `buildd --no-start cargo ...`, one after another.
fn buildd_commands(buildd: &BuilddSide, script: &[DayCommand]) -> anyhow::Result<Vec<Cost>> {
    script
        .iter()
        .map(|command| {
            let args = command.with_json();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Ok(Cost::from(&buildd.buildd_cargo(&args)?))
        })
        .collect()
}

/// After the last round: waits for the jobs still held back for a quiet workspace (and a
/// job still running) to finish, and measures the daemon's CPU since the last window.
fn tail(buildd: &mut BuilddSide, mark: &Mark, timeout: Duration) -> anyhow::Result<DayTail> {
    let root = buildd.root.clone();
    let (running, waited_for) = buildd.daemon.held_back(&root)?;
    let mut jobs = Vec::new();
    if running || !waited_for.is_empty() {
        progress(&format!(
            "after the rounds: waiting for the held-back jobs ({}) to run once the workspace \
             is quiet",
            waited_for.join(", ")
        ));
        let mut after = mark.job;
        loop {
            let settled = buildd.daemon.wait_settled(&root, after, None, timeout)?;
            let summary = &settled.summary;
            after = summary.id;
            jobs.push(format!(
                "#{} [{}] {} units",
                summary.id,
                summary
                    .stages
                    .iter()
                    .map(|s| s.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                summary.units_compiled
            ));
            let (running, waiting) = buildd.daemon.held_back(&root)?;
            if !running && waiting.is_empty() {
                break;
            }
        }
    }
    let cpu = crate::proc_stats::process_cpu(buildd.daemon.pid)?;
    Ok(DayTail {
        waited_for,
        secs: mark.at.elapsed().as_secs_f64(),
        daemon_cpu_secs: cpu.total().saturating_sub(mark.cpu.total()).as_secs_f64(),
        jobs,
    })
}

fn buildd_round(
    buildd: &mut BuilddSide,
    target: &EditTarget,
    edit: &Edit,
    script: &[DayCommand],
    mark: &mut Mark,
) -> anyhow::Result<DayBuilddRound> {
    let settle = buildd.edit_and_settle(target, edit)?;
    let between = settle
        .cpu_before
        .total()
        .saturating_sub(mark.cpu.total())
        .as_secs_f64();
    let jobs_between = settle.job_before.saturating_sub(mark.job);
    let commands = buildd_commands(buildd, script)?;
    let spent = settle.spent(buildd.daemon.pid)?;
    *mark = Mark::now(buildd)?;
    let since_edit = |at: Instant| (at - settle.edited).as_secs_f64();
    let settled = &settle.settled;
    Ok(DayBuilddRound {
        lsp_diagnostic_secs: settle.lsp_diagnostic.map(since_edit),
        socket_diagnostic_secs: settled.first_marked_diagnostic.map(since_edit),
        pipeline_idle_secs: since_edit(settled.idle_at),
        job: settled.summary.id,
        job_stages: settled.summary.stages.iter().map(|s| s.0.clone()).collect(),
        job_units_compiled: settled.summary.units_compiled,
        commands,
        daemon_cpu_secs: spent.cpu_secs,
        daemon_between_cpu_secs: between,
        jobs_between,
        daemon_own_cpu_secs: spent.own_cpu_secs,
        daemon_peak_rss_bytes: spent.peak_rss_bytes,
    })
}
