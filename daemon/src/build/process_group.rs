//! Stopping a child that leads a process group of its own (spawned with
//! `process_group(0)`), together with everything it started: cargo with its rustc, build
//! scripts and linkers; a user's program under `buildd watch --run` with its workers; a
//! bench round's cargo. The daemon, the CLI and the bench all stop their children here.
//!
//! Written on nix's `killpg` rather than on `process-wrap`: its group wrapper boxes the child
//! behind a trait of its own and reaps with `waitpid(-pgid)`, while buildd's callers keep a
//! plain tokio or std `Child` (their `pre_exec` sets the death signal and priorities, the
//! orphan record goes by pgid), and what they need is only "TERM the group, wait, KILL what
//! is left", including members that outlive the leader.

use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Stops the group that `child` leads (`pgid` is its pid from before it was reaped): SIGTERM
/// to the whole group, then up to `grace` for the leader and the members to exit, then
/// SIGKILL for what is left. Returns how the leader ended.
pub async fn stop(
    child: &mut tokio::process::Child,
    pgid: u32,
    grace: Duration,
) -> std::io::Result<ExitStatus> {
    let group = Pid::from_raw(pgid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    let status = tokio::time::timeout_at(deadline, child.wait()).await;
    // The leader may be gone while members it started still stop: give the group the rest
    // of the grace period (signal 0 only asks whether any member is left).
    while tokio::time::Instant::now() < deadline && killpg(group, None).is_ok() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = killpg(group, Signal::SIGKILL);
    match status {
        Ok(status) => status,
        Err(_) => child.wait().await,
    }
}

/// SIGKILL to the whole group `pgid`: the members a leader left behind when it exited on its
/// own, or a group past its deadline (from a thread that cannot wait).
pub fn kill(pgid: u32) {
    let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A shell that starts a member which ignores SIGTERM and would outlive it: both end.
    #[tokio::test]
    async fn stop_ends_the_leader_and_a_member_that_ignores_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let member_pid = dir.path().join("member.pid");
        let script = format!(
            "sh -c 'trap \"\" TERM; echo $$ > {}; while :; do sleep 0.05; done' & wait",
            member_pid.display()
        );
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", &script])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let member: i32 = loop {
            if let Ok(text) = std::fs::read_to_string(&member_pid)
                && let Ok(pid) = text.trim().parse()
            {
                break pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the member never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let status = stop(&mut child, pgid, Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
        // The member is SIGKILLed; it is init's child now, so wait for it to vanish.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while nix::sys::signal::kill(Pid::from_raw(member), None).is_ok() {
            let stat = std::fs::read_to_string(format!("/proc/{member}/stat")).unwrap_or_default();
            // A zombie waiting for its new parent to reap it is ended too.
            if stat.split_whitespace().nth(2) == Some("Z") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the member survived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
