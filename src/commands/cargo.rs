//! `buildd cargo ARGS...`: the user's own cargo command, on the warm isolated dir.
//!
//! The command holds a lease on the dir while cargo runs, so the daemon starts no job of its
//! own meanwhile, and waits for a running job instead of blocking on cargo's lock. Anything
//! that stops buildd from helping (no workspace here, no daemon) falls back to plain cargo
//! with a one-line notice: the user's command always runs. A command that neither compiles
//! nor touches a target dir (`--version`, `help`, `fmt`: see `needs_no_daemon`) is plain
//! cargo from the start, and starts no daemon.
//!
//! For `cargo run` the lease covers the build, not the program: the command first runs
//! `cargo build` with the same options under the lease, ends the lease, then runs the
//! user's `cargo run` as given, which finds the build fresh and starts the program with
//! everything cargo gives it (environment, runner, exit code). A long-running program thus
//! holds back no job of the daemon's.

use std::ffi::OsString;
use std::process::ExitStatus;

use anyhow::bail;
use buildd_daemon::rustc_info::Kind;

use crate::connect::{Session, resolve_path};
use crate::lease::Lease;

pub(crate) async fn run(session: &Session, args: Vec<OsString>) -> anyhow::Result<i32> {
    let lossy: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if buildd_daemon::needs_no_daemon(&lossy) {
        // `--version`, `help`, `fmt`...: nothing to wait for, so no daemon to start.
        return plain_cargo(&args, None);
    }
    let cwd = resolve_path(None)?;
    if !cwd.ancestors().any(|d| d.join("Cargo.toml").is_file()) {
        // `cargo new`, `cargo install` and friends need no workspace.
        return plain_cargo(&args, None);
    }
    match Lease::acquire(session, None, &lossy).await {
        Ok(lease) => {
            if let Some(error) = &lease.workspace_error {
                // One line: cargo's own output follows.
                errln!(
                    "buildd: the workspace has an error (cargo runs anyway): {}",
                    error.replace('\n', "; ")
                );
            }
            let mut command = lease.cargo(args.clone());
            // cargo's cache of the compiler's answers as the daemon's last command of this
            // kind left it: clippy's and the others' differ (`rustc_info.rs`).
            let kind = Kind::of(&lossy);
            let info = lease.rustc_info();
            if let Some(info) = &info {
                info.restore(kind);
            }
            if let Some(build) = build_of_run(&lossy) {
                let built = lease.cargo(build).status();
                if let Some(info) = &info {
                    info.keep(kind);
                }
                drop(lease);
                match built {
                    Ok(status) if status.success() => {}
                    Ok(status) => return Ok(exit_code(status)),
                    Err(e) => bail!("failed to run cargo: {e}"),
                }
                return finished(command.status());
            }
            let status = command.status();
            if let Some(info) = &info {
                info.keep(kind);
            }
            // The lease ends with the connection.
            drop(lease);
            finished(status)
        }
        Err(e) => plain_cargo(&args, Some(crate::out::error_text(&e))),
    }
}

fn finished(status: std::io::Result<ExitStatus>) -> anyhow::Result<i32> {
    match status {
        Ok(status) => Ok(exit_code(status)),
        Err(e) => bail!("failed to run cargo: {e}"),
    }
}

/// Options of cargo (before the subcommand) and of `cargo run` that take a separate value.
const VALUE_OPTIONS: &[&str] = &[
    "--config",
    "-Z",
    "-C",
    "--color",
    "-p",
    "--package",
    "--bin",
    "--example",
    "-F",
    "--features",
    "-j",
    "--jobs",
    "--profile",
    "--target",
    "--target-dir",
    "--manifest-path",
    "--message-format",
    "--lockfile-path",
    "--artifact-dir",
];

/// For `cargo [OPTIONS] run [OPTIONS] [-- ARGS]`, the `cargo build` that builds what it
/// runs: the same options, without the program's arguments (after `--`, or from the first
/// argument that is no option). `None` for every other command.
fn build_of_run(args: &[String]) -> Option<Vec<String>> {
    let mut build = Vec::new();
    let mut is_run = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        let option = arg.starts_with('-') || (!is_run && arg.starts_with('+') && build.is_empty());
        if !option {
            if is_run {
                // The program's first argument.
                break;
            }
            if arg != "run" && arg != "r" {
                return None;
            }
            is_run = true;
            build.push("build".to_owned());
            continue;
        }
        build.push(arg.clone());
        if VALUE_OPTIONS.contains(&arg.as_str())
            && let Some(value) = iter.next()
        {
            build.push(value.clone());
        }
    }
    is_run.then_some(build)
}

fn plain_cargo(args: &[OsString], reason: Option<String>) -> anyhow::Result<i32> {
    if let Some(reason) = reason {
        errln!("buildd: {reason}; running plain cargo");
    }
    match std::process::Command::new("cargo").args(args).status() {
        Ok(status) => Ok(exit_code(status)),
        Err(e) => bail!("failed to run cargo: {e}: install Rust with rustup or put cargo on PATH"),
    }
}

/// cargo's exit code; a signal becomes 128 + its number, as in a shell.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::build_of_run;

    fn of(args: &str) -> Option<String> {
        let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        build_of_run(&args).map(|b| b.join(" "))
    }

    #[test]
    fn a_run_builds_with_its_options_and_without_the_programs_arguments() {
        assert_eq!(of("run"), Some("build".into()));
        assert_eq!(of("r --release"), Some("build --release".into()));
        assert_eq!(
            of("+nightly --config a=1 run -p app --bin x -- --flag y"),
            Some("+nightly --config a=1 build -p app --bin x".into())
        );
        assert_eq!(
            of("run --features f one -- two"),
            Some("build --features f".into())
        );
        assert_eq!(
            of("run --features=f one"),
            Some("build --features=f".into())
        );
        assert_eq!(of("build --release"), None);
        assert_eq!(of("test -- run"), None);
        assert_eq!(of("--version"), None);
    }
}
