//! The dispatcher: one loop that owns the daemon's state and takes every input as an
//! [`Event`].
//!
//! Connections, watchers, loads and jobs are workers: they report facts into one channel,
//! and only this loop changes a [`Workspace`] or starts and cancels work. Debounce deadlines
//! and the idle timeout are timers of the same loop. Replies go back on each connection's
//! own channel; events go to subscribers through the shared registry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod cache_ops;
mod lock_check;

pub(crate) use cache_ops::ToolsEvent;

use crate::build::diagnostics;
use crate::build::job::{self, Gate, JobEvent, JobSpec, Stage};
use crate::build::orphans::Orphans;
use crate::build::plan;
use crate::dispatch::reports;
use crate::dispatch::schedule::{Owed, Step};
use crate::dispatch::workspace::{ConnId, PendingAcquire, Reply, RunningJob, Workspace};
use crate::home::config::DaemonConfig;
use crate::home::paths::ensure_private_dir;
use crate::project::depinfo::{self, DepInfo};
use crate::project::key::{self, BuildKey};
use crate::project::load::{self, Loaded};
use crate::project::predict::Graph;
use crate::project::settings;
use crate::watch::{self, WatchEvent, WatchHandle};
use crate::wire::protocol::{
    DaemonInfo, ErrorCode, EventKind, JobResult, JobSummary, LastChange, PROTOCOL_VERSION, Report,
    Request, ServerMessage, Severity, StatusReport, WatcherKind, WorkspaceEvent, WorkspaceSettings,
    binary_version,
};
use crate::wire::roots;

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
    /// The isolated dir was read: dep-info, and the size when measured.
    Scanned {
        root: PathBuf,
        depinfo: DepInfo,
        size: Option<u64>,
    },
    /// Seeding, after-job work of the tools, cache requests: see `cache_ops.rs`.
    Tools(ToolsEvent),
    /// The check of cargo's locks before a job: the lock a cargo outside buildd holds.
    LocksChecked {
        root: PathBuf,
        held: Option<PathBuf>,
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
    orphans: Arc<Orphans>,
    /// The linker wrapper, sccache, the cache's totals.
    tools: crate::dispatch::tools::Tools,
}

impl Dispatcher {
    pub(crate) async fn new(
        config: DaemonConfig,
        tx: mpsc::UnboundedSender<Event>,
        subscribers: Subscribers,
        orphans: Arc<Orphans>,
    ) -> Dispatcher {
        let tools = crate::dispatch::tools::Tools::new(&config).await;
        Dispatcher {
            tools,
            config,
            started: Instant::now(),
            tx,
            subscribers,
            workspaces: BTreeMap::new(),
            clients: 0,
            next_id: 1,
            last_busy: Instant::now(),
            orphans,
        }
    }

    /// Runs until a client asks for shutdown, a signal arrives, or the daemon is idle for
    /// the idle timeout; then cancels every job and waits for their processes.
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        self.start_tools();
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
                .any(|w| w.job.is_some() || w.loading.is_some() || w.schedule.owes_job())
    }

    fn next_deadline(&self) -> Instant {
        let idle = self.last_busy + self.config.idle_timeout;
        self.workspaces
            .values()
            .filter_map(|w| w.schedule.deadline())
            .min()
            .map_or(idle, |d| d.min(idle))
    }

    /// Handles one event; returns true when the daemon must stop.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Connected => self.clients += 1,
            Event::Disconnected { conn } => {
                self.clients = self.clients.saturating_sub(1);
                let roots: Vec<PathBuf> = self.workspaces.keys().cloned().collect();
                for root in roots {
                    let ws = self.workspaces.get_mut(&root).expect("listed");
                    ws.leases.remove(&conn);
                    ws.waiting_acquire.retain(|w| w.conn != conn);
                    self.update_gate(&root);
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
            Event::Scanned {
                root,
                depinfo,
                size,
            } => {
                if let Some(ws) = self.workspaces.get_mut(&root) {
                    ws.depinfo = depinfo;
                    if size.is_some() {
                        ws.target_dir_size = size;
                    }
                }
            }
            Event::Tools(event) => self.tools_event(event),
            Event::LocksChecked { root, held } => self.locks_checked(&root, held),
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
            Request::Acquire { root, args, holder } => match self.workspace_of(&root) {
                Ok(root) => {
                    let ws = self.workspaces.get_mut(&root).expect("found above");
                    ws.waiting_acquire.push(PendingAcquire {
                        conn,
                        id,
                        reply,
                        since: Instant::now(),
                        needed: plan::needed_stages(&args),
                        holder: lock_check::holder(holder),
                    });
                    self.update_gate(&root);
                    return false;
                }
                Err(e) => e.reply(id),
            },
            Request::Saved { paths } => {
                let mut by_root: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
                for path in paths {
                    if let Ok(root) = self.workspace_of(&path) {
                        by_root.entry(root).or_default().push(path);
                    }
                }
                for (root, paths) in by_root {
                    self.files_changed(&root, paths, true);
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
                    ws.schedule.rebuild();
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
                    ws.schedule.cancel();
                    if let Some(job) = &mut ws.job {
                        job.forget = true;
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
            Request::Report { root, report } => match self.workspace_of(&root) {
                Ok(root) => match self.report(&root, report) {
                    Ok(()) => ServerMessage::Ok { id },
                    Err(message) => error(id, ErrorCode::BadRequest, &message),
                },
                Err(e) => e.reply(id),
            },
            Request::CacheList | Request::CacheGc | Request::CacheClear { .. } => {
                self.cache_request(id, request, reply);
                return false;
            }
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
        roots::root_of(self.workspaces.keys(), path)
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
                log_path: crate::home::logging::current_log(&paths.log_dir()),
                cache_dir: paths.cache_dir.clone(),
                idle_timeout_secs: self.config.idle_timeout.as_secs(),
                clients: self.clients,
            },
            workspaces,
            cache: self.tools.totals.clone(),
            sccache: self.tools.sccache().map(|s| {
                s.status(
                    self.tools.sccache_stats.clone(),
                    self.tools.sccache_note.clone(),
                )
            }),
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
        if let Err(e) = settings::validate(&settings) {
            let _ = reply.try_send(error(id, ErrorCode::BadRequest, &format!("settings: {e}")));
            return;
        }
        if !self.workspaces.contains_key(&root) {
            tracing::info!(root = %root.display(), "registered");
            let mut ws = Workspace::new(root.clone(), env.clone());
            ws.watcher = self.start_watcher(&root);
            ws.schedule.reload();
            self.workspaces.insert(root.clone(), ws);
        }
        // A workspace whose directory went away and came back (or was registered again where
        // it is now) gets its watcher back and is loaded again.
        if self.workspaces[&root].watcher.is_none() && root.is_dir() {
            let watcher = self.start_watcher(&root);
            let ws = self.workspaces.get_mut(&root).expect("inserted above");
            ws.watcher = watcher;
            ws.schedule.reload();
            ws.error = None;
        }
        let ws = self.workspaces.get_mut(&root).expect("inserted above");
        if !env.is_empty() && key::build_env(&env) != key::build_env(&ws.env) {
            // Another toolchain or other flags: a new key, so load again.
            ws.schedule.reload_now();
        }
        if !env.is_empty() {
            ws.env = env;
        }
        if settings != WorkspaceSettings::default() {
            ws.settings = settings;
        }
        if ws.key.is_some() && !ws.schedule.owes_reload() && ws.loading.is_none() {
            let _ = reply.try_send(ServerMessage::Registered {
                id,
                workspace: Box::new(ws.status()),
            });
        } else {
            ws.waiting_register.push((id, reply));
        }
    }

    fn watch_event(&mut self, root: &Path, event: WatchEvent) {
        // A rescan rebuilds the watch; the new watcher gets the roots and ignored dirs from
        // the load that the rescan starts.
        let new_watcher = matches!(event, WatchEvent::Rescan)
            .then(|| self.start_watcher(root))
            .flatten();
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        match event {
            WatchEvent::Changed(paths) => self.files_changed(root, paths, false),
            WatchEvent::Rescan => {
                tracing::warn!(root = %root.display(), "the watcher overflowed; rebuilding everything");
                ws.watcher_status.rescans += 1;
                ws.watcher_status.note = Some(format!(
                    "the watcher overflowed {} time(s) and may have missed changes; each time \
                     buildd rebuilt the watch and everything",
                    ws.watcher_status.rescans
                ));
                ws.schedule.rescan(Instant::now());
                cancel_stale(ws);
                ws.watcher = new_watcher;
            }
            WatchEvent::RootRemoved => {
                ws.error = Some(format!(
                    "the workspace directory {} was removed or moved: register it again \
                     where it is now",
                    root.display()
                ));
                ws.watcher = None;
                ws.schedule.stop();
                if let Some(job) = &mut ws.job {
                    job.forget = true;
                    job.cancel.cancel();
                }
            }
            WatchEvent::Degraded(note) => {
                tracing::warn!(root = %root.display(), "{note}");
                ws.watcher_status.kind = WatcherKind::Poll;
                ws.watcher_status.note = Some(note);
            }
            WatchEvent::Error(e) => {
                // An error may mean lost events: build everything, as for an overflow.
                tracing::warn!(root = %root.display(), "watcher error: {e}");
                ws.watcher_status.note = Some(format!("watcher error: {e}"));
                ws.schedule
                    .events_lost(Instant::now() + self.config.debounce);
            }
        }
    }

    /// Files changed: the watcher saw them (debounced) or an editor saved them (at once).
    fn files_changed(&mut self, root: &Path, paths: Vec<PathBuf>, saved: bool) {
        let debounce = self.config.debounce;
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        // The watcher reports a write a little after it happened; a running job that started
        // after the write (an editor's save starts one at once) reads the new content, and is
        // not stale because of it.
        if !saved
            && let Some(job) = &ws.job
            && paths.iter().all(|p| written_before(p, job.started_at))
        {
            tracing::debug!(
                job = job.id,
                ?paths,
                "change already covered by the running job"
            );
            return;
        }
        let files: BTreeSet<PathBuf> = paths.into_iter().collect();
        let manifest = files.iter().any(|p| is_manifest(root, p));
        let prediction = ws.graph.as_ref().map(|g| g.predict(&files, &ws.depinfo));
        let reload = manifest || prediction.as_ref().is_some_and(|p| p.reload);
        if reload {
            ws.schedule.manifest_changed();
        } else if let Some(prediction) = &prediction
            && prediction.affected.is_empty()
        {
            tracing::debug!(root = %root.display(), ?files, "no target reads these files");
            ws.last_change = Some(LastChange {
                files: files.into_iter().collect(),
                predicted: Vec::new(),
                full: false,
            });
            return;
        }
        if saved {
            ws.focus = files
                .iter()
                .find_map(|f| ws.graph.as_ref()?.package_of(f).map(str::to_owned));
        }
        let tests_only = !reload && prediction.is_some_and(|p| p.tests_only);
        // Cargo writes Cargo.lock itself at the start of a job when it is missing or
        // outdated; that must not cancel the job that wrote it.
        let only_lock = files
            .iter()
            .all(|p| p.file_name().is_some_and(|n| n == "Cargo.lock"));
        let debounce = ws.resolved(debounce).debounce;
        ws.schedule.changed(files, saved, Instant::now(), debounce);
        if let Some(job) = &ws.job {
            // A change only tests read does not make a check or build stage stale.
            let covered = tests_only && matches!(job.stage, Some(Stage::Check | Stage::Build));
            if !only_lock && !covered {
                cancel_stale(ws);
            }
        }
    }

    fn start_watcher(&self, root: &Path) -> Option<WatchHandle> {
        let tx = self.tx.clone();
        let watch_root = root.to_path_buf();
        match watch::start(root.to_path_buf(), move |event| {
            let _ = tx.send(Event::Watch {
                root: watch_root.clone(),
                event,
            });
        }) {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }

    /// Starts whatever a workspace is owed, once its debounce is over and nothing runs.
    fn advance(&mut self, root: &Path) {
        let now = Instant::now();
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        if ws.job.is_some() || ws.loading.is_some() || ws.checking_locks {
            return;
        }
        let step = ws.schedule.step(now);
        if step == Step::Wait {
            return;
        }
        grant_acquires(ws);
        match step {
            Step::Load => self.start_load(root),
            Step::Build if ws.error.is_none() && ws.key.is_some() && ws.leases.is_empty() => {
                if std::mem::take(&mut ws.locks_free) {
                    self.start_job(root)
                } else {
                    self.check_locks(root)
                }
            }
            _ => {}
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
        let mut new_dir = false;
        match loaded.toolchain {
            Ok(toolchain) => {
                let file_settings = loaded.settings.clone().unwrap_or_default();
                let linker = crate::dispatch::tools::linker_setting(&settings::over(
                    &ws.settings,
                    &file_settings,
                ));
                let key = BuildKey::new(&targets_dir, root, &toolchain, &ws.env, &linker);
                // A new dir is seeded from the most similar one before any job runs there; an
                // existing one is checked and its records written, off the loop too.
                new_dir = !key.target_dir.exists();
                if ws.key.as_ref() != Some(&key) {
                    tracing::info!(root = %root.display(), key = %key.info.hash, dir = %key.target_dir.display(), "build key");
                    // A seed describes the dir it made: another key's dir has none to show.
                    ws.tools.forget_seed();
                }
                ws.toolchain = Some(toolchain);
                ws.key = Some(key);
            }
            Err(e) => errors.push(e),
        }
        match loaded.metadata {
            Ok(metadata) => {
                let graph = Graph::new(&metadata);
                if let Some(watcher) = &ws.watcher {
                    watcher
                        .set_ignored(vec![metadata.target_directory.clone().into_std_path_buf()]);
                    watcher.add_roots(graph.outside_dirs());
                }
                ws.graph = Some(graph);
            }
            Err(e) => errors.push(e),
        }
        match loaded.settings {
            Ok(settings) => ws.file_settings = settings,
            Err(e) => errors.push(e),
        }
        // One cause (a FIFO where Cargo.toml should be) can fail the toolchain and the
        // metadata alike: say it once.
        errors.dedup();
        ws.error = (!errors.is_empty()).then(|| errors.join("\n"));
        if let Some(e) = &ws.error {
            tracing::warn!(root = %root.display(), "cannot build: {e}");
        } else {
            ws.schedule.loaded();
        }
        // The isolated dir may hold dep-info from an earlier daemon: read it now, so that
        // the first edits are predicted too.
        if let (Some(key), Some(graph)) = (&ws.key, &ws.graph) {
            scan_target_dir(self.tx.clone(), root, &key.target_dir, graph, false);
        }
        let has_key = ws.key.is_some();
        if has_key {
            self.configure_tools(root);
            if new_dir {
                self.start_seed(root);
            } else {
                self.start_prepare(root);
            }
        }
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        let status = ws.status();
        for (id, reply) in std::mem::take(&mut ws.waiting_register) {
            let _ = reply.try_send(ServerMessage::Registered {
                id,
                workspace: Box::new(status.clone()),
            });
        }
    }

    fn start_job(&mut self, root: &Path) {
        let debounce = self.config.debounce;
        let ws = self.workspaces.get_mut(root).expect("caller checked");
        let resolved = ws.resolved(debounce);
        let Owed { full, files } = ws.schedule.take(ws.graph.is_none());
        let members = ws.graph.as_ref().map(Graph::members).unwrap_or_default();
        let predicted = match &ws.graph {
            Some(graph) if !full => Some(graph.predict(&files, &ws.depinfo).affected),
            _ => None,
        };
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
        let focus = ws.focus.take();
        let focus_alone = match (&ws.graph, &focus, &predicted) {
            (Some(graph), Some(focus), Some(predicted)) => {
                predicted.is_subset(&graph.affected_by(focus))
            }
            _ => true,
        };
        let job_plan = plan::plan(
            &resolved.stages,
            predicted.as_ref(),
            focus.as_deref(),
            focus_alone,
        );
        let stage_names = resolved.stages.clone();
        let key = ws.key.as_ref().expect("caller checked");
        let gate: Gate = Arc::new(Mutex::new(None));
        let sccache = self
            .tools
            .sccache()
            .filter(|_| ws.tools.sccache.as_ref().is_some_and(|s| s.enabled));
        let spec = JobSpec {
            root: root.to_path_buf(),
            stages: job_plan.stages,
            env: Arc::new(ws.env.clone()),
            cargo_env: Arc::new(key::cargo_env(&key.target_dir, &ws.tools.env)),
            jobs: resolved.jobs,
            nice: resolved.nice,
            gate: gate.clone(),
            timeout: resolved.job_timeout,
            orphans: self.orphans.clone(),
        };
        let job_id = self.next_id;
        self.next_id += 1;
        let cancel = CancellationToken::new();
        let started_at = std::time::SystemTime::now();
        let tx = self.tx.clone();
        let job_root = root.to_path_buf();
        let token = cancel.clone();
        self.job_starting(root);
        let handle = tokio::spawn(async move {
            if let Some(sccache) = sccache
                && let Err(e) = sccache.ensure_running().await
            {
                tracing::warn!("{e}");
            }
            job::run(spec, token, |event| {
                let _ = tx.send(Event::Job {
                    root: job_root.clone(),
                    job: job_id,
                    event,
                });
            })
            .await;
        });
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

    fn job_event(&mut self, root: &Path, job_id: u64, event: JobEvent) {
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        let Some(job) = ws.job.as_mut().filter(|j| j.id == job_id) else {
            return;
        };
        let kind = match event {
            JobEvent::StageStarted { stage } => {
                job.stage = Some(stage);
                EventKind::StageStarted { job: job_id, stage }
            }
            JobEvent::Unit {
                stage,
                package,
                target,
                fresh,
            } => {
                job.units_done += 1;
                if !fresh {
                    job.units_compiled += 1;
                    job.rebuilt.insert(package.clone());
                }
                EventKind::UnitFinished {
                    job: job_id,
                    stage,
                    package,
                    target,
                    fresh,
                    done: job.units_done,
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
            JobEvent::Finished(outcome) => {
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
                    let rebuilt: BTreeSet<String> =
                        job.rebuilt.intersection(&members).cloned().collect();
                    ws.stats.add(predicted, &rebuilt);
                }
                let mut failure = outcome.failure;
                if result == JobResult::Failed
                    && let Some(key) = &ws.key
                    && let Some(full) =
                        disk_full(&key.target_dir, failure.as_deref(), &ws.diagnostics)
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
        };
        self.broadcast(root, kind);
    }

    /// Takes a watch loop's report: test results (located failures become diagnostics of the
    /// job that was tested) and what happened to the program it runs. A report that names
    /// another job or places outside the workspace is refused whole.
    fn report(&mut self, root: &Path, report: Report) -> Result<(), String> {
        let Some(ws) = self.workspaces.get_mut(root) else {
            return Ok(());
        };
        reports::check(ws, root, &report)?;
        let mut events = Vec::new();
        match report {
            Report::Tests(tests) => {
                for failing in &tests.failing {
                    let Some(diagnostic) = diagnostics::test_failure(root, failing) else {
                        continue;
                    };
                    if ws.diagnostics.add(tests.job, &diagnostic) {
                        events.push(EventKind::Diagnostic {
                            job: tests.job,
                            diagnostic: Box::new(diagnostic),
                        });
                    }
                }
                ws.last_tests = Some(tests.clone());
                events.push(EventKind::Tests { report: tests });
            }
            Report::Process(process) => events.push(EventKind::Process { report: process }),
        }
        for event in events {
            self.broadcast(root, event);
        }
        Ok(())
    }

    /// Tells a running job which stages the user commands waiting for the dir need, and
    /// cancels it at once when the stage it runs is not among them.
    fn update_gate(&mut self, root: &Path) {
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
            *gate = if everything { None } else { needed.clone() };
        }
        if let (Some(needed), Some(stage)) = (&needed, job.stage)
            && !needed.contains(&stage)
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
        if let Some(sccache) = self.tools.sccache() {
            sccache.stop().await;
        }
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

/// Space left below which a failed job is blamed on a full disk, even when no message says
/// "No space left on device" (a linker reports only that it failed).
const DISK_NEARLY_FULL: u64 = 16 * 1024 * 1024;

/// Explains a failed job by a full disk, when that is what happened.
fn disk_full(
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

/// Reads the isolated dir in the background: its dep-info, and (after a job) its size. The
/// results arrive as events.
fn scan_target_dir(
    tx: mpsc::UnboundedSender<Event>,
    root: &Path,
    dir: &Path,
    graph: &Graph,
    measure: bool,
) {
    let root = root.to_path_buf();
    let dir = dir.to_path_buf();
    let crate_names = graph.crate_names();
    let packages = graph.package_dirs();
    tokio::task::spawn_blocking(move || {
        let depinfo = depinfo::scan(&dir, &root, &crate_names, &packages);
        let size = measure.then(|| {
            walkdir::WalkDir::new(&dir)
                .into_iter()
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        });
        let _ = tx.send(Event::Scanned {
            root,
            depinfo,
            size,
        });
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
    if ws.waiting_acquire.is_empty() {
        return;
    }
    let env = key::cargo_env(&key.target_dir, &ws.tools.env);
    cache_ops::touch_used_off_loop(&key.target_dir);
    for waiting in ws.waiting_acquire.drain(..) {
        ws.leases.insert(waiting.conn, waiting.holder);
        // What the lock check found may change while the lease runs.
        ws.locks_free = false;
        let _ = waiting.reply.try_send(ServerMessage::Acquired {
            id: waiting.id,
            env_set: env.set.clone(),
            env_remove: env.remove.clone(),
            args: env.args.clone(),
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
        // Settings such as the linker change the key: load again.
        || (path.parent() == Some(root) && name == settings::FILE_NAME)
}

fn prepare_target_dir(key: &BuildKey, root: &Path) -> Result<(), String> {
    ensure_private_dir(&key.target_dir).map_err(|e| e.to_string())?;
    crate::cache::dirs::write_record(&key.target_dir, root);
    let info = serde_json::to_string_pretty(&key.info).unwrap_or_default();
    std::fs::write(key.target_dir.join(crate::cache::layout::KEY_FILE), info).map_err(|e| {
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
        assert!(is_manifest(root, Path::new("/w/buildd.toml")));
        assert!(!is_manifest(root, Path::new("/w/src/lib.rs")));
        assert!(!is_manifest(root, Path::new("/w/src/config.toml")));
    }
}
