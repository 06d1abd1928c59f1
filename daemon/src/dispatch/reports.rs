//! Checking a watch loop's report before the dispatcher takes it.
//!
//! A test report turns failing tests into diagnostics stamped with the job it names, and the
//! diagnostic store clears a file's entries only when a newer job finishes. A report with a
//! job id from the future, or a file outside the workspace, made a diagnostic that no later
//! job cleared. So a report must name a job this workspace ran (its last one, or the one
//! running) and places inside the workspace, found by their real paths: a link inside the
//! workspace that points out of it does not count as inside. A report that does not is
//! refused whole, before anything is stored.

use std::path::{Component, Path, PathBuf};

use thiserror::Error;

use crate::build::diagnostics;
use crate::dispatch::workspace::Workspace;
use crate::wire::protocol::Report;

/// Why a report is refused; the text is the `bad_request` error the reporting client gets.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum ReportError {
    /// `last` and `running` are the jobs the workspace knows.
    #[error(
        "report refers to job #{job}, which is not a job of {root} ({}); report the tests of \
         the job you waited for",
        known_jobs(.last, .running)
    )]
    UnknownJob {
        job: u64,
        root: PathBuf,
        last: Option<u64>,
        running: Option<u64>,
    },
    #[error(
        "report places test `{test}` in {file}, which is outside the workspace {root}; send \
         only places inside the workspace (or none)"
    )]
    Outside {
        test: String,
        file: PathBuf,
        root: PathBuf,
    },
}

/// The jobs a workspace knows, for [`ReportError::UnknownJob`].
fn known_jobs(last: &Option<u64>, running: &Option<u64>) -> String {
    match (*last, *running) {
        (None, None) => "it has run no job yet".to_owned(),
        (Some(last), None) => format!("its last job is #{last}"),
        (None, Some(running)) => format!("job #{running} is running"),
        (Some(last), Some(running)) => {
            format!("its last job is #{last} and #{running} is running")
        }
    }
}

/// Why `report` cannot be taken for the workspace `ws` at `root`, a canonical path.
pub(crate) fn check(ws: &Workspace, root: &Path, report: &Report) -> Result<(), ReportError> {
    let Report::Tests(tests) = report else {
        return Ok(());
    };
    let last = ws.last_job.as_ref().map(|j| j.id);
    let running = ws.job.as_ref().map(|j| j.id);
    if Some(tests.job) != last && Some(tests.job) != running {
        return Err(ReportError::UnknownJob {
            job: tests.job,
            root: root.to_path_buf(),
            last,
            running,
        });
    }
    for failing in &tests.failing {
        let Some(file) = &failing.file else {
            continue;
        };
        let path = diagnostics::resolve(root, &file.to_string_lossy());
        if !inside(root, &path) {
            return Err(ReportError::Outside {
                test: failing.name.clone(),
                file: file.clone(),
                root: root.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Whether `path` is inside `root`, by its real path: no `..`, and the nearest part of it
/// that exists resolves, links followed, to a path below `root`.
fn inside(root: &Path, path: &Path) -> bool {
    if !path.starts_with(root) || path.components().any(|c| c == Component::ParentDir) {
        return false;
    }
    let mut existing: PathBuf = path.to_path_buf();
    loop {
        // A few `lstat`s: no file is opened, so a FIFO cannot block this.
        if let Ok(real) = std::fs::canonicalize(&existing) {
            return real.starts_with(root);
        }
        if !existing.pop() {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts a reporting client gets, word for word as they were when they were built
    /// with `format!`.
    #[test]
    fn refusals_name_the_job_or_the_place_and_what_to_send() {
        let unknown = |last, running| {
            ReportError::UnknownJob {
                job: 9,
                root: PathBuf::from("/w"),
                last,
                running,
            }
            .to_string()
        };
        let tail = "; report the tests of the job you waited for";
        assert_eq!(
            unknown(None, None),
            format!(
                "report refers to job #9, which is not a job of /w (it has run no job yet){tail}"
            )
        );
        assert_eq!(
            unknown(Some(3), None),
            format!("report refers to job #9, which is not a job of /w (its last job is #3){tail}")
        );
        assert_eq!(
            unknown(None, Some(4)),
            format!("report refers to job #9, which is not a job of /w (job #4 is running){tail}")
        );
        assert_eq!(
            unknown(Some(3), Some(4)),
            format!(
                "report refers to job #9, which is not a job of /w (its last job is #3 and #4 \
                 is running){tail}"
            )
        );
        let outside = ReportError::Outside {
            test: "t::a".into(),
            file: PathBuf::from("/etc/passwd"),
            root: PathBuf::from("/w"),
        };
        assert_eq!(
            outside.to_string(),
            "report places test `t::a` in /etc/passwd, which is outside the workspace /w; send \
             only places inside the workspace (or none)"
        );
    }

    #[test]
    fn only_real_paths_below_the_root_are_inside() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let root = base.join("ws");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/lib.rs"), "").unwrap();
        std::fs::write(base.join("outside.rs"), "").unwrap();
        std::os::unix::fs::symlink(base.join("outside.rs"), root.join("src/link.rs")).unwrap();
        std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
        assert!(inside(&root, &root.join("src/lib.rs")));
        assert!(inside(&root, &root.join("src/not_yet.rs")));
        assert!(!inside(&root, &root.join("src/link.rs")));
        assert!(!inside(&root, &root.join("up/outside.rs")));
        assert!(!inside(&root, &root.join("up/not_there.rs")));
        assert!(!inside(&root, &root.join("src/../../outside.rs")));
        assert!(!inside(&root, Path::new("/etc/passwd")));
    }
}
