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
        let mut state = WorkspaceState::Queued;
        let mut said = None;
        // The jobs that finished while waiting: the last one is in the status printed at the
        // end, but an earlier one may have done the work (a cold build, then a job of fresh
        // units after cargo wrote Cargo.lock).
        let mut finished = Vec::new();
        // The first pass asks for the state; later ones when nothing came for a while.
        let mut ask = true;
        loop {
            if ask {
                (state, said) = waiting_for(&mut client, &root, said).await?;
            }
            match state {
                WorkspaceState::Queued | WorkspaceState::Running => {}
                done => break Ok::<_, anyhow::Error>((client, root, done, finished)),
            }
            ask = false;
            match tokio::time::timeout(QUIET, client.recv()).await {
                Err(_) => ask = state == WorkspaceState::Queued,
                Ok(message) => match message? {
                    Some(ServerMessage::Event { event }) => match event.kind {
                        EventKind::State { state: new, .. } => state = new,
                        EventKind::JobFinished { summary, .. } => finished.push(summary),
                        _ => {}
                    },
                    Some(_) => {}
                    None => bail!("the daemon closed the connection"),
                },
            }
        }
    };
    let (mut client, root, state, finished) = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| anyhow!("the workspace was not idle within {timeout:?}"))??,
        None => wait.await?,
    };
    if let ServerMessage::Status { status, .. } =
        client.call(Request::Status { root: Some(root) }).await?
        && let Some(ws) = status.workspaces.first()
    {
        let last = ws.last_job.as_ref().map(|j| j.id);
        let earlier: Vec<_> = finished.iter().filter(|j| Some(j.id) != last).collect();
        if !earlier.is_empty() {
            outln!("jobs while waiting:")?;
            for job in earlier {
                outln!("  {}", render::job_line(job))?;
            }
        }
        out!("{}", render::workspace(ws))?;
    }
    Ok(match state {
        WorkspaceState::Idle => exit::SUCCESS,
        WorkspaceState::Error => exit::WORKSPACE_ERROR,
        _ => exit::FAILURE,
    })
}

/// How long `wait` goes without news before it asks what a queued job waits for.
const QUIET: Duration = Duration::from_secs(1);

/// The workspace's state now, and what its queued job waits for, printed when it is news
/// (`said`: what was printed last).
async fn waiting_for(
    client: &mut buildd_daemon::client::Client,
    root: &std::path::Path,
    said: Option<String>,
) -> anyhow::Result<(WorkspaceState, Option<String>)> {
    // The reply is newer than any event that arrives before it.
    let reply = client
        .call(Request::Status {
            root: Some(root.to_path_buf()),
        })
        .await?;
    let ServerMessage::Status { status, .. } = reply else {
        bail!("unexpected reply to status: {reply:?}");
    };
    let ws = status
        .workspaces
        .first()
        .ok_or_else(|| anyhow!("the daemon does not know {}", root.display()))?;
    if let Some(what) = &ws.waiting_for
        && said.as_ref() != Some(what)
    {
        errln!("buildd: the job waits: {what}");
    }
    Ok((ws.state, ws.waiting_for.clone().or(said)))
}
