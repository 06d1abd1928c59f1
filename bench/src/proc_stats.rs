//! CPU time and memory of processes, from `/proc` and `getrusage`.
//!
//! Both sides are measured the same way, as the kernel accounts CPU to a process tree: a
//! process's own user+system time plus the time of every descendant it (or a descendant)
//! waited for. For the daemon that is `/proc/<pid>/stat` `utime+stime+cutime+cstime`:
//! its cargo jobs are children that its tokio runtime reaps, and cargo reaps its rustc,
//! build scripts and linkers, so their CPU lands in the daemon's `cutime`/`cstime`. For plain
//! cargo it is `getrusage(RUSAGE_CHILDREN)` of the harness around each command, which adds
//! the same kind of total when the harness reaps cargo. Memory is the daemon's own
//! (`VmHWM`, `VmRSS` in `/proc/<pid>/status`): the compilers it runs are not in it.

use std::time::Duration;

use anyhow::Context;
use nix::sys::resource::{UsageWho, getrusage};

/// A process's CPU time, its own and its reaped descendants'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcCpu {
    pub(crate) own: Duration,
    pub(crate) children: Duration,
}

impl ProcCpu {
    pub(crate) fn total(self) -> Duration {
        self.own + self.children
    }
}

/// Reads `/proc/<pid>/stat`.
pub(crate) fn process_cpu(pid: u32) -> anyhow::Result<ProcCpu> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    parse_stat(&text, clock_ticks()).with_context(|| format!("cannot parse {path}: {text}"))
}

fn parse_stat(text: &str, ticks_per_sec: u64) -> Option<ProcCpu> {
    // The command name (field 2) is in parentheses and may hold spaces and parentheses
    // itself: count fields from the last `)`. After it come fields 3 (state) onwards, so
    // utime (14), stime (15), cutime (16) and cstime (17) are at 11..=14.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Option<u64> { fields.get(i)?.parse().ok() };
    let to_duration = |ticks: u64| Duration::from_nanos(ticks * 1_000_000_000 / ticks_per_sec);
    Some(ProcCpu {
        own: to_duration(tick(11)? + tick(12)?),
        children: to_duration(tick(13)? + tick(14)?),
    })
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        // Linux's USER_HZ is 100 everywhere it runs.
        .unwrap_or(100)
}

/// The resolution of `/proc` CPU times: one clock tick.
pub(crate) fn tick() -> Duration {
    Duration::from_nanos(1_000_000_000 / clock_ticks())
}

/// A process's resident memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcMemory {
    pub(crate) rss: u64,
    /// The peak since the process started or since [`reset_peak`].
    pub(crate) peak: u64,
}

pub(crate) fn process_memory(pid: u32) -> anyhow::Result<ProcMemory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    parse_status(&text).with_context(|| format!("no VmRSS or VmHWM in {path}"))
}

fn parse_status(text: &str) -> Option<ProcMemory> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some(ProcMemory {
        rss: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

/// Resets a process's peak resident size (`VmHWM`) to its current size, so that the next
/// reading is the peak of one round rather than of the process's life. Linux 4.0 and later.
pub(crate) fn reset_peak(pid: u32) -> anyhow::Result<()> {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").with_context(|| format!("failed to write {path}"))
}

/// The CPU time of this process's reaped children so far.
pub(crate) fn children_cpu() -> Duration {
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(usage) => {
            let time = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(t.tv_sec().max(0) as u64)
                    + Duration::from_micros(t.tv_usec().max(0) as u64)
            };
            time(usage.user_time()) + time(usage.system_time())
        }
        // getrusage cannot fail for RUSAGE_CHILDREN with a valid buffer.
        Err(_) => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4242 (buildd (x) y) S 1 4242 4242 0 -1 4194560 100 2000 0 3 \
                    150 50 1200 300 20 0 4 0 1000 12345678 900 18446744073709551615";
        let cpu = parse_stat(stat, 100).unwrap();
        assert_eq!(cpu.own, Duration::from_secs(2));
        assert_eq!(cpu.children, Duration::from_secs(15));
        assert_eq!(cpu.total(), Duration::from_secs(17));
    }

    #[test]
    fn status_sizes_are_in_bytes() {
        let status = "Name:\tbuildd\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(
            parse_status(status),
            Some(ProcMemory {
                rss: 10 * 1024 * 1024,
                peak: 20 * 1024 * 1024
            })
        );
    }

    #[test]
    fn this_process_can_be_measured() {
        let pid = std::process::id();
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(0);
        }
        assert!(process_cpu(pid).unwrap().own > Duration::ZERO);
        let memory = process_memory(pid).unwrap();
        assert!(memory.rss > 0 && memory.peak >= memory.rss);
        reset_peak(pid).unwrap();
    }

    #[test]
    fn children_cpu_counts_a_reaped_child() {
        let before = children_cpu();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(children_cpu() > before);
    }
}
