//! buildd's extensions to LSP: the `buildd/state` notification, the `buildd/status` request
//! and the `workspace/executeCommand` commands. These types are the wire contract editor
//! extensions build against (documented in `docs/editors/lsp.md`); the VS Code extension
//! mirrors them by name.
//!
//! Paths are sent as strings (lossily for non-UTF-8 paths, which only a status bar shows)
//! because tower-lsp-server panics on params that fail to serialize.

use buildd_daemon::protocol::WorkspaceState;
use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::notification::Notification;

/// `buildd.rebuild [uri]`: run a full job now.
pub(crate) const REBUILD: &str = "buildd.rebuild";
/// `buildd.cancel [uri]`: cancel the running job and forget queued changes.
pub(crate) const CANCEL: &str = "buildd.cancel";
/// `buildd.showRenderedDiagnostic {title, rendered}`: show rustc's rendered output of a
/// diagnostic. The code actions carry it; the server shows the text with
/// `window/showMessage`, the VS Code extension intercepts it and opens a read-only document.
pub(crate) const SHOW_RENDERED: &str = "buildd.showRenderedDiagnostic";
/// The custom request for the daemon's status, narrowed to this editor's workspaces.
pub(crate) const STATUS: &str = "buildd/status";

/// `buildd/state`: a workspace's state changed, or its job made progress.
pub(crate) enum StateNotification {}

impl Notification for StateNotification {
    type Params = StateParams;
    const METHOD: &'static str = "buildd/state";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub(crate) struct StateParams {
    /// The cargo workspace root.
    pub(crate) root: String,
    pub(crate) uri: String,
    /// `idle`, `queued`, `running`, `failed` or `error`, as in `buildd status --json`.
    pub(crate) state: WorkspaceState,
    /// Why the workspace cannot be built, in the `error` state.
    pub(crate) error: Option<String>,
    /// Diagnostics this editor shows for the workspace, by severity.
    pub(crate) errors: u64,
    pub(crate) warnings: u64,
    /// The running job, or the last one.
    pub(crate) job: Option<u64>,
    /// The running job's progress, 0 to 100, only growing.
    pub(crate) percentage: Option<u32>,
    /// What the job does now, or how the last one ended.
    pub(crate) message: Option<String>,
    pub(crate) target_dir: Option<String>,
    pub(crate) daemon: DaemonLink,
}

/// Whether the server is connected to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub(crate) enum DaemonLink {
    Up,
    Down,
}

/// `buildd/status` params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub(crate) struct StatusParams {
    /// Narrow to the workspace containing this file or folder.
    #[cfg_attr(test, ts(optional))]
    pub(crate) uri: Option<String>,
}
