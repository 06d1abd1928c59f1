//! The server's main loop: one task that owns all state and takes every input as an
//! [`Event`], in the manner of rust-analyzer's `main_loop`.
//!
//! Inputs are the editor's requests and notifications (forwarded by `server.rs`, which knows
//! nothing else) and the daemon connection's facts (from `daemon_link.rs`). The loop
//! registers folders, keeps the diagnostics store and the workspaces' states, answers
//! requests that need the daemon, and after each burst of inputs publishes what changed.
//! It never waits on the editor: progress goes through a task per job (`progress.rs`), and
//! notifications are queued on tower-lsp-server's channel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use buildd_daemon::client::ClientWriter;
use buildd_daemon::protocol::{
    ErrorCode, EventKind, FileDiagnostics, JobResult, Request, ServerMessage, WorkspaceEvent,
    WorkspaceSettings, WorkspaceStatus,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{
    CodeActionKind, CodeActionOrCommand, DiagnosticSeverity, MessageType, Range,
};

use crate::code_actions;
use crate::config::Options;
use crate::convert::{self, Context};
use crate::daemon_link::{self, LinkEvent};
use crate::diagnostics::{Generation, Item, Store};
use crate::discover::{self, Found};
use crate::documents::Documents;
use crate::ext::{DaemonLink, StateNotification};
use crate::position::Encoding;
use crate::progress::{JobProgress, Reporter};
use crate::state_feed::StateFeed;
use crate::uri;
use crate::workspaces::{self, ActiveJob, Folder, Folders, Workspace};

/// Inputs taken in before publishing, so a burst of diagnostics makes one publish per file.
const BATCH: usize = 256;

pub(crate) enum Event {
    Lsp(LspEvent),
    Link(LinkEvent),
    /// The walk of an editor folder for the workspaces under it ended.
    Discovered {
        folder: PathBuf,
        found: Found,
    },
}

impl From<LinkEvent> for Event {
    fn from(event: LinkEvent) -> Event {
        Event::Link(event)
    }
}

/// A reply the editor waits for.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, String>>;

/// What the editor asked for or told.
pub(crate) enum LspEvent {
    Initialize(Box<Setup>),
    Initialized,
    FoldersChanged {
        added: Vec<PathBuf>,
        removed: Vec<PathBuf>,
    },
    Saved(PathBuf),
    Status {
        path: Option<PathBuf>,
        reply: Reply<Value>,
    },
    Command {
        command: Command,
        path: Option<PathBuf>,
        reply: Reply<()>,
    },
    /// The user cancelled a job's progress (`window/workDoneProgress/cancel`).
    CancelProgress(String),
    /// An open document's full text (`didOpen`, `didChange`); `None` when a change did not
    /// carry it.
    DocumentText {
        path: PathBuf,
        text: Option<String>,
    },
    DocumentClosed(PathBuf),
    CodeActions {
        path: PathBuf,
        range: Range,
        only: Option<Vec<CodeActionKind>>,
        reply: Reply<Vec<CodeActionOrCommand>>,
    },
    /// `buildd.showRenderedDiagnostic`: show this text.
    ShowText(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Rebuild,
    Cancel,
}

/// What `initialize` settled: the folders, the options and what the client supports.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) folders: Vec<PathBuf>,
    pub(crate) options: Options,
    /// Warnings about the options, shown once the client is initialized.
    pub(crate) warnings: Vec<String>,
    pub(crate) encoding: Encoding,
    pub(crate) related_information: bool,
    pub(crate) work_done_progress: bool,
}

/// What a request sent to the daemon is waiting for.
enum Pending {
    Subscribe,
    Register {
        folder: PathBuf,
        with_settings: bool,
    },
    Snapshot {
        root: PathBuf,
    },
    Status {
        narrow: bool,
        reply: Reply<Value>,
    },
    Command {
        group: u64,
    },
    /// Nothing waits (saved files, a cancel from a progress).
    Nothing,
}

/// A command sent to several workspaces: answered when all replied.
struct CommandGroup {
    remaining: usize,
    error: Option<String>,
    reply: Reply<()>,
}

struct Link {
    epoch: u64,
    writer: ClientWriter,
}

pub(crate) struct MainLoop {
    client: Client,
    tx: mpsc::UnboundedSender<Event>,
    setup: Option<Setup>,
    initialized: bool,
    /// The environment registrations carry: the editor's, which `buildd lsp` inherited.
    env: BTreeMap<String, String>,
    link: Option<Link>,
    /// The current connection attempt; facts of older ones are dropped.
    epoch: u64,
    /// Connection attempts that failed in a row, for the backoff.
    failures: u32,
    /// Why there is no connection.
    link_error: Option<String>,
    pending: HashMap<u64, Pending>,
    groups: HashMap<u64, CommandGroup>,
    next_group: u64,
    /// The daemon refused the editor's settings: register without them.
    settings_refused: bool,
    folders: Folders,
    workspaces: BTreeMap<PathBuf, Workspace>,
    store: Store,
    documents: Documents,
    /// The `buildd/state`s sent, and those held back.
    states: StateFeed,
}

impl MainLoop {
    pub(crate) fn new(client: Client, tx: mpsc::UnboundedSender<Event>) -> MainLoop {
        MainLoop {
            client,
            tx,
            setup: None,
            initialized: false,
            env: buildd_daemon::client::current_env(),
            link: None,
            epoch: 0,
            failures: 0,
            link_error: None,
            pending: HashMap::new(),
            groups: HashMap::new(),
            next_group: 1,
            settings_refused: false,
            folders: Folders::new(),
            workspaces: BTreeMap::new(),
            store: Store::default(),
            documents: Documents::default(),
            states: StateFeed::default(),
        }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        loop {
            // A state held back by the throttle is sent when its time comes, even if nothing
            // else happens meanwhile (rustc compiling one big crate).
            let event = match self.states.deferred() {
                Some(at) => tokio::select! {
                    event = rx.recv() => event,
                    _ = tokio::time::sleep_until(at.into()) => {
                        self.states.clear_deferred();
                        self.flush().await;
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            let Some(event) = event else {
                break;
            };
            self.handle(event).await;
            for _ in 0..BATCH {
                match rx.try_recv() {
                    Ok(event) => self.handle(event).await,
                    Err(_) => break,
                }
            }
            self.flush().await;
        }
    }

    async fn handle(&mut self, event: Event) {
        match event {
            Event::Lsp(event) => self.lsp(event).await,
            Event::Link(event) => self.link_event(event).await,
            Event::Discovered { folder, found } => self.discovered(folder, found).await,
        }
    }

    /// Walks an editor folder for the workspaces under it, on a blocking thread.
    fn discover(&self, folder: PathBuf) {
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let found = discover::workspaces(&folder);
            let _ = tx.send(Event::Discovered { folder, found });
        });
    }

    async fn discovered(&mut self, folder: PathBuf, found: Found) {
        if !self.folders.contains_key(&folder) {
            // Removed while it was walked.
            return;
        }
        tracing::info!(folder = %folder.display(), found = ?found.dirs, "workspaces found under the folder");
        if found.left_out > 0 {
            let text = format!(
                "buildd: {} holds more than {} cargo workspaces; the first {} (by path) are \
                 built, {} are not. Open the others as folders of their own.",
                folder.display(),
                discover::CAP,
                discover::CAP,
                found.left_out
            );
            tracing::warn!("{text}");
            let client = self.client.clone();
            tokio::spawn(async move { client.show_message(MessageType::WARNING, text).await });
        }
        for dir in found.dirs {
            if self.folders.contains_key(&dir) {
                continue;
            }
            self.folders.insert(
                dir.clone(),
                Folder {
                    found_in: Some(folder.clone()),
                    ..Folder::default()
                },
            );
            if self.link.is_some() {
                self.register(dir).await;
            }
        }
    }

    async fn lsp(&mut self, event: LspEvent) {
        match event {
            LspEvent::Initialize(setup) => {
                for folder in &setup.folders {
                    self.folders.insert(folder.clone(), Folder::default());
                    if setup.options.discover_workspaces {
                        self.discover(folder.clone());
                    }
                }
                self.setup = Some(*setup);
            }
            LspEvent::Initialized => {
                if self.initialized {
                    return;
                }
                self.initialized = true;
                let warnings = self
                    .setup
                    .as_ref()
                    .map(|s| s.warnings.clone())
                    .unwrap_or_default();
                for warning in warnings {
                    tracing::warn!("{warning}");
                    self.client
                        .show_message(MessageType::WARNING, warning)
                        .await;
                }
                if self.folders.is_empty() {
                    tracing::info!("the editor opened no folder: nothing to register yet");
                }
                self.connect(Duration::ZERO);
            }
            LspEvent::FoldersChanged { added, removed } => {
                for folder in removed {
                    self.folders.remove(&folder);
                    self.states.forget(&folder);
                    let found: Vec<PathBuf> = self
                        .folders
                        .iter()
                        .filter(|(_, f)| f.found_in.as_ref() == Some(&folder))
                        .map(|(dir, _)| dir.clone())
                        .collect();
                    for dir in found {
                        self.folders.remove(&dir);
                        self.states.forget(&dir);
                    }
                }
                self.drop_unused_workspaces();
                for folder in added {
                    if self.folders.contains_key(&folder) {
                        continue;
                    }
                    self.folders.insert(folder.clone(), Folder::default());
                    if self
                        .setup
                        .as_ref()
                        .is_none_or(|s| s.options.discover_workspaces)
                    {
                        self.discover(folder.clone());
                    }
                    if self.link.is_some() {
                        self.register(folder).await;
                    }
                }
            }
            LspEvent::Saved(path) => {
                let ours = workspaces::root_of(self.workspaces.keys(), &path).is_some()
                    || workspaces::root_of(self.folders.keys(), &path).is_some();
                if ours && self.link.is_some() {
                    self.send(Request::Saved { paths: vec![path] }, Pending::Nothing)
                        .await;
                } else {
                    tracing::debug!(path = %path.display(), "saved outside the workspaces (or no daemon); ignored");
                }
            }
            LspEvent::Status { path, reply } => {
                let narrow = path.is_none();
                self.send(
                    Request::Status { root: path },
                    Pending::Status { narrow, reply },
                )
                .await;
            }
            LspEvent::Command {
                command,
                path,
                reply,
            } => self.command(command, path, reply).await,
            LspEvent::CancelProgress(token) => {
                let root = self.workspaces.values().find_map(|ws| {
                    let reporter = ws.job.as_ref()?.reporter.as_ref()?;
                    (reporter.token() == token).then(|| ws.root.clone())
                });
                if let Some(root) = root {
                    tracing::info!(root = %root.display(), "the user cancelled the job");
                    self.send(Request::Cancel { root }, Pending::Nothing).await;
                }
            }
            LspEvent::DocumentText { path, text } => self.documents.set(path, text),
            LspEvent::DocumentClosed(path) => self.documents.close(&path),
            LspEvent::CodeActions {
                path,
                range,
                only,
                reply,
            } => {
                let documents = &self.documents;
                let mut text_of = |uri: &tower_lsp_server::ls_types::Uri| {
                    documents.text(&uri::to_path(uri).ok()?)
                };
                let actions = code_actions::actions(
                    self.store.items(&path),
                    range,
                    only.as_deref(),
                    &mut text_of,
                );
                let _ = reply.send(Ok(actions));
            }
            LspEvent::ShowText(text) => {
                // Queued on tower-lsp-server's channel, like every notification: the loop
                // does not wait on the editor.
                let client = self.client.clone();
                tokio::spawn(async move { client.show_message(MessageType::INFO, text).await });
            }
        }
    }

    fn connect(&mut self, delay: Duration) {
        self.epoch += 1;
        let no_start = self.setup.as_ref().is_some_and(|s| s.options.no_start);
        daemon_link::connect(self.epoch, delay, no_start, self.tx.clone());
    }

    /// Connects again after a failure or a loss, sooner at first and then every few seconds.
    fn reconnect(&mut self) {
        let delay = daemon_link::backoff(self.failures);
        self.failures = self.failures.saturating_add(1);
        self.connect(delay);
    }

    async fn link_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Connected { epoch, writer, pid } => {
                if epoch != self.epoch {
                    return;
                }
                if self.failures > 0 {
                    tracing::info!(pid, "reconnected to the buildd daemon; registering again");
                }
                self.link = Some(Link { epoch, writer });
                self.failures = 0;
                // What is known of the workspaces is from the old daemon until they are
                // registered again.
                for ws in self.workspaces.values_mut() {
                    ws.ready = false;
                }
                self.link_error = None;
                self.send(Request::Subscribe { root: None }, Pending::Subscribe)
                    .await;
                let folders: Vec<PathBuf> = self.folders.keys().cloned().collect();
                for folder in folders {
                    self.register(folder).await;
                }
            }
            LinkEvent::Failed { epoch, error } => {
                if epoch != self.epoch {
                    return;
                }
                tracing::warn!("cannot reach the buildd daemon: {error}");
                self.link_error = Some(error);
                self.reconnect();
            }
            LinkEvent::Lost { epoch, error } => {
                if self.link.as_ref().is_none_or(|l| l.epoch != epoch) {
                    return;
                }
                self.link = None;
                self.link_error = Some(format!("lost the buildd daemon: {error}"));
                for (_, pending) in std::mem::take(&mut self.pending) {
                    self.fail(pending, "lost the connection to the buildd daemon".into());
                }
                for ws in self.workspaces.values_mut() {
                    ws.end_job("the buildd daemon stopped".into());
                }
                self.reconnect();
            }
            LinkEvent::Message { epoch, message } => {
                if self.link.as_ref().is_none_or(|l| l.epoch != epoch) {
                    return;
                }
                if let Some(id) = message.reply_id() {
                    match self.pending.remove(&id) {
                        Some(pending) => self.reply(pending, *message).await,
                        None => tracing::debug!(id, "a reply nobody waits for"),
                    }
                    return;
                }
                match *message {
                    ServerMessage::Event { event } => self.workspace_event(event),
                    ServerMessage::Error { message, .. } => {
                        tracing::warn!("the daemon reported: {message}");
                    }
                    other => tracing::debug!("unexpected message: {other:?}"),
                }
            }
        }
    }

    /// Sends a request to the daemon; without a connection the pending reply fails at once.
    async fn send(&mut self, request: Request, pending: Pending) {
        let Some(link) = &mut self.link else {
            let error = self.down_message();
            self.fail(pending, error);
            return;
        };
        match link.writer.send(request).await {
            Ok(id) => {
                self.pending.insert(id, pending);
            }
            // The reader will report the loss; this request is lost with it.
            Err(e) => self.fail(pending, e.to_string()),
        }
    }

    fn down_message(&self) -> String {
        match &self.link_error {
            Some(error) => format!("the buildd daemon is not reachable: {error}"),
            None => "not connected to the buildd daemon yet".to_owned(),
        }
    }

    async fn register(&mut self, folder: PathBuf) {
        let with_settings = !self.settings_refused;
        let settings = match (&self.setup, with_settings) {
            (Some(setup), true) => setup.options.settings.clone(),
            _ => WorkspaceSettings::default(),
        };
        let request = Request::Register {
            path: folder.clone(),
            env: self.env.clone(),
            settings,
        };
        self.send(
            request,
            Pending::Register {
                folder,
                with_settings,
            },
        )
        .await;
    }

    async fn reply(&mut self, pending: Pending, message: ServerMessage) {
        match (pending, message) {
            (Pending::Register { folder, .. }, ServerMessage::Registered { workspace, .. }) => {
                self.registered(folder, *workspace).await;
            }
            (
                Pending::Register {
                    folder,
                    with_settings,
                },
                ServerMessage::Error { code, message, .. },
            ) => {
                self.register_failed(folder, with_settings, code, message)
                    .await
            }
            (Pending::Snapshot { root }, ServerMessage::Diagnostics { files, .. }) => {
                self.snapshot(&root, files);
            }
            (Pending::Status { narrow, reply }, ServerMessage::Status { mut status, .. }) => {
                if narrow {
                    status
                        .workspaces
                        .retain(|w| self.workspaces.contains_key(&w.root));
                }
                let _ = reply.send(serde_json::to_value(status).map_err(|e| e.to_string()));
            }
            (Pending::Command { group }, ServerMessage::Ok { .. }) => {
                self.command_done(group, None);
            }
            (pending, ServerMessage::Error { message, .. }) => self.fail(pending, message),
            (Pending::Subscribe | Pending::Nothing, _) => {}
            (pending, other) => self.fail(pending, format!("unexpected reply: {other:?}")),
        }
    }

    /// A request failed: tell whoever waits.
    fn fail(&mut self, pending: Pending, error: String) {
        match pending {
            Pending::Status { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Pending::Command { group } => self.command_done(group, Some(error)),
            Pending::Snapshot { root } => {
                // Without the snapshot the next job will say; the state need not wait.
                tracing::debug!(root = %root.display(), "no diagnostics snapshot: {error}");
                if let Some(ws) = self.workspaces.get_mut(&root) {
                    ws.ready = true;
                }
            }
            // With the connection up, the request itself could not be sent (a path that is
            // not UTF-8 cannot cross the daemon's JSON protocol): the folder says why.
            // Otherwise the connection is gone, and registration is redone on the next one.
            Pending::Register { folder, .. } if self.link.is_some() => {
                tracing::warn!(folder = %folder.display(), "cannot register: {error}");
                if let Some(entry) = self.folders.get_mut(&folder) {
                    entry.error = Some(format!("cannot register {}: {error}", folder.display()));
                }
            }
            Pending::Register { .. } | Pending::Subscribe => {
                tracing::debug!("request lost: {error}");
            }
            Pending::Nothing => tracing::debug!("{error}"),
        }
    }

    async fn registered(&mut self, folder: PathBuf, status: WorkspaceStatus) {
        let Some(entry) = self.folders.get_mut(&folder) else {
            // Removed from the editor while the daemon loaded it.
            return;
        };
        let root = status.root.clone();
        tracing::info!(folder = %folder.display(), root = %root.display(), "registered");
        entry.root = Some(root.clone());
        entry.error = None;
        entry.not_a_workspace = false;
        let work_done_progress = self.setup.as_ref().is_some_and(|s| s.work_done_progress);
        let token_epoch = self.epoch;
        let ws = self
            .workspaces
            .entry(root.clone())
            .or_insert_with(|| Workspace::new(root.clone()));
        ws.update(&status);
        // A job that runs already: this editor came in the middle of it, and its progress
        // begins now at the percentage the daemon's counts give, not at the next job.
        if let Some(current) = &status.current_job
            && ws.job.as_ref().is_none_or(|a| a.progress.job != current.id)
        {
            let progress = JobProgress::joined(current);
            let reporter = work_done_progress.then(|| {
                Reporter::start(
                    self.client.clone(),
                    format!("buildd/{token_epoch}/{}", current.id),
                    &progress,
                )
            });
            ws.end_job(format!("superseded by job #{}", current.id));
            ws.job = Some(ActiveJob { progress, reporter });
        }
        // What the daemon found before this editor came: the next job may be far off. The
        // state waits for it, so that a status bar does not show "0 errors" first.
        ws.ready = false;
        self.send(
            Request::Diagnostics { root: root.clone() },
            Pending::Snapshot { root },
        )
        .await;
    }

    async fn register_failed(
        &mut self,
        folder: PathBuf,
        with_settings: bool,
        code: ErrorCode,
        message: String,
    ) {
        let has_settings = self
            .setup
            .as_ref()
            .is_some_and(|s| s.options.settings != WorkspaceSettings::default());
        if code == ErrorCode::BadRequest && with_settings && has_settings {
            // Wrong settings must not leave the editor without diagnostics: say so, and
            // register with the workspace's own settings.
            self.settings_refused = true;
            let text = format!(
                "buildd: the daemon refused the initializationOptions ({message}); using the \
                 workspace's own settings"
            );
            tracing::warn!("{text}");
            self.client.show_message(MessageType::ERROR, text).await;
            self.register(folder).await;
            return;
        }
        tracing::info!(folder = %folder.display(), "not registered: {message}");
        if code != ErrorCode::NotAWorkspace {
            self.client
                .log_message(MessageType::WARNING, format!("buildd: {message}"))
                .await;
        }
        if let Some(entry) = self.folders.get_mut(&folder) {
            entry.error = Some(message);
            entry.not_a_workspace = code == ErrorCode::NotAWorkspace;
        }
    }

    /// Takes in the daemon's diagnostics snapshot of a workspace.
    fn snapshot(&mut self, root: &Path, files: Vec<FileDiagnostics>) {
        if let Some(ws) = self.workspaces.get_mut(root) {
            ws.ready = true;
        }
        let Some(ctx) = self.context(root) else {
            return;
        };
        let epoch = self.epoch;
        let mut entries = Vec::new();
        for file in files {
            let generation = Generation {
                epoch,
                job: file.job,
            };
            for diagnostic in &file.diagnostics {
                for placed in convert::convert(ctx, diagnostic) {
                    let item = Item {
                        diagnostic: placed.diagnostic,
                        suggestions: placed.suggestions,
                    };
                    entries.push((placed.file, generation, vec![item]));
                }
            }
        }
        self.store.replace(root, epoch, entries);
    }

    fn context<'a>(&self, root: &'a Path) -> Option<Context<'a>> {
        let setup = self.setup.as_ref()?;
        Some(Context {
            root,
            encoding: setup.encoding,
            related_information: setup.related_information,
        })
    }

    fn workspace_event(&mut self, event: WorkspaceEvent) {
        let root = event.root;
        let epoch = self.epoch;
        let work_done_progress = self.setup.as_ref().is_some_and(|s| s.work_done_progress);
        let Some(ws) = self.workspaces.get_mut(&root) else {
            return;
        };
        match event.kind {
            EventKind::State { state, error } => {
                ws.state = state;
                ws.error = error;
            }
            EventKind::JobStarted {
                job,
                stages,
                expected_units,
            } => {
                ws.end_job(format!("superseded by job #{job}"));
                let progress = JobProgress::new(job, &stages, expected_units);
                let reporter = work_done_progress.then(|| {
                    Reporter::start(
                        self.client.clone(),
                        format!("buildd/{epoch}/{job}"),
                        &progress,
                    )
                });
                ws.job = Some(ActiveJob { progress, reporter });
            }
            EventKind::StageStarted { job, stage } => {
                if let Some(active) = ws.job.as_mut().filter(|a| a.progress.job == job) {
                    active.progress.stage_started(stage);
                    if let Some(reporter) = &active.reporter {
                        reporter.report(&active.progress);
                    }
                }
            }
            EventKind::UnitFinished {
                job,
                package,
                fresh,
                done,
                ..
            } => {
                if let Some(active) = ws.job.as_mut().filter(|a| a.progress.job == job) {
                    active.progress.unit_finished(done, &package, fresh);
                    if let Some(reporter) = &active.reporter {
                        reporter.report(&active.progress);
                    }
                }
            }
            EventKind::Diagnostic { job, diagnostic } => {
                let Some(ctx) = self.setup.as_ref().map(|setup| Context {
                    root: &root,
                    encoding: setup.encoding,
                    related_information: setup.related_information,
                }) else {
                    return;
                };
                let generation = Generation { epoch, job };
                for placed in convert::convert(ctx, &diagnostic) {
                    let item = Item {
                        diagnostic: placed.diagnostic,
                        suggestions: placed.suggestions,
                    };
                    self.store.add(&root, generation, placed.file, item);
                }
            }
            EventKind::JobFinished { job, summary, .. } => {
                // A cancelled or yielded job saw only part of the workspace: it clears nothing.
                if matches!(summary.result, JobResult::Success | JobResult::Failed) {
                    self.store.finish(&root, Generation { epoch, job });
                }
                if ws.job.as_ref().is_some_and(|a| a.progress.job == job) {
                    ws.end_job(workspaces::job_result(&summary));
                }
                ws.last_job = Some(summary);
            }
            // Failing tests arrive as diagnostics too; the reports themselves are for status
            // bars and scripts, not for the editor's problem list.
            // An editor runs no program: the executables are the watch loops'.
            EventKind::Tests { .. } | EventKind::Process { .. } | EventKind::Executable { .. } => {}
            // A full disk stops every build: the user hears of it at once.
            EventKind::Disk {
                full: true,
                message,
            } => {
                let client = self.client.clone();
                let text = message.unwrap_or_else(|| "the disk of buildd's cache is full".into());
                tokio::spawn(async move {
                    client
                        .show_message(MessageType::WARNING, format!("buildd: {text}"))
                        .await;
                });
            }
            EventKind::Disk { full: false, .. } => {}
        }
    }

    async fn command(&mut self, command: Command, path: Option<PathBuf>, reply: Reply<()>) {
        let roots: Vec<PathBuf> = match path {
            Some(path) => vec![path],
            None => self.workspaces.keys().cloned().collect(),
        };
        if roots.is_empty() {
            let _ = reply.send(Err(
                "no workspace of this editor is registered with the buildd daemon".to_owned(),
            ));
            return;
        }
        let group = self.next_group;
        self.next_group += 1;
        self.groups.insert(
            group,
            CommandGroup {
                remaining: roots.len(),
                error: None,
                reply,
            },
        );
        for root in roots {
            let request = match command {
                Command::Rebuild => Request::Rebuild { root },
                Command::Cancel => Request::Cancel { root },
            };
            self.send(request, Pending::Command { group }).await;
        }
    }

    fn command_done(&mut self, group: u64, error: Option<String>) {
        let Some(entry) = self.groups.get_mut(&group) else {
            return;
        };
        entry.remaining = entry.remaining.saturating_sub(1);
        if entry.error.is_none() {
            entry.error = error;
        }
        if entry.remaining == 0
            && let Some(entry) = self.groups.remove(&group)
        {
            let result = match entry.error {
                Some(error) => Err(error),
                None => Ok(()),
            };
            let _ = entry.reply.send(result);
        }
    }

    /// Forgets workspaces no folder of the editor resolves to any more: their progress ends
    /// and their diagnostics are cleared in the editor. The daemon keeps watching them, since
    /// other clients may use them.
    fn drop_unused_workspaces(&mut self) {
        let used: BTreeSet<PathBuf> = self
            .folders
            .values()
            .filter_map(|f| f.root.clone())
            .collect();
        let unused: Vec<PathBuf> = self
            .workspaces
            .keys()
            .filter(|root| !used.contains(*root))
            .cloned()
            .collect();
        for root in unused {
            if let Some(mut ws) = self.workspaces.remove(&root) {
                ws.end_job("the folder was removed from the editor".into());
            }
            self.store.remove_root(&root);
            self.states.forget(&root);
        }
    }

    /// Publishes what changed: diagnostics of changed files, and changed states.
    async fn flush(&mut self) {
        if !self.initialized {
            return;
        }
        for (file, items) in self.store.take_changes() {
            match uri::from_path(&file) {
                Some(uri) => self.client.publish_diagnostics(uri, items, None).await,
                None => tracing::debug!(file = %file.display(), "no URI for a file"),
            }
        }
        let daemon = if self.link.is_some() {
            DaemonLink::Up
        } else {
            DaemonLink::Down
        };
        let now = Instant::now();
        let mut states = Vec::new();
        for ws in self.workspaces.values().filter(|ws| ws.ready) {
            let params = ws.state_params(
                self.store.count(&ws.root, DiagnosticSeverity::ERROR),
                self.store.count(&ws.root, DiagnosticSeverity::WARNING),
                daemon,
            );
            states.extend(self.states.offer(&ws.root, params, now));
        }
        for (folder, entry) in &self.folders {
            if entry.root.is_some() {
                continue;
            }
            // A folder of workspaces is not one itself: the ones under it speak for it. A
            // directory found under a folder was a guess; if it is wrong, the log says.
            let holds_workspaces = || {
                self.folders
                    .values()
                    .any(|f| f.found_in.as_ref() == Some(folder))
            };
            if entry.found_in.is_some() || (entry.not_a_workspace && holds_workspaces()) {
                continue;
            }
            // A folder not registered yet says nothing until the daemon refused it or could
            // not be reached: the first connection is still under way.
            let params = match (&entry.error, &self.link_error, daemon) {
                (Some(error), _, _) => workspaces::folder_state(folder, error, daemon),
                (None, Some(_), DaemonLink::Down) => {
                    workspaces::folder_state(folder, &self.down_message(), daemon)
                }
                _ => continue,
            };
            states.extend(self.states.offer(folder, params, now));
        }
        for params in states {
            self.client
                .send_notification::<StateNotification>(params)
                .await;
        }
    }
}
