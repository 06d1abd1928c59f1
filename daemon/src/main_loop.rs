//! The dispatcher: one loop that owns the daemon's state and takes every input as an
//! [`Event`].
//!
//! Connections, watchers, loads and jobs are workers: they report facts into one channel,
//! and only this loop changes a [`Workspace`] or starts and cancels work. Debounce deadlines
//! and the idle timeout are timers of the same loop. Replies go back on each connection's
//! own channel; events go to subscribers through the shared registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::DaemonConfig;
use crate::job::{self, JobEvent, JobSpec, Stage};
use crate::key::{self, BuildKey};
use crate::load::{self, Loaded};
use crate::paths::ensure_private_dir;
use crate::protocol::{
    DaemonInfo, ErrorCode, EventKind, JobResult, JobSummary, PROTOCOL_VERSION, Request,
    ServerMessage, Severity, StatusReport, WorkspaceEvent, WorkspaceSettings, binary_version,
};
use crate::watch::{self, WatchEvent};
use crate::workspace::{ConnId, PendingAcquire, Reply, RunningJob, Workspace};

/// How long shutdown waits for cancelled jobs to reap their processes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub(crate) enum Event {
    Connected,
    Disconnected {
        conn: ConnId,
    },
    Request {
        conn: ConnId,
        id: u64,
        request: Request,
        reply: Reply,
    },
    /// A registration whose workspace root the connection already resolved.
    Register {
        id: u64,
        root: PathBuf,
        env: BTreeMap<String, String>,
        settings: WorkspaceSettings,
        reply: Reply,
    },
    Watch {
        root: PathBuf,
        event: WatchEvent,
    },
    Loaded {
        root: PathBuf,
        load: u64,
        loaded: Loaded,
    },
    Job {
        root: PathBuf,
        job: u64,
        event: JobEvent,
    },
    Size {
        root: PathBuf,
        size: u64,
    },
    /// SIGTERM or SIGINT.
    Terminate,
}

/// A connection that asked for events.
pub(crate) struct Subscription {
    /// Only events of this workspace, or all.
    pub(crate) root: Option<PathBuf>,
    pub(crate) tx: Reply,
}

pub(crate) type Subscribers = Arc<DashMap<ConnId, Subscription>>;

pub(crate) struct Dispatcher {
    config: DaemonConfig,
    started: Instant,
    tx: mpsc::UnboundedSender<Event>,
    subscribers: Subscribers,
    workspaces: BTreeMap<PathBuf, Workspace>,
    clients: usize,
    /// Ids for jobs and loads; jobs' ids are the generation numbers clients see.
    next_id: u64,
    /// When the daemon last had a client or work.
    last_busy: Instant,
}

impl Dispatcher {
    pub(crate) fn new(
        config: DaemonConfig,
        tx: mpsc::UnboundedSender<Event>,
        subscribers: Subscribers,
    ) -> Dispatcher {
        Dispatcher {
            config,
            started: Instant::now(),
            tx,
            subscribers,
            workspaces: BTreeMap::new(),
            clients: 0,
            next_id: 1,
            last_busy: Instant::now(),
        }
    }

    /// Runs until a client asks for shutdown, a signal arrives, or the daemon is idle for
    /// the idle timeout; then cancels every job and waits for their processes.
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        loop {
            let deadline = self.next_deadline();
            let event = tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => Some(event),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline.into()) => None,
            };
            if let Some(event) = event
                && self.handle(event)
            {
                break;
            }
            let now = Instant::now();
            let roots: Vec<PathBuf> = self.workspaces.keys().cloned().collect();
            for root in roots {
                self.advance(&root);
                self.announce(&root);
            }
            if self.busy() {
                self.last_busy = now;
            } else if now.duration_since(self.last_busy) >= self.config.idle_timeout {
                tracing::info!(
                    "no clients or work for {}; shutting down",
                    humantime::format_duration(self.config.idle_timeout)
                );
                break;
            }
        }
        self.shutdown().await;
    }

    fn busy(&self) -> bool {
        self.clients > 0
            || self
                .workspaces
                .values()
                .any(|w| w.job.is_some() || w.loading.is_some() || w.dirty)
    }

    fn next_deadline(&self) -> Instant {
        let idle = self.last_busy + self.config.idle_timeout;
        self.workspaces
            .values()
            .filter_map(|w| w.deadline)
            .min()
            .map_or(idle, |d| d.min(idle))
    }

    /// Handles one event; returns true when the daemon must stop.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Connected => self.clients += 1,
            Event::Disconnected { conn } => {
                self.clients = self.clients.saturating_sub(1);
                for ws in self.workspaces.values_mut() {
                    ws.leases.remove(&conn);
                    ws.waiting_acquire.retain(|w| w.conn != conn);
                }
            }
            Event::Request {
                conn,
                id,
                request,
                reply,
            } => return self.request(conn, id, request, reply),
            Event::Register {
                id,
                root,
                env,
                settings,
                reply,
            } => self.register(id, root, env, settings, reply),
            Event::Watch { root, event } => self.watch_event(&root, event),
            Event::Loaded { root, load, loaded } => self.loaded(&root, load, loaded),
            Event::Job { root, job, event } => self.job_event(&root, job, event),
            Event::Size { root, size } => {
                if let Some(ws) = self.workspaces.get_mut(&root) {
                    ws.target_dir_size = Some(size);
                }
            }
            Event::Terminate => return true,
        }
        false
    }

    fn request(&mut self, conn: ConnId, id: u64, request: Request, reply: Reply) -> bool {
        let answer = match request {
            Request::Hello { .. } | Request::Register { .. } | Request::Subscribe { .. } => {
                // The connection answers these itself.
                error(id, ErrorCode::BadRequest, "unexpected message")
            }
            Request::Status { root } => match self.status(root.as_deref()) {
                Ok(status) => ServerMessage::Status { id, status },
                Err(e) => e.reply(id),
            },
            Request::Acquire { root } => match self.workspace_of(&root) {
                Ok(root) => {
                    let ws = self.workspaces.get_mut(&root).expect("found above");
                    ws.waiting_acquire.push(PendingAcquire {
                        conn,
                        id,
                        reply,
                        since: Instant::now(),
                    });
                    return false;
                }
                Err(e) => e.reply(id),
            },
            Request::Saved { paths } => {
                for path in paths {
                    let Ok(root) = self.workspace_of(&path) else {
                        continue;
                    };
                    let ws = self.workspaces.get_mut(&root).expect("found");
                    let manifest = is_manifest(&root, &path);
                    ws.needs_reload |= manifest;
                    ws.pending_files.insert(path);
                    ws.dirty = true;
                    // No debounce: the user said the file is done.
                    ws.deadline = None;
                    cancel_stale(ws);
                }
                ServerMessage::Ok { id }
            }
            Request::Release { root } => {
                if let Ok(root) = self.workspace_of(&root) {
                    self.workspaces
                        .get_mut(&root)
                        .expect("found")
                        .leases
                        .remove(&conn);
                }
                ServerMessage::Ok { id }
            }
            Request::Rebuild { root } => match self.workspace_of(&root) {
                Ok(root) => {
                    let ws = self.workspaces.get_mut(&root).expect("found");
                    ws.dirty = true;
                    ws.deadline = None;
                    if let Some(job) = &ws.job {
                        job.cancel.cancel();
                    }
                    ServerMessage::Ok { id }
                }
                Err(e) => e.reply(id),
            },
            Request::Cancel { root } => match self.workspace_of(&root) {
                Ok(root) => {
                    let ws = self.workspaces.get_mut(&root).expect("found");
                    ws.dirty = false;
                    ws.deadline = None;
                    ws.pending_files.clear();
                    if let Some(job) = &ws.job {
                        job.cancel.cancel();
                    }
                    ServerMessage::Ok { id }
                }
                Err(e) => e.reply(id),
            },
            Request::Diagnostics { root } => match self.workspace_of(&root) {
                Ok(root) => ServerMessage::Diagnostics {
                    id,
                    files: self.workspaces[&root].diagnostics.files(),
                    root,
                },
                Err(e) => e.reply(id),
            },
            Request::Unregister { root } => match self.workspace_of(&root) {
                Ok(root) => {
                    if let Some(job) = self.workspaces.remove(&root).and_then(|ws| ws.job) {
                        job.cancel.cancel();
                    }
                    tracing::info!(root = %root.display(), "unregistered");
                    ServerMessage::Ok { id }
                }
                Err(e) => e.reply(id),
            },
            Request::Shutdown => {
                tracing::info!("shutdown requested by a client");
                let _ = reply.try_send(ServerMessage::Ok { id });
                return true;
            }
        };
        let _ = reply.try_send(answer);
        false
    }

    /// The registered workspace that contains `path`: the deepest one.
    fn workspace_of(&self, path: &Path) -> Result<PathBuf, DispatchError> {
        self.workspaces
            .keys()
            .filter(|root| path.starts_with(root))
            .max_by_key(|root| root.components().count())
            .cloned()
            .ok_or_else(|| DispatchError::NotRegistered(path.to_path_buf()))
    }

    fn status(&self, root: Option<&Path>) -> Result<StatusReport, DispatchError> {
        let workspaces = match root {
            Some(path) => vec![self.workspaces[&self.workspace_of(path)?].status()],
            None => self.workspaces.values().map(Workspace::status).collect(),
        };
        let paths = &self.config.paths;
        Ok(StatusReport {
            daemon: DaemonInfo {
                pid: std::process::id(),
                version: binary_version(),
                protocol: PROTOCOL_VERSION,
                uptime_secs: self.started.elapsed().as_secs(),
                socket: paths.socket(),
                log_path: crate::logging::current_log(&paths.log_dir()),
                cache_dir: paths.cache_dir.clone(),
                idle_timeout_secs: self.config.idle_timeout.as_secs(),
                clients: self.clients,
            },
            workspaces,
        })
    }

    fn register(
        &mut self,
        id: u64,
        root: PathBuf,
        env: BTreeMap<String, String>,
        settings: WorkspaceSettings,
        reply: Reply,
    ) {
        if let Some(Err(e)) = settings.stages.as_deref().map(Stage::parse_all) {
            let _ = reply.try_send(error(id, ErrorCode::BadRequest, &format!("settings: {e}")));
            return;
        }
        if !self.workspaces.contains_key(&root) {
            tracing::info!(root = %root.display(), "registered");
            let mut ws = Workspace::new(root.clone(), env.clone());
            let tx = self.tx.clone();
            let watch_root = root.clone();
            match watch::start(root.clone(), move |event| {
                let _ = tx.send(Event::Watch {
                    root: watch_root.clone(),
                    event,
                });
            }) {
                Ok(handle) => ws.watcher = Some(handle),
                Err(e) => tracing::warn!("{e}"),
            }
            ws.needs_reload = true;
            self.workspaces.insert(root.clone(), ws);
        }
        let ws = self.workspaces.get_mut(&root).expect("inserted above");
        if !env.is_empty() && key::build_env(&env) != key::build_env(&ws.env) {
            // Another toolchain or other flags: a new key, so load again.
            ws.needs_reload = true;
            ws.deadline = None;
        }
        if !env.is_empty() {
            ws.env = env;
        }
        if settings != WorkspaceSettings::default() {
            ws.settings = settings;
        }
        if ws.key.is_some() && !ws.needs_reload && ws.loading.is_none() {
            let _ = reply.try_send(ServerMessage::Registered {
                id,
                workspace: Box::new(ws.status()),
            });
        } else {
            ws.waiting_register.push((id, reply));
        }
    }

    fn watch_event(&mut self, root: &Path, event: WatchEvent) {
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        let debounce = ws
            .settings
            .debounce_ms
            .map_or(self.config.debounce, Duration::from_millis);
        match event {
            WatchEvent::Changed(paths) => {
                // The watcher reports a write a little after it happened; a running job that
                // started after the write (an editor's save starts one at once) reads the new
                // content, and is not stale because of it.
                if let Some(job) = &ws.job
                    && paths.iter().all(|p| written_before(p, job.started_at))
                {
                    tracing::debug!(
                        job = job.id,
                        ?paths,
                        "change already covered by the running job"
                    );
                    return;
                }
                tracing::debug!(root = %root.display(), ?paths, "changed");
                if paths.iter().any(|p| is_manifest(root, p)) {
                    ws.needs_reload = true;
                }
                // Cargo writes Cargo.lock itself at the start of a job when it is missing or
                // outdated; that must not cancel the job that wrote it.
                let stale = paths
                    .iter()
                    .any(|p| p.file_name().is_none_or(|n| n != "Cargo.lock"));
                ws.pending_files.extend(paths);
                ws.dirty = true;
                ws.deadline = Some(Instant::now() + debounce);
                if stale {
                    cancel_stale(ws);
                }
                return;
            }
            WatchEvent::Rescan => {
                tracing::warn!(root = %root.display(), "watcher asked for a rescan");
                ws.needs_reload = true;
                ws.dirty = true;
            }
            WatchEvent::RootRemoved => {
                ws.error = Some(format!(
                    "the workspace directory {} was removed or moved: register it again \
                     where it is now",
                    root.display()
                ));
                ws.watcher = None;
                ws.dirty = false;
                ws.needs_reload = false;
                if let Some(job) = &ws.job {
                    job.cancel.cancel();
                }
                return;
            }
            WatchEvent::Error(e) => {
                tracing::warn!(root = %root.display(), "watcher error: {e}");
                ws.dirty = true;
            }
        }
        ws.deadline = Some(Instant::now() + debounce);
        cancel_stale(ws);
    }

    /// Starts whatever a workspace is owed, once its debounce is over and nothing runs.
    fn advance(&mut self, root: &Path) {
        let now = Instant::now();
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        if ws.job.is_some() || ws.loading.is_some() {
            return;
        }
        if ws.deadline.is_some_and(|d| d > now) {
            return;
        }
        ws.deadline = None;
        grant_acquires(ws);
        if ws.needs_reload {
            ws.needs_reload = false;
            self.start_load(root);
            return;
        }
        if ws.dirty && ws.error.is_none() && ws.key.is_some() && ws.leases.is_empty() {
            self.start_job(root);
        }
    }

    fn start_load(&mut self, root: &Path) {
        let load_id = self.next_id;
        self.next_id += 1;
        let ws = self.workspaces.get_mut(root).expect("caller checked");
        ws.loading = Some(load_id);
        let env = ws.env.clone();
        let root = root.to_path_buf();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let loaded = load::load(&root, &env).await;
            let _ = tx.send(Event::Loaded {
                root,
                load: load_id,
                loaded,
            });
        });
    }

    fn loaded(&mut self, root: &Path, load_id: u64, loaded: Loaded) {
        let targets_dir = self.config.paths.targets_dir();
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        if ws.loading != Some(load_id) {
            return;
        }
        ws.loading = None;
        let mut errors = Vec::new();
        match loaded.toolchain {
            Ok(toolchain) => {
                let key = BuildKey::new(&targets_dir, root, &toolchain, &ws.env);
                if let Err(e) = prepare_target_dir(&key) {
                    errors.push(e);
                }
                if ws.key.as_ref() != Some(&key) {
                    tracing::info!(root = %root.display(), key = %key.info.hash, dir = %key.target_dir.display(), "build key");
                }
                ws.toolchain = Some(toolchain);
                ws.key = Some(key);
            }
            Err(e) => errors.push(e),
        }
        match loaded.metadata {
            Ok(metadata) => {
                let target = metadata.target_directory.clone().into_std_path_buf();
                if let Some(watcher) = &ws.watcher {
                    watcher.set_ignored(vec![target]);
                }
                ws.metadata = Some(metadata);
            }
            Err(e) => errors.push(e),
        }
        ws.error = (!errors.is_empty()).then(|| errors.join("\n"));
        if let Some(e) = &ws.error {
            tracing::warn!(root = %root.display(), "cannot build: {e}");
        } else {
            ws.dirty = true;
        }
        let status = ws.status();
        for (id, reply) in std::mem::take(&mut ws.waiting_register) {
            let _ = reply.try_send(ServerMessage::Registered {
                id,
                workspace: Box::new(status.clone()),
            });
        }
    }

    fn start_job(&mut self, root: &Path) {
        let job_id = self.next_id;
        self.next_id += 1;
        let ws = self.workspaces.get_mut(root).expect("caller checked");
        let key = ws.key.as_ref().expect("caller checked");
        // Validated when the settings were registered.
        let stages = match ws.settings.stages.as_deref().map(Stage::parse_all) {
            Some(Ok(stages)) => stages,
            _ => Stage::DEFAULT.to_vec(),
        };
        let spec = JobSpec {
            root: root.to_path_buf(),
            stages: stages.clone(),
            env: Arc::new(ws.env.clone()),
            target_dir: key.target_dir.clone(),
            jobs: ws.settings.jobs,
        };
        let cancel = CancellationToken::new();
        let started_at = std::time::SystemTime::now();
        let tx = self.tx.clone();
        let job_root = root.to_path_buf();
        let token = cancel.clone();
        let handle = tokio::spawn(async move {
            job::run(spec, token, |event| {
                let _ = tx.send(Event::Job {
                    root: job_root.clone(),
                    job: job_id,
                    event,
                });
            })
            .await;
        });
        let files = std::mem::take(&mut ws.pending_files);
        tracing::info!(root = %root.display(), job = job_id, changed = files.len(), "job started");
        ws.dirty = false;
        let stage_names: Vec<String> = stages.iter().map(|s| s.name().to_owned()).collect();
        let expected_units = ws.last_units;
        ws.job = Some(RunningJob {
            id: job_id,
            started_at,
            stages: stage_names.clone(),
            cancel,
            handle,
            units_done: 0,
            units_compiled: 0,
        });
        self.announce(root);
        self.broadcast(
            root,
            EventKind::JobStarted {
                job: job_id,
                stages: stage_names,
                expected_units,
            },
        );
    }

    fn job_event(&mut self, root: &Path, job_id: u64, event: JobEvent) {
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        let Some(job) = ws.job.as_mut().filter(|j| j.id == job_id) else {
            return;
        };
        let kind = match event {
            JobEvent::StageStarted { stage } => EventKind::StageStarted {
                job: job_id,
                stage: stage.name().to_owned(),
            },
            JobEvent::Unit {
                stage,
                package,
                target,
                fresh,
            } => {
                job.units_done += 1;
                if !fresh {
                    job.units_compiled += 1;
                }
                EventKind::UnitFinished {
                    job: job_id,
                    stage: stage.name().to_owned(),
                    package,
                    target,
                    fresh,
                    done: job.units_done,
                }
            }
            JobEvent::Diagnostic(diagnostic) => {
                if !ws.diagnostics.add(job_id, &diagnostic) {
                    return;
                }
                EventKind::Diagnostic {
                    job: job_id,
                    diagnostic,
                }
            }
            JobEvent::Finished(outcome) => {
                let job = ws.job.take().expect("matched above");
                let cleared = match outcome.result {
                    JobResult::Cancelled => Vec::new(),
                    _ => ws.diagnostics.finish(job_id),
                };
                let summary = JobSummary {
                    id: job_id,
                    stages: job.stages,
                    result: outcome.result,
                    duration_ms: outcome.duration.as_millis() as u64,
                    units_compiled: job.units_compiled,
                    errors: ws.diagnostics.count(Severity::Error),
                    warnings: ws.diagnostics.count(Severity::Warning),
                    failure: outcome.failure,
                };
                tracing::info!(
                    root = %root.display(),
                    job = job_id,
                    result = ?summary.result,
                    ms = summary.duration_ms,
                    compiled = summary.units_compiled,
                    "job finished"
                );
                if summary.result != JobResult::Cancelled {
                    ws.last_units = Some(job.units_done);
                }
                ws.last_job = Some(summary.clone());
                if let Some(key) = &ws.key {
                    measure_size(self.tx.clone(), root, key.target_dir.clone());
                }
                EventKind::JobFinished {
                    job: job_id,
                    summary,
                    cleared,
                }
            }
        };
        self.broadcast(root, kind);
    }

    /// Tells subscribers when a workspace's state changed.
    fn announce(&mut self, root: &Path) {
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        let state = ws.state();
        if ws.announced == Some(state) {
            return;
        }
        ws.announced = Some(state);
        let error = ws.error.clone();
        self.broadcast(root, EventKind::State { state, error });
    }

    fn broadcast(&self, root: &Path, kind: EventKind) {
        let message = ServerMessage::Event {
            event: WorkspaceEvent {
                root: root.to_path_buf(),
                kind,
            },
        };
        // A subscriber that does not read must not stall the daemon: when its queue is full
        // it loses its subscription (and learns of it by the gap in events).
        self.subscribers.retain(|conn, sub| {
            if sub.root.as_deref().is_some_and(|r| r != root) {
                return true;
            }
            match sub.tx.try_send(message.clone()) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(conn, "dropping a subscriber: {e}");
                    false
                }
            }
        });
    }

    async fn shutdown(mut self) {
        let mut handles = Vec::new();
        for ws in self.workspaces.values_mut() {
            ws.watcher = None;
            if let Some(job) = ws.job.take() {
                job.cancel.cancel();
                handles.push(job.handle);
            }
        }
        let all = futures_util::future::join_all(handles);
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!("jobs did not stop within {SHUTDOWN_GRACE:?}");
        }
    }
}

/// Whether `path` exists and was last written before `time`.
fn written_before(path: &Path, time: std::time::SystemTime) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|modified| modified < time)
}

/// Cancels the running job: it builds files that just changed, so its results are stale.
fn cancel_stale(ws: &Workspace) {
    if let Some(job) = &ws.job {
        tracing::debug!(job = job.id, "cancelling a stale job");
        job.cancel.cancel();
    }
}

/// Measures the isolated dir in the background; the size arrives as an event.
fn measure_size(tx: mpsc::UnboundedSender<Event>, root: &Path, dir: PathBuf) {
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let size = walkdir::WalkDir::new(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        let _ = tx.send(Event::Size { root, size });
    });
}

/// Grants waiting user commands the isolated dir when no job of the daemon's runs on it.
fn grant_acquires(ws: &mut Workspace) {
    if ws.job.is_some() || ws.loading.is_some() {
        return;
    }
    let Some(key) = &ws.key else {
        let message = ws
            .error
            .clone()
            .unwrap_or_else(|| "the workspace has no build key yet".to_owned());
        for waiting in ws.waiting_acquire.drain(..) {
            let _ = waiting
                .reply
                .try_send(error(waiting.id, ErrorCode::Internal, &message));
        }
        return;
    };
    let (env_set, env_remove) = key::cargo_env(&key.target_dir);
    for waiting in ws.waiting_acquire.drain(..) {
        ws.leases.insert(waiting.conn);
        let _ = waiting.reply.try_send(ServerMessage::Acquired {
            id: waiting.id,
            env_set: env_set.clone(),
            env_remove: env_remove.clone(),
            waited_ms: waiting.since.elapsed().as_millis() as u64,
        });
    }
}

/// Files whose change can change the workspace's metadata or toolchain.
fn is_manifest(root: &Path, path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let in_cargo_dir = path
        .parent()
        .is_some_and(|p| p.file_name().is_some_and(|n| n == ".cargo"));
    name == "Cargo.toml"
        || name == "Cargo.lock"
        || (in_cargo_dir && (name == "config" || name == "config.toml"))
        || (path.parent() == Some(root) && name.starts_with("rust-toolchain"))
}

fn prepare_target_dir(key: &BuildKey) -> Result<(), String> {
    ensure_private_dir(&key.target_dir).map_err(|e| e.to_string())?;
    let info = serde_json::to_string_pretty(&key.info).unwrap_or_default();
    std::fs::write(key.target_dir.join("buildd-key.json"), info).map_err(|e| {
        format!(
            "failed to write into the isolated target dir {}: {e}",
            key.target_dir.display()
        )
    })
}

fn error(id: u64, code: ErrorCode, message: &str) -> ServerMessage {
    ServerMessage::Error {
        id: Some(id),
        code,
        message: message.to_owned(),
    }
}

enum DispatchError {
    NotRegistered(PathBuf),
}

impl DispatchError {
    fn reply(self, id: u64) -> ServerMessage {
        match self {
            DispatchError::NotRegistered(path) => error(
                id,
                ErrorCode::NotRegistered,
                &format!(
                    "{} is not in a workspace buildd watches: run `buildd watch` or `buildd cargo` there first",
                    path.display()
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_recognised() {
        let root = Path::new("/w");
        assert!(is_manifest(root, Path::new("/w/Cargo.toml")));
        assert!(is_manifest(root, Path::new("/w/core/Cargo.toml")));
        assert!(is_manifest(root, Path::new("/w/Cargo.lock")));
        assert!(is_manifest(root, Path::new("/w/.cargo/config.toml")));
        assert!(is_manifest(root, Path::new("/w/rust-toolchain.toml")));
        assert!(!is_manifest(root, Path::new("/w/src/lib.rs")));
        assert!(!is_manifest(root, Path::new("/w/src/config.toml")));
    }
}
