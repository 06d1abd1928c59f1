//! The client protocol: every message that crosses the daemon's Unix socket.
//!
//! This module owns the wire. Messages are JSON objects, one per line, tagged by `type`.
//! A client opens with [`Request::Hello`]; the daemon answers with [`ServerMessage::Hello`]
//! carrying its protocol and binary versions, and a client that finds another version asks
//! the daemon to shut down and starts its own. Every request carries an `id` that its reply
//! repeats; events ([`ServerMessage::Event`]) carry none. `docs/protocol.md` documents all of
//! it and must change with it. Nothing outside this module is serialised onto the socket.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    Tests(TestReport),
    Process(ProcessReport),
}

/// The result of running a workspace's tests after a job.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestReport {
    /// The job whose build was tested.
    pub job: u64,
    /// `cargo nextest run` or `cargo test`.
    pub runner: String,
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    pub failing: Vec<FailingTest>,
    pub duration_ms: u64,
    /// The runner's exit code.
    pub exit_code: Option<i32>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailingTest {
    /// As the runner names it (`tests::adds`, or `crate::bin tests::adds` for nextest).
    pub name: String,
    /// Where it panicked, when the output says.
    pub file: Option<PathBuf>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: Option<String>,
}

/// What a watch loop did with the program it keeps running.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessReport {
    pub bin: String,
    pub action: ProcessAction,
    pub pid: Option<u32>,
    /// Exit code or signal description, for `exited` and `stopped`.
    pub status: Option<String>,
    pub message: String,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProcessAction {
    Started,
    /// Stopped for a new build, and started again.
    Restarted,
    /// Exited on its own.
    Exited,
    /// A build or test run failed: the old process keeps running.
    Kept,
    /// Stopped with the watch loop.
    Stopped,
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
    /// The linker: `auto` (measured on the workspace, remembered), `default` (whatever rustc
    /// and cargo's configuration pick), `mold`, `lld`, `bfd`, or a path to a linker driver.
    pub linker: Option<String>,
    /// Use sccache as the compilation cache when one is configured or installed (default
    /// true); never when the client's environment already sets a `RUSTC_WRAPPER`.
    pub sccache: Option<bool>,
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
pub struct StatusReport {
    pub daemon: DaemonInfo,
    pub workspaces: Vec<WorkspaceStatus>,
    /// The isolated dirs' totals, the budget and the disk; `null` until first measured (just
    /// after the daemon started).
    #[serde(default)]
    pub cache: Option<CacheTotals>,
    /// buildd's sccache, when its jobs use one.
    #[serde(default)]
    pub sccache: Option<SccacheStatus>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DaemonInfo {
    pub pid: u32,
    pub version: String,
    pub protocol: u32,
    pub uptime_secs: u64,
    pub socket: PathBuf,
    pub log_path: PathBuf,
    pub cache_dir: PathBuf,
    pub idle_timeout_secs: u64,
    pub clients: usize,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceState {
    /// No job is queued or running, and the last one did not fail.
    Idle,
    /// Changes wait for the debounce, a metadata load or a user's lease.
    Queued,
    Running,
    /// The last job failed (compile errors, or cargo failed) and nothing is queued.
    Failed,
    /// The workspace cannot be built as it is (a malformed manifest, a missing toolchain, a
    /// deleted directory); `error` says why. The watcher stays on, so a fix recovers it.
    Error,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkspaceStatus {
    pub root: PathBuf,
    pub state: WorkspaceState,
    pub error: Option<String>,
    /// The isolated target dir the daemon builds in; absent until the build key is known.
    pub target_dir: Option<PathBuf>,
    /// Bytes, measured after the last job.
    pub target_dir_size: Option<u64>,
    pub key: Option<BuildKeyInfo>,
    /// The latest change the watcher or an editor reported, and what it was predicted to
    /// affect.
    pub last_change: Option<LastChange>,
    /// The job running now.
    pub current_job: Option<CurrentJob>,
    pub last_job: Option<JobSummary>,
    /// The last test run a watch loop reported.
    pub last_tests: Option<TestReport>,
    /// Jobs started for this workspace since it was registered.
    pub jobs_started: u64,
    /// How well predictions matched what cargo rebuilt, over the jobs so far.
    pub prediction: PredictionStats,
    pub watcher: WatcherStatus,
    pub diagnostics: Vec<DiagnosticSummary>,
    /// What cargo runs with for this workspace, beyond the client's environment: the same
    /// for the daemon's jobs, `buildd cargo` and `buildd env`. Absent until the key is known.
    #[serde(default)]
    pub cargo_env: Option<CargoEnv>,
    /// How the isolated dir was started: seeded from another key's dir, imported, or cold.
    #[serde(default)]
    pub seed: Option<SeedStatus>,
    #[serde(default)]
    pub linker: Option<LinkerStatus>,
    /// Whether the workspace's jobs use buildd's sccache, and what it did in the last job.
    #[serde(default)]
    pub sccache: Option<WorkspaceSccache>,
    /// What a queued job waits for, when something other than the debounce holds it back: a
    /// user's `buildd cargo` holding the warm dir, or a cargo outside buildd holding its lock.
    #[serde(default)]
    pub waiting_for: Option<String>,
    /// The job definitions each job runs, in order: the configured ones (diagnostics jobs
    /// first), then the learned ones, most recently used first.
    #[serde(default)]
    pub jobs: Vec<JobStatus>,
    /// The other keys the workspace was used with lately (another toolchain, other
    /// `RUSTFLAGS`), most recently used first: each job warms their dirs too, after the
    /// workspace's own key, so that switching between them compiles nothing.
    #[serde(default)]
    pub other_keys: Vec<OtherKeyStatus>,
}

/// A key besides the workspace's current one that its jobs keep warm.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OtherKeyStatus {
    pub key: BuildKeyInfo,
    pub target_dir: PathBuf,
    /// When it was last the workspace's key, in seconds since the Unix epoch.
    pub last_used: u64,
    /// How its last warming ended (the stages that warm it are `NAME@HASH`), and how long
    /// they took in all, in milliseconds.
    pub last_result: Option<JobResult>,
    pub last_duration_ms: Option<u64>,
}

/// The environment changes that point cargo at a key's isolated dir and buildd's tools.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CargoEnv {
    pub set: BTreeMap<String, String>,
    pub remove: Vec<String>,
    /// Arguments before the subcommand (`--config build.target-dir=...` when sccache is on).
    pub args: Vec<String>,
}

/// How a new key's dir was seeded from another.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeedMethod {
    /// Copy-on-write clones.
    Reflink,
    /// Copies, with hard links for the files cargo and rustc never rewrite in place.
    Copy,
}

impl std::fmt::Display for SeedMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SeedMethod::Reflink => "reflink",
            SeedMethod::Copy => "copy",
        })
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SeedStatus {
    /// The key hash of the dir it was seeded from.
    pub from: String,
    pub method: SeedMethod,
    pub files: u64,
    pub bytes: u64,
    pub reflinked: u64,
    pub hard_linked: u64,
    pub copied: u64,
    pub duration_ms: u64,
    /// Units the first job after seeding compiled; absent until it finished.
    pub units_rebuilt: Option<u64>,
    /// Units that job found fresh.
    pub units_fresh: Option<u64>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LinkerStatus {
    /// The setting: `auto`, `default`, `mold`, `lld`, `bfd` or a path.
    pub setting: String,
    /// The linker the jobs use now.
    pub linker: String,
    /// Why this linker, or why not the one asked for.
    pub note: Option<String>,
    /// Milliseconds per candidate, from the measurement on this workspace (auto only).
    pub measured: BTreeMap<String, u64>,
    /// Wall-clock milliseconds the linker ran during the last job, summed over its links.
    pub last_link_ms: Option<u64>,
    /// `last_link_ms` over the last job's duration.
    pub last_link_share: Option<f64>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkspaceSccache {
    pub enabled: bool,
    /// Why not, when not.
    pub note: Option<String>,
    /// Hits and misses of the server during the last job (other workspaces' jobs running at
    /// the same time count too).
    pub last_job_hits: Option<u64>,
    pub last_job_misses: Option<u64>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SccacheStatus {
    pub binary: PathBuf,
    pub version: String,
    /// The server's Unix socket.
    pub socket: PathBuf,
    /// Where the server stores: its local dir, or the shared backend.
    pub location: Option<String>,
    /// Counts since buildd's sccache server started.
    pub hits: u64,
    pub misses: u64,
    /// Compilations the server was asked for, cacheable or not.
    pub requests: u64,
    pub note: Option<String>,
    /// Distributed compilation through sccache-dist, when `[sccache.dist]` configures it.
    // Boxed: status messages stay small beside the protocol's other messages.
    #[serde(default)]
    pub dist: Option<Box<SccacheDistStatus>>,
}

/// buildd's sccache server and an sccache-dist scheduler: whether compilations go to build
/// servers, and how many went there or stayed here since the server started.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SccacheDistStatus {
    pub scheduler_url: String,
    /// Compilations go to build servers now: the server's configuration has the scheduler,
    /// and the last check found it accepting the token with at least one build server.
    pub active: bool,
    /// Build servers and their CPUs, from the last check that reached the scheduler.
    pub servers: Option<u64>,
    pub cpus: Option<u64>,
    /// Compilations the build servers ran.
    pub distributed: u64,
    /// Compilations that ran locally instead: the scheduler was down, refused the token or
    /// had no server, the compilation could not be sent (sccache sends only what it can
    /// cache), or it failed remotely (`dist_errors`).
    pub fell_back: u64,
    /// Compilations sent to a build server that failed there and ran locally.
    pub dist_errors: u64,
    /// Seconds since buildd last asked the scheduler (`null`: not yet).
    pub checked_secs_ago: Option<u64>,
    /// Seconds until buildd may ask again (after a job); `null` before the first check.
    pub next_check_secs: Option<u64>,
    /// Why compilations do not go out, or what else is wrong.
    pub note: Option<String>,
}

/// The isolated dirs together.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CacheTotals {
    pub dirs: u64,
    pub bytes: u64,
    pub budget_bytes: u64,
    /// Free bytes on the cache's file system.
    pub free_bytes: Option<u64>,
    /// Set when the disk is (nearly) full or a job ran out of space: what happened and what
    /// to do. The daemon keeps running.
    pub disk_full: Option<String>,
    /// Dirs evicted since the daemon started.
    pub evicted: u64,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CacheReport {
    pub dirs: Vec<CacheDir>,
    /// Dirs removed by this request.
    pub removed: Vec<CacheDir>,
    /// Dirs kept because they are in use.
    pub skipped: Vec<CacheDir>,
    pub totals: CacheTotals,
    /// For `cache_list`: dirs left by an import, a seed or an eviction that was killed
    /// (`<key>.importing`, `.seeding`, ...), which the next daemon start removes.
    #[serde(default)]
    pub staging_dirs: u64,
    #[serde(default)]
    pub staging_bytes: u64,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CacheDir {
    pub path: PathBuf,
    /// The workspace it belongs to, when its record says.
    pub workspace: Option<PathBuf>,
    pub key: Option<BuildKeyInfo>,
    pub bytes: u64,
    /// Seconds since the Unix epoch.
    pub last_used: u64,
    pub in_use: bool,
}

/// The name of a job definition: one cargo command that compiles, which the daemon keeps
/// warm (`clippy`, `build`, `test`, a `[jobs.NAME]` of the settings, or `learned-N` for a
/// command learned from use). A run of the daemon (job `#N` in status) runs its job
/// definitions one after another, as its stages; on the wire a stage is its name.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stage(pub String);

impl Stage {
    pub fn new(name: impl Into<String>) -> Stage {
        Stage(name.into())
    }

    /// Its name on the wire and in settings.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// `build, test`: a list of stages for people.
    pub fn list(stages: &[Stage]) -> String {
        stages
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a job definition comes from.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobOrigin {
    /// One of buildd's defaults: `clippy` (or `check`), `build`, `test`.
    Default,
    /// `[jobs.NAME]` in `buildd.toml`, `[workspace.metadata.buildd]` or the editor's settings.
    Config,
    /// A `buildd cargo` command the user ran, kept warm from then on.
    Learned,
}

/// One job definition of a workspace, as status shows it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobStatus {
    pub name: Stage,
    /// cargo's arguments (`clippy --workspace --all-targets`).
    pub command: Vec<String>,
    /// The dir cargo runs in, relative to the workspace root; empty for the root.
    #[serde(default)]
    pub dir: PathBuf,
    pub origin: JobOrigin,
    /// Whether its compiler messages are the workspace's diagnostics (editors, status).
    pub diagnostics: bool,
    /// How its last run ended, and how long it took.
    pub last_result: Option<JobResult>,
    pub last_duration_ms: Option<u64>,
    /// For a learned job: when the user last ran it (seconds since the Unix epoch).
    #[serde(default)]
    pub last_used: Option<u64>,
    /// Why it does not run after every change, when it does not: an expensive learned job
    /// that is rarely used, or a default job the user's recent commands did not need (those
    /// of its kind ran as narrower learned jobs), waits until the workspace has been quiet
    /// for a while.
    #[serde(default)]
    pub waiting: Option<String>,
    /// Anything the user should know (`clippy is not installed: ...`).
    #[serde(default)]
    pub note: Option<String>,
}

/// One `[jobs.NAME]` of the settings.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct JobConfig {
    /// cargo's arguments: a subcommand that only compiles (`check`, `clippy`, `build`,
    /// `test --no-run`, `bench --no-run`, `doc`, `rustc`) and its options.
    pub command: Vec<String>,
    /// Whether its compiler messages are the workspace's diagnostics (default: true for
    /// `check` and `clippy`, false otherwise).
    pub diagnostics: Option<bool>,
    /// `false` turns the job off; the way to turn off a default job (`[jobs.test]
    /// enabled = false`).
    pub enabled: Option<bool>,
}

/// `jobs` in the settings: the job definitions (`[jobs.NAME]`), or, as before there were
/// job definitions, cargo's `-j` (now `cargo_jobs`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum JobsSetting {
    Count(u32),
    Defs(BTreeMap<String, JobConfig>),
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CurrentJob {
    pub id: u64,
    pub stages: Vec<Stage>,
    /// The stage running now; absent before the first starts.
    pub stage: Option<Stage>,
    /// Units cargo reported so far.
    pub units_done: u64,
    /// The job's estimate of its units, as in its `job_started` event (absent from older
    /// daemons and before any job completed).
    #[serde(default)]
    pub expected_units: Option<u64>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastChange {
    pub files: Vec<PathBuf>,
    /// The affected packages: those whose targets read the files, and their reverse
    /// dependencies inside the workspace. All members when `full`.
    pub predicted: Vec<String>,
    /// A manifest, lock file, toolchain file or watcher rescan: everything is rebuilt.
    pub full: bool,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PredictionStats {
    /// Successful jobs whose prediction was measured (full jobs are not).
    pub jobs: u64,
    /// Of the packages predicted, the share cargo rebuilt; `null` before any measurement.
    pub precision: Option<f64>,
    /// Of the workspace packages cargo rebuilt, the share that was predicted.
    pub recall: Option<f64>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WatcherStatus {
    pub kind: WatcherKind,
    /// Times the watcher overflowed and everything was rebuilt.
    pub rescans: u64,
    /// Why the watcher is degraded, and what to do about it.
    pub note: Option<String>,
}

/// How a workspace is watched.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatcherKind {
    /// inotify.
    Native,
    /// Polling: inotify instances or watches ran out, or `BUILDD_WATCHER=poll`.
    Poll,
}

impl std::fmt::Display for WatcherKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WatcherKind::Native => "native",
            WatcherKind::Poll => "poll",
        })
    }
}

/// What went into the build key; two environments with the same key share artifacts.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BuildKeyInfo {
    pub hash: String,
    pub rustc: String,
    pub host: String,
    pub target: String,
    pub profile: String,
    pub features: String,
    /// The build-affecting environment variables that were set, by name.
    pub env: BTreeMap<String, String>,
    /// The linker setting (`default` unless configured).
    #[serde(default = "default_linker")]
    pub linker: String,
}

fn default_linker() -> String {
    "default".to_owned()
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobSummary {
    pub id: u64,
    pub stages: Vec<Stage>,
    pub result: JobResult,
    pub duration_ms: u64,
    /// Units cargo compiled (artifacts it reported as not fresh), over all stages.
    pub units_compiled: u64,
    pub errors: u64,
    pub warnings: u64,
    /// Packages with artifacts cargo reported as not fresh.
    pub rebuilt: Vec<String>,
    /// Why the job failed when it was not compile errors (cargo's own error output, cut).
    pub failure: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobResult {
    Success,
    Failed,
    /// A newer edit made it stale.
    Cancelled,
    /// It stopped for a user's `buildd cargo` that did not need its remaining stages; it
    /// runs again after the command.
    Yielded,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Note,
    Help,
}

/// The short form of a diagnostic that `status` lists.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DiagnosticSummary {
    pub file: PathBuf,
    /// 1-based.
    pub line: u32,
    /// 1-based, counted in characters as rustc counts them.
    pub column: u32,
    pub severity: Severity,
    pub message: String,
}

/// A diagnostic as it streams from a job: where it is, and rustc's whole diagnostic so that
/// an edge (the LSP sidecar) can convert spans, children and suggestions exactly.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub severity: Severity,
    pub message: String,
    /// The package whose compilation reported it.
    pub package: String,
    /// rustc's own diagnostic as cargo reported it; its span paths are relative to the
    /// workspace root. Its shape is rustc's, documented there, not mirrored in TypeScript.
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub rustc: cargo_metadata::diagnostic::Diagnostic,
}

impl Diagnostic {
    pub fn summary(&self) -> DiagnosticSummary {
        DiagnosticSummary {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            severity: self.severity,
            message: self.message.clone(),
        }
    }
}

/// One file's current diagnostics, all from one job.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileDiagnostics {
    pub file: PathBuf,
    /// The job that reported them: the file's generation.
    pub job: u64,
    pub diagnostics: Vec<Diagnostic>,
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
