//! Holding a workspace's warm dir for a user command (`buildd cargo`, the test runs of
//! `buildd watch --test`): the daemon answers once no stage the command needs runs there,
//! cancels the ones it does not need, and starts nothing until the lease ends with the
//! connection. While it waits, the user sees the daemon's progress.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::bail;
use buildd_daemon::client::Client;
use buildd_daemon::protocol::{EventKind, Request, ServerMessage};
use indicatif::{ProgressBar, ProgressStyle};

use crate::connect::Session;

pub(crate) struct Lease {
    /// The lease lasts as long as this connection.
    _client: Client,
    env_set: BTreeMap<String, String>,
    env_remove: Vec<String>,
    /// Arguments cargo takes before the user's (a `--config` for the target dir).
    args_prefix: Vec<String>,
    /// The isolated dir cargo builds in (`None` from an older daemon).
    target_dir: Option<std::path::PathBuf>,
    /// Why the daemon cannot build the workspace as it is (a broken `buildd.toml`), when it
    /// cannot: the user's command runs anyway.
    pub(crate) workspace_error: Option<String>,
}

impl Lease {
    /// Registers the workspace around `path` (the current directory by default) and waits
    /// for its dir, for a cargo command with `args`.
    pub(crate) async fn acquire(
        session: &Session,
        path: Option<&Path>,
        args: &[String],
    ) -> anyhow::Result<Lease> {
        Lease::acquire_showing(session, path, args, true).await
    }

    /// [`Lease::acquire`], saying on stderr that it waits only with `show_wait` (a
    /// full-screen view owns the terminal, and says it itself).
    pub(crate) async fn acquire_showing(
        session: &Session,
        path: Option<&Path>,
        args: &[String],
        show_wait: bool,
    ) -> anyhow::Result<Lease> {
        let mut client = session.connect().await?;
        let workspace = session
            .register_with(&mut client, path, env_of(args))
            .await?;
        // The subscription's `ok` is not waited for: the connection answers it before it
        // reads the acquire, so it arrives first and is passed over like an event, and a
        // round trip is saved on every command.
        client
            .send(Request::Subscribe {
                root: Some(workspace.root.clone()),
            })
            .await?;
        let progress = Waiting::new();
        let reply = client
            .call_with(
                Request::Acquire {
                    root: workspace.root.clone(),
                    args: args.to_vec(),
                    holder: Some(holder(args)),
                    cwd: match path {
                        Some(path) => Some(path.to_path_buf()),
                        None => std::env::current_dir().ok(),
                    },
                },
                |message| {
                    if show_wait {
                        progress.update(&message)
                    }
                },
            )
            .await;
        progress.finish();
        match reply? {
            ServerMessage::Acquired {
                env_set,
                env_remove,
                args,
                target_dir,
                ..
            } => Ok(Lease {
                _client: client,
                env_set,
                env_remove,
                args_prefix: args,
                target_dir,
                workspace_error: workspace.error,
            }),
            other => bail!("unexpected reply to acquire: {other:?}"),
        }
    }

    /// cargo's cache of the compiler's answers in the dir, which a command restores for its
    /// kind before cargo starts and keeps after it (`buildd_daemon::rustc_info`).
    pub(crate) fn rustc_info(&self) -> Option<buildd_daemon::rustc_info::RustcInfo> {
        self.target_dir.as_deref().map(buildd_daemon::rustc_info_of)
    }

    /// `cargo ARGS` with the environment and arguments the daemon builds with.
    pub(crate) fn cargo<T: From<String> + AsRef<std::ffi::OsStr>>(
        &self,
        args: Vec<T>,
    ) -> std::process::Command {
        let mut command = std::process::Command::new("cargo");
        command
            .args(buildd_daemon::cargo_args(&self.args_prefix, args))
            .envs(&self.env_set);
        for name in &self.env_remove {
            command.env_remove(name);
        }
        command
    }
}

/// The environment the command's cargo builds with: this process's, and for `cargo
/// +TOOLCHAIN ...` the `RUSTUP_TOOLCHAIN` that rustup's proxy sets from it, so that the
/// toolchain gets a key (and a warm dir) of its own.
fn env_of(args: &[String]) -> BTreeMap<String, String> {
    let mut env = buildd_daemon::client::current_env();
    if let Some(toolchain) = args.first().and_then(|a| a.strip_prefix('+')) {
        env.insert("RUSTUP_TOOLCHAIN".to_owned(), toolchain.to_owned());
    }
    env
}

/// How status names this command while the lease holds the daemon's jobs back.
fn holder(args: &[String]) -> String {
    let subcommand = args
        .iter()
        .find(|a| !a.starts_with('-') && !a.starts_with('+'))
        .map_or("cargo", String::as_str);
    format!("a `buildd cargo {subcommand}` (pid {})", std::process::id())
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
                errln!("buildd: waiting for the daemon's job on this workspace to finish");
            }
        }
        match &event.kind {
            EventKind::StageStarted { stage, .. } => self.bar.set_message(stage.name().to_owned()),
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
