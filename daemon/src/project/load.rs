//! Loading a workspace: finding its root, its toolchain and its `cargo metadata`.
//!
//! Everything here runs cargo or rustc as child processes with the registering client's
//! environment, asynchronously and with a timeout, so that a broken workspace (a malformed
//! manifest, a missing toolchain, a hanging rustup) becomes an error message in that
//! workspace's state and never blocks the daemon. Errors ([`LoadError`]) are meant for users:
//! they name the workspace, the command or the file and say what to do.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use cargo_metadata::Metadata;
use thiserror::Error;
use tokio::process::Command;

use crate::build::process::command;
use crate::home::regular_file::{self, NotRegular};
use crate::project::key::Toolchain;
use crate::project::root_cache::{self, RootCache};
use crate::project::settings::{self, SettingsError};
use crate::wire::protocol::WorkspaceSettings;

/// Why a part of a workspace could not be loaded; the text becomes the workspace's error,
/// which `buildd status` and the editor show. `what` is the command that ran.
///
/// `Clone`, with shared causes, because one cause (a FIFO where `Cargo.toml` should be) fails
/// the toolchain and the metadata alike.
#[derive(Debug, Clone, Error)]
pub(crate) enum LoadError {
    #[error("{what} did not finish within {}s", .timeout.as_secs())]
    Timeout {
        what: &'static str,
        timeout: Duration,
    },
    #[error(
        "{what} failed: the program was not found on PATH: install Rust with rustup \
         (https://rustup.rs) or put cargo on the PATH of the shell that runs buildd"
    )]
    NotFound { what: &'static str },
    #[error("{what} failed to start: {source}")]
    Spawn {
        what: &'static str,
        source: Arc<io::Error>,
    },
    /// `stderr` is what the command printed there, trimmed.
    #[error("{what} failed ({status}): {stderr}")]
    Failed {
        what: &'static str,
        status: ExitStatus,
        stderr: String,
    },
    /// Something other than a regular file where cargo reads one.
    #[error(transparent)]
    NotRegular(#[from] NotRegular),
    #[error(
        "{path} is not inside a cargo workspace (no Cargo.toml in it or above it): run buildd \
         inside a workspace or pass its path"
    )]
    NotAWorkspace { path: PathBuf },
    #[error("cargo metadata printed output buildd cannot read: {source}")]
    Metadata { source: Arc<cargo_metadata::Error> },
    #[error(transparent)]
    Settings(Arc<SettingsError>),
    /// The toolchain's `lib/rustlib`; only ever logged.
    #[error("failed to read {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: Arc<io::Error>,
    },
    /// The blocking task that read the files panicked or was cancelled.
    #[error("reading the workspace's files failed: {source}")]
    Blocking { source: Arc<tokio::task::JoinError> },
}

impl From<SettingsError> for LoadError {
    fn from(e: SettingsError) -> LoadError {
        LoadError::Settings(Arc::new(e))
    }
}

/// `cargo metadata` resolves dependencies and may update the registry index; give it time.
const METADATA_TIMEOUT: Duration = Duration::from_secs(300);
const VERSION_TIMEOUT: Duration = Duration::from_secs(120);

/// The result of loading a workspace. The toolchain and the metadata fail separately: a
/// malformed manifest still has a toolchain, so `buildd cargo` can run and show cargo's
/// own error.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) toolchain: Result<Toolchain, LoadError>,
    pub(crate) metadata: Result<Box<Metadata>, LoadError>,
    /// `buildd.toml` and `[workspace.metadata.buildd]`, merged.
    pub(crate) settings: Result<WorkspaceSettings, LoadError>,
    /// Whether `cargo clippy` works with the workspace's toolchain (rustup's clippy
    /// component): the default diagnostics job is clippy when it does, `cargo check` if not.
    pub(crate) clippy: bool,
    /// The targets whose std the toolchain has (`rustup target add`): the dirs of
    /// `<sysroot>/lib/rustlib`. `None` when the sysroot could not be read.
    pub(crate) targets: Option<std::collections::BTreeSet<String>>,
    /// The workspace's learned jobs, read from the state dir at its first load (the
    /// dispatcher knows where).
    pub(crate) learned: Option<crate::build::learned::LearnedJobs>,
}

/// Runs a command to completion and returns its stdout, or an error that quotes stderr.
async fn capture(
    mut cmd: Command,
    what: &'static str,
    timeout: Duration,
) -> Result<String, LoadError> {
    let output = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => return Err(LoadError::Timeout { what, timeout }),
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Err(LoadError::NotFound { what });
        }
        Ok(Err(e)) => {
            return Err(LoadError::Spawn {
                what,
                source: Arc::new(e),
            });
        }
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(LoadError::Failed {
            what,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// The root of the cargo workspace that contains `path`: `cargo locate-project`'s answer,
/// or the one `roots` kept from it while the files cargo reads to find it are unchanged.
pub(crate) async fn locate_root(
    path: &Path,
    env: &BTreeMap<String, String>,
    roots: &Arc<RootCache>,
) -> Result<PathBuf, LoadError> {
    let dir = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(path)
    };
    // cargo reads every Cargo.toml above the dir: one that is not a regular file (a FIFO)
    // would hang it until its timeout.
    let (ancestors, fingerprint_env) = (dir.to_path_buf(), env.clone());
    let before = off_the_workers(move || {
        ancestors
            .ancestors()
            .try_for_each(|d| regular_file::check_regular_if_present(&d.join("Cargo.toml")))
            .map_err(LoadError::from)?;
        Ok(root_cache::fingerprint(&ancestors, &fingerprint_env))
    })
    .await?;
    let Some(nearest) = nearest_manifest_dir(dir) else {
        return Err(LoadError::NotAWorkspace {
            path: path.to_path_buf(),
        });
    };
    if let Some(root) = before.and_then(|seen| roots.get(dir, env, seen)) {
        return Ok(root);
    }
    let mut cmd = command("cargo", dir, env);
    cmd.args(["locate-project", "--workspace", "--message-format", "plain"]);
    match capture(cmd, "cargo locate-project", VERSION_TIMEOUT).await {
        Ok(out) => {
            let manifest = PathBuf::from(out.trim());
            let root = manifest.parent().map(Path::to_path_buf).unwrap_or(nearest);
            let root = std::fs::canonicalize(&root).unwrap_or(root);
            // Kept only when nothing cargo read changed while it ran.
            let (again_dir, again_env) = (dir.to_path_buf(), env.clone());
            let after =
                off_the_workers(move || Ok(root_cache::fingerprint(&again_dir, &again_env)))
                    .await
                    .ok()
                    .flatten();
            if let Some(seen) = before
                && after == Some(seen)
            {
                roots.insert(dir, env, seen, root.clone());
            }
            Ok(root)
        }
        // A malformed manifest stops cargo from finding the root. Watch the nearest
        // manifest's dir, so that the workspace shows the error and recovers when fixed.
        Err(_) => Ok(nearest),
    }
}

pub(crate) fn nearest_manifest_dir(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// Files at a workspace's root that cargo and rustup read while loading and building it.
/// (`buildd.toml` is `settings.rs`'s to read.)
const CARGO_INPUTS: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "rust-toolchain",
    "rust-toolchain.toml",
    ".cargo/config",
    ".cargo/config.toml",
];

/// Runs blocking file work on tokio's blocking threads, never on an async worker: a file
/// that blocks must not stall the daemon.
async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, LoadError> + Send + 'static,
) -> Result<T, LoadError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(LoadError::Blocking {
            source: Arc::new(e),
        })
    })
}

pub(crate) async fn load(root: &Path, env: &BTreeMap<String, String>) -> Loaded {
    // A FIFO where cargo reads a file would hang every cargo until its timeout (a job's is an
    // hour): the same error for the toolchain and the metadata, said once by the dispatcher.
    let inputs_root = root.to_path_buf();
    let inputs = off_the_workers(move || {
        CARGO_INPUTS
            .iter()
            .try_for_each(|name| regular_file::check_regular_if_present(&inputs_root.join(name)))
            .map_err(LoadError::from)
    })
    .await;
    let (toolchain, metadata, clippy, targets) = match inputs {
        Ok(()) => tokio::join!(
            toolchain(root, env),
            metadata(root, env),
            clippy(root, env),
            targets(root, env)
        ),
        Err(e) => (Err(e.clone()), Err(e), false, None),
    };
    let workspace_metadata = metadata.as_ref().ok().map(|m| m.workspace_metadata.clone());
    let settings_root = root.to_path_buf();
    let settings = off_the_workers(move || {
        settings::read(&settings_root, workspace_metadata.as_ref()).map_err(LoadError::from)
    })
    .await;
    Loaded {
        toolchain,
        metadata,
        settings,
        clippy,
        targets,
        learned: None,
    }
}

async fn toolchain(root: &Path, env: &BTreeMap<String, String>) -> Result<Toolchain, LoadError> {
    let mut rustc = command("rustc", root, env);
    rustc.arg("-vV");
    let mut cargo = command("cargo", root, env);
    cargo.arg("-V");
    let (rustc, cargo) = tokio::join!(
        capture(rustc, "rustc -vV", VERSION_TIMEOUT),
        capture(cargo, "cargo -V", VERSION_TIMEOUT)
    );
    Ok(Toolchain {
        rustc_verbose: rustc?,
        cargo_version: cargo?.trim().to_owned(),
    })
}

/// Whether `cargo clippy --version` succeeds: rustup's proxy fails when the toolchain has no
/// clippy component.
async fn clippy(root: &Path, env: &BTreeMap<String, String>) -> bool {
    let mut cmd = command("cargo", root, env);
    cmd.args(["clippy", "--version"]);
    capture(cmd, "cargo clippy --version", VERSION_TIMEOUT)
        .await
        .is_ok()
}

/// The targets the toolchain has a std for: a job with `--target` of another cannot build.
async fn targets(
    root: &Path,
    env: &BTreeMap<String, String>,
) -> Option<std::collections::BTreeSet<String>> {
    let mut cmd = command("rustc", root, env);
    cmd.args(["--print", "sysroot"]);
    let sysroot = capture(cmd, "rustc --print sysroot", VERSION_TIMEOUT)
        .await
        .ok()?;
    let rustlib = PathBuf::from(sysroot.trim()).join("lib/rustlib");
    off_the_workers(move || {
        let entries = std::fs::read_dir(&rustlib).map_err(|e| LoadError::ReadDir {
            path: rustlib.clone(),
            source: Arc::new(e),
        })?;
        Ok(entries
            .flatten()
            .filter(|e| e.path().join("lib").is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    })
    .await
    .ok()
}

async fn metadata(root: &Path, env: &BTreeMap<String, String>) -> Result<Box<Metadata>, LoadError> {
    let mut cmd = command("cargo", root, env);
    // `--no-deps` needs no registry access and writes no Cargo.lock; the workspace members
    // and their path dependencies are all the daemon reads.
    cmd.args(["metadata", "--format-version", "1", "--no-deps"]);
    let out = capture(cmd, "cargo metadata", METADATA_TIMEOUT).await?;
    let metadata =
        cargo_metadata::MetadataCommand::parse(out).map_err(|e| LoadError::Metadata {
            source: Arc::new(e),
        })?;
    Ok(Box::new(metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts a workspace's state shows, word for word as they were when they were built
    /// with `format!`, from real commands.
    #[tokio::test]
    async fn command_errors_name_the_command_and_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::new();
        let missing = command("buildd-no-such-program", dir.path(), &env);
        let err = capture(missing, "cargo -V", VERSION_TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cargo -V failed: the program was not found on PATH: install Rust with rustup \
             (https://rustup.rs) or put cargo on the PATH of the shell that runs buildd"
        );
        let mut failing = command("sh", dir.path(), &env);
        failing.args(["-c", "echo '  no toolchain  ' >&2; exit 3"]);
        let err = capture(failing, "rustc -vV", VERSION_TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "rustc -vV failed (exit status: 3): no toolchain"
        );
        // The command outlives its timeout by far: the timeout, not the command, ends it
        // (and `command` kills it when it is dropped).
        let mut hanging = command("sleep", dir.path(), &env);
        hanging.arg("600");
        let err = capture(hanging, "cargo metadata", Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "cargo metadata did not finish within 0s");
    }

    #[tokio::test]
    async fn a_dir_without_a_manifest_is_not_a_workspace() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            nearest_manifest_dir(dir.path()).is_none(),
            "a Cargo.toml above the temp dir {} makes it part of a workspace: remove it",
            dir.path().display()
        );
        let err = locate_root(dir.path(), &BTreeMap::new(), &Arc::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is not inside a cargo workspace (no Cargo.toml in it or above it): run \
                 buildd inside a workspace or pass its path",
                dir.path().display()
            )
        );
    }

    #[test]
    fn nearest_manifest_walks_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        let sub = dir.path().join("src/deep");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(nearest_manifest_dir(&sub).unwrap(), dir.path());
    }
}
