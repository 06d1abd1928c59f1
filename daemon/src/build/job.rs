//! A job: the stages of cargo commands that warm one workspace's isolated target dir.
//!
//! A job reports facts ([`JobEvent`]) through a callback and owns no state of the daemon's;
//! the dispatcher plans the stages ([`StagePlan`]) and decides what the facts mean. A stage
//! that fails ends the job: the next one would fail on the same errors. Before each stage
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
use crate::build::orphans::Orphans;
use crate::wire::protocol::{Diagnostic, JobResult};

pub(crate) use crate::wire::protocol::Stage;

impl Stage {
    /// cargo's arguments for this stage over `packages` (`None`: the whole workspace).
    pub(crate) fn args(self, packages: Option<&[String]>) -> Vec<String> {
        let mut args: Vec<String> = match self {
            Stage::Check => vec!["check".into()],
            Stage::Build => vec!["build".into()],
            Stage::Test => vec!["test".into(), "--no-run".into()],
        };
        match packages {
            None => args.push("--workspace".into()),
            Some(packages) => {
                for package in packages {
                    args.push("--package".into());
                    args.push(package.clone());
                }
            }
        }
        args
    }
}

/// One cargo invocation of a job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StagePlan {
    pub(crate) stage: Stage,
    pub(crate) args: Vec<String>,
}

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
    Unit {
        stage: Stage,
        package: String,
        target: String,
        fresh: bool,
    },
    Diagnostic(Box<Diagnostic>),
    Finished(JobOutcome),
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
        let stage = plan.stage;
        let needed = spec.gate.lock().map(|g| g.clone()).unwrap_or_default();
        if needed.is_some_and(|needed| !needed.contains(&stage)) {
            result = JobResult::Yielded;
            break;
        }
        emit(JobEvent::StageStarted { stage });
        let mut compile_errors = 0u64;
        let mut args = plan.args.clone();
        if let Some(jobs) = spec.jobs {
            args.push(format!("--jobs={jobs}"));
        }
        let command = CargoCommand {
            root: &spec.root,
            args,
            env: &spec.env,
            cargo_env: &spec.cargo_env,
            nice: spec.nice,
            orphans: &spec.orphans,
        };
        let outcome = cargo_run::run(command, &job_cancel, |message| match message {
            Message::CompilerArtifact(artifact) => emit(JobEvent::Unit {
                stage,
                package: diagnostics::package_name(&artifact.package_id),
                target: artifact.target.name.clone(),
                fresh: artifact.fresh,
            }),
            Message::CompilerMessage(message) => {
                if let Some(d) = diagnostics::convert(&spec.root, message) {
                    if d.severity == crate::wire::protocol::Severity::Error {
                        compile_errors += 1;
                    }
                    emit(JobEvent::Diagnostic(Box::new(d)));
                }
            }
            _ => {}
        })
        .await;
        match outcome {
            Ok(Outcome::Cancelled) if !cancel.is_cancelled() => {
                result = JobResult::Failed;
                failure = Some(format!(
                    "the job ran longer than its timeout of {}s and was stopped (a build \
                     script or proc macro that hangs?); raise job_timeout_secs in buildd.toml \
                     if the build needs longer",
                    spec.timeout.as_secs()
                ));
                break;
            }
            Ok(Outcome::Cancelled) => {
                result = JobResult::Cancelled;
                break;
            }
            Ok(Outcome::Finished { status, .. }) if status.success() => {}
            Ok(Outcome::Finished {
                status,
                stderr_tail,
            }) => {
                result = JobResult::Failed;
                if compile_errors == 0 {
                    failure = Some(explain_failure(&plan.args, status, &stderr_tail));
                }
                break;
            }
            Err(e) => {
                result = JobResult::Failed;
                failure = Some(if e.kind() == std::io::ErrorKind::NotFound {
                    "cargo was not found on PATH: install Rust with rustup or fix the PATH \
                     of the shell that registered the workspace"
                        .to_owned()
                } else {
                    format!("failed to start cargo: {e}")
                });
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
