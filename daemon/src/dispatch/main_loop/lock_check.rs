//! Before a job starts, cargo's locks in the isolated dir are checked: a cargo that buildd
//! does not run there (one left by a `kill -9` of `buildd cargo build`) must finish first,
//! or the daemon's cargo would block on its lock, or build beside it. The check runs in a
//! blocking task; while a lock is held the job stays queued, status says why, and the check
//! runs again after [`RETRY`], through the schedule's deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Dispatcher, Event};

/// How often a held lock is checked again.
const RETRY: Duration = Duration::from_millis(500);

/// The longest description of a lease's holder the daemon keeps.
const HOLDER_CHARS: usize = 200;

impl Dispatcher {
    /// Starts the check of the dir's locks for the owed job of `root`.
    pub(super) fn check_locks(&mut self, root: &Path) {
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        let Some(key) = &ws.key else {
            return;
        };
        ws.checking_locks = true;
        let dir = key.target_dir.clone();
        let root = root.to_path_buf();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let held = tokio::task::spawn_blocking(move || crate::cache::dirs::held_lock(&dir))
                .await
                .unwrap_or(None);
            let _ = tx.send(Event::LocksChecked { root, held });
        });
    }

    /// The check came back: the job may start (at the loop's next `advance`), or waits.
    pub(super) fn locks_checked(&mut self, root: &Path, held: Option<PathBuf>) {
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        ws.checking_locks = false;
        match held {
            Some(lock) => {
                if ws.foreign_lock.as_ref() != Some(&lock) {
                    tracing::info!(lock = %lock.display(), "a cargo outside buildd holds the dir's lock; the job waits");
                }
                ws.foreign_lock = Some(lock);
                ws.locks_free = false;
                ws.schedule.retry(Instant::now() + RETRY);
            }
            None => {
                ws.foreign_lock = None;
                ws.locks_free = true;
            }
        }
    }
}

/// What a lease's client says it runs, kept short; a client that says nothing is named by
/// what it asked for.
pub(super) fn holder(said: Option<String>) -> String {
    match said {
        Some(said) if !said.trim().is_empty() => {
            let mut kept: String = said
                .chars()
                .filter(|c| !c.is_control())
                .take(HOLDER_CHARS)
                .collect();
            if said.chars().count() > HOLDER_CHARS {
                kept.push('…');
            }
            kept
        }
        _ => "a user's cargo command".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::holder;

    #[test]
    fn a_holder_is_kept_short_and_printable() {
        assert_eq!(holder(None), "a user's cargo command");
        assert_eq!(holder(Some(" ".into())), "a user's cargo command");
        assert_eq!(holder(Some("a\u{1b}[2Jb".into())), "a[2Jb");
        let long = "é".repeat(500);
        assert_eq!(holder(Some(long)).chars().count(), 201);
    }
}
