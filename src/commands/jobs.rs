//! `buildd jobs`: the cargo commands the daemon keeps warm for a workspace, and forgetting
//! the learned ones.

use std::path::PathBuf;

use anyhow::bail;
use buildd_daemon::protocol::{Request, ServerMessage};

use crate::cli::JobsCommand;
use crate::connect::{Session, resolve_path};
use crate::{exit, render};

pub(crate) async fn run(session: &Session, command: JobsCommand) -> anyhow::Result<i32> {
    match command {
        JobsCommand::List { path, json } => {
            let path = resolve_path(path.as_deref())?;
            let mut client = session.connect().await?;
            let workspace = session.register(&mut client, Some(&path)).await?;
            let status = match client
                .call(Request::Status {
                    root: Some(workspace.root),
                })
                .await?
            {
                ServerMessage::Status { status, .. } => status,
                other => bail!("unexpected reply to status: {other:?}"),
            };
            let jobs: Vec<_> = status.workspaces.iter().flat_map(|w| &w.jobs).collect();
            if json {
                outln!("{}", serde_json::to_string_pretty(&jobs)?)?;
            } else {
                for ws in &status.workspaces {
                    out!("{}", render::jobs(&ws.jobs))?;
                }
            }
            Ok(exit::SUCCESS)
        }
        JobsCommand::Forget { path, all } => {
            let root: Option<PathBuf> = if all {
                None
            } else {
                Some(resolve_path(path.as_deref())?)
            };
            let mut client = session.connect().await?;
            if let Some(path) = &root {
                // A workspace the daemon does not have yet is registered, so that its
                // record in the state dir is the one forgotten.
                session.register(&mut client, Some(path)).await?;
            }
            match client
                .call(Request::JobsForget { root: root.clone() })
                .await?
            {
                ServerMessage::Ok { .. } => {}
                other => bail!("unexpected reply to jobs_forget: {other:?}"),
            }
            match root {
                Some(path) => outln!("forgot the learned jobs of {}", path.display())?,
                None => outln!("forgot the learned jobs of every registered workspace")?,
            }
            Ok(exit::SUCCESS)
        }
    }
}
