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
//! A merged stage (`merge.rs`) that the command needs only part of runs as its parts
//! instead, each gated alike; when the command comes while it runs, the gate stops it and
//! the job goes on with the parts. A job may carry the check of what a plain `cargo build`
//! at the root selects (`selection.rs`): it runs once the workspace-wide stages it follows
//! have all succeeded, gated as they are.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_metadata::Message;
use tokio_util::sync::CancellationToken;

use crate::build::cargo_run::{self, CargoCommand, Outcome};
use crate::build::diagnostics;
use crate::build::invocation::Invocation;
use crate::build::orphans::Orphans;
use crate::build::selection::SelectionCheck;
use crate::wire::protocol::{Diagnostic, JobOrigin, JobResult};

pub(crate) use crate::build::plan::StagePlan;
pub(crate) use crate::wire::protocol::Stage;

/// What the user commands waiting for the dir need of the job. Shared between the
/// dispatcher, which sets it, and the job, which reads it before each stage.
pub(crate) type Gate = Arc<Mutex<GateState>>;

#[derive(Debug, Default)]
pub(crate) struct GateState {
    /// The stages the waiting commands need; `None` while none waits (or one may need any).
    needed: Option<Vec<Stage>>,
    /// The merged stage running now: the definitions it runs, and what stops it so that the
    /// job runs only the parts the waiting commands need.
    merged: Option<(Vec<Stage>, CancellationToken)>,
}

impl GateState {
    /// The waiting commands now need `needed` (`None`: no command waits, or one may need any
    /// stage). A running merged stage they need only part of is stopped.
    pub(crate) fn set(&mut self, needed: Option<Vec<Stage>>) {
        self.needed = needed;
        self.split_if_partly_needed();
    }

    fn split_if_partly_needed(&self) {
        if let (Some(needed), Some((names, stop))) = (&self.needed, &self.merged)
            && !names.iter().all(|n| needed.contains(n))
        {
            stop.cancel();
        }
    }
}

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
    /// cargo's cache of the compiler's answers in the key's dir.
    pub(crate) rustc_info: Arc<crate::build::rustc_info::RustcInfo>,
    /// The check of the root's default selection, when the job runs it (`selection.rs`).
    pub(crate) selection_check: Option<SelectionCheck>,
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
        /// A unit of the check after a merged stage (`merge.rs`), which ran it already: not
        /// the job's progress.
        check: bool,
        /// The unit's executable, when it has one.
        executable: Option<Executable>,
        /// The names of its files in `deps/`, without extension (`libcore-HASH`): the
        /// metadata hash tells the unit from another variant of it (see [`hashed_names`]).
        hashed: Vec<String>,
    },
    Diagnostic(Box<Diagnostic>),
    /// A merged stage's parts ran apart after it, as the check that it leaves their units
    /// (`merge.rs`): the units of theirs it did not leave (`package target`), none when it
    /// left them all.
    MergeChecked {
        not_left: Vec<String>,
    },
    /// The root's `cargo build` and `cargo test --no-run` without a selection ran after the
    /// workspace-wide stages, as the check that those leave their units (`selection.rs`):
    /// the units of theirs not left (`package target`), none when they were all left.
    SelectionChecked {
        not_left: Vec<String>,
    },
    /// A diagnostic of the early run of the saved crate's own compiler command (`early.rs`),
    /// as rustc printed it, stamped with `generation`, the id reserved for the run just
    /// below the job's.
    EarlyDiagnostic {
        generation: u64,
        diagnostic: Box<Diagnostic>,
    },
    /// The early run ended: what it found in all.
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
    let mut runner = Runner {
        spec: &spec,
        cancel: &cancel,
        job_cancel: &job_cancel,
        emit: &emit,
        result: JobResult::Success,
        failure: None,
        wide_left: HashSet::new(),
        wide_done: Vec::new(),
        selection_tried: false,
    };
    for plan in &spec.stages {
        if !runner.stage(plan).await {
            break;
        }
        runner.check_selection().await;
    }
    timer.abort();
    let (result, failure) = (runner.result, runner.failure);
    emit(JobEvent::Finished(JobOutcome {
        result,
        duration: started.elapsed(),
        failure,
    }));
}

/// A job's run through its stages, and what it has come to so far.
struct Runner<'a, E: Fn(JobEvent)> {
    spec: &'a JobSpec,
    /// Cancelled from outside: a newer edit, a user's command, a client.
    cancel: &'a CancellationToken,
    /// Cancelled from outside or by the job's timeout.
    job_cancel: &'a CancellationToken,
    emit: &'a E,
    result: JobResult,
    failure: Option<String>,
    /// The units the stages the selection check follows left, by [`unit_key`].
    wide_left: HashSet<String>,
    /// Those of the stages the selection check follows that succeeded.
    wide_done: Vec<Stage>,
    /// The selection check ran, or began and stopped: once per job.
    selection_tried: bool,
}

impl<E: Fn(JobEvent)> Runner<'_, E> {
    /// The stages the waiting user commands need, while any waits.
    fn needed(&self) -> Option<Vec<Stage>> {
        self.spec
            .gate
            .lock()
            .map(|g| g.needed.clone())
            .unwrap_or_default()
    }

    /// Runs one planned stage; false when the job stops there.
    async fn stage(&mut self, plan: &StagePlan) -> bool {
        let Some(merged) = &plan.merged else {
            return self.single(plan).await;
        };
        let names = plan.names();
        if self
            .needed()
            .is_some_and(|needed| !names.iter().all(|n| needed.contains(n)))
        {
            // A waiting command needs only some of them (or none): the parts, each gated.
            return self.parts(&merged.split).await;
        }
        let stop = self.job_cancel.child_token();
        if let Ok(mut gate) = self.spec.gate.lock() {
            gate.merged = Some((names.clone(), stop.clone()));
            // A command that came since the look above.
            gate.split_if_partly_needed();
        }
        (self.emit)(JobEvent::StageStarted {
            stage: plan.stage.clone(),
        });
        let started = Instant::now();
        let mut run = run_stage(self.spec, plan, &stop, self.emit, false).await;
        let left: HashSet<String> = std::mem::take(&mut run.units)
            .into_iter()
            .map(|(_, _, key)| key)
            .collect();
        if succeeded(&run) {
            self.keep(plan, &names, left.iter().cloned(), true);
        }
        if let Ok(mut gate) = self.spec.gate.lock() {
            gate.merged = None;
        }
        if stop.is_cancelled() && !self.job_cancel.is_cancelled() {
            tracing::info!(
                stage = %plan.stage,
                "a waiting command needs only part of the merged stage: running its parts"
            );
            return self.parts(&merged.split).await;
        }
        let judged = judge(self.spec, plan, run, self.cancel.is_cancelled());
        let duration = started.elapsed();
        let result = judged.result;
        for stage in names {
            (self.emit)(JobEvent::StageFinished {
                stage,
                result,
                duration,
                invocations: Vec::new(),
            });
        }
        let go_on = self.judged(plan, judged);
        if go_on && merged.verify && result == JobResult::Success {
            self.verify(&merged.split, &left).await;
        }
        go_on
    }

    /// Runs the parts of a merged stage apart, as stages of their own.
    async fn parts(&mut self, parts: &[StagePlan]) -> bool {
        for part in parts {
            if !self.single(part).await {
                return false;
            }
        }
        true
    }

    /// Runs a stage that is one job definition.
    async fn single(&mut self, plan: &StagePlan) -> bool {
        let stage = plan.stage.clone();
        if self.needed().is_some_and(|needed| !needed.contains(&stage)) {
            self.result = JobResult::Yielded;
            return false;
        }
        (self.emit)(JobEvent::StageStarted {
            stage: stage.clone(),
        });
        let started = Instant::now();
        let mut run = run_stage(self.spec, plan, self.job_cancel, self.emit, false).await;
        if succeeded(&run) {
            let keys = run.units.iter().map(|(_, _, key)| key.clone());
            self.keep(plan, std::slice::from_ref(&stage), keys, true);
        }
        let invocations = match &mut run.outcome {
            Ok(Outcome::Finished { invocations, .. }) => std::mem::take(invocations),
            _ => Vec::new(),
        };
        let judged = judge(self.spec, plan, run, self.cancel.is_cancelled());
        (self.emit)(JobEvent::StageFinished {
            stage,
            result: judged.result,
            duration: started.elapsed(),
            invocations,
        });
        self.judged(plan, judged)
    }

    /// The check after a merged stage's first run since a load: its parts apart, which
    /// must find every unit they look for fresh and among the units the merged stage
    /// `left` (see `merge.rs`). Their runs are not the definitions' last runs (no
    /// `StageFinished`): the merged stage's is.
    async fn verify(&mut self, parts: &[StagePlan], left: &HashSet<String>) {
        let Some((not_left, keys)) = self.check_runs(parts, left, "a merged stage").await else {
            return;
        };
        // Later jobs leave these too: apart, when the check finds it must.
        for (part, keys) in parts.iter().zip(keys) {
            self.keep(
                part,
                std::slice::from_ref(&part.stage),
                keys.into_iter(),
                false,
            );
        }
        (self.emit)(JobEvent::MergeChecked { not_left });
    }

    /// Runs `plans` as a check of `what`, gated as the stages they are named after: the
    /// units of theirs not among the units `left` (see [`StageRun::not_left`]), and the
    /// unit keys of each run. `None` when one did not finish: a waiting command does not
    /// need it, it was cancelled, or it failed where the stages before it did not; nothing
    /// is known then, and a later job checks.
    async fn check_runs(
        &mut self,
        plans: &[StagePlan],
        left: &HashSet<String>,
        what: &str,
    ) -> Option<(Vec<String>, Vec<Vec<String>>)> {
        let mut not_left = Vec::new();
        let mut keys = Vec::new();
        for plan in plans {
            if self
                .needed()
                .is_some_and(|needed| !needed.contains(&plan.stage))
            {
                return None;
            }
            (self.emit)(JobEvent::StageStarted {
                stage: plan.stage.clone(),
            });
            let run = run_stage(self.spec, plan, self.job_cancel, self.emit, true).await;
            if !succeeded(&run) {
                tracing::info!(stage = %plan.stage, "the check of {what} did not finish");
                return None;
            }
            not_left.extend(run.not_left(left));
            keys.push(run.units.into_iter().map(|(_, _, key)| key).collect());
        }
        Some((not_left, keys))
    }

    /// Notes what a successful run for the definitions `names` left, for the selection
    /// check when it follows any of them (the workspace's own key only); with `done`, the
    /// run was theirs (not a check's), so they count as done.
    fn keep(
        &mut self,
        plan: &StagePlan,
        names: &[Stage],
        keys: impl Iterator<Item = String>,
        done: bool,
    ) {
        let Some(check) = &self.spec.selection_check else {
            return;
        };
        let followed: Vec<&Stage> = names.iter().filter(|n| check.after.contains(n)).collect();
        if plan.key.is_some() || followed.is_empty() {
            return;
        }
        self.wide_left.extend(keys);
        if done {
            self.wide_done.extend(followed.into_iter().cloned());
        }
    }

    /// The check of the root's default selection (`selection.rs`), once every stage it
    /// follows has succeeded: its commands must find every unit they look for fresh and
    /// among those the stages left. Like the merge's check, its runs are not the
    /// definitions' last runs, and a run that does not finish (cancelled, failed, a waiting
    /// command that does not need it) reports nothing: a later job checks.
    async fn check_selection(&mut self) {
        let spec = self.spec;
        let Some(check) = &spec.selection_check else {
            return;
        };
        if self.selection_tried || !check.after.iter().all(|s| self.wide_done.contains(s)) {
            return;
        }
        self.selection_tried = true;
        let left = std::mem::take(&mut self.wide_left);
        let checked = self
            .check_runs(&check.plans, &left, "the default selection")
            .await;
        let Some((not_left, _)) = checked else {
            return;
        };
        (self.emit)(JobEvent::SelectionChecked { not_left });
    }

    /// Takes a stage's result into the job's; false when the job stops there.
    fn judged(&mut self, plan: &StagePlan, judged: StageResult) -> bool {
        if let Some(failed) = judged.failure {
            if plan.key.is_some() {
                // Another key's stage says nothing of the workspace's own: its failure is
                // its own (in its `StageFinished`), and the job's stays what it was.
                tracing::info!(stage = %plan.stage.name(), "warming another key failed: {failed}");
            } else {
                self.failure = Some(failed);
            }
        }
        match judged.result {
            JobResult::Success => true,
            JobResult::Failed if plan.key.is_some() => true,
            JobResult::Failed if plan.origin == JobOrigin::Learned || judged.only_lints => {
                // The job goes on, and ends failed.
                self.result = JobResult::Failed;
                true
            }
            other => {
                self.result = other;
                false
            }
        }
    }
}

/// Whether a stage's cargo ran to its end and succeeded.
fn succeeded(run: &StageRun) -> bool {
    matches!(&run.outcome, Ok(Outcome::Finished { status, .. }) if status.success())
}

/// What one stage's cargo did: how it ended, and the errors it reported.
struct StageRun {
    outcome: std::io::Result<Outcome>,
    /// Every unit cargo looked at: `package target`, whether it was fresh, and its
    /// [`unit_key`].
    units: Vec<(String, bool, String)>,
    compile_errors: u64,
    /// Errors that are clippy's lints (a `deny` lint).
    lint_errors: u64,
    /// The first error, `file:line:col: message`, for a stage without diagnostics.
    first_error: Option<String>,
}

impl StageRun {
    /// Its units that a run before, which `left` the units of these keys, did not leave, as
    /// `package target`: those it compiled, and those it found fresh that are not among
    /// `left` (fresh from an older run: a target dir keeps both variants of a unit once both
    /// were built, so freshness alone would not tell).
    fn not_left(&self, left: &HashSet<String>) -> Vec<String> {
        self.units
            .iter()
            .filter(|(_, fresh, key)| !fresh || !left.contains(key))
            .map(|(unit, _, _)| unit.clone())
            .collect()
    }
}

/// What tells one unit from another variant of it, from cargo's artifact message: the
/// package, the target, the profile and the features, and the metadata hash in the names of
/// its files in `deps/` and `build/` (which covers its dependencies' variants). Not the
/// whole paths: cargo reports a library it uplifts for a `cargo build` under the uplifted
/// name, and the same unit under `deps/` for a `cargo test`.
fn unit_key(artifact: &cargo_metadata::Artifact, hashed: &[String]) -> String {
    format!(
        "{} {} {:?} {:?} {:?} {:?}",
        artifact.package_id.repr,
        artifact.target.name,
        artifact.target.kind,
        artifact.profile,
        artifact.features,
        hashed
    )
}

/// The names of a unit's files that carry its metadata hash, without extension: those in
/// `deps/` (`libcore-HASH`, `app-HASH`) and, as `DIR/NAME`, those of a build script in
/// `build/PACKAGE-HASH/`. The hash covers the unit's features, profile and dependencies.
fn hashed_names(artifact: &cargo_metadata::Artifact) -> Vec<String> {
    let mut names: Vec<String> = artifact
        .filenames
        .iter()
        .filter_map(|file| {
            let parent = file.parent()?;
            let stem = file.file_stem()?;
            if parent.file_name() == Some("deps") {
                Some(stem.to_owned())
            } else if parent.parent()?.file_name() == Some("build") {
                Some(format!("{}/{stem}", parent.file_name()?))
            } else {
                None
            }
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Runs one stage's cargo command, emitting its units and (for a diagnostics job) its
/// diagnostics as they come.
async fn run_stage(
    spec: &JobSpec,
    plan: &StagePlan,
    cancel: &CancellationToken,
    emit: &impl Fn(JobEvent),
    check: bool,
) -> StageRun {
    let mut run = StageRun {
        outcome: Ok(Outcome::Cancelled),
        units: Vec::new(),
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
    let (env, cargo_env, rustc_info) = match &plan.key {
        Some(other) => (&other.env, &other.cargo_env, &other.rustc_info),
        None => (&*spec.env, &*spec.cargo_env, &*spec.rustc_info),
    };
    let command = CargoCommand {
        dir: &dir,
        args,
        env,
        cargo_env,
        nice: spec.nice,
        orphans: &spec.orphans,
        rustc_info,
        // The workspace's own diagnostics stage records its compiler commands.
        record: (plan.record && plan.key.is_none()).then_some(spec.root.as_path()),
    };
    run.outcome = cargo_run::run(command, cancel, |message| match message {
        Message::CompilerArtifact(artifact) => {
            let package = diagnostics::package_name(&artifact.package_id);
            let hashed = hashed_names(&artifact);
            run.units.push((
                format!("{package} {}", artifact.target.name),
                artifact.fresh,
                unit_key(&artifact, &hashed),
            ));
            emit(JobEvent::Unit {
                stage: plan.stage.clone(),
                package,
                target: artifact.target.name.clone(),
                fresh: artifact.fresh,
                check,
                hashed,
                executable: artifact.executable.map(|path| Executable {
                    path: path.into_std_path_buf(),
                    kinds: artifact.target.kind.iter().map(|k| k.to_string()).collect(),
                    test: artifact.profile.test,
                }),
            })
        }
        Message::CompilerMessage(message) => {
            let local = diagnostics::is_local(&message.package_id);
            let Some(d) = diagnostics::convert(&spec.root, message) else {
                return;
            };
            // A dependency's warnings are not the workspace's: cargo shows them only with
            // `-vv` (measured: `--cap-lints warn` instead of `allow`; it also replays them for
            // fresh units then); its errors stop the build, and stay.
            if !local && d.severity != crate::wire::protocol::Severity::Error {
                return;
            }
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
