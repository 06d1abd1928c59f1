//! The command line, as clap types. Parsing only; the commands live in `commands/`.

use std::ffi::OsString;
use std::path::PathBuf;

use buildd_daemon::config::duration;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "buildd",
    version,
    about = "Keeps cargo workspaces warm: a background daemon builds what you edit, so \
             `buildd cargo build` and `buildd cargo test` find nothing left to compile",
    after_help = "Exit codes: 0 success; 1 failure (a failed job for `wait`); 2 usage; \
                  3 not a cargo workspace; 4 daemon unreachable or not answering; 5 refused (by the daemon, \
                  or a home or socket of another user); \
                  6 the workspace is in the error state. `buildd cargo` exits with cargo's code."
)]
pub(crate) struct Cli {
    /// Never start the daemon: fail if it is not running. `BUILDD_NO_START` takes
    /// 1/0, true/false, yes/no, on/off.
    #[arg(
        long,
        global = true,
        env = "BUILDD_NO_START",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub(crate) no_start: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run cargo against the workspace's warm isolated target dir.
    ///
    /// Registers the workspace around the current directory, waits for a running daemon job
    /// on the dir instead of racing it for cargo's lock, then runs `cargo ARGS...` with the
    /// environment the daemon builds with. cargo's output and exit code pass through. With no
    /// daemon reachable it runs plain cargo.
    #[command(disable_help_flag = true)]
    Cargo {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Print shell exports that point plain `cargo` at the warm dir: eval "$(buildd env)".
    Env {
        /// A path in the workspace; the current directory by default.
        path: Option<PathBuf>,
    },
    /// Watch a workspace and follow its jobs, with progress and diagnostics, until Ctrl-C.
    ///
    /// On a terminal it opens a full-screen view (errors first, keys to rebuild, cancel, run
    /// the tests, switch jobs; `?` lists them); with --plain, or when stdout is not a
    /// terminal, it prints one line per event instead. See docs/terminal.md.
    ///
    /// With --test, run the workspace's tests (cargo-nextest when installed, else cargo test)
    /// after every successful build. With --run, keep a binary running and restart it when a
    /// build changed it (with --test, only when the tests pass); a failed build keeps the old
    /// one running. Arguments after `--` go to the program with --run, to the test runner
    /// otherwise.
    Watch {
        /// A path in the workspace; the current directory by default.
        path: Option<PathBuf>,
        #[command(flatten)]
        options: WatchOptions,
    },
    /// Print the daemon's events as they happen (one JSON object per line with --json).
    Events {
        /// A workspace to follow (registered if it is not); every workspace by default.
        path: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Register a workspace and wait until the daemon has it warm.
    ///
    /// Exits 0 when the last job succeeded, 1 when it failed, 6 when the workspace cannot
    /// be built as it is.
    Wait {
        /// A path in the workspace; the current directory by default.
        path: Option<PathBuf>,
        /// Give up after this long (for example 10m).
        #[arg(long, value_parser = duration)]
        timeout: Option<std::time::Duration>,
    },
    /// Show the daemon and its workspaces.
    Status {
        /// Only the workspace containing this path.
        path: Option<PathBuf>,
        /// Print JSON (documented in docs/protocol.md).
        #[arg(long)]
        json: bool,
    },
    /// Stop the daemon: cancel its jobs and remove its socket.
    Stop,
    /// Serve LSP on stdio for an editor: diagnostics and progress of the daemon's jobs.
    ///
    /// Registers the editor's workspace folders (starting the daemon unless --no-start) and
    /// publishes the jobs' diagnostics and progress. See docs/editors/lsp.md.
    Lsp {
        /// Accepted for editors that pass it; stdio is the only transport.
        #[arg(long)]
        stdio: bool,
    },
    /// The isolated dirs: list them, evict to the budget, clear, export and import.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// The workspace's jobs: the cargo commands the daemon keeps warm.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Run the daemon in the foreground.
    Daemon {
        /// Shut down after this long without clients or work.
        #[arg(long, value_parser = duration, env = "BUILDD_IDLE_TIMEOUT", default_value = "3h")]
        idle_timeout: std::time::Duration,
        /// How long to wait after a change for more changes before building.
        #[arg(long, value_parser = duration, env = "BUILDD_DEBOUNCE", default_value = "150ms")]
        debounce: std::time::Duration,
    },
}

/// What `buildd watch` does besides following jobs.
#[derive(Debug, clap::Args)]
pub(crate) struct WatchOptions {
    /// Print lines of events instead of opening the full-screen view (lines are the default
    /// when stdout is not a terminal).
    #[arg(long)]
    pub(crate) plain: bool,
    /// Run the tests after every successful build.
    #[arg(long)]
    pub(crate) test: bool,
    /// Keep a binary of the workspace running, restarted on every build that changed it.
    #[arg(long)]
    pub(crate) run: bool,
    /// The binary to run, when the workspace has several.
    #[arg(long, requires = "run")]
    pub(crate) bin: Option<String>,
    /// How long the program gets to stop on SIGTERM before SIGKILL.
    #[arg(long, value_parser = duration, default_value = "5s")]
    pub(crate) grace: std::time::Duration,
    /// Restart the program, with backoff, when it exits on its own.
    #[arg(long, requires = "run")]
    pub(crate) restart_on_exit: bool,
    /// Arguments for the program with --run, for the test runner otherwise.
    #[arg(last = true)]
    pub(crate) args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// List the jobs (default, configured, learned) with their last results.
    List {
        /// A path in the workspace; the current directory by default.
        path: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Forget the jobs learned from the `buildd cargo` commands run in the workspace at PATH
    /// (in every registered workspace with --all).
    Forget {
        /// A path in the workspace; the current directory by default.
        path: Option<PathBuf>,
        #[arg(long, conflicts_with = "path")]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// List every isolated dir: workspace, key, size, last use.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Evict least recently used dirs until the cache fits its budget (never a dir in use).
    Gc {
        #[arg(long)]
        json: bool,
    },
    /// Remove the isolated dirs of the workspace at PATH (every dir without PATH), except
    /// those in use.
    Clear {
        path: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Write the workspace's warm dir to a compressed archive with a manifest.
    Export {
        /// A path in the workspace; the current directory by default.
        path: Option<PathBuf>,
        /// The archive to write (conventionally NAME.tar.zst).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Install an archive from `buildd cache export` as the workspace's warm dir.
    ///
    /// Refuses an archive built by another toolchain or with other build settings. Packages
    /// whose files differ from the exporter's are rebuilt by the next build; the rest is
    /// fresh.
    Import {
        file: PathBuf,
        /// A path in the workspace; the current directory by default.
        path: Option<PathBuf>,
    },
}
