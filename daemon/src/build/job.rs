//! A job: the stages of cargo commands that warm one workspace's isolated target dir, one
//! per job definition.
//!
//! A job reports facts ([`JobEvent`]) through a callback and owns no state of the daemon's;
//! the dispatcher plans the stages ([`StagePlan`]) and decides what the facts mean. A stage
//! that fails ends the job: the next one would fail on the same errors. Two exceptions: a
//! stage whose errors are all clippy's lints (a `deny` lint does not stop `cargo build`),
//! and a learned job (its failure says nothing of the next learned one). Before each stage
//! the job looks at its [`Gate`]: when a user's `buildd cargo` waits for the dir and does not
//! need the next stage, the job stops there (it yields) and runs again after the command.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_metadata::Message;
use tokio_util::sync::CancellationToken;

use crate::build::cargo_run::{self, CargoCommand, Outcome};
use crate::build::diagnostics;
use crate::build::invocation::Invocation;
use crate::build::orphans::Orphans;
use crate::wire::protocol::{Diagnostic, JobOrigin, JobResult};

pub(crate) use crate::build::plan::StagePlan;
pub(crate) use crate::wire::protocol::Stage;

/// The stages a waiting user command needs; `None` while no command waits. Shared between
/// the dispatcher, which sets it, and the job, which reads it before each stage.
pub(crate) type Gate = Arc<Mutex<Option<Vec<Stage>>>>;

pub(crate) struct JobSpec {
    pub(crate) root: PathBuf,
    pub(crate) stages: Vec<StagePlan>,
    pub(crate) env: Arc<BTreeMap<String, String>>,
    /// What `key::cargo_env` adds for the workspace's key.
    pub(crate) cargo_env: Arc<crate::wire::protocol::CargoEnv>,
    /// cargo's `-j`.
    pub(crate) jobs: Option<u32>,
    pub(crate) nice: i32,
    pub(crate) gate: Gate,
    /// A job that runs longer is stopped and fails (a build script that hangs).
    pub(crate) timeout: Duration,
    pub(crate) orphans: Arc<Orphans>,
}

#[derive(Debug)]
pub(crate) enum JobEvent {
    StageStarted {
        stage: Stage,
    },
    StageFinished {
        stage: Stage,
        result: JobResult,
        duration: Duration,
        /// The compiler commands of the workspace's crates that a diagnostics stage ran
        /// (for early diagnostics); empty for other stages.
        invocations: Vec<Invocation>,
    },
    Unit {
        stage: Stage,
        package: String,
        target: String,
        fresh: bool,
        /// The unit's executable, when it has one.
        executable: Option<Executable>,
    },
    Diagnostic(Box<Diagnostic>),
    /// What the early run of the saved crate's own compiler command reported (`early.rs`),
    /// stamped with `generation`, the id reserved for it just below the job's.
    Early {
        generation: u64,
        report: crate::build::early::EarlyReport,
    },
    Finished(JobOutcome),
}

/// An executable cargo reported with an artifact: in place once cargo says so (cargo prints
/// the artifact message after it linked the file and uplifted it into the profile's dir).
#[derive(Debug)]
pub(crate) struct Executable {
    pub(crate) path: PathBuf,
    /// cargo's kinds of the target (`bin`, `test`, ...).
    pub(crate) kinds: Vec<String>,
    /// A test harness rather than the target itself.
    pub(crate) test: bool,
}

#[derive(Debug)]
pub(crate) struct JobOutcome {
    pub(crate) result: JobResult,
    pub(crate) duration: Duration,
    /// Cargo's own error output when a stage failed without a compiler error to show.
    pub(crate) failure: Option<String>,
}

pub(crate) async fn run(spec: JobSpec, cancel: CancellationToken, emit: impl Fn(JobEvent)) {
    let started = Instant::now();
    let mut result = JobResult::Success;
    let mut failure = None;
    // The timeout cancels the job like a newer edit would, and the outcome says why.
    let job_cancel = cancel.child_token();
    let timer = {
        let job_cancel = job_cancel.clone();
        let timeout = spec.timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            job_cancel.cancel();
        })
    };
    for plan in &spec.stages {
        let stage = plan.stage.clone();
        let needed = spec.gate.lock().map(|g| g.clone()).unwrap_or_default();
        if needed.is_some_and(|needed| !needed.contains(&stage)) {
            result = JobResult::Yielded;
            break;
        }
        emit(JobEvent::StageStarted {
            stage: stage.clone(),
        });
        let stage_started = Instant::now();
        let mut run = run_stage(&spec, plan, &job_cancel, &emit).await;
        let invocations = match &mut run.outcome {
            Ok(Outcome::Finished { invocations, .. }) => std::mem::take(invocations),
            _ => Vec::new(),
        };
        let stage_result = judge(&spec, plan, run, cancel.is_cancelled());
        if let Some(failed) = stage_result.failure {
            if plan.key.is_some() {
                // Another key's stage says nothing of the workspace's own: its failure is
                // its own (in its `StageFinished`), and the job's stays what it was.
                tracing::info!(stage = %stage.name(), "warming another key failed: {failed}");
            } else {
                failure = Some(failed);
            }
        }
        emit(JobEvent::StageFinished {
            stage,
            result: stage_result.result,
            duration: stage_started.elapsed(),
            invocations,
        });
        match stage_result.result {
            JobResult::Success => {}
            JobResult::Failed if plan.key.is_some() => {}
            JobResult::Failed if plan.origin == JobOrigin::Learned || stage_result.only_lints => {
                // The job goes on, and ends failed.
                result = JobResult::Failed;
            }
            other => {
                result = other;
                break;
            }
        }
    }
    timer.abort();
    emit(JobEvent::Finished(JobOutcome {
        result,
        duration: started.elapsed(),
        failure,
    }));
}

/// What one stage's cargo did: how it ended, and the errors it reported.
struct StageRun {
    outcome: std::io::Result<Outcome>,
    compile_errors: u64,
    /// Errors that are clippy's lints (a `deny` lint).
    lint_errors: u64,
    /// The first error, `file:line:col: message`, for a stage without diagnostics.
    first_error: Option<String>,
}

/// Runs one stage's cargo command, emitting its units and (for a diagnostics job) its
/// diagnostics as they come.
async fn run_stage(
    spec: &JobSpec,
    plan: &StagePlan,
    cancel: &CancellationToken,
    emit: &impl Fn(JobEvent),
) -> StageRun {
    let mut run = StageRun {
        outcome: Ok(Outcome::Cancelled),
        compile_errors: 0,
        lint_errors: 0,
        first_error: None,
    };
    let mut args = plan.args.clone();
    if let Some(jobs) = spec.jobs {
        // Before a `--`, after which the arguments are the compiler's (clippy's lints).
        let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
        args.insert(at, format!("--jobs={jobs}"));
    }
    let dir = spec.root.join(&plan.dir);
    let (env, cargo_env) = match &plan.key {
        Some(other) => (&other.env, &other.cargo_env),
        None => (&*spec.env, &*spec.cargo_env),
    };
    let command = CargoCommand {
        dir: &dir,
        args,
        env,
        cargo_env,
        nice: spec.nice,
        orphans: &spec.orphans,
        // The workspace's own diagnostics stage records its compiler commands.
        record: (plan.diagnostics && plan.key.is_none()).then_some(spec.root.as_path()),
    };
    run.outcome = cargo_run::run(command, cancel, |message| match message {
        Message::CompilerArtifact(artifact) => emit(JobEvent::Unit {
            stage: plan.stage.clone(),
            package: diagnostics::package_name(&artifact.package_id),
            target: artifact.target.name.clone(),
            fresh: artifact.fresh,
            executable: artifact.executable.map(|path| Executable {
                path: path.into_std_path_buf(),
                kinds: artifact.target.kind.iter().map(|k| k.to_string()).collect(),
                test: artifact.profile.test,
            }),
        }),
        Message::CompilerMessage(message) => {
            let Some(d) = diagnostics::convert(&spec.root, message) else {
                return;
            };
            if d.severity == crate::wire::protocol::Severity::Error {
                run.compile_errors += 1;
                if d.rustc
                    .code
                    .as_ref()
                    .is_some_and(|c| c.code.starts_with("clippy::"))
                {
                    run.lint_errors += 1;
                }
                if run.first_error.is_none() {
                    run.first_error = Some(format!(
                        "{}:{}:{}: {}",
                        d.file.display(),
                        d.line,
                        d.column,
                        d.message
                    ));
                }
            }
            // A job that is not a diagnostics job reports no diagnostics: its first error
            // goes into the failure instead.
            if plan.diagnostics {
                emit(JobEvent::Diagnostic(Box::new(d)));
            }
        }
        _ => {}
    })
    .await;
    run
}

/// How a stage ended, and why when it failed.
struct StageResult {
    result: JobResult,
    failure: Option<String>,
    /// It failed on clippy's lints alone (a `deny` lint does not stop `cargo build`).
    only_lints: bool,
}

/// What a stage's run means: `cancelled` says whether the job was cancelled from outside
/// (a newer edit, a user's command), not by its own timeout.
fn judge(spec: &JobSpec, plan: &StagePlan, run: StageRun, cancelled: bool) -> StageResult {
    let failed = |failure: Option<String>| StageResult {
        result: JobResult::Failed,
        failure,
        only_lints: run.compile_errors > 0 && run.lint_errors == run.compile_errors,
    };
    let ended = |result| StageResult {
        result,
        failure: None,
        only_lints: false,
    };
    match run.outcome {
        Ok(Outcome::Cancelled) if !cancelled => failed(Some(format!(
            "the job ran longer than its timeout of {}s and was stopped (a build script or \
             proc macro that hangs?); raise job_timeout_secs in buildd.toml if the build \
             needs longer",
            spec.timeout.as_secs()
        ))),
        Ok(Outcome::Cancelled) => ended(JobResult::Cancelled),
        Ok(Outcome::Finished { status, .. }) if status.success() => ended(JobResult::Success),
        Ok(Outcome::Finished {
            status,
            ref stderr_tail,
            ..
        }) => {
            if run.compile_errors == 0 {
                failed(Some(explain_failure(&plan.args, status, stderr_tail)))
            } else if !plan.diagnostics {
                failed(Some(format!(
                    "cargo {} failed with {} error(s), the first: {}",
                    plan.args.join(" "),
                    run.compile_errors,
                    run.first_error.as_deref().unwrap_or("?")
                )))
            } else {
                failed(None)
            }
        }
        Err(ref e) => failed(Some(if e.kind() == std::io::ErrorKind::NotFound {
            "cargo was not found on PATH: install Rust with rustup or fix the PATH of the \
             shell that registered the workspace"
                .to_owned()
        } else {
            format!("failed to start cargo: {e}")
        })),
    }
}

/// Cargo's error lines (those starting with `error`) and what follows them, or the last
/// lines of its output.
fn explain_failure(args: &[String], status: std::process::ExitStatus, stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("error"))
        .unwrap_or(lines.len().saturating_sub(10));
    let text = lines[start..].join("\n");
    format!(
        "cargo {} failed ({status}): {}",
        args.join(" "),
        text.trim()
    )
}
