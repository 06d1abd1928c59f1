//! `buildd env`: shell exports that make plain `cargo` in this shell use the warm dir.

use std::path::PathBuf;

use anyhow::anyhow;

use crate::connect::Session;
use crate::exit;

pub(crate) async fn run(session: &Session, path: Option<PathBuf>) -> anyhow::Result<i32> {
    let mut client = session.connect().await?;
    let workspace = session.register(&mut client, path.as_deref()).await?;
    let Some(cargo_env) = workspace.cargo_env else {
        errln!(
            "buildd: {}",
            workspace
                .error
                .ok_or_else(|| anyhow!("the daemon has no target dir for this workspace"))?
        );
        return Ok(exit::WORKSPACE_ERROR);
    };
    // A shell has no arguments to give cargo: the target dir goes in the environment even
    // when buildd's own jobs pass it as `--config` (with sccache, so that no path reaches
    // rustc's environment). Plain cargo still finds the same artifacts fresh; only sccache
    // keys of what it compiles itself differ.
    let target_dir = workspace
        .target_dir
        .ok_or_else(|| anyhow!("the daemon has no target dir for this workspace"))?
        .to_string_lossy()
        .into_owned();
    let mut set = cargo_env.set;
    let mut remove = cargo_env.remove;
    if !cargo_env.args.is_empty() {
        set.insert("CARGO_TARGET_DIR".into(), target_dir.clone());
        set.insert("CARGO_BUILD_BUILD_DIR".into(), target_dir);
        remove.retain(|v| !set.contains_key(v));
    }
    for (name, value) in set {
        outln!("export {name}={}", shlex::try_quote(&value)?)?;
    }
    for name in remove {
        outln!("unset {name}")?;
    }
    Ok(exit::SUCCESS)
}
