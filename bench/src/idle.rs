//! The idle daemon: its CPU and memory over a window with no edits, with several workspaces
//! registered.
//!
//! The extra workspaces are more copies of the original, registered and built cold by the
//! daemon like any other before the window opens, so the daemon holds their watchers, their
//! metadata and their diagnostics as it would for a user with that many workspaces open. The
//! window opens once the daemon's CPU time has stood still for a second (the last job's
//! bookkeeping is done), and is itself the measurement: the harness collects the daemon's
//! events meanwhile (there should be none) and samples its memory once a second.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::ensure;
use buildd_daemon::protocol::JobResult;
use serde::Serialize;

use crate::daemon::Daemon;
use crate::proc_stats;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Idle {
    /// How long after the last job's idle state the daemon's CPU time took to stop moving.
    pub(crate) settle_secs: f64,
    pub(crate) window_secs: f64,
    pub(crate) workspaces: usize,
    /// The daemon's CPU over the window (its children's included), in seconds...
    pub(crate) cpu_secs: f64,
    /// ...and in clock ticks, the resolution `/proc` has.
    pub(crate) cpu_ticks: u64,
    /// The largest resident size sampled in the window.
    pub(crate) rss_bytes: u64,
    /// Events the daemon sent in the window.
    pub(crate) events: usize,
}

/// Registers `extra` (copies of the workspace) besides the one already registered, waits
/// until each is built, then watches the daemon for `window`.
pub(crate) fn measure(
    daemon: &mut Daemon,
    extra: &[PathBuf],
    window: Duration,
    timeout: Duration,
) -> anyhow::Result<Idle> {
    for copy in extra {
        register_and_wait(daemon, copy, timeout)?;
    }
    daemon.drain();
    let pid = daemon.pid;
    let settle = wait_quiet(pid, timeout)?;
    let cpu_before = proc_stats::process_cpu(pid)?;
    let mut rss = proc_stats::process_memory(pid)?.rss;
    let started = Instant::now();
    let mut events = 0;
    // One-second slices: each waits on the event stream (which should stay silent) and then
    // samples the daemon's memory.
    while started.elapsed() < window {
        let slice = (window - started.elapsed()).min(Duration::from_secs(1));
        events += daemon.events_during(slice);
        rss = rss.max(proc_stats::process_memory(pid)?.rss);
    }
    let cpu_after = proc_stats::process_cpu(pid)?;
    let cpu = cpu_after.total().saturating_sub(cpu_before.total());
    Ok(Idle {
        settle_secs: settle.as_secs_f64(),
        window_secs: started.elapsed().as_secs_f64(),
        workspaces: extra.len() + 1,
        cpu_secs: cpu.as_secs_f64(),
        cpu_ticks: (cpu.as_nanos() / proc_stats::tick().as_nanos()) as u64,
        rss_bytes: rss,
        events,
    })
}

/// How long the daemon's CPU time must stand still before the window opens.
const QUIET: Duration = Duration::from_secs(1);

/// Waits until the daemon's CPU time has not moved for [`QUIET`]. A job's bookkeeping goes
/// on after its last event (the daemon measures the size of the target dir it built, which
/// walks thousands of files), and that is the job's cost, not idling. There is no event for
/// its end, so the harness samples `/proc`, which costs the daemon nothing.
fn wait_quiet(pid: u32, timeout: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut last = proc_stats::process_cpu(pid)?.total();
    let mut still_since = Instant::now();
    while still_since.elapsed() < QUIET {
        ensure!(
            started.elapsed() < timeout,
            "the daemon kept using CPU for {timeout:?} with no edits"
        );
        std::thread::sleep(Duration::from_millis(100));
        let now = proc_stats::process_cpu(pid)?.total();
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
    Ok(started.elapsed() - QUIET)
}

fn register_and_wait(daemon: &mut Daemon, copy: &Path, timeout: Duration) -> anyhow::Result<()> {
    let root = daemon.register(copy, &Default::default())?;
    // A workspace registered for the first time: every job of it is new.
    let settled = daemon.wait_settled(&root, 0, None, timeout)?;
    ensure!(
        settled.summary.result == JobResult::Success,
        "the daemon's cold job on the idle workspace {} failed",
        root.display()
    );
    Ok(())
}
