//! What the dispatcher does with changes: watcher events, edited and saved files, and the
//! watchers themselves.

// One module split by concern: the parts share the dispatcher's imports and items.
use super::*;

impl Dispatcher {
    pub(super) fn watch_event(&mut self, root: &Path, event: WatchEvent) {
        // A rescan rebuilds the watch; the new watcher gets the roots and ignored dirs from
        // the load that the rescan starts.
        let new_watcher = matches!(event, WatchEvent::Rescan)
            .then(|| self.start_watcher(root))
            .flatten();
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        match event {
            WatchEvent::Changed(paths) => self.files_changed(root, paths, false),
            WatchEvent::Rescan => {
                tracing::warn!(root = %root.display(), "the watcher overflowed; rebuilding everything");
                ws.watcher_status.rescans += 1;
                ws.watcher_status.note = Some(format!(
                    "the watcher overflowed {} time(s) and may have missed changes; each time \
                     buildd rebuilt the watch and everything",
                    ws.watcher_status.rescans
                ));
                ws.schedule.rescan(Instant::now());
                cancel_stale(ws);
                ws.watcher = new_watcher;
            }
            WatchEvent::RootRemoved => {
                ws.error = Some(format!(
                    "the workspace directory {} was removed or moved: register it again \
                     where it is now",
                    root.display()
                ));
                ws.watcher = None;
                ws.schedule.stop();
                if let Some(job) = &mut ws.job {
                    job.forget = true;
                    job.cancel.cancel();
                }
            }
            WatchEvent::Degraded(note) => {
                tracing::warn!(root = %root.display(), "{note}");
                ws.watcher_status.kind = WatcherKind::Poll;
                ws.watcher_status.note = Some(note);
            }
            WatchEvent::Error(e) => {
                // An error may mean lost events: build everything, as for an overflow.
                tracing::warn!(root = %root.display(), "watcher error: {e}");
                ws.watcher_status.note = Some(format!("watcher error: {e}"));
                ws.schedule
                    .events_lost(Instant::now() + self.config.debounce);
            }
        }
    }

    /// Files changed: the watcher saw them (debounced) or an editor saved them (at once).
    pub(super) fn files_changed(&mut self, root: &Path, paths: Vec<PathBuf>, saved: bool) {
        let debounce = self.config.debounce;
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        // The watcher reports a write a little after it happened; a running job that started
        // after the write (an editor's save starts one at once) reads the new content, and is
        // not stale because of it.
        if !saved
            && let Some(job) = &ws.job
            && paths.iter().all(|p| written_before(p, job.started_at))
        {
            tracing::debug!(
                job = job.id,
                ?paths,
                "change already covered by the running job"
            );
            return;
        }
        let files = without_vanished(paths.into_iter().collect(), root, &ws.depinfo);
        if files.is_empty() {
            return;
        }
        let manifest = files.iter().any(|p| is_manifest(root, p));
        let prediction = ws.graph.as_ref().map(|g| g.predict(&files, &ws.depinfo));
        let reload = manifest || prediction.as_ref().is_some_and(|p| p.reload);
        if reload {
            ws.schedule.manifest_changed();
        } else if let Some(prediction) = &prediction
            && prediction.affected.is_empty()
        {
            tracing::debug!(root = %root.display(), ?files, "no target reads these files");
            ws.last_change = Some(LastChange {
                files: files.into_iter().collect(),
                predicted: Vec::new(),
                full: false,
            });
            return;
        }
        if saved {
            ws.focus = files
                .iter()
                .find_map(|f| ws.graph.as_ref()?.package_of(f).map(str::to_owned));
        }
        let tests_only = !reload && prediction.is_some_and(|p| p.tests_only);
        // Cargo writes Cargo.lock itself at the start of a job when it is missing or
        // outdated; that must not cancel the job that wrote it.
        let only_lock = files
            .iter()
            .all(|p| p.file_name().is_some_and(|n| n == "Cargo.lock"));
        let debounce = ws.resolved(debounce).debounce;
        ws.schedule.changed(files, saved, Instant::now(), debounce);
        if let Some(job) = &ws.job {
            // A change only tests read does not make a stage stale that compiles no tests.
            let covered = tests_only
                && job.stage.as_ref().is_some_and(|stage| {
                    job.defs
                        .iter()
                        .find(|d| &d.name == stage)
                        .is_some_and(|d| compiles_no_tests(&d.args))
                });
            if !only_lock && !covered {
                cancel_stale(ws);
            }
        }
    }

    pub(super) fn start_watcher(&self, root: &Path) -> Option<WatchHandle> {
        let tx = self.tx.clone();
        let watch_root = root.to_path_buf();
        let forced_poll = self.config.watcher == WatcherChoice::Poll;
        match watch::start(root.to_path_buf(), forced_poll, move |event| {
            let _ = tx.send(Event::Watch {
                root: watch_root.clone(),
                event,
            });
        }) {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }
}

/// The changed files without those that are gone again and that no build ever read: an
/// editor's or sed's temp file (`src/sedhGh4pt`), made and renamed away in a moment. A
/// deleted file that a build read stays (deleting it is the change), and so does every file
/// while there is no dep-info yet to tell.
pub(super) fn without_vanished(
    files: BTreeSet<PathBuf>,
    root: &Path,
    depinfo: &crate::project::depinfo::DepInfo,
) -> BTreeSet<PathBuf> {
    if depinfo.crate_files.is_empty() {
        return files;
    }
    files
        .into_iter()
        .filter(|f| is_manifest(root, f) || depinfo.knows(f) || f.symlink_metadata().is_ok())
        .collect()
}

/// Cancels the running job: it builds files that just changed, so its results are stale.
pub(super) fn cancel_stale(ws: &Workspace) {
    if let Some(job) = &ws.job {
        tracing::debug!(job = job.id, "cancelling a stale job");
        job.cancel.cancel();
    }
}

/// Files whose change can change the workspace's metadata or toolchain.
pub(super) fn is_manifest(root: &Path, path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let in_cargo_dir = path
        .parent()
        .is_some_and(|p| p.file_name().is_some_and(|n| n == ".cargo"));
    name == "Cargo.toml"
        // cargo reads the lock file of the workspace's root only: another one under it is a
        // separate workspace's (a fixture, an example), which its own build writes.
        || (path.parent() == Some(root) && name == "Cargo.lock")
        || (in_cargo_dir && (name == "config" || name == "config.toml"))
        || (path.parent() == Some(root) && name.starts_with("rust-toolchain"))
        // Settings such as the linker change the key: load again.
        || (path.parent() == Some(root) && name == settings::FILE_NAME)
}

/// Whether `path` exists and was last written before `time`.
fn written_before(path: &Path, time: std::time::SystemTime) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|modified| modified < time)
}

/// Whether a job's command compiles no test, bench or example target: `build` and `check`
/// without a target selection that includes them.
fn compiles_no_tests(args: &[String]) -> bool {
    matches!(args.first().map(String::as_str), Some("build" | "check"))
        && !args.iter().any(|a| {
            matches!(
                a.as_str(),
                "--all-targets"
                    | "--tests"
                    | "--test"
                    | "--benches"
                    | "--bench"
                    | "--examples"
                    | "--example"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_recognised() {
        let root = Path::new("/w");
        assert!(is_manifest(root, Path::new("/w/Cargo.toml")));
        assert!(is_manifest(root, Path::new("/w/core/Cargo.toml")));
        assert!(is_manifest(root, Path::new("/w/Cargo.lock")));
        assert!(!is_manifest(
            root,
            Path::new("/w/tests/fixtures/other/Cargo.lock")
        ));
        assert!(is_manifest(root, Path::new("/w/.cargo/config.toml")));
        assert!(is_manifest(root, Path::new("/w/rust-toolchain.toml")));
        assert!(is_manifest(root, Path::new("/w/buildd.toml")));
        assert!(!is_manifest(root, Path::new("/w/src/lib.rs")));
        assert!(!is_manifest(root, Path::new("/w/src/config.toml")));
    }
}
