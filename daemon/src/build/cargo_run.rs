//! Running one cargo command for a job: spawning it in its own process group, streaming its
//! JSON messages as they come, and killing the whole group when the job is cancelled.
//!
//! Cargo starts rustc, build scripts and linkers as children; killing only cargo would leave
//! them running, holding cargo's lock and the CPU. So cargo gets a process group of its own
//! (as nextest does) and cancellation signals the group: SIGTERM, a short grace period, then
//! SIGKILL. This module knows nothing about workspaces or clients.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use cargo_metadata::Message;
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use crate::build::orphans::Orphans;
use crate::build::{process, process_group};

/// How long cargo gets to stop on SIGTERM before the group is killed. Cancellation must be
/// done within 200 ms, and cargo's target dir survives SIGKILL: a unit whose output was cut
/// off has no fresh fingerprint and is built again.
const TERM_GRACE: Duration = Duration::from_millis(100);
/// How much of cargo's stderr is kept to explain a failure.
const STDERR_TAIL: usize = 16 * 1024;

pub(crate) enum Outcome {
    Finished {
        status: ExitStatus,
        /// The end of cargo's stderr: its own errors (a malformed manifest, a failed
        /// resolve) that are not compiler messages.
        stderr_tail: String,
    },
    Cancelled,
}

pub(crate) struct CargoCommand<'a> {
    pub(crate) root: &'a Path,
    pub(crate) args: Vec<String>,
    pub(crate) env: &'a BTreeMap<String, String>,
    /// The key's dir and tools, from `key::cargo_env`.
    pub(crate) cargo_env: &'a crate::wire::protocol::CargoEnv,
    /// The niceness cargo and everything it starts run at.
    pub(crate) nice: i32,
    pub(crate) orphans: &'a Orphans,
}

/// Runs cargo with `--message-format=json` and calls `on_message` for every message, as
/// cargo prints it.
pub(crate) async fn run(
    command: CargoCommand<'_>,
    cancel: &CancellationToken,
    mut on_message: impl FnMut(Message),
) -> std::io::Result<Outcome> {
    let mut cmd = process::command("cargo", command.root, command.env);
    for name in &command.cargo_env.remove {
        cmd.env_remove(name);
    }
    cmd.envs(&command.cargo_env.set)
        .args(&command.cargo_env.args)
        .args(&command.args)
        .arg("--message-format=json")
        .process_group(0);
    let nice = command.nice;
    // SAFETY: only async-signal-safe system calls, on the child's own process.
    unsafe {
        cmd.pre_exec(move || {
            lower_priority(nice);
            // cargo dies with the daemon; what it started is reaped by the next daemon.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    if let Some(pgid) = pgid {
        command.orphans.record(pgid.as_raw());
    }
    let outcome = supervise(&mut child, pgid, cancel, &mut on_message).await;
    if let Some(pgid) = pgid {
        command.orphans.forget(pgid.as_raw());
    }
    outcome
}

/// Streams cargo's messages until it exits, or kills its group when `cancel` fires.
async fn supervise(
    child: &mut Child,
    pgid: Option<Pid>,
    cancel: &CancellationToken,
    on_message: &mut impl FnMut(Message),
) -> std::io::Result<Outcome> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_task = tokio::spawn(read_tail(stderr));
    let mut lines = BufReader::new(stdout).lines();

    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                kill_group(child, pgid).await;
                stderr_task.abort();
                return Ok(Outcome::Cancelled);
            }
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    // Lines that are not cargo messages (a build script printing to stdout
                    // in an old cargo) are not ours to interpret.
                    if let Ok(message) = serde_json::from_str::<Message>(&line) {
                        on_message(message);
                    }
                }
                Ok(None) | Err(_) => break,
            },
        }
    }
    let status = tokio::select! {
        biased;
        _ = cancel.cancelled() => {
            kill_group(child, pgid).await;
            stderr_task.abort();
            return Ok(Outcome::Cancelled);
        }
        status = child.wait() => status?,
    };
    let stderr_tail = stderr_task.await.unwrap_or_default();
    Ok(Outcome::Finished {
        status,
        stderr_tail,
    })
}

/// Stops cargo's whole process group and reaps cargo. Children of cargo that ignore
/// SIGTERM get SIGKILL after the grace period.
pub(crate) async fn kill_group(child: &mut Child, pgid: Option<Pid>) {
    match pgid {
        Some(pgid) => {
            let _ = process_group::stop(child, pgid.as_raw() as u32, TERM_GRACE).await;
        }
        None => {
            let _ = child.kill().await;
        }
    }
}

/// Lowers this process's CPU priority to `nice` and its IO priority to the lowest of the
/// best-effort class; rustc, linkers and build scripts inherit both. Failures are ignored:
/// a build at normal priority is still a correct build.
fn lower_priority(nice: i32) {
    // IOPRIO_WHO_PROCESS, this process, best-effort class (2) at level 7.
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_BE_LOWEST: libc::c_int = (2 << 13) | 7;
    // SAFETY: plain system calls with constant arguments.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, nice);
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_BE_LOWEST,
        );
    }
}

async fn read_tail(stderr: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut reader = BufReader::new(stderr);
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
    }
    if tail.len() > STDERR_TAIL {
        tail.drain(..tail.len() - STDERR_TAIL);
    }
    String::from_utf8_lossy(&tail).into_owned()
}
