//! What the daemon reports: the `status` reply and its parts (workspaces, jobs, keys, the
//! tools, the cache), the diagnostics, and the test and program reports clients send. Part of
//! the wire (`protocol.rs` re-exports every type here, and documents the rules); it imports
//! nothing of the crate, so the messages of `protocol.rs` may use it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// A build or test run failed: the process that runs keeps running. That is the old
    /// build, unless the program was restarted as soon as the job linked its binary and the
    /// job failed after that: then it is the new build, and the message says so.
    Kept,
    /// Stopped with the watch loop.
    Stopped,
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
    /// The `fast_link` setting: on or off, what it sets, and what it saves.
    #[serde(default)]
    pub fast_link: Option<FastLinkStatus>,
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
    /// The last early run: after a save, the saved crate's own compiler command from the
    /// last job, run again while the job starts, for sooner diagnostics. Absent until one
    /// ran.
    #[serde(default)]
    pub early: Option<EarlyStatus>,
}

/// What an early run of a crate's own compiler command found (docs/protocol.md).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EarlyStatus {
    /// The generation its diagnostics carry: the id just below the job it ran beside.
    pub job: u64,
    pub package: String,
    /// The crate, as rustc names it.
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub errors: u64,
    pub warnings: u64,
    pub duration_ms: u64,
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

/// The `fast_link` setting of a workspace.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FastLinkStatus {
    pub enabled: bool,
    /// The settings it adds to cargo's environment (`NAME=value`), when on.
    pub sets: Vec<String>,
    /// What it saved per link where it was measured, and where that figure comes from.
    pub saving: String,
    /// What it leaves alone: a setting the client's environment already makes.
    pub note: Option<String>,
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
    /// of its kind ran as narrower learned jobs, or as the default jobs that select the
    /// root's packages the other way), waits until the workspace has been quiet for a while.
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
    /// Whether the `fast_link` setting is on: its debug-info settings are part of the key.
    #[serde(default)]
    pub fast_link: bool,
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
