//! The client protocol: every message that crosses the daemon's Unix socket.
//!
//! This module owns the wire. Messages are JSON objects, one per line, tagged by `type`.
//! A client opens with [`Request::Hello`]; the daemon answers with [`ServerMessage::Hello`]
//! carrying its protocol and binary versions, and a client that finds another version asks
//! the daemon to shut down and starts its own. Every request carries an `id` that its reply
//! repeats; events ([`ServerMessage::Event`]) carry none. `docs/protocol.md` documents all of
//! it and must change with it. Nothing outside this module and `status.rs` (the types of
//! what the daemon reports, re-exported here) is serialised onto the socket.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::wire::status::*;

/// Bumped on any incompatible change to the messages below.
pub const PROTOCOL_VERSION: u32 = 1;

/// The version of the event schema `buildd events --json` prints (each line's `v`). Bumped
/// when an event's existing fields change meaning or go away; new kinds and new fields do
/// not bump it, so readers must ignore what they do not know.
pub const EVENTS_SCHEMA_VERSION: u32 = 1;

/// The environment variable that makes a binary report another version. Only the tests use
/// it, to play the part of an older client or daemon without building a second binary.
pub const FAKE_VERSION_ENV: &str = "BUILDD_TEST_FAKE_VERSION";

/// The version this binary reports in the handshake.
pub fn binary_version() -> String {
    std::env::var(FAKE_VERSION_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned())
}

/// One line from a client.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientMessage {
    pub id: u64,
    #[serde(flatten)]
    pub request: Request,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Must be the first message of a connection.
    Hello {
        protocol: u32,
        version: String,
        /// What the client is (`cli`, `lsp`, ...), for the log.
        client: String,
    },
    /// Watch the cargo workspace that contains `path` and keep it warm. `env` is the client's
    /// environment: jobs for this workspace run cargo with it, so that the user's own
    /// `buildd cargo` in that environment finds fresh artifacts.
    Register {
        path: PathBuf,
        #[serde(default)]
        env: BTreeMap<String, String>,
        /// Settings the client asks for (an editor's initialization options); each one set
        /// overrides the workspace's `buildd.toml` and `[workspace.metadata.buildd]`.
        #[serde(default)]
        settings: WorkspaceSettings,
    },
    Unregister {
        root: PathBuf,
    },
    /// The daemon and its workspaces; `root` narrows it to the workspace containing it.
    Status {
        #[serde(default)]
        root: Option<PathBuf>,
    },
    /// Stream [`ServerMessage::Event`]s for one workspace, or for all when `root` is absent.
    Subscribe {
        #[serde(default)]
        root: Option<PathBuf>,
    },
    /// Ask for the workspace's isolated target dir for a user command. The daemon answers
    /// once no job of its own runs on the dir, and starts none until the lease ends with
    /// [`Request::Release`] or with the connection.
    Acquire {
        root: PathBuf,
        /// The user's cargo arguments (`build`, `test --no-run`...). The daemon lets a running
        /// stage the command needs finish, and cancels the stages it does not need. Empty
        /// means the command may need any stage.
        #[serde(default)]
        args: Vec<String>,
        /// What holds the lease, for the status of jobs that wait for it (`` `buildd cargo
        /// build` (pid 42) ``). The daemon keeps at most 200 characters.
        #[serde(default)]
        holder: Option<String>,
        /// The dir the command runs in: with `args`, the shape the daemon learns and keeps
        /// warm from then on (see `learn` in the settings). Absent: nothing is learned.
        #[serde(default)]
        cwd: Option<PathBuf>,
    },
    Release {
        root: PathBuf,
    },
    /// An editor saved these files: treat them as changed and start the job at once, without
    /// the watcher's debounce. Files outside every registered workspace are ignored.
    Saved {
        paths: Vec<PathBuf>,
    },
    /// Run a full job now, cancelling the one that runs.
    Rebuild {
        root: PathBuf,
    },
    /// Cancel the running job and forget queued changes.
    Cancel {
        root: PathBuf,
    },
    /// A watch loop (`buildd watch --run` without `--test`) keeps the workspace's binary
    /// `bin` running and restarts it as soon as a job links a new build. While this
    /// connection lasts, jobs run the job that links it (the default `build`) first, with
    /// diagnostics, before the editor's diagnostics job, and never hold it back.
    Supervise {
        root: PathBuf,
        /// The binary's name, for status; at most 200 characters are kept.
        bin: String,
    },
    /// A watch loop (`buildd watch --test/--run`) tells the daemon what happened after a job,
    /// so that status, editors and event streams see it.
    Report {
        root: PathBuf,
        report: Report,
    },
    /// The workspace's current diagnostics in full (rustc's JSON included), per file and
    /// stamped with the job that reported them, so that a client that subscribes late (a
    /// second editor, an editor restarted on a warm workspace) can show what the last jobs
    /// found without waiting for the next one. Subscribe first: events sent before the reply
    /// are already part of it.
    Diagnostics {
        root: PathBuf,
    },
    /// Stop the daemon: jobs cancelled, children gone, socket removed. Accepted from a client
    /// of any version, so a newer client can replace an older daemon.
    Shutdown,
    /// Every isolated dir in the cache, with its size and when it was last used.
    CacheList,
    /// Evict least recently used dirs until the cache fits its budget; never a dir in use.
    CacheGc,
    /// Remove the isolated dirs of the workspace containing `path` (all dirs when absent),
    /// except those in use.
    CacheClear {
        #[serde(default)]
        path: Option<PathBuf>,
    },
    /// Forget the learned jobs of the workspace containing `root` (of every workspace when
    /// absent).
    JobsForget {
        #[serde(default)]
        root: Option<PathBuf>,
    },
}

/// Per-workspace settings as a client gives them: every field is optional.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct WorkspaceSettings {
    /// Before job definitions: the stages a job runs, in order, any of `check`, `build`,
    /// `test`. Still read: each names the default job of that name (`check` is
    /// `check --workspace`), and the list replaces the default jobs.
    pub stages: Option<Vec<String>>,
    /// The job definitions, `[jobs.NAME]`, added to the defaults (a default's name replaces
    /// it). A number here is the old spelling of `cargo_jobs`.
    pub jobs: Option<JobsSetting>,
    /// cargo's `-j` for the daemon's jobs.
    pub cargo_jobs: Option<u32>,
    /// Learn the shapes of the `buildd cargo` commands the user runs and keep them warm too
    /// (default true).
    pub learn: Option<bool>,
    /// How many learned shapes to keep warm, most recently used first (default 6).
    pub learn_limit: Option<u32>,
    /// How long the workspace must be quiet before an expensive, rarely used learned job
    /// runs, in seconds (default 30).
    pub quiet_secs: Option<u64>,
    /// How long the workspace must be quiet before a default job the user's recent commands
    /// did not need (the wide `build` or `test` of someone who runs narrower commands) runs,
    /// in seconds (default 300): a break, not the pause between two edits.
    pub unused_quiet_secs: Option<u64>,
    /// A learned job whose last run took at least this long, in seconds, is expensive
    /// (default 10).
    pub expensive_secs: Option<u64>,
    /// How long to wait after a file-system change for more changes, in milliseconds.
    pub debounce_ms: Option<u64>,
    /// The niceness of the daemon's cargo and everything it runs (0 to 19; default 10), so
    /// that builds ahead of time yield the CPU to the editor and the user's own commands.
    pub nice: Option<i32>,
    /// A job running longer is stopped and fails, in seconds (default 3600).
    pub job_timeout_secs: Option<u64>,
    /// How many other build keys the workspace was used with lately (another toolchain,
    /// other flags) its jobs keep warm besides the current one (default 2; 0 turns it off).
    pub other_keys: Option<u32>,
    /// After a save, run the saved crate's own compiler command from the last job again
    /// beside the job, for sooner diagnostics (default true).
    #[serde(default)]
    pub early: Option<bool>,
    /// The linker: `auto` (measured on the workspace, remembered), `default` (whatever rustc
    /// and cargo's configuration pick), `mold`, `lld`, `bfd`, or a path to a linker driver.
    pub linker: Option<String>,
    /// Use sccache as the compilation cache when one is configured or installed (default
    /// true); never when the client's environment already sets a `RUSTC_WRAPPER`.
    pub sccache: Option<bool>,
    /// Debug-info settings that make each link read and write less (default false): see
    /// `FastLinkStatus` for what they are and what they saved where measured. Part of the
    /// build key.
    pub fast_link: Option<bool>,
}

/// Reads one line from a client. A line that is not a valid message becomes the error reply
/// to send, with the line's `id` when one can be read.
pub fn decode_request(line: &str) -> Result<ClientMessage, Box<ServerMessage>> {
    serde_json::from_str::<ClientMessage>(line).map_err(|e| {
        let id = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("id")?.as_u64());
        Box::new(ServerMessage::Error {
            id,
            code: ErrorCode::BadRequest,
            message: format!("invalid message: {e}"),
        })
    })
}

/// One line from the daemon.
///
/// `Status` is the largest variant, some 200 bytes above the others: boxing it would
/// change every client that reads a status for a few bytes per queued message.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum ServerMessage {
    Hello {
        id: u64,
        protocol: u32,
        version: String,
        pid: u32,
    },
    Registered {
        id: u64,
        workspace: Box<WorkspaceStatus>,
    },
    Status {
        id: u64,
        status: StatusReport,
    },
    Acquired {
        id: u64,
        /// The environment the user's cargo must run with: set these...
        env_set: BTreeMap<String, String>,
        /// ...and remove these...
        env_remove: Vec<String>,
        /// ...and put these arguments before the user's (after a `+toolchain`).
        #[serde(default)]
        args: Vec<String>,
        /// The isolated dir all of that points cargo at (its target dir and build dir).
        /// `None` from a daemon older than the field.
        #[serde(default)]
        target_dir: Option<PathBuf>,
        waited_ms: u64,
    },
    /// The answer to `cache_list`, `cache_gc` and `cache_clear`.
    Cache {
        id: u64,
        cache: CacheReport,
    },
    Ok {
        id: u64,
    },
    Diagnostics {
        id: u64,
        /// The workspace the snapshot is of.
        root: PathBuf,
        files: Vec<FileDiagnostics>,
    },
    Error {
        /// Absent when the line could not be read far enough to find an id.
        id: Option<u64>,
        code: ErrorCode,
        message: String,
    },
    Event {
        event: WorkspaceEvent,
    },
}

impl ServerMessage {
    /// The request this message answers, if it is a reply.
    pub fn reply_id(&self) -> Option<u64> {
        match self {
            ServerMessage::Hello { id, .. }
            | ServerMessage::Registered { id, .. }
            | ServerMessage::Status { id, .. }
            | ServerMessage::Acquired { id, .. }
            | ServerMessage::Diagnostics { id, .. }
            | ServerMessage::Cache { id, .. }
            | ServerMessage::Ok { id } => Some(*id),
            ServerMessage::Error { id, .. } => *id,
            ServerMessage::Event { .. } => None,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line was not a valid message.
    BadRequest,
    /// The connection's first message was not a hello, or the versions differ.
    VersionMismatch,
    /// The peer runs as another user.
    Forbidden,
    /// The path is not inside a cargo workspace, or does not exist.
    NotAWorkspace,
    /// The workspace was never registered.
    NotRegistered,
    /// The daemon serves as many connections as it may; the message says what to do.
    Busy,
    /// Anything else; the message says what.
    Internal,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkspaceEvent {
    pub root: PathBuf,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    State {
        state: WorkspaceState,
        error: Option<String>,
    },
    JobStarted {
        job: u64,
        stages: Vec<Stage>,
        /// Units the job is expected to report, from the last run; for progress bars.
        expected_units: Option<u64>,
    },
    StageStarted {
        job: u64,
        stage: Stage,
    },
    /// Cargo reported an artifact: compiled (`fresh: false`) or found up to date.
    UnitFinished {
        job: u64,
        stage: Stage,
        package: String,
        target: String,
        fresh: bool,
        /// Units reported so far in this job.
        done: u64,
    },
    /// Cargo reported an artifact with an executable (a binary, an example, a test
    /// harness), right after the artifact's `unit_finished`. Cargo prints the message once
    /// the file is in place (for a binary: linked and uplifted into `<target dir>/debug/`,
    /// which is the `path` then), so a client may run it at once while the job goes on:
    /// `buildd watch --run` restarts its program on it. Also sent for an executable found
    /// up to date (`fresh: true`): the file is then the one an earlier job or command made.
    Executable {
        job: u64,
        stage: Stage,
        package: String,
        target: String,
        /// cargo's kinds of the target (`bin`, `example`, `test`, `bench`, `lib`, ...).
        kinds: Vec<String>,
        /// Whether it is a test harness (`cargo test --no-run`'s), not the target itself.
        test: bool,
        /// Absolute, in the isolated target dir, as cargo printed it.
        path: PathBuf,
        fresh: bool,
    },
    Diagnostic {
        job: u64,
        diagnostic: Box<Diagnostic>,
    },
    JobFinished {
        job: u64,
        summary: JobSummary,
        /// Files that had diagnostics before this job and have none now.
        cleared: Vec<PathBuf>,
    },
    Tests {
        report: TestReport,
    },
    Process {
        report: ProcessReport,
    },
    /// The disk that holds the isolated dirs is full (`full`, with what to do: sent when it
    /// becomes full and after every job that ran out of space) or has room again. Sent with
    /// the root of the workspace whose job noticed.
    Disk {
        full: bool,
        message: Option<String>,
    },
}
