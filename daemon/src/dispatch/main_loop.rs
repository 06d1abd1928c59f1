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
use std::time::{Duration, Instant, SystemTime};

use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod cache_ops;
mod changes;
mod jobs;
mod learning;
mod loads;
mod lock_check;
mod requests;

use requests::grant_acquires;

pub(crate) use cache_ops::ToolsEvent;

use crate::build::diagnostics;
use crate::build::job::{self, Gate, JobEvent, JobSpec, Stage};
use crate::build::jobs::JobDef;
use crate::build::orphans::Orphans;
use crate::build::plan;
use crate::dispatch::reports;
use crate::dispatch::schedule::{Owed, Step};
use crate::dispatch::workspace::{ConnId, PendingAcquire, Reply, RunningJob, Workspace};
use crate::home::config::{DaemonConfig, WatcherChoice};
use crate::home::paths::{PathsError, ensure_private_dir};
use crate::project::depinfo::{self, DepInfo};
use crate::project::key::{self, BuildKey};
use crate::project::load::{self, Loaded};
use crate::project::predict::Graph;
use crate::project::root_cache::RootCache;
use crate::project::settings;
use crate::watch::{self, WatchEvent, WatchHandle};
use crate::wire::protocol::{
    DaemonInfo, ErrorCode, EventKind, JobOrigin, JobResult, JobSummary, LastChange,
    PROTOCOL_VERSION, Report, Request, ServerMessage, Severity, StatusReport, WatcherKind,
    WorkspaceEvent, WorkspaceSettings, binary_version,
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
    /// The roots that registers found, which the connections share; forgotten for a
    /// workspace whose load fails.
    roots: Arc<RootCache>,
    /// The linker wrapper, sccache, the cache's totals.
    tools: crate::dispatch::tools::Tools,
}

impl Dispatcher {
    pub(crate) async fn new(
        config: DaemonConfig,
        tx: mpsc::UnboundedSender<Event>,
        subscribers: Subscribers,
        orphans: Arc<Orphans>,
        roots: Arc<RootCache>,
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
            roots,
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
        // A workspace that runs a job or a load acts on its deadlines only when that ends,
        // which is an event: a deadline passed meanwhile (the quiet wait of a held-back job
        // during a long job) would otherwise wake the loop at once, again and again.
        self.workspaces
            .values()
            .filter(|w| w.job.is_none() && w.loading.is_none() && !w.checking_locks)
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
                    ws.programs.remove(&conn);
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
                    self.start_job(root, false)
                } else {
                    self.check_locks(root)
                }
            }
            Step::Quiet => {
                let can_build = ws.error.is_none() && ws.key.is_some() && ws.leases.is_empty();
                if can_build && std::mem::take(&mut ws.locks_free) {
                    self.start_job(root, true)
                } else {
                    // Not quiet after all (a user's command holds the dir), or cargo's locks
                    // are to be checked first: wait again.
                    let quiet = ws.resolved(self.config.debounce).quiet;
                    let retry = if can_build {
                        Duration::from_millis(500)
                    } else {
                        quiet
                    };
                    ws.schedule.retry_quiet(now + retry, quiet);
                    if can_build {
                        self.check_locks(root);
                    }
                }
            }
            _ => {}
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
