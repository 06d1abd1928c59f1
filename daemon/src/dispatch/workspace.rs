//! One watched workspace as the dispatcher holds it: what is known of it (metadata, build
//! key, diagnostics, last job), what is pending (changes, loads, leases) and its state.
//!
//! The dispatcher alone mutates a [`Workspace`]; this module only derives views of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::build::diagnostics::DiagnosticStore;
use crate::build::invocation::Invocation;
use crate::build::job::{Gate, Stage};
use crate::build::jobs::{self, JobDef};
use crate::build::learned::{HeldBack, LearnedJobs};
use crate::build::merge::MergeState;
use crate::build::plan::OtherKeyEnv;
use crate::build::selection::{self, DefaultSelection};
use crate::dispatch::schedule::Schedule;
use crate::project::depinfo::DepInfo;
use crate::project::key::{BuildKey, Toolchain};
use crate::project::predict::Graph;
use crate::project::settings::{self, Resolved};
use crate::watch::WatchHandle;
use crate::wire::protocol::{
    CargoEnv, CurrentJob, JobOrigin, JobResult, JobStatus, JobSummary, LastChange, OtherKeyStatus,
    PredictionStats, ServerMessage, TestReport, WatcherKind, WatcherStatus, WorkspaceSettings,
    WorkspaceState, WorkspaceStatus,
};

pub(crate) type ConnId = u64;
pub(crate) type Reply = mpsc::Sender<ServerMessage>;

pub(crate) struct RunningJob {
    pub(crate) id: u64,
    /// The stage running now.
    pub(crate) stage: Option<Stage>,
    pub(crate) gate: Gate,
    /// The changes this job covers, given back to the queue if it does not finish.
    pub(crate) files: BTreeSet<PathBuf>,
    pub(crate) full: bool,
    /// The packages predicted to rebuild; `None` for a full job.
    pub(crate) predicted: Option<BTreeSet<String>>,
    /// Packages cargo reported artifacts of as not fresh.
    pub(crate) rebuilt: BTreeSet<String>,
    /// A client cancelled it: its changes are forgotten, not queued again.
    pub(crate) forget: bool,
    /// It was stopped for a user's command: it ends as yielded, not cancelled.
    pub(crate) yielding: bool,
    /// When the job started: a file written before then is read by the job.
    pub(crate) started_at: std::time::SystemTime,
    pub(crate) stages: Vec<Stage>,
    /// The job definitions it runs.
    pub(crate) defs: Vec<JobDef>,
    pub(crate) cancel: CancellationToken,
    pub(crate) handle: JoinHandle<()>,
    /// Units reported and units compiled so far.
    pub(crate) units_done: u64,
    pub(crate) units_compiled: u64,
}

pub(crate) struct PendingAcquire {
    pub(crate) conn: ConnId,
    pub(crate) id: u64,
    pub(crate) reply: Reply,
    pub(crate) since: Instant,
    /// The stages the user's command needs; `None`: any.
    pub(crate) needed: Option<Vec<Stage>>,
    /// What the command is, for status while the lease holds jobs back.
    pub(crate) holder: String,
}

pub(crate) struct Workspace {
    pub(crate) root: PathBuf,
    /// The registering client's environment; jobs run cargo with it.
    pub(crate) env: BTreeMap<String, String>,
    /// The settings the latest registering client asked for.
    pub(crate) settings: WorkspaceSettings,
    /// The settings of `buildd.toml` and `[workspace.metadata.buildd]`.
    pub(crate) file_settings: WorkspaceSettings,
    /// The members and their path dependencies, from the metadata.
    pub(crate) graph: Option<Graph>,
    /// What cargo's records say each target reads, scanned after each job.
    pub(crate) depinfo: DepInfo,
    /// What it owes: a load, a job, a full build, and when the debounce ends.
    pub(crate) schedule: Schedule,
    /// The package of the file an editor saved last: its stage goes first.
    pub(crate) focus: Option<String>,
    pub(crate) last_change: Option<LastChange>,
    pub(crate) stats: PredictionCounts,
    pub(crate) watcher_status: WatcherStatus,
    pub(crate) toolchain: Option<Toolchain>,
    pub(crate) key: Option<BuildKey>,
    /// Why the workspace cannot be built; cleared by a successful load.
    pub(crate) error: Option<String>,
    pub(crate) watcher: Option<WatchHandle>,
    /// The id of the load under way.
    pub(crate) loading: Option<u64>,
    pub(crate) job: Option<RunningJob>,
    pub(crate) last_job: Option<JobSummary>,
    pub(crate) last_tests: Option<TestReport>,
    pub(crate) jobs_started: u64,
    /// Units the last complete job reported: the estimate for the next one's progress.
    pub(crate) last_units: Option<u64>,
    pub(crate) diagnostics: DiagnosticStore,
    /// The compiler commands the diagnostics job last ran for the workspace's crates, for
    /// early diagnostics; every load moves them to `early_held`.
    pub(crate) early: Vec<Arc<Invocation>>,
    /// Commands recorded before the last load, under the same build key, until the
    /// diagnostics job's next run says which still hold: a unit cargo finds fresh is one whose
    /// command cargo would run as it did (its fingerprint covers the arguments, the features,
    /// the profile and its dependencies), so its command goes back to `early`; cargo prints
    /// no command for it. The job's end drops the rest.
    pub(crate) early_held: Vec<Arc<Invocation>>,
    /// The last job that ran to its end succeeded (a cancelled or yielded one changes
    /// nothing): every dependency's metadata in the dir is current, as early diagnostics
    /// need.
    pub(crate) built_clean: bool,
    /// What the last early run found, for status.
    pub(crate) early_status: Option<crate::wire::protocol::EarlyStatus>,
    pub(crate) target_dir_size: Option<u64>,
    /// Clients running their own cargo on the isolated dir, and what each runs; no job
    /// starts while any do.
    pub(crate) leases: HashMap<ConnId, String>,
    pub(crate) waiting_acquire: Vec<PendingAcquire>,
    /// The binaries that `buildd watch --run` connections keep running, restarted when a
    /// job links a new build: while any is, the job that links them runs first.
    pub(crate) programs: HashMap<ConnId, String>,
    pub(crate) waiting_register: Vec<(u64, Reply)>,
    /// The state last announced to subscribers.
    pub(crate) announced: Option<WorkspaceState>,
    /// The linker wrapper, sccache and the seed of the isolated dir.
    pub(crate) tools: crate::dispatch::tools::WorkspaceTools,
    /// A check of cargo's locks in the dir runs before the owed job starts.
    pub(crate) checking_locks: bool,
    /// The check found them free: the owed job may start.
    pub(crate) locks_free: bool,
    /// The lock a cargo outside buildd held at the last check.
    pub(crate) foreign_lock: Option<PathBuf>,
    /// Whether the toolchain has clippy, as the last load found.
    pub(crate) clippy: bool,
    /// The targets whose std the toolchain has; `None`: unknown.
    pub(crate) targets: Option<BTreeSet<String>>,
    /// The learned jobs; `None` until the first load read them from the state dir.
    pub(crate) learned: Option<LearnedJobs>,
    /// How each job definition's last run ended, and its duration in milliseconds.
    pub(crate) job_runs: BTreeMap<Stage, (JobResult, u64)>,
    /// The jobs the last job held back until the workspace is quiet, and why.
    pub(crate) deferred: BTreeMap<Stage, HeldBack>,
    /// The environment `key` was made from: the one it goes back to when another client's
    /// environment makes another key.
    pub(crate) key_env: BTreeMap<String, String>,
    /// The other keys the workspace was used with lately, most recently used first, up to
    /// [`OTHER_KEYS`]: each job warms them after the workspace's own key.
    pub(crate) other_keys: Vec<OtherKey>,
    /// Whether `build` and `test` run as one cargo invocation, as checked since the load.
    pub(crate) merge: MergeState,
    /// Whether a plain `cargo build` at the root needs other units than the
    /// workspace-wide jobs leave, as checked since the load (`build/selection.rs`).
    pub(crate) selection: DefaultSelection,
}

/// How many keys besides the current one are remembered; the `other_keys` setting (default
/// 2: an editor on stable and a terminal on nightly, or with other `RUSTFLAGS`, need one)
/// says how many of them jobs warm.
pub(crate) const OTHER_KEYS: usize = crate::project::settings::MAX_OTHER_KEYS;

/// A key not used for this long is no longer warmed.
pub(crate) const OTHER_KEY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A key the workspace had before, kept warm.
#[derive(Debug, Clone)]
pub(crate) struct OtherKey {
    pub(crate) key: BuildKey,
    pub(crate) warm: Arc<OtherKeyEnv>,
    pub(crate) last_used: SystemTime,
}

impl OtherKey {
    /// The name of the stage that warms this key for job definition `def`.
    pub(crate) fn stage(&self, def: &Stage) -> Stage {
        Stage::new(format!("{}@{}", def.name(), self.key.info.hash))
    }
}

impl Workspace {
    pub(crate) fn new(root: PathBuf, env: BTreeMap<String, String>) -> Workspace {
        Workspace {
            root,
            env,
            settings: WorkspaceSettings::default(),
            file_settings: WorkspaceSettings::default(),
            graph: None,
            depinfo: DepInfo::default(),
            schedule: Schedule::default(),
            focus: None,
            last_change: None,
            stats: PredictionCounts::default(),
            watcher_status: WatcherStatus {
                kind: WatcherKind::Native,
                rescans: 0,
                note: None,
            },
            toolchain: None,
            key: None,
            error: None,
            watcher: None,
            loading: None,
            job: None,
            last_job: None,
            last_tests: None,
            jobs_started: 0,
            last_units: None,
            diagnostics: DiagnosticStore::default(),
            early: Vec::new(),
            early_held: Vec::new(),
            built_clean: false,
            early_status: None,
            target_dir_size: None,
            leases: HashMap::new(),
            waiting_acquire: Vec::new(),
            programs: HashMap::new(),
            waiting_register: Vec::new(),
            announced: None,
            tools: Default::default(),
            checking_locks: false,
            locks_free: false,
            foreign_lock: None,
            clippy: true,
            targets: None,
            learned: None,
            job_runs: BTreeMap::new(),
            deferred: BTreeMap::new(),
            key_env: BTreeMap::new(),
            other_keys: Vec::new(),
            merge: MergeState::default(),
            selection: DefaultSelection::default(),
        }
    }

    pub(crate) fn state(&self) -> WorkspaceState {
        if self.job.is_some() {
            WorkspaceState::Running
        } else if self.loading.is_some() {
            WorkspaceState::Queued
        } else if self.error.is_some() {
            WorkspaceState::Error
        } else if self.schedule.is_pending() {
            WorkspaceState::Queued
        } else if self
            .last_job
            .as_ref()
            .is_some_and(|j| j.result == JobResult::Failed)
        {
            WorkspaceState::Failed
        } else {
            WorkspaceState::Idle
        }
    }

    pub(crate) fn status(&self) -> WorkspaceStatus {
        WorkspaceStatus {
            root: self.root.clone(),
            state: self.state(),
            error: self.error.clone(),
            target_dir: self.key.as_ref().map(|k| k.target_dir.clone()),
            target_dir_size: self.target_dir_size,
            key: self.key.as_ref().map(|k| k.info.clone()),
            last_change: self.last_change.clone(),
            current_job: self.job.as_ref().map(|j| CurrentJob {
                id: j.id,
                stages: j.stages.clone(),
                stage: j.stage.clone(),
                units_done: j.units_done,
                expected_units: self.last_units,
            }),
            last_job: self.last_job.clone(),
            last_tests: self.last_tests.clone(),
            jobs_started: self.jobs_started,
            prediction: self.stats.report(),
            watcher: self.watcher_status.clone(),
            diagnostics: self.diagnostics.summaries(),
            cargo_env: self
                .key
                .as_ref()
                .map(|k| crate::project::key::cargo_env(&k.target_dir, &self.tools.env)),
            seed: self.tools.seed.clone(),
            linker: self.tools.linker.clone(),
            fast_link: self.tools.fast_link.clone(),
            sccache: self.tools.sccache.clone(),
            waiting_for: self.waiting_for(),
            jobs: self.job_statuses(),
            other_keys: self.other_key_statuses(),
            early: self.early_status.clone(),
        }
    }

    /// The other keys the jobs warm, as many as the settings say.
    pub(crate) fn warmed_other_keys(&self) -> &[OtherKey] {
        let limit = self.resolved(Duration::ZERO).other_keys;
        &self.other_keys[..limit.min(self.other_keys.len())]
    }

    fn other_key_statuses(&self) -> Vec<OtherKeyStatus> {
        self.warmed_other_keys()
            .iter()
            .map(|other| {
                let suffix = format!("@{}", other.key.info.hash);
                let runs: Vec<(JobResult, u64)> = self
                    .job_runs
                    .iter()
                    .filter(|(stage, _)| stage.name().ends_with(&suffix))
                    .map(|(_, run)| *run)
                    .collect();
                let result = runs.iter().map(|(r, _)| *r).reduce(|a, b| match a {
                    JobResult::Success => b,
                    _ => a,
                });
                OtherKeyStatus {
                    key: other.key.info.clone(),
                    target_dir: other.key.target_dir.clone(),
                    last_used: other
                        .last_used
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                    last_result: result,
                    last_duration_ms: (!runs.is_empty())
                        .then(|| runs.iter().map(|(_, ms)| ms).sum()),
                }
            })
            .collect()
    }

    /// Remembers that the workspace's key changed from `old` (made from `old_env`, warmed
    /// with `old_cargo_env`) to `new` (made from `self.env`). When another client's
    /// environment made the change (another toolchain, other flags), the old key is warmed
    /// from now on; when the same environment did (a toolchain update, another linker), the
    /// old key is gone. A key made from the new environment is no longer another key, and
    /// those unused for a week or beyond the limit are dropped.
    pub(crate) fn key_changed(
        &mut self,
        old: BuildKey,
        old_env: BTreeMap<String, String>,
        old_cargo_env: CargoEnv,
        new: &BuildKey,
        now: SystemTime,
    ) {
        use crate::project::key::build_env;
        let new_env = build_env(&self.env);
        self.other_keys.retain(|k| {
            k.key.info.hash != new.info.hash
                && k.key.info.hash != old.info.hash
                && build_env(&k.warm.env) != new_env
        });
        if !old_env.is_empty() && build_env(&old_env) != new_env {
            self.other_keys.insert(
                0,
                OtherKey {
                    warm: Arc::new(OtherKeyEnv {
                        env: old_env,
                        cargo_env: old_cargo_env,
                        rustc_info: crate::cache::rustc_info(&old.target_dir),
                    }),
                    key: old,
                    last_used: now,
                },
            );
        }
        self.other_keys.retain(|k| {
            now.duration_since(k.last_used)
                .is_ok_and(|age| age < OTHER_KEY_TTL)
        });
        self.other_keys.truncate(OTHER_KEYS);
        // The runs of the stages that warmed a key no longer warmed go with it.
        let kept: Vec<String> = self
            .other_keys
            .iter()
            .map(|k| format!("@{}", k.key.info.hash))
            .collect();
        self.job_runs.retain(|stage, _| {
            !stage.name().contains('@') || kept.iter().any(|k| stage.name().ends_with(k))
        });
    }

    /// Every job definition, as the next job would run them, with what their last runs did.
    fn job_statuses(&self) -> Vec<JobStatus> {
        // Status does not know the daemon's default debounce; the jobs do not depend on it.
        let resolved = self.resolved(Duration::ZERO);
        let learned = self.learned.as_ref();
        let mut defs = self.job_defs(&resolved);
        let first = self.program_job(&defs);
        if let Some(at) = defs.iter().position(|d| Some(&d.name) == first.as_ref()) {
            let def = defs.remove(at);
            defs.insert(0, def);
        }
        let mut merge_notes = self.merge_notes(&defs, first.as_ref());
        let selection_notes: BTreeMap<Stage, String> = defs
            .iter()
            .filter_map(|d| Some((d.name.clone(), selection::note(&self.selection, d, &defs)?)))
            .collect();
        defs.into_iter()
            .map(|def| {
                let shape = learned
                    .filter(|_| def.origin == JobOrigin::Learned)
                    .and_then(|l| l.shapes.iter().find(|s| s.name() == def.name));
                let run = self.job_runs.get(&def.name).copied().or_else(|| {
                    let shape = shape?;
                    Some((shape.last_result?, shape.last_duration_ms?))
                });
                let note = self.missing_target(&def).map(|target| {
                    format!(
                        "the std of {target} is not installed, so the job does not run: \
                         `rustup target add {target}`"
                    )
                });
                let note = note.or_else(|| match def.subcommand() {
                    "check" if def.origin == JobOrigin::Default && !self.clippy => Some(
                        "clippy is not installed for this toolchain, so the editor's \
                         diagnostics come from `cargo check`: `rustup component add clippy` \
                         turns clippy on"
                            .to_owned(),
                    ),
                    "clippy" if !self.clippy => Some(
                        "clippy is not installed for this toolchain: `rustup component add \
                         clippy`"
                            .to_owned(),
                    ),
                    _ => None,
                });
                let is_first = first.as_ref() == Some(&def.name);
                let notes: Vec<String> = [
                    is_first.then(|| self.runs_first_note()),
                    merge_notes.remove(&def.name),
                    selection_notes.get(&def.name).cloned(),
                    note,
                ]
                .into_iter()
                .flatten()
                .collect();
                let note = (!notes.is_empty()).then(|| notes.join("; "));
                JobStatus {
                    waiting: self.deferred.get(&def.name).map(|why| {
                        let wait = why.wait(resolved.quiet, resolved.unused_quiet);
                        why.reason(run.map(|(_, ms)| ms), wait)
                    }),
                    name: def.name,
                    command: def.args,
                    dir: def.dir,
                    origin: def.origin,
                    diagnostics: def.diagnostics || is_first,
                    last_result: run.map(|(r, _)| r),
                    last_duration_ms: run.map(|(_, ms)| ms),
                    last_used: shape.map(|s| s.last_used),
                    note,
                }
            })
            .collect()
    }

    /// The job among `defs` that links the programs `buildd watch --run` connections keep
    /// running (`plan::links_programs`): it runs first and is never held back; `None` while
    /// no watch runs one.
    pub(crate) fn program_job(&self, defs: &[JobDef]) -> Option<Stage> {
        if self.programs.is_empty() {
            return None;
        }
        crate::build::plan::links_programs(defs).map(|d| d.name.clone())
    }

    /// What status says of the definitions that run as one cargo invocation, or would
    /// but run apart (`build/merge.rs`), by name.
    fn merge_notes(&self, defs: &[JobDef], first: Option<&Stage>) -> BTreeMap<Stage, String> {
        let mut notes = BTreeMap::new();
        if first.is_some() {
            // A watched program's build runs first, alone.
            return notes;
        }
        let has_lib = self.graph.as_ref().is_some_and(Graph::has_lib);
        let would = match &self.merge {
            MergeState::Apart(_) => &MergeState::Untried,
            state => state,
        };
        let plans = crate::build::plan::plan(defs, None, true, None);
        for stage in crate::build::merge::merge(plans, would, has_lib) {
            if stage.merged.is_none() {
                continue;
            }
            let names = stage.names();
            for name in &names {
                let others: Vec<String> = names
                    .iter()
                    .filter(|n| *n != name)
                    .map(|n| format!("`{n}`"))
                    .collect();
                let others = others.join(", ");
                let command = stage.args.join(" ");
                let note = match &self.merge {
                    MergeState::Merges => format!(
                        "runs with {others} as one cargo invocation, `cargo {command}`, \
                         checked since the workspace was loaded to leave the units each \
                         looks for"
                    ),
                    MergeState::Untried => format!(
                        "runs with {others} as one cargo invocation, `cargo {command}`; the \
                         first time since the workspace was loaded, each then runs apart to \
                         check that it leaves the units each looks for"
                    ),
                    MergeState::Apart(why) => format!("runs apart from {others}: {why}"),
                };
                notes.insert(name.clone(), note);
            }
        }
        notes
    }

    /// Why the job that links the watched programs runs first, as status says.
    fn runs_first_note(&self) -> String {
        let mut bins: Vec<String> = self.programs.values().map(|b| format!("`{b}`")).collect();
        bins.sort_unstable();
        bins.dedup();
        format!(
            "runs first, and reports diagnostics: `buildd watch --run` keeps {} running",
            bins.join(", ")
        )
    }

    /// The `--target` of a job whose std the toolchain does not have.
    pub(crate) fn missing_target(&self, def: &JobDef) -> Option<String> {
        let installed = self.targets.as_ref()?;
        crate::build::jobs::targets(&def.args)
            .into_iter()
            .find(|t| !installed.contains(t))
    }

    /// The job definitions a job runs: the configured ones and the learned ones (up to the
    /// limit, without those a configured one already runs, written in another order or
    /// spelling: see [`jobs::same_command`]), and while the root's default selection needs
    /// other units, the default jobs for it (`build/selection.rs`), in order: the diagnostics
    /// jobs, then what the user ran most recently (see [`LearnedJobs::order`]).
    pub(crate) fn job_defs(&self, resolved: &Resolved) -> Vec<JobDef> {
        let mut defs = resolved.jobs.clone();
        let mut learned_defs: Vec<JobDef> = Vec::new();
        if let Some(learned) = &self.learned {
            for shape in learned.shapes.iter().take(resolved.learn_limit) {
                let def = shape.def();
                if !defs
                    .iter()
                    .any(|d| jobs::same_command(&d.args, &def.args) && d.dir == def.dir)
                {
                    learned_defs.push(def);
                }
            }
        }
        // After the workspace-wide ones (the order below is stable), and left to a learned
        // job that runs the same command.
        let for_selection = selection::defs(&self.selection, &resolved.jobs, &learned_defs);
        defs.extend(for_selection);
        defs.extend(learned_defs);
        if let Some(learned) = &self.learned {
            learned.order(&mut defs);
        }
        defs
    }

    /// What holds back the owed job, besides the debounce.
    fn waiting_for(&self) -> Option<String> {
        if self.job.is_some() || self.loading.is_some() || !self.schedule.owes_job() {
            return None;
        }
        if let Some(holder) = self.leases.values().next() {
            return Some(format!("{holder} holds the warm dir"));
        }
        self.foreign_lock.as_ref().map(|lock| {
            let dir = lock.parent().unwrap_or(lock);
            format!(
                "a cargo outside buildd holds the lock of {}; the job starts when it finishes",
                dir.display()
            )
        })
    }

    /// The settings in force: the client's over the files', over the defaults.
    pub(crate) fn resolved(&self, default_debounce: Duration) -> Resolved {
        settings::resolve(
            &settings::over(&self.settings, &self.file_settings),
            default_debounce,
            self.clippy,
        )
    }
}

/// Running sums for the precision and recall of predictions.
#[derive(Debug, Default)]
pub(crate) struct PredictionCounts {
    jobs: u64,
    predicted: u64,
    rebuilt: u64,
    both: u64,
}

impl PredictionCounts {
    /// Counts one job: `predicted` against the workspace packages it rebuilt.
    pub(crate) fn add(&mut self, predicted: &BTreeSet<String>, rebuilt: &BTreeSet<String>) {
        self.jobs += 1;
        self.predicted += predicted.len() as u64;
        self.rebuilt += rebuilt.len() as u64;
        self.both += predicted.intersection(rebuilt).count() as u64;
    }

    pub(crate) fn report(&self) -> PredictionStats {
        let share = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
        PredictionStats {
            jobs: self.jobs,
            precision: share(self.both, self.predicted),
            recall: share(self.both, self.rebuilt),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn env(flags: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("RUSTFLAGS".to_owned(), flags.to_owned())])
    }

    fn key(env: &BTreeMap<String, String>, rustc: &str) -> BuildKey {
        let toolchain = Toolchain {
            rustc_verbose: format!("{rustc}\nhost: x86_64-unknown-linux-gnu\n"),
            cargo_version: "cargo 1.95.0".into(),
        };
        BuildKey::new(
            Path::new("/c"),
            Path::new("/ws"),
            &toolchain,
            env,
            "default",
            false,
        )
    }

    /// The workspace switches from the key of `from` to that of `to`, as a load does.
    fn switch(ws: &mut Workspace, to: BTreeMap<String, String>, rustc: &str, at: SystemTime) {
        let new = key(&to, rustc);
        ws.env = to;
        if let Some(old) = ws.key.take() {
            let old_env = std::mem::take(&mut ws.key_env);
            ws.key_changed(old, old_env, CargoEnv::default(), &new, at);
        }
        ws.key_env = ws.env.clone();
        ws.key = Some(new);
    }

    fn others(ws: &Workspace) -> Vec<String> {
        ws.other_keys
            .iter()
            .map(|k| k.warm.env["RUSTFLAGS"].clone())
            .collect()
    }

    #[test]
    fn other_keys_are_the_recent_other_environments_newest_first_up_to_the_limit() {
        let now = SystemTime::now();
        let mut ws = Workspace::new(PathBuf::from("/ws"), env("a"));
        switch(&mut ws, env("a"), "rustc 1", now);
        assert!(ws.other_keys.is_empty());
        switch(&mut ws, env("b"), "rustc 1", now);
        assert_eq!(others(&ws), ["a"]);
        // Back to a: b is the other key now, and a is not one twice.
        switch(&mut ws, env("a"), "rustc 1", now);
        assert_eq!(others(&ws), ["b"]);
        switch(&mut ws, env("c"), "rustc 1", now);
        switch(&mut ws, env("d"), "rustc 1", now);
        assert_eq!(others(&ws), ["c", "a", "b"], "newest first");
        // The jobs warm as many as `other_keys` says (2 by default), and status lists those.
        let warmed: Vec<_> = ws
            .warmed_other_keys()
            .iter()
            .map(|k| k.warm.env["RUSTFLAGS"].clone())
            .collect();
        assert_eq!(warmed, ["c", "a"]);
        assert_eq!(ws.status().other_keys.len(), 2);
        ws.settings.other_keys = Some(0);
        assert!(ws.warmed_other_keys().is_empty());
        for flags in ["e", "f", "g", "h", "i", "j", "k", "l"] {
            switch(&mut ws, env(flags), "rustc 1", now);
        }
        assert_eq!(
            ws.other_keys.len(),
            OTHER_KEYS,
            "at most {OTHER_KEYS} are remembered"
        );
    }

    #[test]
    fn a_new_key_from_the_same_environment_replaces_the_old_one() {
        // `rustup update`: the same environment makes a key with the new rustc, and warming
        // the old dir with it would mix two compilers' output.
        let now = SystemTime::now();
        let mut ws = Workspace::new(PathBuf::from("/ws"), env("a"));
        switch(&mut ws, env("a"), "rustc 1", now);
        switch(&mut ws, env("a"), "rustc 2", now);
        assert!(ws.other_keys.is_empty());
    }

    #[test]
    fn a_key_unused_for_a_week_is_no_longer_warmed_and_its_runs_go() {
        let long_ago = SystemTime::now() - OTHER_KEY_TTL - Duration::from_secs(60);
        let mut ws = Workspace::new(PathBuf::from("/ws"), env("a"));
        switch(&mut ws, env("a"), "rustc 1", long_ago);
        switch(&mut ws, env("b"), "rustc 1", long_ago);
        let stage = ws.other_keys[0].stage(&Stage::new("build"));
        ws.job_runs.insert(stage.clone(), (JobResult::Success, 10));
        assert_eq!(
            ws.status().other_keys[0].last_result,
            Some(JobResult::Success)
        );
        switch(&mut ws, env("c"), "rustc 1", SystemTime::now());
        assert_eq!(others(&ws), ["b"]);
        switch(
            &mut ws,
            env("d"),
            "rustc 1",
            SystemTime::now() + OTHER_KEY_TTL,
        );
        assert_eq!(others(&ws), ["c"], "b was last used over a week before");
        assert!(!ws.job_runs.contains_key(&stage));
    }
}
