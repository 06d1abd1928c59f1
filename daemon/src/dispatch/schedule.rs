//! What a workspace owes: a job, a load first, a full build, and when the debounce of the
//! latest change ends. Every event that changes that (an edit, a save, a rescan, a rebuild
//! or cancel request, a load, a job that gave way) is one method here, so the dispatcher
//! never sets the flags by hand and the state it reports follows from them.
//!
//! Pure: no I/O and no clock but the instants it is given, so its transitions are
//! unit-tested below.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A burst of changes touching this many files is a storm (a `git checkout`, `cargo fmt`):
/// it is likely to go on, possibly with pauses on a loaded machine, so the debounce
/// stretches to [`STORM_DEBOUNCE`] to gather it into one job.
const STORM_FILES: usize = 100;
const STORM_DEBOUNCE: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Schedule {
    /// A job is owed: changes arrived, or the workspace was (re)loaded.
    owed: bool,
    /// The next job builds everything: the workspace was (re)loaded, the watcher lost
    /// events, or a client asked for a rebuild.
    full: bool,
    /// The metadata must be loaded again before the next job.
    reload: bool,
    /// When the debounce of the latest change ends.
    deadline: Option<Instant>,
    /// The changed files the next job covers.
    files: BTreeSet<PathBuf>,
    /// Learned jobs held back for a quiet workspace (expensive and rarely used) are owed:
    /// they run once no change came for this long, and every change starts the wait again.
    quiet: Option<Duration>,
    /// When the quiet wait ends.
    quiet_at: Option<Instant>,
    /// When the latest change came: held-back jobs with a longer wait than `quiet` run once
    /// the workspace has been quiet for theirs.
    last_change: Option<Instant>,
}

/// What the dispatcher does next for a workspace that runs no job and no load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The debounce still runs: nothing yet.
    Wait,
    /// Load the workspace (the reload is taken).
    Load,
    /// Start the owed job, if the workspace can build.
    Build,
    /// Run the learned jobs held back for a quiet workspace.
    Quiet,
    /// Nothing is owed.
    Idle,
}

/// What the next job covers, taken from the schedule when it starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Owed {
    pub(crate) full: bool,
    pub(crate) files: BTreeSet<PathBuf>,
}

impl Default for Schedule {
    /// A new workspace: its first job builds everything.
    fn default() -> Schedule {
        Schedule {
            owed: false,
            full: true,
            reload: false,
            deadline: None,
            files: BTreeSet::new(),
            quiet: None,
            quiet_at: None,
            last_change: None,
        }
    }
}

impl Schedule {
    /// Whether something is owed or waiting: the workspace reports `queued`.
    pub(crate) fn is_pending(&self) -> bool {
        self.owed || self.reload || self.deadline.is_some()
    }

    /// Whether a job is owed (the daemon is not idle).
    pub(crate) fn owes_job(&self) -> bool {
        self.owed
    }

    pub(crate) fn owes_reload(&self) -> bool {
        self.reload
    }

    /// When the loop must look at the workspace again: the debounce's end, or the quiet
    /// wait's.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match (self.deadline, self.quiet_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Learned jobs were held back from a job: run them once the workspace has been quiet
    /// for `period` (from `now`, and from every later change).
    pub(crate) fn defer(&mut self, now: Instant, period: Duration) {
        self.quiet = Some(period);
        self.quiet_at = Some(now + period);
    }

    /// How long the workspace has been quiet at `now`: since its latest change, or since
    /// ever.
    pub(crate) fn quiet_for(&self, now: Instant) -> Duration {
        self.last_change
            .map_or(Duration::MAX, |at| now.saturating_duration_since(at))
    }

    /// Held-back jobs with a longer wait remain: run them once the workspace has been quiet
    /// for `period` since its latest change (`now` when none is known).
    pub(crate) fn defer_more(&mut self, now: Instant, period: Duration) {
        let since = self.last_change.unwrap_or(now);
        self.quiet = Some(period);
        self.quiet_at = Some(since + period);
    }

    /// The held-back jobs could not start when the wait ended: look again at `at`.
    pub(crate) fn retry_quiet(&mut self, at: Instant, period: Duration) {
        self.quiet = Some(period);
        self.quiet_at = Some(at);
    }

    /// Files changed (`saved`: an editor saved one, so no debounce).
    pub(crate) fn changed(
        &mut self,
        files: BTreeSet<PathBuf>,
        saved: bool,
        now: Instant,
        debounce: Duration,
    ) {
        // A job due at once (a save made it so, and it waits only for the check of cargo's
        // locks) is not held back by the watcher's report of the same writes: that report
        // can come a moment after the save's, and would otherwise start the debounce again.
        let due_now = self.owed && self.deadline.is_none();
        let known = files.iter().all(|f| self.files.contains(f));
        self.files.extend(files);
        self.owed = true;
        self.last_change = Some(now);
        if let Some(period) = self.quiet {
            self.quiet_at = Some(now + period);
        }
        self.deadline = if saved || (due_now && known) {
            // The user said the file is done.
            None
        } else if self.files.len() >= STORM_FILES {
            Some(now + STORM_DEBOUNCE.max(debounce))
        } else {
            Some(now + debounce)
        };
    }

    /// A change the metadata must be read again for (a manifest, a new target file): load,
    /// then build everything. The files' own `changed` follows.
    pub(crate) fn manifest_changed(&mut self) {
        self.reload = true;
        self.full = true;
    }

    /// Load again before anything else: a new registration, the dir came back.
    pub(crate) fn reload(&mut self) {
        self.reload = true;
    }

    /// Load again at once: the key changed (another toolchain or flags), so the debounce
    /// of earlier edits no longer matters.
    pub(crate) fn reload_now(&mut self) {
        self.reload = true;
        self.deadline = None;
    }

    /// The watcher overflowed: rebuild the watch, load, and build everything, now.
    pub(crate) fn rescan(&mut self, now: Instant) {
        self.reload = true;
        self.full = true;
        self.owed = true;
        self.deadline = Some(now);
    }

    /// The watcher reported an error, which may mean lost events: build everything after
    /// the debounce.
    pub(crate) fn events_lost(&mut self, at: Instant) {
        self.full = true;
        self.owed = true;
        self.deadline = Some(at);
    }

    /// A client asked for a rebuild: everything, now.
    pub(crate) fn rebuild(&mut self) {
        self.owed = true;
        self.full = true;
        self.deadline = None;
    }

    /// The owed job could not start yet (a cargo outside buildd holds the dir's lock): try
    /// again at `at`.
    pub(crate) fn retry(&mut self, at: Instant) {
        if self.owed {
            self.deadline = Some(self.deadline.map_or(at, |d| d.max(at)));
        }
    }

    /// A client cancelled: nothing is owed any more, not even the changes seen so far.
    pub(crate) fn cancel(&mut self) {
        self.owed = false;
        self.deadline = None;
        self.files.clear();
        self.quiet = None;
        self.quiet_at = None;
    }

    /// The workspace's dir went away: nothing to load or build until it is registered again.
    pub(crate) fn stop(&mut self) {
        self.owed = false;
        self.reload = false;
        self.deadline = None;
        self.quiet = None;
        self.quiet_at = None;
    }

    /// A load succeeded: build everything with what it found.
    pub(crate) fn loaded(&mut self) {
        self.owed = true;
        self.full = true;
    }

    /// A job that was cancelled or gave way: what it covered is owed again.
    pub(crate) fn give_back(&mut self, owed: Owed) {
        self.files.extend(owed.files);
        self.full |= owed.full;
        self.owed = true;
    }

    /// The next step once the workspace runs no job and no load.
    pub(crate) fn step(&mut self, now: Instant) -> Step {
        if self.deadline.is_some_and(|d| d > now) {
            return Step::Wait;
        }
        self.deadline = None;
        if self.reload {
            self.reload = false;
            Step::Load
        } else if self.owed {
            Step::Build
        } else if self.quiet_at.is_some_and(|at| at <= now) {
            self.quiet = None;
            self.quiet_at = None;
            Step::Quiet
        } else {
            Step::Idle
        }
    }

    /// Takes what the starting job covers (`full` also when there is no graph to predict
    /// with); nothing is owed after it.
    pub(crate) fn take(&mut self, no_graph: bool) -> Owed {
        let owed = Owed {
            full: self.full || no_graph,
            files: std::mem::take(&mut self.files),
        };
        self.owed = false;
        self.full = false;
        owed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBOUNCE: Duration = Duration::from_millis(300);

    fn files(names: &[&str]) -> BTreeSet<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn held_back_jobs_run_once_the_workspace_is_quiet_and_each_change_restarts_the_wait() {
        let quiet = Duration::from_secs(30);
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.take(false);
        s.defer(t0, quiet);
        assert_eq!(s.step(t0), Step::Idle);
        assert_eq!(s.deadline(), Some(t0 + quiet));
        // An edit at 20 s: its job first, and the quiet wait starts again.
        let t1 = t0 + Duration::from_secs(20);
        s.changed(files(&["a.rs"]), true, t1, DEBOUNCE);
        assert_eq!(s.step(t1), Step::Build);
        s.take(false);
        assert_eq!(s.step(t0 + quiet), Step::Idle, "quiet since 20 s only");
        assert_eq!(s.step(t1 + quiet), Step::Quiet);
        assert_eq!(s.step(t1 + quiet), Step::Idle);
    }

    #[test]
    fn the_watchers_report_of_a_saved_file_does_not_delay_the_job_the_save_made_due() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.take(false);
        // The watcher's first report, then the save: due at once.
        s.changed(files(&["a.rs"]), false, t0, DEBOUNCE);
        s.changed(files(&["a.rs"]), true, t0, DEBOUNCE);
        assert_eq!(s.deadline(), None);
        // The watcher's second report of the same write, while the lock check runs.
        s.changed(files(&["a.rs"]), false, t0, DEBOUNCE);
        assert_eq!(
            s.step(t0),
            Step::Build,
            "the save's job is not debounced again"
        );
        s.take(false);
        // Another file is a change of its own: debounced.
        s.changed(files(&["a.rs"]), true, t0, DEBOUNCE);
        s.changed(files(&["b.rs"]), false, t0, DEBOUNCE);
        assert_eq!(s.step(t0), Step::Wait);
        assert_eq!(s.step(t0 + DEBOUNCE), Step::Build);
        // Without a save, the watcher's reports are debounced as before.
        s.take(false);
        s.changed(files(&["a.rs"]), false, t0, DEBOUNCE);
        s.changed(files(&["a.rs"]), false, t0, DEBOUNCE);
        assert_eq!(s.step(t0), Step::Wait);
    }

    #[test]
    fn a_longer_wait_is_counted_from_the_latest_change_too() {
        let (quiet, longer) = (Duration::from_secs(30), Duration::from_secs(300));
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.take(false);
        assert_eq!(s.quiet_for(t0), Duration::MAX, "no change yet");
        s.changed(files(&["a.rs"]), true, t0, DEBOUNCE);
        assert_eq!(s.step(t0), Step::Build);
        s.take(false);
        s.defer(t0, quiet);
        assert_eq!(s.step(t0 + quiet), Step::Quiet);
        assert_eq!(s.quiet_for(t0 + quiet), quiet);
        // The rare job ran; the unused default waits on, from the same change.
        s.defer_more(t0 + quiet, longer);
        assert_eq!(s.deadline(), Some(t0 + longer));
        assert_eq!(s.step(t0 + longer - Duration::from_secs(1)), Step::Idle);
        assert_eq!(s.step(t0 + longer), Step::Quiet);
    }

    #[test]
    fn a_new_workspace_loads_then_builds_everything() {
        let now = Instant::now();
        let mut s = Schedule::default();
        assert!(!s.is_pending());
        s.reload();
        assert!(s.is_pending());
        assert_eq!(s.step(now), Step::Load);
        s.loaded();
        assert_eq!(s.step(now), Step::Build);
        assert_eq!(
            s.take(false),
            Owed {
                full: true,
                files: files(&[])
            }
        );
        assert!(!s.is_pending());
        assert_eq!(s.step(now), Step::Idle);
    }

    #[test]
    fn an_edit_waits_for_its_debounce_and_a_later_edit_moves_it() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.take(false);
        s.changed(files(&["a.rs"]), false, now, DEBOUNCE);
        assert_eq!(s.step(now), Step::Wait);
        assert!(s.is_pending(), "queued while the debounce runs");
        let later = now + DEBOUNCE / 2;
        s.changed(files(&["b.rs"]), false, later, DEBOUNCE);
        assert_eq!(
            s.step(now + DEBOUNCE),
            Step::Wait,
            "the second edit moved it"
        );
        assert_eq!(s.step(later + DEBOUNCE), Step::Build);
        assert_eq!(
            s.take(false),
            Owed {
                full: false,
                files: files(&["a.rs", "b.rs"])
            }
        );
        assert!(!s.owes_job());
    }

    #[test]
    fn a_save_does_not_wait_and_a_storm_waits_longer() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.changed(files(&["a.rs"]), true, now, DEBOUNCE);
        assert_eq!(s.deadline(), None);
        assert_eq!(s.step(now), Step::Build);
        s.take(false);
        let storm: Vec<String> = (0..STORM_FILES).map(|i| format!("f{i}.rs")).collect();
        let storm = storm.iter().map(PathBuf::from).collect();
        s.changed(storm, false, now, DEBOUNCE);
        assert_eq!(s.deadline(), Some(now + STORM_DEBOUNCE));
    }

    #[test]
    fn a_job_that_gave_way_owes_its_files_again_and_keeps_full() {
        let now = Instant::now();
        let mut s = Schedule::default();
        let first = s.take(false);
        assert!(first.full);
        s.changed(files(&["new.rs"]), true, now, DEBOUNCE);
        s.give_back(first);
        let again = s.take(false);
        assert!(again.full, "the full build it was is still owed");
        assert_eq!(again.files, files(&["new.rs"]));
        // Without a graph every job is full.
        assert!(s.take(true).full);
    }

    #[test]
    fn cancel_forgets_the_changes_and_stop_forgets_the_reload() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.changed(files(&["a.rs"]), false, now, DEBOUNCE);
        s.cancel();
        assert!(!s.is_pending());
        assert!(s.take(false).files.is_empty());
        s.rescan(now);
        assert!(s.owes_reload() && s.owes_job());
        s.stop();
        assert!(!s.is_pending());
        assert_eq!(s.step(now), Step::Idle);
    }

    #[test]
    fn a_rebuild_and_lost_events_build_everything() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.take(false);
        s.changed(files(&["a.rs"]), false, now, DEBOUNCE);
        s.rebuild();
        assert_eq!(s.step(now), Step::Build, "a rebuild skips the debounce");
        assert!(s.take(false).full);
        s.events_lost(now + DEBOUNCE);
        assert_eq!(s.step(now), Step::Wait);
        assert_eq!(s.step(now + DEBOUNCE), Step::Build);
        assert!(s.take(false).full);
    }

    #[test]
    fn a_key_change_reloads_at_once_and_a_manifest_edit_after_its_debounce() {
        let now = Instant::now();
        let mut s = Schedule::default();
        s.take(false);
        s.changed(files(&["a.rs"]), false, now, DEBOUNCE);
        s.reload_now();
        assert_eq!(s.step(now), Step::Load);
        assert_eq!(
            s.step(now),
            Step::Build,
            "the edit is still owed after the load"
        );
        s.take(false);
        s.manifest_changed();
        s.changed(files(&["Cargo.toml"]), false, now, DEBOUNCE);
        assert_eq!(s.step(now), Step::Wait);
        assert_eq!(s.step(now + DEBOUNCE), Step::Load);
        s.loaded();
        assert!(s.take(false).full);
    }
}
