//! The start of `buildd watch`: the stop signals, the daemon, the workspace and the program
//! to keep running, then the line follower or the view.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use buildd_daemon::protocol::{Request, WorkspaceStatus};

use crate::cli::WatchOptions;
use crate::commands::watch::after::{After, Say};
use crate::commands::watch::{lines, view};
use crate::connect::Session;
use crate::stop_signal::StopSignals;
use crate::supervise::Supervisor;

pub(crate) async fn run(
    session: &Session,
    path: Option<PathBuf>,
    options: WatchOptions,
) -> anyhow::Result<i32> {
    let stop = StopSignals::listen().context("failed to listen for Ctrl-C")?;
    let mut client = session.connect().await?;
    let workspace = session.register(&mut client, path.as_deref()).await?;
    let root = workspace.root.clone();
    let supervisor = match options.run {
        true => Some(supervisor_for(&workspace, &options)?),
        false => None,
    };
    client
        .call(Request::Subscribe {
            root: Some(root.clone()),
        })
        .await?;
    // Without --test the program restarts as soon as a job links it: the daemon runs that
    // build first for as long as this connection lasts. With --test the tests gate the
    // restart after the whole job, so the order would not bring it sooner.
    if let Some(supervisor) = supervisor.as_ref().filter(|_| !options.test) {
        client
            .call(Request::Supervise {
                root: root.clone(),
                bin: supervisor.name.clone(),
            })
            .await
            .context("the daemon refused to run the program's build first")?;
    }
    if wants_view(&options) {
        let after = After::new(session, root, &options, Say::Keep(Vec::new()));
        return view::follow(client, after, supervisor, stop, workspace).await;
    }
    let after = After::new(session, root, &options, Say::Print);
    lines::follow(client, after, supervisor, stop, workspace).await
}

/// The view on a terminal that can show it; lines with `--plain`, when stdout is not a
/// terminal (a pipe, a file, an editor's task runner), or on a `dumb` one.
fn wants_view(options: &WatchOptions) -> bool {
    !options.plain
        && std::io::stdout().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// The supervisor of the binary `--run` keeps running: `--bin NAME`, or the workspace's only
/// binary.
fn supervisor_for(
    workspace: &WorkspaceStatus,
    options: &WatchOptions,
) -> anyhow::Result<Supervisor> {
    let Some(target_dir) = &workspace.target_dir else {
        bail!(
            "{} cannot be built as it is: {}",
            workspace.root.display(),
            workspace.error.as_deref().unwrap_or("no target dir")
        );
    };
    let bins = binaries(&workspace.root)?;
    let name = match (&options.bin, bins.as_slice()) {
        (Some(bin), _) if bins.contains(bin) => bin.clone(),
        (Some(bin), _) => bail!(
            "the workspace has no binary `{bin}`; it has: {}",
            if bins.is_empty() {
                "none".to_owned()
            } else {
                bins.join(", ")
            }
        ),
        (None, [only]) => only.clone(),
        (None, []) => bail!(
            "the workspace at {} has no binary to run",
            workspace.root.display()
        ),
        (None, _) => bail!(
            "the workspace has several binaries ({}): pick one with --bin",
            bins.join(", ")
        ),
    };
    let path = target_dir.join("debug").join(&name);
    Ok(Supervisor::new(
        name,
        path,
        options.args.clone(),
        options.grace,
    ))
}

/// The names of the binaries of the workspace's members.
fn binaries(root: &Path) -> anyhow::Result<Vec<String>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .current_dir(root)
        .no_deps()
        .exec()
        .with_context(|| format!("cargo metadata failed in {}", root.display()))?;
    let members: std::collections::BTreeSet<_> = metadata.workspace_members.iter().collect();
    let mut bins: Vec<String> = metadata
        .packages
        .iter()
        .filter(|p| members.contains(&p.id))
        .flat_map(|p| p.targets.iter())
        .filter(|t| t.is_bin())
        .map(|t| t.name.clone())
        .collect();
    bins.sort();
    Ok(bins)
}
