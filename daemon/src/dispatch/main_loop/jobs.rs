//! Starting a job from the schedule, following its facts, and the gate a waiting user
//! command opens between stages.

use super::loads::scan_target_dir;
use crate::build::early;
use crate::build::invocation::Invocation;
use crate::build::learned::HeldBack;
use crate::build::merge::{self, MergeState};
use crate::build::selection::{self, DefaultSelection};
use crate::project::settings::Resolved;
// One module split by concern: the parts share the dispatcher's imports and items.
use super::*;

impl Dispatcher {
    /// Starts the owed job; with `quiet`, the learned jobs held back until the workspace is
    /// quiet, and nothing owed is taken.
    pub(super) fn start_job(&mut self, root: &Path, quiet: bool) {
        let debounce = self.config.debounce;
        let ws = self.workspaces.get_mut(root).expect("caller checked");
        let resolved = ws.resolved(debounce);
        // A job for a target whose std is not installed would only fail: status says so.
        let all_defs: Vec<JobDef> = ws
            .job_defs(&resolved)
            .into_iter()
            .filter(|d| ws.missing_target(d).is_none())
            .collect();
        let Owed { full, files } = if quiet {
            Owed {
                full: false,
                files: BTreeSet::new(),
            }
        } else {
            ws.schedule.take(ws.graph.is_none())
        };
        // What vanished since it was seen is no change to build (nor to show).
        let files = super::changes::without_vanished(files, root, &ws.depinfo);
        let members = ws.graph.as_ref().map(Graph::members).unwrap_or_default();
        let predicted = match &ws.graph {
            Some(graph) if !full && !quiet => Some(graph.predict(&files, &ws.depinfo).affected),
            _ => None,
        };
        if !quiet {
            ws.last_change = Some(LastChange {
                files: files.iter().cloned().collect(),
                predicted: predicted
                    .as_ref()
                    .unwrap_or(&members)
                    .iter()
                    .cloned()
                    .collect(),
                full,
            });
            if predicted.as_ref().is_some_and(BTreeSet::is_empty) {
                tracing::debug!(root = %root.display(), "nothing to build for the pending changes");
                return;
            }
        }
        let every_def = all_defs.clone();
        let defs = select_defs(ws, &resolved, all_defs, quiet);
        let selection_check = selection::check(&ws.selection, &every_def, &defs);
        if defs.is_empty() {
            return;
        }
        let (stages, stage_names) = plan_stages(ws, &defs, predicted.as_ref(), quiet);
        let key = ws.key.as_ref().expect("caller checked");
        let gate: Gate = Arc::new(Mutex::new(job::GateState::default()));
        let sccache = self
            .tools
            .sccache()
            .filter(|_| ws.tools.sccache.as_ref().is_some_and(|s| s.enabled));
        let spec = JobSpec {
            root: root.to_path_buf(),
            stages,
            env: Arc::new(ws.env.clone()),
            cargo_env: Arc::new(key::cargo_env(&key.target_dir, &ws.tools.env)),
            jobs: resolved.cargo_jobs,
            nice: resolved.nice,
            gate: gate.clone(),
            timeout: resolved.job_timeout,
            orphans: self.orphans.clone(),
            rustc_info: Arc::new(crate::cache::rustc_info(&key.target_dir)),
            selection_check,
        };
        let early_off = full || quiet || !resolved.early;
        let early = early_run(ws, root, &defs, &files, early_off, &spec);
        // An early run's diagnostics get the id just below the job's: the job's own replace
        // them file by file (`wire/stamped.rs`).
        let early_id = self.next_id;
        let job_id = early_id + 1;
        self.next_id += 2;
        let cancel = CancellationToken::new();
        let started_at = std::time::SystemTime::now();
        self.job_starting(root);
        if let Some(early) = early {
            spawn_early(
                self.tx.clone(),
                job_id,
                early_id,
                early,
                cancel.child_token(),
            );
        }
        let handle = spawn(self.tx.clone(), root, job_id, spec, sccache, cancel.clone());
        tracing::info!(
            root = %root.display(),
            job = job_id,
            changed = files.len(),
            predicted = ?predicted,
            "job started"
        );
        let ws = self.workspaces.get_mut(root).expect("caller checked");
        ws.jobs_started += 1;
        let expected_units = ws.last_units;
        ws.job = Some(RunningJob {
            id: job_id,
            stage: None,
            gate,
            files,
            full,
            predicted,
            rebuilt: BTreeSet::new(),
            forget: false,
            yielding: false,
            started_at,
            stages: stage_names.clone(),
            defs,
            cancel,
            handle,
            units_done: 0,
            units_compiled: 0,
        });
        self.broadcast(
            root,
            EventKind::JobStarted {
                job: job_id,
                stages: stage_names,
                expected_units,
            },
        );
        self.announce(root);
    }

    pub(super) fn job_event(&mut self, root: &Path, job_id: u64, event: JobEvent) {
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        let Some(job) = ws.job.as_mut().filter(|j| j.id == job_id) else {
            if matches!(
                event,
                JobEvent::Early { .. } | JobEvent::EarlyDiagnostic { .. }
            ) {
                tracing::debug!(
                    job = job_id,
                    "the early run's job ended first: report dropped"
                );
            }
            return;
        };
        let kind = match event {
            JobEvent::StageStarted { stage } => {
                job.stage = Some(stage.clone());
                EventKind::StageStarted { job: job_id, stage }
            }
            JobEvent::StageFinished {
                stage,
                result,
                duration,
                invocations,
            } => {
                for invocation in invocations {
                    ws.early.retain(|old| !old.same_unit(&invocation));
                    ws.early.push(Arc::new(invocation));
                }
                let ms = duration.as_millis() as u64;
                let learned_job = job
                    .defs
                    .iter()
                    .any(|d| d.name == stage && d.origin == JobOrigin::Learned);
                if matches!(result, JobResult::Success | JobResult::Failed) {
                    ws.job_runs.insert(stage.clone(), (result, ms));
                    if learned_job && let Some(learned) = &mut ws.learned {
                        learned.finished(&stage, result, ms);
                        self.save_learned(root);
                    }
                }
                return;
            }
            JobEvent::Unit {
                stage,
                package,
                target,
                fresh,
                check,
                executable,
                hashed,
            } => {
                // Another key's units are not the workspace's: its progress, the units its
                // job compiled and the prediction's score count its own key only (and its
                // executables are in another dir than the one clients run).
                if !job.defs.iter().any(|d| d.name == stage) {
                    return;
                }
                if fresh && !check && job.defs.iter().any(|d| d.name == stage && d.diagnostics) {
                    confirm_held(&mut ws.early, &mut ws.early_held, &hashed);
                }
                if check {
                    // The check after a merged stage goes over its units again: not
                    // progress, but what it still compiled was compiled.
                    if !fresh {
                        job.units_compiled += 1;
                        job.rebuilt.insert(package);
                    }
                    return;
                }
                job.units_done += 1;
                if !fresh {
                    job.units_compiled += 1;
                    job.rebuilt.insert(package.clone());
                }
                let executable = executable.map(|e| EventKind::Executable {
                    job: job_id,
                    stage: stage.clone(),
                    package: package.clone(),
                    target: target.clone(),
                    kinds: e.kinds,
                    test: e.test,
                    path: e.path,
                    fresh,
                });
                let done = job.units_done;
                self.broadcast(
                    root,
                    EventKind::UnitFinished {
                        job: job_id,
                        stage,
                        package,
                        target,
                        fresh,
                        done,
                    },
                );
                // A client may run it now: the file is in place (see `job::Executable`).
                match executable {
                    Some(kind) => kind,
                    None => return,
                }
            }
            JobEvent::Diagnostic(diagnostic) => {
                crate::dispatch::tools::note_diagnostic(&mut ws.tools, &diagnostic);
                if !ws.diagnostics.add(job_id, &diagnostic) {
                    return;
                }
                EventKind::Diagnostic {
                    job: job_id,
                    diagnostic,
                }
            }
            JobEvent::EarlyDiagnostic {
                generation,
                diagnostic,
            } => {
                // What the job itself already said of a file is newer: the store keeps it.
                if !ws.diagnostics.add(generation, &diagnostic) {
                    return;
                }
                EventKind::Diagnostic {
                    job: generation,
                    diagnostic,
                }
            }
            JobEvent::Early { generation, report } => {
                tracing::debug!(generation, ?report, "early run reported");
                ws.early_status = Some(crate::wire::protocol::EarlyStatus {
                    job: generation,
                    package: report.package,
                    crate_name: report.crate_name,
                    errors: report.errors,
                    warnings: report.warnings,
                    duration_ms: report.duration.as_millis() as u64,
                });
                return;
            }
            JobEvent::MergeChecked { not_left } => {
                ws.merge = MergeState::checked(&not_left);
                tracing::info!(
                    root = %root.display(),
                    job = job_id,
                    merge = ?ws.merge,
                    "checked one invocation for build and test"
                );
                return;
            }
            JobEvent::SelectionChecked { not_left } => {
                // A load since the job started asks again, with the graph it loaded.
                if ws.selection == DefaultSelection::Untried {
                    ws.selection = DefaultSelection::checked(&not_left);
                }
                tracing::info!(
                    root = %root.display(),
                    job = job_id,
                    selection = ?ws.selection,
                    "checked what cargo selects at the root without --workspace"
                );
                return;
            }
            JobEvent::Finished(outcome) => self.finish_job(root, job_id, outcome),
        };
        self.broadcast(root, kind);
    }

    /// A job ended: its changes go back to the queue if it did not finish, its diagnostics
    /// replace older ones if it did, and status, the tools and the cache hear of it.
    fn finish_job(&mut self, root: &Path, job_id: u64, outcome: job::JobOutcome) -> EventKind {
        let ws = self.workspaces.get_mut(root).expect("the caller found it");
        let job = ws.job.take().expect("matched above");
        let mut result = outcome.result;
        if job.yielding && result == JobResult::Cancelled {
            result = JobResult::Yielded;
        }
        let cleared = match result {
            JobResult::Cancelled | JobResult::Yielded => {
                // The changes it covered are still to be built.
                if !job.forget {
                    ws.schedule.give_back(Owed {
                        full: job.full,
                        files: job.files,
                    });
                }
                Vec::new()
            }
            JobResult::Success | JobResult::Failed => ws.diagnostics.finish(job_id),
        };
        if result == JobResult::Success
            && let (Some(predicted), Some(graph)) = (&job.predicted, &ws.graph)
        {
            let members = graph.members();
            let rebuilt: BTreeSet<String> = job.rebuilt.intersection(&members).cloned().collect();
            ws.stats.add(predicted, &rebuilt);
        }
        let mut failure = outcome.failure;
        if result == JobResult::Failed
            && let Some(key) = &ws.key
            && let Some(full) = disk_full(&key.target_dir, failure.as_deref(), &ws.diagnostics)
        {
            tracing::warn!(root = %root.display(), "{full}");
            // The cache's after-job work reports it in status and to editors.
            ws.tools.out_of_space = true;
            failure = Some(full);
        }
        let summary = JobSummary {
            id: job_id,
            stages: job.stages,
            result,
            duration_ms: outcome.duration.as_millis() as u64,
            units_compiled: job.units_compiled,
            errors: ws.diagnostics.count(Severity::Error),
            warnings: ws.diagnostics.count(Severity::Warning),
            rebuilt: job.rebuilt.into_iter().collect(),
            failure,
        };
        tracing::info!(
            root = %root.display(),
            job = job_id,
            result = ?summary.result,
            ms = summary.duration_ms,
            compiled = summary.units_compiled,
            rebuilt = ?summary.rebuilt,
            "job finished"
        );
        if matches!(result, JobResult::Success | JobResult::Failed) {
            ws.last_units = Some(job.units_done);
            ws.built_clean = result == JobResult::Success;
            if job.defs.iter().any(|d| d.diagnostics) {
                // Its diagnostics job confirmed what still holds.
                ws.early_held.clear();
            }
        }
        ws.last_job = Some(summary.clone());
        if let (Some(key), Some(graph)) = (&ws.key, &ws.graph) {
            scan_target_dir(self.tx.clone(), root, &key.target_dir, graph, true);
        }
        if matches!(result, JobResult::Success | JobResult::Failed) {
            self.job_finished_tools(root, &summary, job.units_done);
        }
        EventKind::JobFinished {
            job: job_id,
            summary,
            cleared,
        }
    }

    /// Tells a running job which stages the user commands waiting for the dir need, and
    /// cancels it at once when the stage it runs is not among them.
    pub(super) fn update_gate(&mut self, root: &Path) {
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        let Some(job) = &mut ws.job else {
            return;
        };
        let needed: Option<Vec<Stage>> = if ws.waiting_acquire.is_empty() {
            None
        } else {
            // Any command that may need every stage makes every stage needed.
            ws.waiting_acquire
                .iter()
                .map(|w| w.needed.clone())
                .collect::<Option<Vec<Vec<Stage>>>>()
                .map(|all| all.concat())
        };
        let everything = !ws.waiting_acquire.is_empty() && needed.is_none();
        if let Ok(mut gate) = job.gate.lock() {
            gate.set(if everything { None } else { needed.clone() });
        }
        if let (Some(needed), Some(stage)) = (&needed, &job.stage)
            && !needed.contains(stage)
        {
            tracing::info!(
                job = job.id,
                stage = stage.name(),
                "yielding to a user command"
            );
            job.yielding = true;
            job.cancel.cancel();
        }
    }
}

/// The job definitions a job runs: for a `quiet` job, those held back until the workspace
/// is quiet; otherwise all of them but those held back (and the schedule told to wait for
/// quiet): the learned ones that are expensive and rarely used, and the default ones the
/// user's recent commands did not need (see [`LearnedJobs::unused_default`]).
///
/// [`LearnedJobs::unused_default`]: crate::build::learned::LearnedJobs::unused_default
fn select_defs(
    ws: &mut Workspace,
    resolved: &Resolved,
    all: Vec<JobDef>,
    quiet: bool,
) -> Vec<JobDef> {
    let wait = |held: &HeldBack| held.wait(resolved.quiet, resolved.unused_quiet);
    if quiet {
        // Those whose wait is over; the others (an unused default waits longer than a rare
        // learned job) wait on.
        let now = Instant::now();
        // The timer fires at the deadline, not after it.
        let quiet_for = ws
            .schedule
            .quiet_for(now)
            .saturating_add(Duration::from_millis(100));
        let (due, later): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut ws.deferred)
            .into_iter()
            .partition(|(_, held)| wait(held) <= quiet_for);
        if let Some(next) = later.values().map(wait).min() {
            ws.schedule.defer_more(now, next);
        }
        ws.deferred = later;
        return all
            .into_iter()
            .filter(|d| due.contains_key(&d.name))
            .collect();
    }
    let expensive = resolved.expensive.as_millis() as u64;
    let rare = |def: &JobDef| {
        def.origin == JobOrigin::Learned
            && ws.learned.as_ref().is_some_and(|learned| {
                learned.shapes.iter().any(|shape| {
                    shape.name() == def.name
                        && shape.last_duration_ms.is_some_and(|ms| ms >= expensive)
                        && learned.is_rare(shape)
                })
            })
    };
    let mut deferred = BTreeMap::new();
    let mut after_each_change = Vec::new();
    for def in all {
        if rare(&def) {
            deferred.insert(def.name.clone(), HeldBack::Rare);
        } else {
            after_each_change.push(def);
        }
    }
    // A default job waits only for learned jobs that run after each change: a rare one is
    // too weak a sign of what the user needs. The job that links a program a watch keeps
    // running never waits: the watch needs it after each change.
    let program = ws.program_job(&after_each_change);
    let mut defs = Vec::new();
    for def in &after_each_change {
        let unused = ws
            .learned
            .as_ref()
            .filter(|_| program.as_ref() != Some(&def.name))
            .and_then(|l| {
                l.unused_default(def, &after_each_change).or_else(|| {
                    let other_way = selection::other_way(def, &after_each_change);
                    l.unused_beside(def, &other_way)
                })
            });
        match unused {
            Some(narrower) => {
                deferred.insert(def.name.clone(), HeldBack::Unused(narrower));
            }
            None => defs.push(def.clone()),
        }
    }
    if let Some(first) = deferred.values().map(wait).min() {
        ws.schedule.defer(Instant::now(), first);
    }
    ws.deferred = deferred;
    if let Some(learned) = &mut ws.learned {
        learned.changed();
    }
    defs
}

/// The early run of the saved crate's own compiler command for a job over `files`, when
/// its diagnostics are sure to be the job's (see `build/early.rs` for the rule), with the
/// commands that may be it; the run itself picks the one whose dep-info lists the files.
/// `off`: the settings turned it off, or the job is a full build or a quiet-time one.
fn early_run(
    ws: &Workspace,
    root: &Path,
    defs: &[JobDef],
    files: &BTreeSet<PathBuf>,
    off: bool,
    spec: &JobSpec,
) -> Option<(early::EarlyRun, Vec<Arc<Invocation>>)> {
    let diagnostics_def = defs.iter().find(|d| d.diagnostics)?;
    if off
        || files.is_empty()
        || !ws.built_clean
        || diagnostics_def.args.iter().any(|a| a == "--")
        || !files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "rs") && !f.ends_with("build.rs"))
    {
        return None;
    }
    let candidates: Vec<Arc<Invocation>> = ws
        .early
        .iter()
        .filter(|inv| {
            let reads = ws
                .depinfo
                .crate_files
                .get(&inv.crate_name)
                .is_some_and(|read| files.iter().all(|f| read.contains(f)));
            // A build script that would run again may generate other code.
            let script_reruns =
                ws.depinfo
                    .rerun_if_changed
                    .get(&inv.package)
                    .is_some_and(|paths| {
                        paths.is_empty()
                            || files.iter().any(|f| paths.iter().any(|p| f.starts_with(p)))
                    });
            reads && !script_reruns
        })
        .cloned()
        .collect();
    if candidates.is_empty() {
        tracing::debug!(
            recorded = ws.early.len(),
            "no early run: no recorded command reads the files"
        );
        return None;
    }
    let key = ws.key.as_ref()?;
    let run = early::EarlyRun {
        root: root.to_path_buf(),
        files: files.clone(),
        env: spec.env.clone(),
        cargo_env: spec.cargo_env.clone(),
        scratch: key
            .target_dir
            .join(crate::cache::layout::STATE_DIR)
            .join("early"),
        nice: spec.nice,
    };
    Some((run, candidates))
}

/// A unit the diagnostics job found fresh after a load, by the `hashed` names of its files:
/// its command from before the load, if one is held for the same unit (the same metadata
/// hash, in the name of the command's dep-info file: not another variant of the crate, such
/// as the one a job over one package builds), is again the one cargo would run (see
/// `Workspace::early_held`), unless the job recorded a newer one.
fn confirm_held(
    early: &mut Vec<Arc<Invocation>>,
    held: &mut Vec<Arc<Invocation>>,
    hashed: &[String],
) {
    if held.is_empty() {
        return;
    }
    let same_unit = |h: &Invocation| {
        h.dep_info
            .file_stem()
            .and_then(|stem| stem.to_str())
            .is_some_and(|stem| {
                hashed
                    .iter()
                    .any(|name| name == stem || name.strip_prefix("lib") == Some(stem))
            })
    };
    let (confirmed, still): (Vec<_>, Vec<_>) =
        std::mem::take(held).into_iter().partition(|h| same_unit(h));
    *held = still;
    for invocation in confirmed {
        if !early.iter().any(|e| e.same_unit(&invocation)) {
            early.push(invocation);
        }
    }
}

/// Runs an early check on the runtime; what it reports comes back as the job's
/// [`JobEvent::Early`].
fn spawn_early(
    tx: mpsc::UnboundedSender<Event>,
    job_id: u64,
    generation: u64,
    (run, candidates): (early::EarlyRun, Vec<Arc<Invocation>>),
    cancel: CancellationToken,
) {
    let root = run.root.clone();
    tokio::spawn(async move {
        // Each candidate's own dep-info, off the loop: the crate's other units (its tests)
        // read other files.
        let at = run.root.clone();
        let files = run.files.clone();
        let chosen = tokio::task::spawn_blocking(move || {
            candidates.into_iter().find(|c| reads_all(c, &at, &files))
        })
        .await;
        let Ok(Some(invocation)) = chosen else {
            tracing::debug!("no early run: no command's own dep-info lists the files");
            return;
        };
        let send = |event| {
            let _ = tx.send(Event::Job {
                root: root.clone(),
                job: job_id,
                event,
            });
        };
        let found = |diagnostic| {
            send(JobEvent::EarlyDiagnostic {
                generation,
                diagnostic: Box::new(diagnostic),
            })
        };
        if let Some(report) = early::run(run, invocation, cancel, found).await {
            send(JobEvent::Early { generation, report });
        }
    });
}

/// Whether the command's own dep-info (not the union over its crate's other units) lists
/// every one of `files`. Relative paths in it are against `root`, where cargo runs rustc.
fn reads_all(invocation: &Invocation, root: &Path, files: &BTreeSet<PathBuf>) -> bool {
    let Some(read) = crate::project::depinfo::read_depfile(&invocation.dep_info, root) else {
        return false;
    };
    let read: BTreeSet<PathBuf> = read.into_iter().collect();
    files.iter().all(|f| read.contains(f))
}

/// Runs a job on the runtime: its facts come back to the loop as events.
fn spawn(
    tx: mpsc::UnboundedSender<Event>,
    root: &Path,
    job_id: u64,
    spec: JobSpec,
    sccache: Option<Arc<crate::tools::sccache::Sccache>>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let root = root.to_path_buf();
    tokio::spawn(async move {
        if let Some(sccache) = sccache
            && let Err(e) = sccache.ensure_running().await
        {
            tracing::warn!("{e}");
        }
        job::run(spec, cancel, |event| {
            let _ = tx.send(Event::Job {
                root: root.clone(),
                job: job_id,
                event,
            });
        })
        .await;
    })
}

/// Space left below which a failed job is blamed on a full disk, even when no message says
/// "No space left on device" (a linker reports only that it failed).
const DISK_NEARLY_FULL: u64 = 16 * 1024 * 1024;

/// Explains a failed job by a full disk, when that is what happened.
pub(super) fn disk_full(
    target_dir: &Path,
    failure: Option<&str>,
    diagnostics: &diagnostics::DiagnosticStore,
) -> Option<String> {
    let enospc = crate::cache::dirs::ENOSPC_TEXT;
    let said_so = failure.is_some_and(|f| f.contains(enospc))
        || diagnostics.iter().any(|d| {
            d.rustc
                .rendered
                .as_deref()
                .is_some_and(|r| r.contains(enospc))
                || d.rustc.children.iter().any(|c| c.message.contains(enospc))
        });
    let free = crate::cache::dirs::free_space(target_dir);
    if !said_so && free.is_none_or(|free| free >= DISK_NEARLY_FULL) {
        return None;
    }
    Some(crate::cache::dirs::disk_full_message(
        target_dir,
        free.unwrap_or(0),
    ))
}

/// The job's stages and their names: the definitions' (the diagnostics job first over the
/// package of the file an editor saved, when other changes compete with it), then those
/// that warm the other keys.
fn plan_stages(
    ws: &mut Workspace,
    defs: &[JobDef],
    predicted: Option<&BTreeSet<String>>,
    quiet: bool,
) -> (Vec<plan::StagePlan>, Vec<Stage>) {
    let focus = ws.focus.take();
    let focus_alone = match (&ws.graph, &focus, predicted) {
        (Some(graph), Some(focus), Some(predicted)) => {
            predicted.is_subset(&graph.affected_by(focus))
        }
        _ => true,
    };
    let focus = focus.filter(|f| predicted.is_some_and(|p| p.contains(f)));
    let first = ws.program_job(defs);
    let mut stages = plan::plan(defs, focus.as_deref(), focus_alone, first.as_ref());
    // The build a watched program restarts from runs alone: merged with the test build, it
    // would link later.
    if first.is_none() {
        let has_lib = ws.graph.as_ref().is_some_and(Graph::has_lib);
        stages = merge::merge(stages, &ws.merge, has_lib);
    }
    // In the order they run; the focus stage has its definition's name.
    let mut stage_names: Vec<Stage> = Vec::new();
    for name in stages.iter().flat_map(plan::StagePlan::names) {
        if !stage_names.contains(&name) {
            stage_names.push(name);
        }
    }
    if !quiet {
        // The other keys the workspace was used with are warmed after its own, unless gc
        // evicted their dirs meanwhile (a dir cargo made again has no key file).
        ws.other_keys.retain(|k| {
            k.key
                .target_dir
                .join(crate::cache::layout::KEY_FILE)
                .is_file()
        });
        let others = other_key_stages(ws.warmed_other_keys(), defs);
        stage_names.extend(others.iter().map(|s| s.stage.clone()));
        stages.extend(others);
    }
    (stages, stage_names)
}

/// The stages that warm the other keys: each configured job definition (not the learned
/// ones, which follow one key's use) in each other key's dir and environment, without
/// diagnostics (those of the workspace's own key are the editor's).
fn other_key_stages(
    others: &[crate::dispatch::workspace::OtherKey],
    defs: &[JobDef],
) -> Vec<plan::StagePlan> {
    let mut stages = Vec::new();
    for other in others {
        for def in defs.iter().filter(|d| d.origin != JobOrigin::Learned) {
            stages.push(plan::StagePlan {
                stage: other.stage(&def.name),
                args: def.args.clone(),
                dir: def.dir.clone(),
                diagnostics: false,
                record: false,
                origin: def.origin,
                key: Some(other.warm.clone()),
                merged: None,
            });
        }
    }
    stages
}
