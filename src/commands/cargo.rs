//! `buildd cargo ARGS...`: the user's own cargo command, on the warm isolated dir.
//!
//! The command holds a lease on the dir while cargo runs, so the daemon starts no job of its
//! own meanwhile, and waits for a running job instead of blocking on cargo's lock. Anything
//! that stops buildd from helping (no workspace here, no daemon) falls back to plain cargo
//! with a one-line notice: the user's command always runs.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitStatus;

use anyhow::bail;
use buildd_daemon::client::Client;
use buildd_daemon::protocol::{EventKind, Request, ServerMessage};
use indicatif::{ProgressBar, ProgressStyle};

use crate::connect::{Session, resolve_path};

pub(crate) async fn run(session: &Session, args: Vec<OsString>) -> anyhow::Result<i32> {
    let cwd = resolve_path(None)?;
    if !cwd.ancestors().any(|d| d.join("Cargo.toml").is_file()) {
        // `cargo new`, `cargo install` and friends need no workspace.
        return plain_cargo(&args, None);
    }
    match lease(session, &args).await {
        Ok((client, env_set, env_remove)) => {
            let mut command = std::process::Command::new("cargo");
            command.args(&args).envs(env_set);
            for name in env_remove {
                command.env_remove(name);
            }
            let status = command.status();
            // The lease ends with the connection.
            drop(client);
            match status {
                Ok(status) => Ok(exit_code(status)),
                Err(e) => bail!("failed to run cargo: {e}"),
            }
        }
        Err(e) => plain_cargo(&args, Some(format!("{e:#}"))),
    }
}

type Lease = (
    Client,
    std::collections::BTreeMap<String, String>,
    Vec<String>,
);

async fn lease(session: &Session, args: &[OsString]) -> anyhow::Result<Lease> {
    let mut client = session.connect().await?;
    let workspace = session.register(&mut client, None).await?;
    client
        .call(Request::Subscribe {
            root: Some(workspace.root.clone()),
        })
        .await?;
    let progress = Waiting::new();
    let reply = client
        .call_with(
            Request::Acquire {
                root: workspace.root.clone(),
                args: args
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            },
            |message| progress.update(&message),
        )
        .await;
    progress.finish();
    match reply? {
        ServerMessage::Acquired {
            env_set,
            env_remove,
            ..
        } => Ok((client, env_set, env_remove)),
        other => bail!("unexpected reply to acquire: {other:?}"),
    }
}

/// What the user sees while the daemon's job finishes: a spinner naming the crate on a
/// terminal, one line otherwise.
struct Waiting {
    bar: ProgressBar,
    announced: std::cell::Cell<bool>,
}

impl Waiting {
    fn new() -> Waiting {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template("{spinner} buildd: waiting for the daemon's job: {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Waiting {
            bar,
            announced: std::cell::Cell::new(false),
        }
    }

    fn update(&self, message: &ServerMessage) {
        let ServerMessage::Event { event } = message else {
            return;
        };
        if !self.announced.replace(true) {
            if std::io::stderr().is_terminal() {
                self.bar
                    .set_draw_target(indicatif::ProgressDrawTarget::stderr());
                self.bar
                    .enable_steady_tick(std::time::Duration::from_millis(100));
            } else {
                eprintln!("buildd: waiting for the daemon's job on this workspace to finish");
            }
        }
        match &event.kind {
            EventKind::StageStarted { stage, .. } => self.bar.set_message(stage.clone()),
            EventKind::UnitFinished {
                package,
                stage,
                done,
                ..
            } => self
                .bar
                .set_message(format!("{stage}: {package} ({done} units)")),
            _ => {}
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn plain_cargo(args: &[OsString], reason: Option<String>) -> anyhow::Result<i32> {
    if let Some(reason) = reason {
        eprintln!("buildd: {reason}; running plain cargo");
    }
    match std::process::Command::new("cargo").args(args).status() {
        Ok(status) => Ok(exit_code(status)),
        Err(e) => bail!("failed to run cargo: {e}: install Rust with rustup or put cargo on PATH"),
    }
}

/// cargo's exit code; a signal becomes 128 + its number, as in a shell.
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
