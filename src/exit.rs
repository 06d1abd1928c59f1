//! Documented exit codes (also in `buildd --help` and the README).

use buildd_daemon::client::ClientError;
use buildd_daemon::protocol::ErrorCode;

pub(crate) const SUCCESS: i32 = 0;
/// A command failed; for `buildd wait`, the last job failed.
pub(crate) const FAILURE: i32 = 1;
pub(crate) const NOT_A_WORKSPACE: i32 = 3;
pub(crate) const UNREACHABLE: i32 = 4;
pub(crate) const REFUSED: i32 = 5;
/// The workspace cannot be built as it is (a malformed manifest, a missing toolchain).
pub(crate) const WORKSPACE_ERROR: i32 = 6;

/// The exit code for an error that ends a command.
pub(crate) fn for_error(error: &anyhow::Error) -> i32 {
    if error.downcast_ref::<crate::connect::BadPath>().is_some() {
        return NOT_A_WORKSPACE;
    }
    match error.downcast_ref::<ClientError>() {
        Some(ClientError::Daemon {
            code: ErrorCode::NotAWorkspace | ErrorCode::NotRegistered,
            ..
        }) => NOT_A_WORKSPACE,
        Some(
            ClientError::Refused(_) | ClientError::Paths(_) | ClientError::ForeignDaemon { .. },
        ) => REFUSED,
        Some(
            ClientError::NotRunning { .. }
            | ClientError::Unreachable { .. }
            | ClientError::StartTimeout { .. }
            | ClientError::Start(_)
            | ClientError::StartFailed { .. }
            | ClientError::NoAnswer { .. }
            | ClientError::Io(_),
        ) => UNREACHABLE,
        _ => FAILURE,
    }
}
