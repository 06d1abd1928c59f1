//! The view's state: what the daemon said about the workspace (its state, job definitions,
//! the running job, diagnostics, test results) and what the user chose to look at (a job, a
//! diagnostic, warnings or not, which screen). Pure: events and actions in, state out. It
//! knows no terminal, no socket and no clock: the time comes in as an argument.
//!
//! Diagnostics follow the daemon's store (a file's entries come from one job; a finished job
//! clears the files it said nothing about), fed by the same events, so the view shows what
//! `buildd status` does. The wire does not say which job definition reported a diagnostic,
//! only which run (`job`), so the view tells them apart itself: a diagnostic that arrives
//! while a stage runs belongs to that stage; a test failure (the daemon makes those from
//! test reports, with no package) belongs to the `test` job; anything else (the snapshot
//! taken when the view starts) to the first diagnostics job.

use std::path::PathBuf;
use std::time::Instant;

use buildd_daemon::protocol::{
    Diagnostic, EventKind, FailingTest, FileDiagnostics, JobResult, JobStatus, JobSummary,
    Severity, Stage, TestReport, WorkspaceState, WorkspaceStatus,
};

/// The notices kept for the log screen.
const NOTICES_KEPT: usize = 500;

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextJob,
    PreviousJob,
    /// The job at this place in the tabs (0-based).
    Job(usize),
    ToggleWarnings,
    /// The full message of the selected item.
    Open,
    /// Back to the list from another screen.
    Back,
    Help,
    Log,
    RunTests,
    Rebuild,
    Cancel,
    Quit,
}

/// What the watch loop does for an action: the view cannot do it alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    RunTests,
    Rebuild,
    Cancel,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Screen {
    List,
    /// The full message of the selected item.
    Detail,
    Help,
    Log,
}

/// The job running now, from its events.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    pub(crate) id: u64,
    pub(crate) stages: Vec<Stage>,
    pub(crate) stage: Option<Stage>,
    pub(crate) done: u64,
    pub(crate) expected: Option<u64>,
    /// The last package cargo compiled (not found fresh).
    pub(crate) compiling: Option<String>,
}

impl Run {
    /// How far the job is, in percent, when the last run said how many units to expect;
    /// never 100 before it ends.
    pub(crate) fn percent(&self) -> Option<u64> {
        let expected = self.expected.filter(|n| *n > 0)?;
        Some((self.done * 100 / expected).min(99))
    }
}

/// The last change the watcher reported, as far as the view saw it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    /// When the view saw the workspace queue a job for it; `None` for a change from before
    /// the view started (the wire carries no time).
    pub(crate) at: Option<Instant>,
    pub(crate) files: Vec<PathBuf>,
}

/// The tests run by this view (`t`, `--test`) or reported by another watch.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Tests {
    pub(crate) running_since: Option<Instant>,
    pub(crate) last: Option<TestReport>,
}

/// A diagnostic with the job definition it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) diagnostic: Diagnostic,
    /// The stage that was running when it arrived, if one was.
    stage: Option<Stage>,
}

/// One row of the list, before wrapping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Item<'a> {
    /// Why the job failed when it was not compile errors (cargo's own words).
    Failure(&'a str),
    Diagnostic(&'a Diagnostic),
    /// A failing test whose place the output did not say.
    Test(&'a FailingTest),
}

#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) root: PathBuf,
    pub(crate) state: WorkspaceState,
    pub(crate) error: Option<String>,
    pub(crate) jobs: Vec<JobStatus>,
    pub(crate) run: Option<Run>,
    pub(crate) last_job: Option<JobSummary>,
    /// The stage that was running when the last job failed.
    failed_stage: Option<Stage>,
    pub(crate) last_change: Option<Change>,
    pub(crate) tests: Tests,
    /// Files and their diagnostics, each file's from one run (`job`).
    files: Vec<(PathBuf, u64, Vec<Entry>)>,
    /// What the watch did and said (test summaries, the program's output), newest last.
    pub(crate) notices: Vec<String>,
    /// The job whose diagnostics are shown, by name; the first diagnostics job when unset or
    /// gone.
    job: Option<Stage>,
    pub(crate) show_warnings: bool,
    pub(crate) screen: Screen,
    /// The selected item of the list (clamped to the list when read).
    selected: usize,
    /// Rows scrolled in the detail and log screens.
    pub(crate) scroll: usize,
    /// Set once the user asked to quit while the tests run: the view ends when they do.
    pub(crate) quitting: bool,
    /// The user asked for a rebuild: the job it queues is not a change.
    rebuild_asked: bool,
}

impl View {
    pub(crate) fn new(status: &WorkspaceStatus) -> View {
        let mut view = View {
            root: status.root.clone(),
            state: status.state,
            error: None,
            jobs: Vec::new(),
            run: None,
            last_job: None,
            failed_stage: None,
            last_change: None,
            tests: Tests::default(),
            files: Vec::new(),
            notices: Vec::new(),
            job: None,
            show_warnings: true,
            screen: Screen::List,
            selected: 0,
            scroll: 0,
            quitting: false,
            rebuild_asked: false,
        };
        view.status(status);
        if let Some(job) = &status.current_job {
            view.run = Some(Run {
                id: job.id,
                stages: job.stages.clone(),
                stage: job.stage.clone(),
                done: job.units_done,
                expected: None,
                compiling: None,
            });
        }
        view
    }

    /// Takes what a status reply says: state, job definitions, the last job and change.
    pub(crate) fn status(&mut self, status: &WorkspaceStatus) {
        self.state = status.state;
        self.error = status.error.clone();
        self.jobs = status.jobs.clone();
        self.last_job = status.last_job.clone();
        match (&mut self.last_change, &status.last_change) {
            (Some(change), Some(last)) => change.files = last.files.clone(),
            (None, Some(last)) => {
                self.last_change = Some(Change {
                    at: None,
                    files: last.files.clone(),
                })
            }
            _ => {}
        }
        if self.tests.last.is_none() {
            self.tests.last = status.last_tests.clone();
        }
    }

    /// Takes the daemon's diagnostics when the view starts.
    pub(crate) fn snapshot(&mut self, files: Vec<FileDiagnostics>) {
        for file in files {
            for diagnostic in file.diagnostics {
                self.add(file.job, diagnostic, None);
            }
        }
    }

    pub(crate) fn event(&mut self, kind: EventKind, now: Instant) {
        match kind {
            EventKind::State { state, error } => {
                if state == WorkspaceState::Queued && std::mem::take(&mut self.rebuild_asked) {
                    // The rebuild's own queue: the last change stays what it was.
                } else if state == WorkspaceState::Queued {
                    let files = self.last_change.take().map(|c| c.files).unwrap_or_default();
                    self.last_change = Some(Change {
                        at: Some(now),
                        files,
                    });
                }
                self.state = state;
                self.error = error;
            }
            EventKind::JobStarted {
                job,
                stages,
                expected_units,
            } => {
                // The rebuild started (with or without a queue first): what queues next is a
                // change.
                self.rebuild_asked = false;
                self.run = Some(Run {
                    id: job,
                    stages,
                    stage: None,
                    done: 0,
                    expected: expected_units,
                    compiling: None,
                });
            }
            EventKind::StageStarted { job, stage } => {
                if let Some(run) = self.run.as_mut().filter(|r| r.id == job) {
                    run.stage = Some(stage);
                }
            }
            EventKind::UnitFinished {
                job,
                package,
                fresh,
                done,
                ..
            } => {
                if let Some(run) = self.run.as_mut().filter(|r| r.id == job) {
                    run.done = done;
                    if !fresh {
                        run.compiling = Some(package);
                    }
                }
            }
            EventKind::Diagnostic { job, diagnostic } => {
                let stage = self
                    .run
                    .as_ref()
                    .filter(|r| r.id == job)
                    .and_then(|r| r.stage.clone());
                self.add(job, *diagnostic, stage);
            }
            EventKind::JobFinished {
                job,
                summary,
                cleared,
            } => {
                let run = self.run.take().filter(|r| r.id == job);
                if summary.result == JobResult::Failed {
                    self.failed_stage = run.and_then(|r| r.stage);
                } else if summary.result == JobResult::Success {
                    self.failed_stage = None;
                }
                self.files.retain(|(file, _, _)| !cleared.contains(file));
                self.last_job = Some(summary);
            }
            // The watch loop acts on executables; what it did comes back as a process report.
            EventKind::Executable { .. } => {}
            EventKind::Tests { report } => self.tests.last = Some(report),
            EventKind::Process { report } => {
                // This watch's own reports come back as events: said once is enough.
                let text = format!("[{}] {}", report.bin, report.message);
                if !self.notices.iter().rev().take(20).any(|n| *n == text) {
                    self.notice(text);
                }
            }
            EventKind::Disk { message, .. } => self.notice(match message {
                Some(message) => format!("disk full: {message}"),
                None => "the disk has room again".to_owned(),
            }),
        }
    }

    /// Adds a diagnostic as the daemon's store does: a newer run replaces a file's entries.
    fn add(&mut self, job: u64, diagnostic: Diagnostic, stage: Option<Stage>) {
        let entry = Entry { diagnostic, stage };
        match self
            .files
            .iter_mut()
            .find(|(f, _, _)| *f == entry.diagnostic.file)
        {
            Some((_, file_job, entries)) if *file_job < job => {
                *file_job = job;
                *entries = vec![entry];
            }
            Some((_, file_job, entries)) if *file_job == job => {
                if !entries.iter().any(|e| e.diagnostic == entry.diagnostic) {
                    entries.push(entry);
                }
            }
            Some(_) => {}
            None => self
                .files
                .push((entry.diagnostic.file.clone(), job, vec![entry])),
        }
    }

    pub(crate) fn notice(&mut self, text: String) {
        self.notices.push(text);
        if self.notices.len() > NOTICES_KEPT {
            self.notices.remove(0);
        }
    }

    pub(crate) fn tests_started(&mut self, now: Instant) {
        self.tests.running_since = Some(now);
    }

    pub(crate) fn tests_finished(&mut self, report: Option<TestReport>) {
        self.tests.running_since = None;
        if report.is_some() {
            self.tests.last = report;
        }
    }

    /// The job whose diagnostics are shown.
    pub(crate) fn selected_job(&self) -> Option<&JobStatus> {
        self.job
            .as_ref()
            .and_then(|name| self.jobs.iter().find(|j| &j.name == name))
            .or_else(|| self.jobs.iter().find(|j| j.diagnostics))
            .or_else(|| self.jobs.first())
    }

    pub(crate) fn selected_job_index(&self) -> Option<usize> {
        let job = self.selected_job()?;
        self.jobs.iter().position(|j| j.name == job.name)
    }

    /// The job a diagnostic belongs to (see the module's comment).
    fn owner<'a>(&'a self, entry: &'a Entry) -> Option<&'a Stage> {
        let first_diagnostics = self.jobs.iter().find(|j| j.diagnostics).map(|j| &j.name);
        if is_test_failure(&entry.diagnostic) {
            return self
                .jobs
                .iter()
                .find(|j| j.name.name() == "test")
                .map(|j| &j.name)
                .or(first_diagnostics);
        }
        entry.stage.as_ref().or(first_diagnostics)
    }

    /// The selected job's diagnostics, errors first, then warnings (when shown), then the
    /// rest, each by place.
    pub(crate) fn diagnostics(&self) -> Vec<&Diagnostic> {
        let job = self.selected_job().map(|j| &j.name);
        let mut shown: Vec<&Diagnostic> = self
            .files
            .iter()
            .flat_map(|(_, _, entries)| entries)
            .filter(|e| job.is_none() || self.owner(e) == job)
            .map(|e| &e.diagnostic)
            .filter(|d| self.show_warnings || d.severity == Severity::Error)
            .collect();
        shown.sort_by(|a, b| {
            (a.severity, &a.file, a.line, a.column).cmp(&(b.severity, &b.file, b.line, b.column))
        });
        shown
    }

    /// Errors and warnings of the selected job, whether warnings are shown or not.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let job = self.selected_job().map(|j| &j.name);
        let entries = self
            .files
            .iter()
            .flat_map(|(_, _, entries)| entries)
            .filter(|e| job.is_none() || self.owner(e) == job);
        entries.fold((0, 0), |(e, w), entry| match entry.diagnostic.severity {
            Severity::Error => (e + 1, w),
            Severity::Warning => (e, w + 1),
            _ => (e, w),
        })
    }

    /// The list: the job's failure (when it failed without compile errors it can show),
    /// its diagnostics, and for the test job the failing tests without a place.
    pub(crate) fn items(&self) -> Vec<Item<'_>> {
        let mut items = Vec::new();
        let Some(job) = self.selected_job() else {
            return self
                .diagnostics()
                .into_iter()
                .map(Item::Diagnostic)
                .collect();
        };
        if let Some(last) = &self.last_job
            && last.result == JobResult::Failed
            && let Some(failure) = &last.failure
            && job.last_result == Some(JobResult::Failed)
            && self.failed_stage.as_ref().is_none_or(|s| *s == job.name)
        {
            items.push(Item::Failure(failure));
        }
        items.extend(self.diagnostics().into_iter().map(Item::Diagnostic));
        if job.name.name() == "test"
            && let Some(report) = &self.tests.last
        {
            items.extend(
                report
                    .failing
                    .iter()
                    .filter(|f| f.file.is_none() || f.line.is_none())
                    .map(Item::Test),
            );
        }
        items
    }

    /// The selected item's place in [`View::items`].
    pub(crate) fn selected(&self) -> usize {
        self.selected.min(self.items().len().saturating_sub(1))
    }

    /// Carries out what it can of `action`, and returns what the loop must do.
    pub(crate) fn act(&mut self, action: Action) -> Option<Effect> {
        let count = self.items().len();
        let page = 10;
        match action {
            Action::Quit => return Some(Effect::Quit),
            Action::Rebuild => {
                self.rebuild_asked = true;
                return Some(Effect::Rebuild);
            }
            Action::Cancel => return Some(Effect::Cancel),
            Action::RunTests => {
                if let Some(test) = self.jobs.iter().find(|j| j.name.name() == "test") {
                    self.job = Some(test.name.clone());
                    self.selected = 0;
                }
                return Some(Effect::RunTests);
            }
            Action::Up if self.screen == Screen::List => {
                self.selected = self.selected().saturating_sub(1)
            }
            Action::Down if self.screen == Screen::List => {
                self.selected = (self.selected() + 1).min(count.saturating_sub(1))
            }
            Action::PageUp if self.screen == Screen::List => {
                self.selected = self.selected().saturating_sub(page)
            }
            Action::PageDown if self.screen == Screen::List => {
                self.selected = (self.selected() + page).min(count.saturating_sub(1))
            }
            Action::Top if self.screen == Screen::List => self.selected = 0,
            Action::Bottom if self.screen == Screen::List => {
                self.selected = count.saturating_sub(1)
            }
            Action::Up => self.scroll = self.scroll.saturating_sub(1),
            Action::Down => self.scroll += 1,
            Action::PageUp => self.scroll = self.scroll.saturating_sub(page),
            Action::PageDown => self.scroll += page,
            Action::Top => self.scroll = 0,
            Action::Bottom => self.scroll = usize::MAX / 2,
            Action::NextJob | Action::PreviousJob | Action::Job(_) => {
                let n = self.jobs.len();
                if n > 0 {
                    let current = self.selected_job_index().unwrap_or(0);
                    let next = match action {
                        Action::NextJob => (current + 1) % n,
                        Action::PreviousJob => (current + n - 1) % n,
                        Action::Job(i) => i.min(n - 1),
                        _ => current,
                    };
                    self.job = Some(self.jobs[next].name.clone());
                    self.selected = 0;
                    self.screen = Screen::List;
                }
            }
            Action::ToggleWarnings => {
                self.show_warnings = !self.show_warnings;
                self.selected = self.selected();
            }
            Action::Open if self.screen == Screen::Detail => self.back(),
            Action::Open => {
                if count > 0 {
                    self.screen = Screen::Detail;
                    self.scroll = 0;
                }
            }
            Action::Back => self.back(),
            Action::Help if self.screen == Screen::Help => self.back(),
            Action::Help => self.screen = Screen::Help,
            Action::Log if self.screen == Screen::Log => self.back(),
            Action::Log => {
                self.screen = Screen::Log;
                // The newest notices first come into sight: the render clamps this.
                self.scroll = usize::MAX / 2;
            }
        }
        None
    }

    /// Keeps the scroll within what the screen shown has (the render says how far that is),
    /// so that a key back moves at once.
    pub(crate) fn clamp_scroll(&mut self, max: usize) {
        self.scroll = self.scroll.min(max);
    }

    fn back(&mut self) {
        self.screen = Screen::List;
        self.scroll = 0;
    }
}

/// Whether the daemon made this diagnostic from a test report (see `test_failure` in the
/// daemon's `build/diagnostics.rs`): it has no package, and says which test failed.
fn is_test_failure(d: &Diagnostic) -> bool {
    d.package.is_empty() && d.message.starts_with("test `")
}
