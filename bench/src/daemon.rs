//! The daemon under measurement: started by the harness as its own child in a private
//! `BUILDD_HOME`, and watched through its event stream.
//!
//! The harness starts `buildd daemon` itself rather than letting a client start it detached,
//! so it knows the pid whose `/proc` entries it reads from the first moment. It talks to the
//! daemon with the daemon crate's own client: one connection for requests, and one
//! subscribed to every workspace's events, read by a task that stamps each event with the
//! instant it arrived. Waiting for "the edit was seen and the pipeline is idle" is then a
//! matter of reading stamped events (job ids are generation numbers), never of sleeping.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use buildd_daemon::client::{Client, ClientError, ConnectOptions};
use buildd_daemon::paths::Paths;
use buildd_daemon::protocol::{
    EventKind, JobResult, JobSummary, Request, ServerMessage, WorkspaceEvent, WorkspaceSettings,
    WorkspaceState,
};

use crate::env;

/// How long the daemon gets to answer on its socket after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// An event and when the harness received it.
struct Stamped {
    at: Instant,
    event: WorkspaceEvent,
}

pub(crate) struct Daemon {
    child: Child,
    pub(crate) pid: u32,
    /// The version the daemon reported in the handshake.
    pub(crate) version: String,
    runtime: tokio::runtime::Runtime,
    control: Client,
    events: mpsc::Receiver<Stamped>,
    /// The newest job id seen per workspace root.
    last_job: HashMap<PathBuf, u64>,
    env: BTreeMap<String, String>,
    stderr_path: PathBuf,
    /// Set once the daemon has been reaped.
    stopped: bool,
}

/// What a workspace's pipeline did after an edit, from its events.
#[derive(Debug, Clone)]
pub(crate) struct Settled {
    /// When the state became idle after the job that covered the edit.
    pub(crate) idle_at: Instant,
    /// When the first diagnostic whose message contains the marker arrived.
    pub(crate) first_marked_diagnostic: Option<Instant>,
    /// When that job's `job_finished` arrived.
    pub(crate) finished_at: Instant,
    /// When each of that job's stages started, in order.
    pub(crate) stages_started: Vec<(String, Instant)>,
    /// The executables that job reported (`executable` events), with when they arrived.
    pub(crate) executables: Vec<(PathBuf, bool, Instant)>,
    pub(crate) summary: JobSummary,
}

impl Daemon {
    /// Starts `buildd daemon` with `env` (which sets `BUILDD_HOME`), its stderr into
    /// `stderr_path`, and connects to it.
    pub(crate) fn start(
        buildd: &Path,
        env: &BTreeMap<String, String>,
        stderr_path: &Path,
    ) -> anyhow::Result<Daemon> {
        let home = env
            .get(buildd_daemon::paths::HOME_ENV)
            .context("the child environment has no BUILDD_HOME")?;
        let paths = Paths::under(Path::new(home));
        let stderr = std::fs::File::create(stderr_path)
            .with_context(|| format!("failed to create {}", stderr_path.display()))?;
        let mut child = env::command(buildd, env)
            // Long enough for any run; the harness stops it when done.
            .args(["daemon", "--idle-timeout", "6h"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("failed to run {} daemon", buildd.display()))?;
        let pid = child.id();

        // A multi-threaded runtime, so that the event reader runs while the harness's own
        // thread is blocked waiting for a cargo command.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("failed to start a tokio runtime")?;
        let deadline = Instant::now() + START_TIMEOUT;
        let connect = |client: &'static str| {
            runtime.block_on(Client::connect(
                &paths,
                ConnectOptions {
                    autostart: false,
                    client,
                },
            ))
        };
        let control = loop {
            match connect("buildd-bench") {
                Ok(client) => break client,
                Err(ClientError::NotRunning { .. }) if Instant::now() < deadline => {
                    if let Some(status) = child.try_wait()? {
                        bail!(
                            "buildd daemon exited ({status}) before it answered: {}",
                            read_tail(stderr_path)
                        );
                    }
                    // The daemon is starting: there is no event to wait on before its socket
                    // exists, so poll it, briefly.
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    let _ = child.kill();
                    return Err(anyhow!(e).context(format!(
                        "the buildd daemon did not answer on {}: {}",
                        paths.socket().display(),
                        read_tail(stderr_path)
                    )));
                }
            }
        };
        if control.daemon.pid != pid {
            bail!(
                "another buildd daemon (pid {}) answers on {}, not the one the harness started \
                 (pid {pid})",
                control.daemon.pid,
                paths.socket().display()
            );
        }
        let mut subscriber = connect("buildd-bench-events")?;
        runtime.block_on(subscriber.call(Request::Subscribe { root: None }))?;
        let (tx, events) = mpsc::channel();
        runtime.spawn(async move {
            // The write half stays alive with the task: dropping it would end the connection.
            let (mut reader, _writer) = subscriber.into_split();
            while let Ok(Some(message)) = reader.recv().await {
                if let ServerMessage::Event { event } = message {
                    let stamped = Stamped {
                        at: Instant::now(),
                        event,
                    };
                    if tx.send(stamped).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Daemon {
            version: control.daemon.version.clone(),
            child,
            pid,
            runtime,
            control,
            events,
            last_job: HashMap::new(),
            env: env.clone(),
            stderr_path: stderr_path.to_path_buf(),
            stopped: false,
        })
    }

    fn call(&mut self, request: Request) -> anyhow::Result<ServerMessage> {
        Ok(self.runtime.block_on(self.control.call(request))?)
    }

    /// Registers the workspace at `root` with the harness's child environment (so its build
    /// key is the one `buildd cargo` and `buildd lsp` will use) and returns its root as the
    /// daemon names it.
    pub(crate) fn register(
        &mut self,
        root: &Path,
        settings: &WorkspaceSettings,
    ) -> anyhow::Result<PathBuf> {
        match self.call(Request::Register {
            path: root.to_path_buf(),
            env: self.env.clone(),
            settings: settings.clone(),
        })? {
            ServerMessage::Registered { workspace, .. } => {
                if let Some(error) = &workspace.error {
                    bail!("buildd cannot build {}: {error}", root.display());
                }
                Ok(workspace.root)
            }
            other => bail!("unexpected reply to register: {other:?}"),
        }
    }

    /// Whether the workspace at `root` runs a job now or holds jobs back for a quiet
    /// workspace, and the names of those held back. Reads status; takes no event.
    pub(crate) fn held_back(&mut self, root: &Path) -> anyhow::Result<(bool, Vec<String>)> {
        match self.call(Request::Status {
            root: Some(root.to_path_buf()),
        })? {
            ServerMessage::Status { status, .. } => {
                let ws = status
                    .workspaces
                    .iter()
                    .find(|w| w.root == root)
                    .with_context(|| format!("status does not list {}", root.display()))?;
                let waiting = ws
                    .jobs
                    .iter()
                    .filter(|j| j.waiting.is_some())
                    .map(|j| j.name.0.clone())
                    .collect();
                Ok((ws.current_job.is_some(), waiting))
            }
            other => bail!("unexpected reply to status: {other:?}"),
        }
    }

    /// Tells the daemon that an editor saved `path`, as an editor's `buildd lsp` does: the
    /// job starts without the watcher's debounce.
    pub(crate) fn saved(&mut self, path: &Path) -> anyhow::Result<()> {
        self.call(Request::Saved {
            paths: vec![path.to_path_buf()],
        })?;
        Ok(())
    }

    /// Takes the events that have arrived, noting the newest job of each workspace; returns
    /// how many there were.
    pub(crate) fn drain(&mut self) -> usize {
        let mut count = 0;
        while let Ok(stamped) = self.events.try_recv() {
            self.note(&stamped.event);
            count += 1;
        }
        count
    }

    fn note(&mut self, event: &WorkspaceEvent) {
        if let EventKind::JobStarted { job, .. } | EventKind::JobFinished { job, .. } = event.kind {
            let last = self.last_job.entry(event.root.clone()).or_default();
            *last = (*last).max(job);
        }
    }

    /// The newest job id seen for `root` (0 for none).
    pub(crate) fn last_job(&mut self, root: &Path) -> u64 {
        self.drain();
        self.last_job.get(root).copied().unwrap_or(0)
    }

    /// Waits until a job newer than `after` has finished on `root` and the workspace's state
    /// is idle (or failed) again, noting when the first diagnostic containing `marker`
    /// arrived. A cancelled or yielded job does not count: a newer one follows it.
    pub(crate) fn wait_settled(
        &mut self,
        root: &Path,
        after: u64,
        marker: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Settled> {
        let deadline = Instant::now() + timeout;
        let mut finished: Option<(JobSummary, Instant)> = None;
        let mut first_marked = None;
        // Per job newer than `after`: a cancelled one's stamps are dropped with it.
        let mut stages: BTreeMap<u64, Vec<(String, Instant)>> = BTreeMap::new();
        let mut executables: BTreeMap<u64, Vec<(PathBuf, bool, Instant)>> = BTreeMap::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let stamped = match self.events.recv_timeout(left) {
                Ok(stamped) => stamped,
                Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                    "the daemon's pipeline on {} did not settle within {timeout:?} (after job \
                     #{after}); its log is under BUILDD_HOME/state/logs",
                    root.display()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!(
                    "lost the daemon's event stream: {}",
                    read_tail(&self.stderr_path)
                ),
            };
            self.note(&stamped.event);
            if stamped.event.root != root {
                continue;
            }
            match stamped.event.kind {
                EventKind::Diagnostic { job, diagnostic }
                    if job > after
                        && first_marked.is_none()
                        && marker.is_some_and(|m| diagnostic.message.contains(m)) =>
                {
                    first_marked = Some(stamped.at);
                }
                EventKind::StageStarted { job, stage } if job > after => {
                    stages
                        .entry(job)
                        .or_default()
                        .push((stage.name().to_owned(), stamped.at));
                }
                EventKind::Executable {
                    job, path, fresh, ..
                } if job > after => {
                    executables
                        .entry(job)
                        .or_default()
                        .push((path, fresh, stamped.at));
                }
                EventKind::JobFinished { job, summary, .. } if job > after => {
                    // A cancelled or yielded job gives its changes back: a newer one follows.
                    let done = matches!(summary.result, JobResult::Success | JobResult::Failed);
                    finished = done.then_some((summary, stamped.at));
                }
                EventKind::State { state, error } => match (state, &finished) {
                    (WorkspaceState::Idle | WorkspaceState::Failed, Some((summary, at))) => {
                        return Ok(Settled {
                            idle_at: stamped.at,
                            first_marked_diagnostic: first_marked,
                            finished_at: *at,
                            stages_started: stages.remove(&summary.id).unwrap_or_default(),
                            executables: executables.remove(&summary.id).unwrap_or_default(),
                            summary: summary.clone(),
                        });
                    }
                    (WorkspaceState::Error, _) => bail!(
                        "buildd cannot build {}: {}",
                        root.display(),
                        error.unwrap_or_default()
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }

    /// Events that arrived in the last `window`, for the idle measurement: collects them for
    /// that long.
    pub(crate) fn events_during(&mut self, window: Duration) -> usize {
        let deadline = Instant::now() + window;
        let mut count = 0;
        while let Ok(stamped) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.note(&stamped.event);
            count += 1;
        }
        count
    }

    /// Asks the daemon to stop and reaps it; kills it if it does not stop in time.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.call(Request::Shutdown);
        self.reap()
    }

    fn reap(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.stopped = true;
                if !status.success() {
                    bail!("buildd daemon exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.stopped = true;
                bail!("buildd daemon did not stop within {START_TIMEOUT:?}; killed it");
            }
            // The daemon is cancelling its jobs; its exit is not an event the harness can
            // wait on with a deadline other than by polling.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    /// A run that failed half-way must not leave its daemon (and its cargo jobs) behind:
    /// SIGTERM makes the daemon cancel its jobs and kill their process groups.
    fn drop(&mut self) {
        if !self.stopped {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.reap();
        }
    }
}

/// The last lines of a log file, for error messages.
pub(crate) fn read_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    if tail.is_empty() {
        format!("({} is empty)", path.display())
    } else {
        format!("{}:\n{tail}", path.display())
    }
}
