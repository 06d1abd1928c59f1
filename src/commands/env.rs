//! `buildd env`: shell exports that make plain `cargo` in this shell use the warm dir.

use std::path::PathBuf;

use anyhow::anyhow;

use crate::connect::Session;
use crate::exit;

pub(crate) async fn run(session: &Session, path: Option<PathBuf>) -> anyhow::Result<i32> {
    let mut client = session.connect().await?;
    let workspace = session.register(&mut client, path.as_deref()).await?;
    let Some(target_dir) = workspace.target_dir else {
        eprintln!(
            "buildd: {}",
            workspace
                .error
                .ok_or_else(|| anyhow!("the daemon has no target dir for this workspace"))?
        );
        return Ok(exit::WORKSPACE_ERROR);
    };
    let (set, remove) = buildd_daemon::cargo_env(&target_dir);
    for (name, value) in set {
        println!("export {name}={}", shlex::try_quote(&value)?);
    }
    for name in remove {
        println!("unset {name}");
    }
    Ok(exit::SUCCESS)
}
