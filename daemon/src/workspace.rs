//! One watched workspace as the dispatcher holds it: what is known of it (metadata, build
//! key, diagnostics, last job), what is pending (changes, loads, leases) and its state.
//!
//! The dispatcher alone mutates a [`Workspace`]; this module only derives views of it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use cargo_metadata::Metadata;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::diagnostics::DiagnosticStore;
use crate::key::{BuildKey, Toolchain};
use crate::protocol::{
    JobResult, JobSummary, ServerMessage, WorkspaceSettings, WorkspaceState, WorkspaceStatus,
};
use crate::watch::WatchHandle;

pub(crate) type ConnId = u64;
pub(crate) type Reply = mpsc::Sender<ServerMessage>;

pub(crate) struct RunningJob {
    pub(crate) id: u64,
    /// When the job started: a file written before then is read by the job.
    pub(crate) started_at: std::time::SystemTime,
    pub(crate) stages: Vec<String>,
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
}

pub(crate) struct Workspace {
    pub(crate) root: PathBuf,
    /// The registering client's environment; jobs run cargo with it.
    pub(crate) env: BTreeMap<String, String>,
    /// The settings the latest registering client asked for.
    pub(crate) settings: WorkspaceSettings,
    pub(crate) toolchain: Option<Toolchain>,
    pub(crate) key: Option<BuildKey>,
    pub(crate) metadata: Option<Box<Metadata>>,
    /// Why the workspace cannot be built; cleared by a successful load.
    pub(crate) error: Option<String>,
    pub(crate) watcher: Option<WatchHandle>,
    /// The id of the load under way.
    pub(crate) loading: Option<u64>,
    pub(crate) needs_reload: bool,
    /// A job is owed: changes arrived, or the workspace was (re)loaded.
    pub(crate) dirty: bool,
    pub(crate) pending_files: BTreeSet<PathBuf>,
    /// When the debounce of the latest change ends.
    pub(crate) deadline: Option<Instant>,
    pub(crate) job: Option<RunningJob>,
    pub(crate) last_job: Option<JobSummary>,
    /// Units the last complete job reported: the estimate for the next one's progress.
    pub(crate) last_units: Option<u64>,
    pub(crate) diagnostics: DiagnosticStore,
    pub(crate) target_dir_size: Option<u64>,
    /// Clients running their own cargo on the isolated dir; no job starts while any do.
    pub(crate) leases: HashSet<ConnId>,
    pub(crate) waiting_acquire: Vec<PendingAcquire>,
    pub(crate) waiting_register: Vec<(u64, Reply)>,
    /// The state last announced to subscribers.
    pub(crate) announced: Option<WorkspaceState>,
}

impl Workspace {
    pub(crate) fn new(root: PathBuf, env: BTreeMap<String, String>) -> Workspace {
        Workspace {
            root,
            env,
            settings: WorkspaceSettings::default(),
            toolchain: None,
            key: None,
            metadata: None,
            error: None,
            watcher: None,
            loading: None,
            needs_reload: false,
            dirty: false,
            pending_files: BTreeSet::new(),
            deadline: None,
            job: None,
            last_job: None,
            last_units: None,
            diagnostics: DiagnosticStore::default(),
            target_dir_size: None,
            leases: HashSet::new(),
            waiting_acquire: Vec::new(),
            waiting_register: Vec::new(),
            announced: None,
        }
    }

    pub(crate) fn state(&self) -> WorkspaceState {
        if self.job.is_some() {
            WorkspaceState::Running
        } else if self.loading.is_some() {
            WorkspaceState::Queued
        } else if self.error.is_some() {
            WorkspaceState::Error
        } else if self.dirty || self.needs_reload || self.deadline.is_some() {
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
            last_job: self.last_job.clone(),
            diagnostics: self.diagnostics.summaries(),
        }
    }
}
