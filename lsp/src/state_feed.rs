//! Which `buildd/state` notifications to send: a state goes out when it differs from the last
//! one sent for the same workspace (or folder), and a running job's progress alone (its
//! percentage and message, which change with every unit) at most every [`THROTTLE`]. A state
//! held back is due later; the main loop sends it then, even if nothing else happens.
//!
//! This module decides; it does not send.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ext::StateParams;

/// A progress-only change of a workspace's state is sent at most this often.
pub(crate) const THROTTLE: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub(crate) struct StateFeed {
    sent: HashMap<PathBuf, (StateParams, Instant)>,
    /// When the earliest state held back is due.
    deferred: Option<Instant>,
}

impl StateFeed {
    /// Whether to send `params` for `key` (a workspace root or a folder) now: `Some` with
    /// them if so.
    pub(crate) fn offer(
        &mut self,
        key: &Path,
        params: StateParams,
        now: Instant,
    ) -> Option<StateParams> {
        if let Some((sent, at)) = self.sent.get(key) {
            if *sent == params {
                return None;
            }
            let progress_only = StateParams {
                percentage: sent.percentage,
                message: sent.message.clone(),
                ..params.clone()
            } == *sent;
            let due = *at + THROTTLE;
            if progress_only && due > now {
                self.deferred = Some(self.deferred.map_or(due, |d| d.min(due)));
                return None;
            }
        }
        self.sent.insert(key.to_path_buf(), (params.clone(), now));
        Some(params)
    }

    /// Forgets a workspace or folder the editor no longer has.
    pub(crate) fn forget(&mut self, key: &Path) {
        self.sent.remove(key);
    }

    /// When a held-back state is due, if one is.
    pub(crate) fn deferred(&self) -> Option<Instant> {
        self.deferred
    }

    /// The main loop is about to offer everything again (the deferred time came).
    pub(crate) fn clear_deferred(&mut self) {
        self.deferred = None;
    }
}

#[cfg(test)]
mod tests {
    use buildd_daemon::protocol::WorkspaceState;

    use super::*;
    use crate::ext::DaemonLink;

    fn state(state: WorkspaceState, percentage: Option<u32>) -> StateParams {
        StateParams {
            root: "/w".into(),
            uri: "file:///w".into(),
            state,
            error: None,
            errors: 0,
            warnings: 0,
            job: Some(3),
            percentage,
            message: percentage.map(|p| format!("build: x ({p}%)")),
            target_dir: None,
            daemon: DaemonLink::Up,
        }
    }

    #[test]
    fn the_same_state_is_not_sent_twice() {
        let mut feed = StateFeed::default();
        let now = Instant::now();
        let key = Path::new("/w");
        assert!(
            feed.offer(key, state(WorkspaceState::Idle, None), now)
                .is_some()
        );
        let later = now + Duration::from_secs(1);
        assert!(
            feed.offer(key, state(WorkspaceState::Idle, None), later)
                .is_none()
        );
    }

    #[test]
    fn progress_alone_waits_for_the_throttle_and_is_then_due() {
        let mut feed = StateFeed::default();
        let t0 = Instant::now();
        let key = Path::new("/w");
        feed.offer(key, state(WorkspaceState::Running, Some(0)), t0);
        let t1 = t0 + Duration::from_millis(10);
        assert!(
            feed.offer(key, state(WorkspaceState::Running, Some(5)), t1)
                .is_none()
        );
        assert_eq!(feed.deferred(), Some(t0 + THROTTLE));
        feed.clear_deferred();
        let t2 = t0 + THROTTLE;
        let sent = feed.offer(key, state(WorkspaceState::Running, Some(7)), t2);
        assert_eq!(sent.unwrap().percentage, Some(7));
        assert_eq!(feed.deferred(), None);
    }

    #[test]
    fn anything_but_progress_is_sent_at_once() {
        let mut feed = StateFeed::default();
        let t0 = Instant::now();
        let key = Path::new("/w");
        feed.offer(key, state(WorkspaceState::Running, Some(40)), t0);
        let t1 = t0 + Duration::from_millis(1);
        assert!(
            feed.offer(key, state(WorkspaceState::Failed, None), t1)
                .is_some()
        );
        let mut down = state(WorkspaceState::Failed, None);
        down.daemon = DaemonLink::Down;
        assert!(feed.offer(key, down, t1).is_some());
    }

    #[test]
    fn a_forgotten_key_starts_afresh() {
        let mut feed = StateFeed::default();
        let now = Instant::now();
        let key = Path::new("/w");
        feed.offer(key, state(WorkspaceState::Idle, None), now);
        feed.forget(key);
        assert!(
            feed.offer(key, state(WorkspaceState::Idle, None), now)
                .is_some()
        );
    }
}
