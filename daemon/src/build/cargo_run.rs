//! Running one cargo command for a job: spawning it in its own process group, streaming its
//! JSON messages as they come, and killing the whole group when the job is cancelled.
//!
//! Cargo starts rustc, build scripts and linkers as children; killing only cargo would leave
//! them running, holding cargo's lock and the CPU. So cargo gets a process group of its own
//! (as nextest does) and cancellation signals the group: SIGTERM, a short grace period, then
//! SIGKILL. This module knows nothing about workspaces or clients.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use cargo_metadata::Message;
use nix::unistd::Pid;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use crate::build::invocation::{self, Invocation};
use crate::build::orphans::Orphans;
use crate::build::rustc_info::{Kind, RustcInfo};
use crate::build::{process, process_group};

/// How long cargo gets to stop on SIGTERM before the group is killed. Cancellation must be
/// done within 200 ms, and cargo's target dir survives SIGKILL: a unit whose output was cut
/// off has no fresh fingerprint and is built again.
const TERM_GRACE: Duration = Duration::from_millis(100);
/// How much of cargo's stderr is kept to explain a failure.
const STDERR_TAIL: usize = 16 * 1024;
/// The longest line of cargo's stdout that is read as a message; the rest of a longer line
/// is skipped. Cargo's own messages stay far below it (a rendered diagnostic is kilobytes),
/// but a build script can write anything to the pipe it inherits, and a line with no end
/// must not grow the daemon's memory without bound.
const MAX_LINE: usize = 4 * 1024 * 1024;

pub(crate) enum Outcome {
    Finished {
        status: ExitStatus,
        /// The end of cargo's stderr: its own errors (a malformed manifest, a failed
        /// resolve) that are not compiler messages.
        stderr_tail: String,
        /// With [`CargoCommand::record`], the compiler commands cargo ran for the
        /// workspace's own crates.
        invocations: Vec<Invocation>,
    },
    Cancelled,
}

pub(crate) struct CargoCommand<'a> {
    /// Where cargo runs: the root, or the dir a learned command was run in.
    pub(crate) dir: &'a Path,
    pub(crate) args: Vec<String>,
    pub(crate) env: &'a BTreeMap<String, String>,
    /// The key's dir and tools, from `key::cargo_env`.
    pub(crate) cargo_env: &'a crate::wire::protocol::CargoEnv,
    /// The niceness cargo and everything it starts run at.
    pub(crate) nice: i32,
    pub(crate) orphans: &'a Orphans,
    /// cargo's cache of the compiler's answers in the dir: the copy for the command's kind
    /// goes in before cargo starts, and a copy comes out after it (`rustc_info.rs`).
    pub(crate) rustc_info: &'a RustcInfo,
    /// Run cargo with `-vv` and record the compiler commands it prints, for early
    /// diagnostics (`early.rs`); `root` resolves their relative paths.
    pub(crate) record: Option<&'a Path>,
}

/// Runs cargo with `--message-format=json` and calls `on_message` for every message, as
/// cargo prints it.
pub(crate) async fn run(
    command: CargoCommand<'_>,
    cancel: &CancellationToken,
    mut on_message: impl FnMut(Message),
) -> std::io::Result<Outcome> {
    let mut cmd = process::command("cargo", command.dir, command.env);
    for name in &command.cargo_env.remove {
        cmd.env_remove(name);
    }
    // cargo's options go before a `--`: what follows is the compiler's (clippy's lints).
    let dashes = command
        .args
        .iter()
        .position(|a| a == "--")
        .unwrap_or(command.args.len());
    cmd.envs(&command.cargo_env.set)
        .args(&command.cargo_env.args)
        .args(&command.args[..dashes])
        .args(command.record.map(|_| "-vv"))
        .arg("--message-format=json")
        .args(&command.args[dashes..]);
    in_own_group(&mut cmd, command.nice);
    let kind = Kind::of(&command.args);
    let info = command.rustc_info.clone();
    let _ = tokio::task::spawn_blocking(move || info.restore(kind)).await;
    let mut child = cmd.spawn()?;
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    if let Some(pgid) = pgid {
        command.orphans.record(pgid.as_raw());
    }
    let record = command.record.map(Path::to_path_buf);
    let outcome = supervise(&mut child, pgid, cancel, record, &mut on_message).await;
    if let Some(pgid) = pgid {
        command.orphans.forget(pgid.as_raw());
    }
    if matches!(outcome, Ok(Outcome::Finished { .. })) {
        let info = command.rustc_info.clone();
        let _ = tokio::task::spawn_blocking(move || info.keep(kind)).await;
    }
    outcome
}

/// Streams cargo's messages until it exits, or kills its group when `cancel` fires.
async fn supervise(
    child: &mut Child,
    pgid: Option<Pid>,
    cancel: &CancellationToken,
    record: Option<PathBuf>,
    on_message: &mut impl FnMut(Message),
) -> std::io::Result<Outcome> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_task = tokio::spawn(read_stderr(stderr, record));
    let mut stdout = BufReader::new(stdout);
    let mut line = Vec::new();

    // The pipe is read to its end whatever it holds: a reader that stopped at a bad line
    // would leave cargo blocked on a full pipe until the job's timeout.
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                kill_group(child, pgid).await;
                stderr_task.abort();
                return Ok(Outcome::Cancelled);
            }
            more = read_line_capped(&mut stdout, &mut line, MAX_LINE) => match more {
                Ok(true) => {
                    // Lines that are not cargo messages (a build script printing to stdout
                    // in an old cargo, bytes that are not UTF-8, a line cut at the cap) are
                    // not ours to interpret.
                    let text = String::from_utf8_lossy(&line);
                    if let Ok(message) = serde_json::from_str::<Message>(&text) {
                        on_message(message);
                    }
                    line.clear();
                }
                Ok(false) | Err(_) => break,
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
    let (stderr_tail, invocations) = stderr_task.await.unwrap_or_default();
    Ok(Outcome::Finished {
        status,
        stderr_tail,
        invocations,
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

/// Makes `cmd`'s child the leader of a process group of its own (so that one signal stops
/// everything it starts), at niceness `nice`, and dying with the daemon; what it started is
/// reaped by the next daemon (`orphans.rs`).
pub(crate) fn in_own_group(cmd: &mut tokio::process::Command, nice: i32) {
    cmd.process_group(0);
    // SAFETY: only async-signal-safe system calls, on the child's own process.
    unsafe {
        cmd.pre_exec(move || {
            lower_priority(nice);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
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

/// Reads the next line of `reader` into `line` (which must be empty), without its newline
/// and at most `cap` bytes of it: the rest of a longer line is read and dropped. Returns
/// false at the end of the stream with nothing read.
///
/// Cancel-safe: what was read stays in `line` and `reader`, so a dropped call loses nothing
/// that the next one would need.
pub(crate) async fn read_line_capped(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<bool> {
    let mut any = !line.is_empty();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(any);
        }
        any = true;
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(end) => (&buf[..end], Some(end + 1)),
            None => (buf, None),
        };
        let room = cap.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(true);
        }
    }
}

/// Reads cargo's stderr to its end and keeps its last [`STDERR_TAIL`] bytes. With `record`
/// (the workspace root), cargo ran with `-vv`: the compiler commands it printed are
/// returned instead of kept, and so are the other lines `-vv` adds (`Fresh`, `Dirty`, a
/// build script's `[package version]` output), so the tail reads as without it.
async fn read_stderr(
    stderr: impl tokio::io::AsyncRead + Unpin,
    record: Option<PathBuf>,
) -> (String, Vec<Invocation>) {
    let mut reader = BufReader::new(stderr);
    let mut tail: Vec<u8> = Vec::new();
    let mut invocations = Vec::new();
    let keep = |tail: &mut Vec<u8>, bytes: &[u8]| {
        tail.extend_from_slice(bytes);
        if tail.len() > 2 * STDERR_TAIL {
            tail.drain(..tail.len() - STDERR_TAIL);
        }
    };
    match record {
        None => {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => keep(&mut tail, &buf[..n]),
                }
            }
        }
        Some(root) => {
            let mut line = Vec::new();
            while let Ok(true) = read_line_capped(&mut reader, &mut line, MAX_LINE).await {
                let text = String::from_utf8_lossy(&line);
                let trimmed = text.trim_start();
                if trimmed.starts_with("Running `") {
                    invocations.extend(invocation::parse(&text, &root));
                } else if !(trimmed.starts_with("Fresh ")
                    || trimmed.starts_with("Dirty ")
                    || trimmed.starts_with('['))
                {
                    keep(&mut tail, &line);
                    keep(&mut tail, b"\n");
                }
                line.clear();
            }
        }
    }
    if tail.len() > STDERR_TAIL {
        tail.drain(..tail.len() - STDERR_TAIL);
    }
    (String::from_utf8_lossy(&tail).into_owned(), invocations)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], cap: usize) -> Vec<Vec<u8>> {
        // A small buffer, so that lines span several reads.
        let mut reader = BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        while read_line_capped(&mut reader, &mut line, cap).await.unwrap() {
            out.push(std::mem::take(&mut line));
        }
        out
    }

    #[tokio::test]
    async fn lines_are_cut_at_the_cap_and_reading_goes_on_after_bad_bytes() {
        let input = b"first\n\xff\xfe not utf-8\n0123456789abcdef\n\nlast";
        let got = lines(input, 10).await;
        assert_eq!(
            got,
            vec![
                b"first".to_vec(),
                b"\xff\xfe not utf".to_vec(),
                b"0123456789".to_vec(),
                Vec::new(),
                b"last".to_vec(),
            ]
        );
        assert!(lines(b"", 10).await.is_empty());
    }
}
