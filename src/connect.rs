//! What every client command does first: find buildd's paths, reach the daemon (starting it
//! unless `--no-start`), and register the workspace it is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use buildd_daemon::client::{Client, ConnectOptions, current_env};
use buildd_daemon::paths::Paths;
use buildd_daemon::protocol::{Request, ServerMessage, WorkspaceStatus};

pub(crate) struct Session {
    pub(crate) autostart: bool,
}

impl Session {
    pub(crate) async fn connect(&self) -> anyhow::Result<Client> {
        let paths = Paths::from_env()?;
        let client = Client::connect(
            &paths,
            ConnectOptions {
                autostart: self.autostart,
                client: "cli",
            },
        )
        .await?;
        Ok(client)
    }

    /// Registers the workspace around `path` (the current directory by default) with this
    /// process's environment, and returns its status once the daemon has loaded it.
    pub(crate) async fn register(
        &self,
        client: &mut Client,
        path: Option<&Path>,
    ) -> anyhow::Result<WorkspaceStatus> {
        self.register_with(client, path, current_env()).await
    }

    /// [`Session::register`] with the environment the client's cargo runs with.
    pub(crate) async fn register_with(
        &self,
        client: &mut Client,
        path: Option<&Path>,
        env: BTreeMap<String, String>,
    ) -> anyhow::Result<WorkspaceStatus> {
        let path = resolve_path(path)?;
        let reply = client
            .call(Request::Register {
                path,
                env,
                settings: Default::default(),
            })
            .await?;
        match reply {
            ServerMessage::Registered { workspace, .. } => Ok(*workspace),
            other => bail!("unexpected reply to register: {other:?}"),
        }
    }
}

/// A path given on the command line that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use {}: {source}", path.display())]
pub(crate) struct BadPath {
    path: PathBuf,
    source: std::io::Error,
}

/// An absolute, existing path; the current directory when none is given.
pub(crate) fn resolve_path(path: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match path {
        Some(path) => path.to_path_buf(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    std::fs::canonicalize(&path).map_err(|source| BadPath { path, source }.into())
}
