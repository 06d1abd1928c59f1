//! `buildd wait`: register a workspace and wait until the daemon has nothing left to do
//! for it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};
use buildd_daemon::protocol::{EventKind, Request, ServerMessage, WorkspaceState};

use crate::connect::Session;
use crate::{exit, render};

pub(crate) async fn run(
    session: &Session,
    path: Option<PathBuf>,
    timeout: Option<Duration>,
) -> anyhow::Result<i32> {
    let wait = async {
        let mut client = session.connect().await?;
        let workspace = session.register(&mut client, path.as_deref()).await?;
        let root = workspace.root.clone();
        // Subscribe before asking for the state, so no change falls between the two.
        client
            .call(Request::Subscribe {
                root: Some(root.clone()),
            })
            .await?;
        let mut state = match client
            .call(Request::Status {
                root: Some(root.clone()),
            })
            .await?
        {
            ServerMessage::Status { status, .. } => status
                .workspaces
                .first()
                .map(|w| w.state)
                .ok_or_else(|| anyhow!("the daemon does not know {}", root.display()))?,
            other => bail!("unexpected reply to status: {other:?}"),
        };
        loop {
            match state {
                WorkspaceState::Queued | WorkspaceState::Running => {}
                done => break Ok::<_, anyhow::Error>((client, root, done)),
            }
            match client.recv().await? {
                Some(ServerMessage::Event { event }) => {
                    if let EventKind::State { state: new, .. } = event.kind {
                        state = new;
                    }
                }
                Some(_) => {}
                None => bail!("the daemon closed the connection"),
            }
        }
    };
    let (mut client, root, state) = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| anyhow!("the workspace was not idle within {timeout:?}"))??,
        None => wait.await?,
    };
    if let ServerMessage::Status { status, .. } =
        client.call(Request::Status { root: Some(root) }).await?
        && let Some(ws) = status.workspaces.first()
    {
        out!("{}", render::workspace(ws))?;
    }
    Ok(match state {
        WorkspaceState::Idle => exit::SUCCESS,
        WorkspaceState::Error => exit::WORKSPACE_ERROR,
        _ => exit::FAILURE,
    })
}
