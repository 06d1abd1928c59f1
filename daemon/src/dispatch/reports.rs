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

use crate::build::diagnostics;
use crate::dispatch::workspace::Workspace;
use crate::wire::protocol::Report;

/// Why `report` cannot be taken for the workspace `ws` at `root`, a canonical path.
pub(crate) fn check(ws: &Workspace, root: &Path, report: &Report) -> Result<(), String> {
    let Report::Tests(tests) = report else {
        return Ok(());
    };
    let last = ws.last_job.as_ref().map(|j| j.id);
    let running = ws.job.as_ref().map(|j| j.id);
    if Some(tests.job) != last && Some(tests.job) != running {
        let known = match (last, running) {
            (None, None) => "it has run no job yet".to_owned(),
            (Some(last), None) => format!("its last job is #{last}"),
            (None, Some(running)) => format!("job #{running} is running"),
            (Some(last), Some(running)) => {
                format!("its last job is #{last} and #{running} is running")
            }
        };
        return Err(format!(
            "report refers to job #{}, which is not a job of {} ({known}); report the tests of \
             the job you waited for",
            tests.job,
            root.display()
        ));
    }
    for failing in &tests.failing {
        let Some(file) = &failing.file else {
            continue;
        };
        let path = diagnostics::resolve(root, &file.to_string_lossy());
        if !inside(root, &path) {
            return Err(format!(
                "report places test `{}` in {}, which is outside the workspace {}; send only \
                 places inside the workspace (or none)",
                failing.name,
                file.display(),
                root.display()
            ));
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
