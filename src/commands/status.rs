//! `buildd status`: the daemon and its workspaces, as text or JSON.

use std::path::PathBuf;

use anyhow::bail;
use buildd_daemon::protocol::{Request, ServerMessage};

use crate::connect::{Session, resolve_path};
use crate::{exit, render};

pub(crate) async fn run(
    session: &Session,
    path: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<i32> {
    let root = path.as_deref().map(|p| resolve_path(Some(p))).transpose()?;
    let mut client = session.connect().await?;
    let status = match client.call(Request::Status { root }).await? {
        ServerMessage::Status { status, .. } => status,
        other => bail!("unexpected reply to status: {other:?}"),
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&status)?)?;
    } else {
        out!("{}", render::status(&status))?;
    }
    Ok(exit::SUCCESS)
}
