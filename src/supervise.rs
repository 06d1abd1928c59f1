//! Keeping a program running for `buildd watch --run`: starting it in its own process group
//! with its output prefixed, and stopping the whole group (SIGTERM, a grace period, SIGKILL)
//! before a new build replaces it, so that no child of the old program keeps its port.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use buildd_daemon::process_group;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Identifies one build of the binary: cargo replaces the file when it relinks it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        inode: meta.ino(),
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

struct Running {
    child: Child,
    pid: u32,
    started: Instant,
}

pub(crate) struct Supervisor {
    pub(crate) name: String,
    path: PathBuf,
    args: Vec<String>,
    grace: Duration,
    running: Option<Running>,
    /// The build that was started last.
    started_stamp: Option<Stamp>,
    /// Where the program's lines go instead of stdout and stderr (a full-screen view).
    output: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl Supervisor {
    pub(crate) fn new(name: String, path: PathBuf, args: Vec<String>, grace: Duration) -> Self {
        Supervisor {
            name,
            path,
            args,
            grace,
            running: None,
            started_stamp: None,
            output: None,
        }
    }

    /// Sends the program's output lines, prefixed, to `output` instead of printing them.
    pub(crate) fn send_output_to(&mut self, output: tokio::sync::mpsc::UnboundedSender<String>) {
        self.output = Some(output);
    }

    /// The binary it runs: `<target dir>/debug/<name>`, where cargo uplifts it.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.pid)
    }

    /// Whether the binary differs from the one started last (or none was started).
    pub(crate) fn binary_changed(&self) -> bool {
        self.started_stamp.is_none() || stamp(&self.path) != self.started_stamp
    }

    /// How long the program has run.
    pub(crate) fn uptime(&self) -> Option<Duration> {
        self.running.as_ref().map(|r| r.started.elapsed())
    }

    /// Starts the program; its stdout and stderr pass through (or go to the view), each line
    /// prefixed.
    pub(crate) fn start(&mut self) -> anyhow::Result<u32> {
        let stamp = stamp(&self.path);
        let mut child = Command::new(&self.path)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("failed to start {}: {e}", self.path.display()))?;
        let pid = child.id().unwrap_or_default();
        let prefix = format!("[{}]", self.name);
        if let Some(stdout) = child.stdout.take() {
            let prefix = prefix.clone();
            let output = self.output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match &output {
                        // A view that is gone drops the line; the pipe stays drained.
                        Some(output) => {
                            let _ = output.send(format!("{prefix} {line}"));
                        }
                        // A closed stdout ends the watch loop; until then, keep the pipe
                        // drained.
                        None => {
                            let _ = outln!("{prefix} {line}");
                        }
                    }
                }
            });
        }
        if let Some(stderr) = child.stderr.take() {
            let output = self.output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match &output {
                        Some(output) => {
                            let _ = output.send(format!("{prefix} {line}"));
                        }
                        None => errln!("{prefix} {line}"),
                    }
                }
            });
        }
        self.running = Some(Running {
            child,
            pid,
            started: Instant::now(),
        });
        self.started_stamp = stamp;
        Ok(pid)
    }

    /// Stops the program's whole process group: SIGTERM, then SIGKILL for what is left after
    /// the grace period. Returns how the program ended, or `None` if none ran.
    pub(crate) async fn stop(&mut self) -> Option<String> {
        let mut running = self.running.take()?;
        let status = process_group::stop(&mut running.child, running.pid, self.grace)
            .await
            .ok();
        Some(
            status
                .map(describe)
                .unwrap_or_else(|| "unknown status".into()),
        )
    }

    /// Waits until the program exits on its own; pending forever while none runs.
    pub(crate) async fn exited(&mut self) -> String {
        let Some(running) = &mut self.running else {
            return std::future::pending().await;
        };
        let status = running.child.wait().await;
        let group = running.pid;
        self.running = None;
        // Children the program left behind would hold its port: they go with it.
        process_group::kill(group);
        status.map(describe).unwrap_or_else(|e| e.to_string())
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => "unknown status".into(),
    }
}
