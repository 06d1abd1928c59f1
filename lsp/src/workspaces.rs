//! The editor's workspace folders and the cargo workspaces they resolve to, as this server
//! knows them from the daemon's replies and events.
//!
//! A folder is what the editor opened; the daemon resolves it to the root of the cargo
//! workspace that contains it, so several folders can share one workspace. This module keeps
//! what the `buildd/state` notification reports and builds its params; the main loop feeds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use buildd_daemon::protocol::{JobResult, JobSummary, WorkspaceState, WorkspaceStatus};

use crate::ext::{DaemonLink, StateParams};
use crate::progress::{JobProgress, Reporter};
use crate::uri;

/// An editor workspace folder.
#[derive(Debug, Default)]
pub(crate) struct Folder {
    /// The cargo workspace it belongs to, once the daemon said.
    pub(crate) root: Option<PathBuf>,
    /// Why it is not registered (not a cargo workspace, the daemon refused it).
    pub(crate) error: Option<String>,
    /// The daemon said it is not in a cargo workspace (then the workspaces found under it,
    /// if any, speak for it).
    pub(crate) not_a_workspace: bool,
    /// For a directory found under an editor folder (`discover.rs`), that folder.
    pub(crate) found_in: Option<PathBuf>,
}

/// The job running now.
#[derive(Debug)]
pub(crate) struct ActiveJob {
    pub(crate) progress: JobProgress,
    /// Its `$/progress`, when the client supports work-done progress.
    pub(crate) reporter: Option<Reporter>,
}

/// A cargo workspace this editor shows.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub(crate) root: PathBuf,
    pub(crate) state: WorkspaceState,
    pub(crate) error: Option<String>,
    pub(crate) target_dir: Option<PathBuf>,
    pub(crate) last_job: Option<JobSummary>,
    pub(crate) job: Option<ActiveJob>,
    /// Whether what this server knows is current: false from a (re)connection until the
    /// workspace is registered again and its diagnostics snapshot is in. No state is sent
    /// meanwhile.
    pub(crate) ready: bool,
}

impl Workspace {
    pub(crate) fn new(root: PathBuf) -> Workspace {
        Workspace {
            root,
            state: WorkspaceState::Queued,
            error: None,
            target_dir: None,
            last_job: None,
            job: None,
            ready: false,
        }
    }

    /// Takes in what a `registered` reply says.
    pub(crate) fn update(&mut self, status: &WorkspaceStatus) {
        self.state = status.state;
        self.error = status.error.clone();
        self.target_dir = status.target_dir.clone();
        self.last_job = status.last_job.clone();
    }

    /// Ends the running job's progress, if any, with `message`.
    pub(crate) fn end_job(&mut self, message: String) {
        if let Some(job) = self.job.take()
            && let Some(reporter) = job.reporter
        {
            reporter.end(message);
        }
    }

    /// The `buildd/state` params, given the counts the editor shows.
    pub(crate) fn state_params(
        &self,
        errors: u64,
        warnings: u64,
        daemon: DaemonLink,
    ) -> StateParams {
        let (job, percentage, message) = match &self.job {
            Some(active) => (
                Some(active.progress.job),
                Some(active.progress.percentage()),
                Some(active.progress.message().to_owned()),
            ),
            None => (
                self.last_job.as_ref().map(|j| j.id),
                None,
                self.last_job.as_ref().map(job_result),
            ),
        };
        StateParams {
            root: self.root.to_string_lossy().into_owned(),
            uri: uri_string(&self.root),
            state: self.state,
            error: self.error.clone(),
            errors,
            warnings,
            job,
            percentage,
            message,
            target_dir: self
                .target_dir
                .as_ref()
                .map(|d| d.to_string_lossy().into_owned()),
            daemon,
        }
    }
}

/// How a job ended, in a few words: the end of its progress and the state's message.
pub(crate) fn job_result(summary: &JobSummary) -> String {
    let counts = counts(summary.errors, summary.warnings);
    match summary.result {
        JobResult::Success => format!("done: {counts}"),
        JobResult::Failed => match &summary.failure {
            // The daemon explains a failure that compiler errors do not (cargo's own error,
            // a full disk, a timeout); that explanation wins.
            Some(failure) => {
                let first = failure.lines().next().unwrap_or(failure);
                format!("failed: {first}")
            }
            _ => format!("failed: {counts}"),
        },
        JobResult::Cancelled => "cancelled".to_owned(),
        JobResult::Yielded => "paused for a command of yours; it resumes after".to_owned(),
    }
}

fn counts(errors: u64, warnings: u64) -> String {
    let plural = |n: u64, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// The params for a folder that has no workspace: the daemon is unreachable, or the folder
/// is not a cargo workspace.
pub(crate) fn folder_state(folder: &Path, error: &str, daemon: DaemonLink) -> StateParams {
    StateParams {
        root: folder.to_string_lossy().into_owned(),
        uri: uri_string(folder),
        state: WorkspaceState::Error,
        error: Some(error.to_owned()),
        errors: 0,
        warnings: 0,
        job: None,
        percentage: None,
        message: None,
        target_dir: None,
        daemon,
    }
}

fn uri_string(path: &Path) -> String {
    uri::from_path(path)
        .map(|u| u.as_str().to_owned())
        .unwrap_or_default()
}

/// The deepest root in `roots` that contains `path`.
pub(crate) fn root_of<'a>(
    roots: impl IntoIterator<Item = &'a PathBuf>,
    path: &Path,
) -> Option<&'a PathBuf> {
    buildd_daemon::roots::root_of(roots, path)
}

/// Folders by path.
pub(crate) type Folders = BTreeMap<PathBuf, Folder>;

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(result: JobResult, errors: u64, failure: Option<&str>) -> JobSummary {
        JobSummary {
            id: 4,
            stages: vec![buildd_daemon::protocol::Stage::new("build")],
            result,
            duration_ms: 10,
            units_compiled: 1,
            errors,
            warnings: 1,
            rebuilt: Vec::new(),
            failure: failure.map(str::to_owned),
        }
    }

    #[test]
    fn results_read_as_a_few_words() {
        assert_eq!(
            job_result(&summary(JobResult::Success, 0, None)),
            "done: 0 errors, 1 warning"
        );
        assert_eq!(
            job_result(&summary(JobResult::Failed, 2, None)),
            "failed: 2 errors, 1 warning"
        );
        assert_eq!(
            job_result(&summary(
                JobResult::Failed,
                0,
                Some("cargo build failed: no such file\nmore")
            )),
            "failed: cargo build failed: no such file"
        );
        assert_eq!(
            job_result(&summary(JobResult::Cancelled, 0, None)),
            "cancelled"
        );
    }

    #[test]
    fn the_deepest_root_wins() {
        let roots = [PathBuf::from("/w"), PathBuf::from("/w/inner")];
        assert_eq!(
            root_of(&roots, Path::new("/w/inner/src/lib.rs")),
            Some(&roots[1])
        );
        assert_eq!(root_of(&roots, Path::new("/w/src/lib.rs")), Some(&roots[0]));
        assert_eq!(root_of(&roots, Path::new("/x/src/lib.rs")), None);
    }
}
