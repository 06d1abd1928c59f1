//! Building the commands the daemon runs for a client (cargo, rustc) from that client's
//! environment, so that every child sees the environment the user's own shell would give it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

/// A command built from a client's environment. An empty environment (a client that sent
/// none) means the daemon's own.
pub(crate) fn command(program: &str, cwd: &Path, env: &BTreeMap<String, String>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if !env.is_empty() {
        cmd.env_clear().envs(env);
    }
    cmd
}
