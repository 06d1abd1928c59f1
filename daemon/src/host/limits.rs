//! The daemon's file descriptors: raising their limit at start, how many client connections fit
//! beside what jobs need, and log lines that a flood of failures cannot multiply.
//!
//! Every connection holds a descriptor, and so does every pipe of a running cargo. Idle
//! connections without a cap took a daemon to its limit: cargo then failed to start and
//! `accept` failed twenty times a second, each failure a log line. So the connections are
//! capped (1,024 by default, `BUILDD_MAX_CONNECTIONS`), the cap leaves [`RESERVED_FDS`] free
//! under the limit, and the lines about failed or refused connections are throttled.

use std::time::{Duration, Instant};

/// Descriptors kept free for jobs and the daemon's own files (logs, locks, watchers): a job
/// holds a few pipes, and seeding, the cache and sccache open files of their own.
pub(crate) const RESERVED_FDS: u64 = 256;
/// At most one line per this long about the same failure.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);
/// The fewest connections a daemon with a tiny descriptor limit still serves.
const MIN_CONNECTIONS: usize = 16;

/// Raises the soft limit on open files to the hard one, as far as the system lets a process
/// go without privileges, and returns the limit in force.
pub(crate) fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// The connections served at once: the configured cap, lowered so that [`RESERVED_FDS`]
/// descriptors stay free under `fd_limit`.
pub(crate) fn connection_cap(configured: usize, fd_limit: u64) -> usize {
    let room = usize::try_from(fd_limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    configured.min(room.max(MIN_CONNECTIONS)).max(1)
}

/// Lets one line through per [`LOG_EVERY`] and counts the ones held back.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    /// `Some(n)` when a line may be written now, `n` being the lines held back since the last
    /// one; `None` when this one is held back.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < LOG_EVERY)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_the_reserve_free_and_never_drops_to_nothing() {
        assert_eq!(connection_cap(1024, 1_048_576), 1024);
        assert_eq!(connection_cap(1024, 1024), 1024 - 256);
        assert_eq!(connection_cap(50, 1024), 50);
        assert_eq!(connection_cap(1024, 100), MIN_CONNECTIONS);
        assert_eq!(connection_cap(4, 100), 4);
    }

    #[test]
    fn the_throttle_lets_one_line_through_per_period_with_the_count_held_back() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        assert_eq!(throttle.allow(start), Some(0));
        for n in 1..=20 {
            assert_eq!(throttle.allow(start + Duration::from_millis(n * 50)), None);
        }
        assert_eq!(throttle.allow(start + LOG_EVERY), Some(20));
        assert_eq!(throttle.allow(start + LOG_EVERY), None);
        assert_eq!(throttle.allow(start + LOG_EVERY * 3), Some(1));
    }
}
