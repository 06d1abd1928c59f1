//! `buildd cargo ARGS...`: the user's own cargo command, on the warm isolated dir.
//!
//! The command holds a lease on the dir while cargo runs, so the daemon starts no job of its
//! own meanwhile, and waits for a running job instead of blocking on cargo's lock. Anything
//! that stops buildd from helping (no workspace here, no daemon) falls back to plain cargo
//! with a one-line notice: the user's command always runs.

use std::ffi::OsString;
use std::process::ExitStatus;

use anyhow::bail;

use crate::connect::{Session, resolve_path};
use crate::lease::Lease;

pub(crate) async fn run(session: &Session, args: Vec<OsString>) -> anyhow::Result<i32> {
    let cwd = resolve_path(None)?;
    if !cwd.ancestors().any(|d| d.join("Cargo.toml").is_file()) {
        // `cargo new`, `cargo install` and friends need no workspace.
        return plain_cargo(&args, None);
    }
    let lossy: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match Lease::acquire(session, None, &lossy).await {
        Ok(lease) => {
            let status = lease.cargo(args.clone()).status();
            // The lease ends with the connection.
            drop(lease);
            match status {
                Ok(status) => Ok(exit_code(status)),
                Err(e) => bail!("failed to run cargo: {e}"),
            }
        }
        Err(e) => plain_cargo(&args, Some(format!("{e:#}"))),
    }
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
