//! `buildd cache list|gc|clear|export|import`: the isolated dirs as a whole.
//!
//! `list`, `gc` and `clear` are daemon requests: the daemon knows which dirs are in use.
//! `export` and `import` run here, in the client, while it holds the workspace's lease (no
//! daemon job touches the dir meanwhile); the work itself is `buildd_daemon::archive`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use buildd_daemon::client::Client;
use buildd_daemon::protocol::{CacheReport, Request, ServerMessage, WorkspaceStatus};

use crate::cli::CacheCommand;
use crate::connect::{Session, resolve_path};
use crate::{exit, render};

pub(crate) async fn run(session: &Session, command: CacheCommand) -> anyhow::Result<i32> {
    match command {
        CacheCommand::List { json } => request(session, Request::CacheList, json, "").await,
        CacheCommand::Gc { json } => request(session, Request::CacheGc, json, "evicted").await,
        CacheCommand::Clear { path, json } => {
            let path = path.as_deref().map(|p| resolve_path(Some(p))).transpose()?;
            request(session, Request::CacheClear { path }, json, "removed").await
        }
        CacheCommand::Export { path, output } => export(session, path, output).await,
        CacheCommand::Import { file, path } => import(session, file, path).await,
    }
}

async fn request(
    session: &Session,
    request: Request,
    json: bool,
    verb: &str,
) -> anyhow::Result<i32> {
    let mut client = session.connect().await?;
    let report = match client.call(request).await? {
        ServerMessage::Cache { cache, .. } => cache,
        other => bail!("unexpected reply to a cache request: {other:?}"),
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        out!("{}", render_report(&report, verb))?;
    }
    Ok(exit::SUCCESS)
}

fn render_report(report: &CacheReport, verb: &str) -> String {
    let mut out = String::new();
    if !verb.is_empty() {
        for dir in &report.removed {
            out.push_str(&format!(
                "{verb} {} ({})\n",
                dir.path.display(),
                render::human_size(dir.bytes)
            ));
        }
        for dir in &report.skipped {
            out.push_str(&format!("kept {} (in use)\n", dir.path.display()));
        }
    }
    out.push_str(&render::cache_dirs(&report.dirs));
    out.push_str(&render::cache_totals(&report.totals));
    if report.staging_dirs > 0 {
        out.push_str(&format!(
            "staging: {} in {} dir(s) left by a killed import or seed (removed when the daemon \
             starts again: `buildd stop`)\n",
            render::human_size(report.staging_bytes),
            report.staging_dirs
        ));
    }
    out
}

/// Registers the workspace and takes its lease. `args` says which daemon stages the command
/// needs finished first (as for a user's cargo command).
async fn lease(
    session: &Session,
    path: Option<&Path>,
    args: &[&str],
) -> anyhow::Result<(Client, WorkspaceStatus)> {
    let mut client = session.connect().await?;
    let workspace = session.register(&mut client, path).await?;
    let mut announced = false;
    let reply = client
        .call_with(
            Request::Acquire {
                root: workspace.root.clone(),
                args: args.iter().map(|a| a.to_string()).collect(),
                holder: Some(format!("`buildd cache` (pid {})", std::process::id())),
                // Not a user's command: nothing to learn.
                cwd: None,
            },
            |_| {
                if !announced {
                    announced = true;
                    errln!("buildd: waiting for the daemon's job on this workspace");
                }
            },
        )
        .await?;
    if !matches!(reply, ServerMessage::Acquired { .. }) {
        bail!("unexpected reply to acquire: {reply:?}");
    }
    // The status after the load, with the key.
    let workspace = match client
        .call(Request::Status {
            root: Some(workspace.root.clone()),
        })
        .await?
    {
        ServerMessage::Status { status, .. } => {
            status.workspaces.into_iter().next().unwrap_or(workspace)
        }
        _ => workspace,
    };
    Ok((client, workspace))
}

async fn export(session: &Session, path: Option<PathBuf>, output: PathBuf) -> anyhow::Result<i32> {
    let output =
        std::path::absolute(&output).with_context(|| format!("cannot use {}", output.display()))?;
    // An export waits for a running build and test to finish: they are what it carries.
    let (client, workspace) = lease(session, path.as_deref(), &["test", "--no-run"]).await?;
    let (Some(target_dir), Some(key)) = (workspace.target_dir.clone(), workspace.key.clone())
    else {
        bail!(
            "{} has no isolated dir yet: {}",
            workspace.root.display(),
            workspace
                .error
                .as_deref()
                .unwrap_or("run `buildd wait` first")
        );
    };
    let root = workspace.root.clone();
    let report = tokio::task::spawn_blocking(move || {
        buildd_daemon::archive::export(&root, &target_dir, &key, &output)
    })
    .await?
    .map_err(anyhow::Error::msg)?;
    drop(client);
    outln!(
        "exported {} ({} files, {}) to {}",
        workspace.root.display(),
        report.files,
        render::human_size(report.bytes),
        report.archive.display()
    )?;
    Ok(exit::SUCCESS)
}

async fn import(session: &Session, file: PathBuf, path: Option<PathBuf>) -> anyhow::Result<i32> {
    let file = resolve_path(Some(&file))?;
    // Fail on a foreign or damaged file before touching the daemon.
    buildd_daemon::archive::read_manifest(&file).map_err(anyhow::Error::msg)?;
    // An import replaces the dir as `cargo clean` would: a running job has nothing to finish.
    let (client, workspace) = lease(session, path.as_deref(), &["clean"]).await?;
    let (Some(target_dir), Some(key)) = (workspace.target_dir.clone(), workspace.key.clone())
    else {
        bail!(
            "{} cannot be built as it is: {}",
            workspace.root.display(),
            workspace.error.as_deref().unwrap_or("no build key")
        );
    };
    let root = workspace.root.clone();
    let mut env = buildd_daemon::client::current_env();
    if let Some(cargo_env) = &workspace.cargo_env {
        for name in &cargo_env.remove {
            env.remove(name);
        }
        env.extend(cargo_env.set.clone());
    }
    let budget = configured_budget()?;
    let report = tokio::task::spawn_blocking(move || {
        buildd_daemon::archive::import(&file, &root, &target_dir, &key, &env, budget)
    })
    .await?;
    drop(client);
    let report = match report {
        Ok(report) => report,
        Err(message) => {
            errln!("buildd: {message}");
            return Ok(exit::FAILURE);
        }
    };
    outln!(
        "imported {} files (exported from {} by buildd {}) into {}",
        report.files,
        report.manifest.exported_from.display(),
        report.manifest.buildd_version,
        workspace.root.display()
    )?;
    if report.invalidated.is_empty() {
        outln!("nothing differs from the exporter's workspace: everything is fresh")?;
    } else {
        outln!(
            "{} file(s) differ; the next build compiles: {}",
            report.changed_files.len(),
            report.invalidated.join(", ")
        )?;
    }
    if report.lock_changed {
        outln!("Cargo.lock differs: dependencies that changed version will build too")?;
    }
    Ok(exit::SUCCESS)
}

/// The cache's configured disk budget, as the daemon reads it (the environment, then
/// `config.toml`), and where it is set; `None` for the default.
fn configured_budget() -> anyhow::Result<Option<(u64, String)>> {
    use buildd_daemon::config::{BUDGET_ENV, RawDaemonConfig};
    let paths = buildd_daemon::paths::Paths::from_env()?;
    let config_file = paths.config_file();
    let config = RawDaemonConfig::default()
        .resolve(paths)
        .map_err(anyhow::Error::msg)?;
    Ok(config.budget.map(|bytes| {
        let set_by = match std::env::var_os(BUDGET_ENV) {
            Some(_) => BUDGET_ENV.to_owned(),
            None => format!("[cache] budget in {}", config_file.display()),
        };
        (bytes, set_by)
    }))
}
