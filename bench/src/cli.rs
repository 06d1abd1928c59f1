//! The command line, as clap types, and its resolution into the settings a run uses.
//!
//! Parsing only: nothing here touches the file system beyond making paths absolute.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::generate::Deps;

#[derive(Debug, Parser)]
#[command(
    name = "buildd-bench",
    version,
    about = "Measures plain cargo against buildd, side by side, on a copy of a workspace",
    long_about = "Measures plain cargo against buildd, side by side, on a copy of a workspace.\n\n\
        The workspace is copied to a temporary dir and never touched; buildd runs with a \
        BUILDD_HOME of its own. After one cold build on both sides, each round edits FILE in \
        both copies (a new private function; in diagnostic rounds with an unused variable) and \
        times plain `cargo check`, `cargo build` and `cargo test --no-run` against the daemon's \
        diagnostics, its pipeline and the warm `buildd cargo build` and \
        `buildd cargo test --no-run`, alternating which side goes first. The last line printed \
        is `warm-build-speedup=X diag-latency-ratio=Y`.",
    after_help = "Build buildd first: cargo build --release -p buildd (the harness uses the \
        buildd binary next to its own, or --buildd PATH)."
)]
pub(crate) struct Args {
    /// The cargo workspace to measure (any directory of it); it is copied, never changed.
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "generate",
        requires = "edit"
    )]
    pub(crate) workspace: Option<PathBuf>,

    /// The file each round edits, relative to the workspace root; with --generate, the
    /// generated workspace's lowest library by default.
    #[arg(long, value_name = "FILE")]
    pub(crate) edit: Option<PathBuf>,

    /// Measure a generated workspace of N crates (chains, a diamond and a binary with a few
    /// crates.io dependencies) instead of --workspace.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub(crate) generate: Option<u32>,

    /// With --generate: the binary's crates.io dependencies: `few` small ones (a quick cold
    /// build), or `large`, a tree of 287 crates.io packages (tokio, axum, clap, serde, gix
    /// and more), where cargo's start-up is a large part of a bare `cargo check`.
    // `conflicts_with`: clap drops `requires = "generate"` when `--workspace`, which
    // conflicts with `--generate`, is given.
    #[arg(
        long,
        value_enum,
        value_name = "TREE",
        default_value_t = Deps::Few,
        requires = "generate",
        conflicts_with = "workspace"
    )]
    pub(crate) deps: Deps,

    /// With --generate: only write the generated workspace into DIR and exit.
    #[arg(
        long,
        value_name = "DIR",
        requires = "generate",
        conflicts_with = "workspace"
    )]
    pub(crate) generate_into: Option<PathBuf>,

    /// Measured rounds; even rounds (the first, the third, ...) are diagnostic rounds.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) runs: u32,

    /// Also write the results as JSON to OUT.
    #[arg(long, value_name = "OUT")]
    pub(crate) json: Option<PathBuf>,

    /// The buildd binary; by default the one next to this binary.
    #[arg(long, value_name = "PATH")]
    pub(crate) buildd: Option<PathBuf>,

    /// How long the idle measurement watches the daemon with no edits.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = buildd_daemon::config::duration)]
    pub(crate) idle: Duration,

    /// How many workspaces are registered during the idle measurement (copies of the
    /// workspace; each one is built cold by the daemon first).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub(crate) idle_workspaces: u32,

    /// Fail when `buildd lsp` is not available instead of reporting the LSP figure as missing.
    #[arg(long)]
    pub(crate) require_lsp: bool,

    /// Give up on any single wait (a cold build, a job, a command) after this long.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = buildd_daemon::config::duration)]
    pub(crate) timeout: Duration,

    /// Keep the temporary dir with the copies, the logs and buildd's state, and say where.
    #[arg(long)]
    pub(crate) keep: bool,

    /// Day mode: each round runs a script of the user's own commands (by default, with
    /// --generate, `clippy; run -p app; test -p lib001; build --release`) with plain cargo
    /// and, once the daemon is idle, with `buildd cargo`, and reports the units and time of
    /// each; no idle measurement.
    #[arg(long)]
    pub(crate) day: bool,

    /// Register the buildd side with `fast_link = true` (split debug info: links read and
    /// write less; see docs/benchmarks.md, *fast_link*). Plain cargo keeps the profile as
    /// it is, as a user without buildd has it.
    #[arg(long)]
    pub(crate) fast_link: bool,

    /// With --day: how long the workspace must be quiet before the daemon runs a default job
    /// the script's commands do not need (its `unused_quiet_secs`, whole seconds; by default
    /// the daemon's own, 5 minutes). The run waits for it after the last round.
    #[arg(long, value_name = "DURATION", requires = "day", value_parser = buildd_daemon::config::duration)]
    pub(crate) unused_quiet: Option<Duration>,

    /// With --day: the commands, cargo's arguments separated by `;` (`cargo` in front is
    /// optional). Required with --workspace.
    #[arg(long, value_name = "SCRIPT", requires = "day")]
    pub(crate) day_script: Option<String>,

    /// Restart mode (the bot loop): each round times, after the edit, plain `cargo build`
    /// and then the program started by hand, against `buildd watch --run` restarting it,
    /// until the program prints its start line (--announce); no idle measurement.
    #[arg(long, conflicts_with = "day")]
    pub(crate) restart: bool,

    /// With --restart: the binary to run (default with --generate: `app`).
    #[arg(long, value_name = "NAME", requires = "restart")]
    pub(crate) bin: Option<String>,

    /// With --restart: text of the line the program prints when it starts (default with
    /// --generate: `total `, the generated `app`'s first line).
    #[arg(long, value_name = "TEXT", requires = "restart")]
    pub(crate) announce: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn workspace_needs_an_edit_and_excludes_generate() {
        assert!(Args::try_parse_from(["b", "--workspace", "/w"]).is_err());
        assert!(Args::try_parse_from(["b", "--workspace", "/w", "--edit", "src/lib.rs"]).is_ok());
        assert!(
            Args::try_parse_from(["b", "--workspace", "/w", "--edit", "x", "--generate", "3"])
                .is_err()
        );
        let args = Args::try_parse_from(["b", "--generate", "3", "--runs", "1"]).unwrap();
        assert_eq!((args.generate, args.runs), (Some(3), 1));
        assert_eq!(args.deps, Deps::Few);
        let args = Args::try_parse_from(["b", "--generate", "3", "--deps", "large"]).unwrap();
        assert_eq!(args.deps, Deps::Large);
        // The tree is the generated workspace's; a given workspace has its own.
        assert!(
            Args::try_parse_from(["b", "--workspace", "/w", "--edit", "x", "--deps", "large"])
                .is_err()
        );
        assert!(Args::try_parse_from(["b", "--generate", "3", "--deps", "huge"]).is_err());
        assert!(Args::try_parse_from(["b", "--edit", "x", "--deps", "large"]).is_err());
        assert!(
            Args::try_parse_from([
                "b",
                "--workspace",
                "/w",
                "--edit",
                "x",
                "--generate-into",
                "d"
            ])
            .is_err()
        );
        assert_eq!(args.idle, Duration::from_secs(10));
    }

    #[test]
    fn restart_mode_takes_a_program_and_excludes_day_mode() {
        assert!(Args::try_parse_from(["b", "--generate", "3", "--bin", "app"]).is_err());
        assert!(Args::try_parse_from(["b", "--generate", "3", "--restart", "--day"]).is_err());
        let args = Args::try_parse_from([
            "b",
            "--generate",
            "3",
            "--restart",
            "--bin",
            "app",
            "--announce",
            "up",
        ])
        .unwrap();
        assert!(args.restart);
        assert_eq!(
            (args.bin.as_deref(), args.announce.as_deref()),
            (Some("app"), Some("up"))
        );
    }

    #[test]
    fn a_day_script_needs_day_mode() {
        assert!(Args::try_parse_from(["b", "--generate", "3", "--day-script", "build"]).is_err());
        let args = Args::try_parse_from(["b", "--generate", "3", "--day", "--day-script", "build"])
            .unwrap();
        assert!(args.day);
        assert_eq!(args.day_script.as_deref(), Some("build"));
    }
}
