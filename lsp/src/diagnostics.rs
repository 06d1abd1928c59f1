//! The diagnostics this editor shows, per file, each file stamped with the generation of the
//! run that reported them.
//!
//! A generation is the daemon job's id within one connection to the daemon (an *epoch*):
//! after a daemon restart job ids start again from 1, so generations compare the epoch
//! first. The rules are the daemon's own (`buildd_daemon::stamped`, which both stores
//! use), so what an editor shows is what `buildd status` lists:
//! - a run's first diagnostic for a file replaces what older runs said of it, and a
//!   diagnostic of an older run than the file's is dropped, so a cancelled or superseded run
//!   never overwrites a newer one;
//! - a run that finishes (not cancelled) clears the files of its workspace that it did not
//!   report on;
//! - a file left with nothing is published once as empty, so the client clears it;
//! - a file is published only when what it shows differs from what was last published: the
//!   job's diagnostics that replace an early run's identical ones change nothing on screen,
//!   and a publish would make the editor refresh its markers and ask for code actions again.
//!
//! This module decides what to publish; it does not publish.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use buildd_daemon::stamped::Stamped;
use tower_lsp_server::ls_types::{Diagnostic, DiagnosticSeverity};

use crate::convert::Suggestion;

/// The run that reported a file's diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Generation {
    /// Which connection to the daemon (a restarted daemon numbers its jobs from 1 again).
    pub(crate) epoch: u64,
    /// The daemon's job id.
    pub(crate) job: u64,
}

/// A diagnostic as published, and its suggestions as the code actions need them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub(crate) diagnostic: Diagnostic,
    pub(crate) suggestions: Vec<Suggestion>,
}

impl From<Diagnostic> for Item {
    fn from(diagnostic: Diagnostic) -> Item {
        Item {
            diagnostic,
            suggestions: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    /// Each file's items, scoped by the workspace root whose run reported them.
    files: Stamped<PathBuf, Generation, Item>,
    /// Files whose diagnostics changed since the last [`Store::take_changes`].
    changed: BTreeSet<PathBuf>,
    /// What was last published for each file that shows something.
    published: HashMap<PathBuf, Vec<Diagnostic>>,
}

impl Store {
    /// Adds a diagnostic of a run of `root`. Returns false when the file holds a newer run's
    /// diagnostics (the stale one is dropped) or the same diagnostic already.
    pub(crate) fn add(
        &mut self,
        root: &Path,
        generation: Generation,
        file: PathBuf,
        item: impl Into<Item>,
    ) -> bool {
        let added = self.files.add(
            &file,
            &root.to_path_buf(),
            generation,
            item.into(),
            PartialEq::eq,
        );
        if added {
            self.changed.insert(file);
        }
        added
    }

    /// Ends a run of `root` that was not cancelled: files of `root` from older runs are
    /// cleared.
    pub(crate) fn finish(&mut self, root: &Path, generation: Generation) {
        let cleared = self.files.finish(&root.to_path_buf(), generation);
        self.changed.extend(cleared);
    }

    /// Replaces what this epoch knows of `root` by the daemon's snapshot (the `diagnostics`
    /// reply). Files from an earlier epoch stay until a run of this one finishes: a restarted
    /// daemon knows nothing yet, and its first job will say.
    pub(crate) fn replace(
        &mut self,
        root: &Path,
        epoch: u64,
        files: Vec<(PathBuf, Generation, Vec<Item>)>,
    ) {
        let gone = self
            .files
            .remove_where(|e| e.scope == root && e.generation.epoch >= epoch);
        self.changed.extend(gone);
        for (file, generation, items) in files {
            for item in items {
                self.add(root, generation, file.clone(), item);
            }
        }
    }

    /// Forgets a workspace this editor no longer shows.
    pub(crate) fn remove_root(&mut self, root: &Path) {
        let gone = self.files.remove_where(|e| e.scope == root);
        self.changed.extend(gone);
    }

    /// The files whose diagnostics changed since they were last published, with all their
    /// diagnostics now (empty for a cleared file), and takes them as published.
    pub(crate) fn take_changes(&mut self) -> Vec<(PathBuf, Vec<Diagnostic>)> {
        let mut changes = Vec::new();
        for file in std::mem::take(&mut self.changed) {
            let items: Vec<Diagnostic> = self
                .files
                .get(&file)
                .map(|e| e.items.iter().map(|i| i.diagnostic.clone()).collect())
                .unwrap_or_default();
            let before = self.published.get(&file).map_or(&[][..], Vec::as_slice);
            if before == items.as_slice() {
                continue;
            }
            if items.is_empty() {
                self.published.remove(&file);
            } else {
                self.published.insert(file.clone(), items.clone());
            }
            changes.push((file, items));
        }
        changes
    }

    /// What the editor shows for `file`, in the order it was reported.
    pub(crate) fn items(&self, file: &Path) -> &[Item] {
        self.files.get(file).map_or(&[], |e| e.items.as_slice())
    }

    /// How many diagnostics of `severity` the editor shows for `root`.
    pub(crate) fn count(&self, root: &Path, severity: DiagnosticSeverity) -> u64 {
        self.files
            .iter()
            .filter(|(_, e)| e.scope == root)
            .flat_map(|(_, e)| &e.items)
            .filter(|i| i.diagnostic.severity == Some(severity))
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use tower_lsp_server::ls_types::{Position, Range};

    use super::*;

    const ROOT: &str = "/w";

    fn generation(epoch: u64, job: u64) -> Generation {
        Generation { epoch, job }
    }

    fn diag(message: &str) -> Diagnostic {
        Diagnostic {
            range: Range::new(Position::new(0, 0), Position::new(0, 1)),
            severity: Some(DiagnosticSeverity::ERROR),
            message: message.into(),
            ..Default::default()
        }
    }

    fn changes(store: &mut Store) -> Vec<(String, Vec<String>)> {
        store
            .take_changes()
            .into_iter()
            .map(|(f, items)| {
                (
                    f.display().to_string(),
                    items.into_iter().map(|d| d.message).collect(),
                )
            })
            .collect()
    }

    fn root() -> &'static Path {
        Path::new(ROOT)
    }

    #[test]
    fn a_newer_run_replaces_a_file_and_an_older_one_is_dropped() {
        let mut store = Store::default();
        assert!(store.add(root(), generation(1, 5), "/w/a.rs".into(), diag("old")));
        assert!(store.add(root(), generation(1, 7), "/w/a.rs".into(), diag("new")));
        assert!(
            !store.add(root(), generation(1, 6), "/w/a.rs".into(), diag("stale")),
            "a superseded run never overwrites a newer one"
        );
        assert_eq!(
            changes(&mut store),
            vec![("/w/a.rs".into(), vec!["new".into()])]
        );
        assert!(!store.add(root(), generation(1, 7), "/w/a.rs".into(), diag("new")));
        assert!(
            changes(&mut store).is_empty(),
            "a duplicate changes nothing"
        );
    }

    #[test]
    fn a_newer_run_that_shows_the_same_is_not_published_again() {
        let mut store = Store::default();
        // An early run (the job's id less one), then the job, with the same warning.
        store.add(root(), generation(1, 7), "/w/a.rs".into(), diag("unused"));
        assert_eq!(
            changes(&mut store),
            vec![("/w/a.rs".into(), vec!["unused".into()])]
        );
        assert!(store.add(root(), generation(1, 8), "/w/a.rs".into(), diag("unused")));
        store.finish(root(), generation(1, 8));
        assert!(changes(&mut store).is_empty(), "nothing differs on screen");
        // What differs is published, and a file cleared and shown again is published again.
        store.add(
            root(),
            generation(1, 10),
            "/w/a.rs".into(),
            diag("unused, twice"),
        );
        assert_eq!(
            changes(&mut store),
            vec![("/w/a.rs".into(), vec!["unused, twice".into()])]
        );
        store.finish(root(), generation(1, 12));
        assert_eq!(changes(&mut store), vec![("/w/a.rs".into(), vec![])]);
        store.add(
            root(),
            generation(1, 14),
            "/w/a.rs".into(),
            diag("unused, twice"),
        );
        assert_eq!(
            changes(&mut store),
            vec![("/w/a.rs".into(), vec!["unused, twice".into()])]
        );
    }

    #[test]
    fn a_finished_run_clears_what_it_did_not_report_with_an_empty_publish() {
        let mut store = Store::default();
        store.add(root(), generation(1, 1), "/w/a.rs".into(), diag("a"));
        store.add(root(), generation(1, 1), "/w/b.rs".into(), diag("b"));
        store.add(
            Path::new("/v"),
            generation(1, 1),
            "/v/c.rs".into(),
            diag("c"),
        );
        changes(&mut store);
        store.add(root(), generation(1, 2), "/w/b.rs".into(), diag("b2"));
        store.finish(root(), generation(1, 2));
        assert_eq!(
            changes(&mut store),
            vec![
                ("/w/a.rs".into(), vec![]),
                ("/w/b.rs".into(), vec!["b2".into()])
            ]
        );
        assert_eq!(store.count(root(), DiagnosticSeverity::ERROR), 1);
        assert_eq!(store.count(Path::new("/v"), DiagnosticSeverity::ERROR), 1);
    }

    #[test]
    fn a_restarted_daemons_jobs_are_newer_whatever_their_numbers() {
        let mut store = Store::default();
        store.add(root(), generation(1, 40), "/w/a.rs".into(), diag("before"));
        store.add(root(), generation(1, 40), "/w/b.rs".into(), diag("before"));
        // The new daemon's snapshot is empty: epoch 1's files stay for now.
        store.replace(root(), 2, Vec::new());
        store.add(root(), generation(2, 3), "/w/a.rs".into(), diag("after"));
        changes(&mut store);
        store.finish(root(), generation(2, 3));
        assert_eq!(changes(&mut store), vec![("/w/b.rs".into(), vec![])]);
    }

    #[test]
    fn a_snapshot_replaces_the_epochs_files_of_its_workspace() {
        let mut store = Store::default();
        store.add(root(), generation(1, 2), "/w/a.rs".into(), diag("a"));
        store.add(root(), generation(1, 2), "/w/b.rs".into(), diag("b"));
        changes(&mut store);
        store.replace(
            root(),
            1,
            vec![("/w/b.rs".into(), generation(1, 3), vec![diag("b3").into()])],
        );
        assert_eq!(
            changes(&mut store),
            vec![
                ("/w/a.rs".into(), vec![]),
                ("/w/b.rs".into(), vec!["b3".into()])
            ]
        );
    }

    #[test]
    fn removing_a_workspace_clears_its_files() {
        let mut store = Store::default();
        store.add(root(), generation(1, 1), "/w/a.rs".into(), diag("a"));
        changes(&mut store);
        store.remove_root(root());
        assert_eq!(changes(&mut store), vec![("/w/a.rs".into(), vec![])]);
        assert_eq!(store.count(root(), DiagnosticSeverity::ERROR), 0);
    }
}
