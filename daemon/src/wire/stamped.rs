//! The one rule for diagnostics stamped with the run that reported them. The daemon's store
//! (`build/diagnostics.rs`) and `buildd lsp`'s (`lsp/src/diagnostics.rs`) both keep their
//! files in a [`Stamped`], so what an editor shows follows the same rule as what
//! `buildd status` lists; the generation travels on the wire (`FileDiagnostics::job`).
//!
//! - A run's first item for a file replaces what older runs said of it, and an item of a run
//!   older than the file's is dropped, so a cancelled or superseded run never overwrites a
//!   newer one.
//! - An item the file already holds from the same run (by the caller's idea of "the same")
//!   is dropped: cargo replays the messages of units an earlier stage compiled.
//! - A run that finishes (not cancelled) clears the files of its scope that older runs
//!   reported: what it did not report is fixed.
//!
//! Pure: it decides what is kept, and says which files changed; it publishes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One file's items, all from one run.
#[derive(Debug, Clone)]
pub struct Entry<S, G, T> {
    /// What the file belongs to, for [`Stamped::finish`]: the workspace root in `buildd lsp`,
    /// which shows several; `()` in the daemon, which keeps one store per workspace.
    pub scope: S,
    /// The run that reported `items`.
    pub generation: G,
    pub items: Vec<T>,
}

/// Files and their stamped items; see the module's rules.
#[derive(Debug, Clone)]
pub struct Stamped<S, G, T> {
    files: BTreeMap<PathBuf, Entry<S, G, T>>,
}

impl<S, G, T> Default for Stamped<S, G, T> {
    fn default() -> Self {
        Stamped {
            files: BTreeMap::new(),
        }
    }
}

impl<S: Clone + PartialEq, G: Copy + Ord, T> Stamped<S, G, T> {
    /// Adds `item` of run `generation` to `file`. Returns false when the file holds a newer
    /// run's items (the stale one is dropped) or an item `same` as this one from this run.
    pub fn add(
        &mut self,
        file: &Path,
        scope: &S,
        generation: G,
        item: T,
        same: impl Fn(&T, &T) -> bool,
    ) -> bool {
        let entry = self
            .files
            .entry(file.to_path_buf())
            .or_insert_with(|| Entry {
                scope: scope.clone(),
                generation,
                items: Vec::new(),
            });
        if entry.generation > generation {
            return false;
        }
        if entry.generation < generation {
            entry.generation = generation;
            entry.scope = scope.clone();
            entry.items.clear();
        }
        if entry.items.iter().any(|held| same(held, &item)) {
            return false;
        }
        entry.items.push(item);
        true
    }

    /// Ends run `generation` of `scope`: the files of `scope` from older runs are cleared.
    /// Returns them.
    pub fn finish(&mut self, scope: &S, generation: G) -> Vec<PathBuf> {
        self.remove_where(|e| e.scope == *scope && e.generation < generation)
    }

    /// Removes the files whose entry matches, and returns them.
    pub fn remove_where(&mut self, matches: impl Fn(&Entry<S, G, T>) -> bool) -> Vec<PathBuf> {
        let gone: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|(_, e)| matches(e))
            .map(|(f, _)| f.clone())
            .collect();
        for file in &gone {
            self.files.remove(file);
        }
        gone
    }

    pub fn get(&self, file: &Path) -> Option<&Entry<S, G, T>> {
        self.files.get(file)
    }

    /// Every file with its entry, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&PathBuf, &Entry<S, G, T>)> {
        self.files.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Store = Stamped<&'static str, u64, &'static str>;

    fn add(
        store: &mut Store,
        file: &str,
        scope: &'static str,
        job: u64,
        item: &'static str,
    ) -> bool {
        store.add(Path::new(file), &scope, job, item, |a, b| a == b)
    }

    fn items<'a>(store: &'a Store, file: &str) -> Vec<&'a str> {
        store
            .get(Path::new(file))
            .map(|e| e.items.clone())
            .unwrap_or_default()
    }

    #[test]
    fn a_newer_run_replaces_a_file_and_an_older_one_is_dropped() {
        let mut store = Store::default();
        assert!(add(&mut store, "/w/a.rs", "w", 1, "old"));
        assert!(add(&mut store, "/w/a.rs", "w", 2, "new"));
        assert_eq!(items(&store, "/w/a.rs"), ["new"]);
        assert!(!add(&mut store, "/w/a.rs", "w", 1, "late"));
        assert_eq!(items(&store, "/w/a.rs"), ["new"]);
    }

    #[test]
    fn the_same_item_from_the_same_run_is_kept_once() {
        let mut store = Store::default();
        assert!(add(&mut store, "/w/a.rs", "w", 1, "x"));
        assert!(!add(&mut store, "/w/a.rs", "w", 1, "x"));
        assert!(add(&mut store, "/w/a.rs", "w", 1, "y"));
        assert!(
            add(&mut store, "/w/a.rs", "w", 2, "x"),
            "a new run may say it again"
        );
        assert_eq!(items(&store, "/w/a.rs"), ["x"]);
    }

    #[test]
    fn a_finished_run_clears_only_its_own_scope_s_older_files() {
        let mut store = Store::default();
        add(&mut store, "/w/a.rs", "w", 1, "a");
        add(&mut store, "/w/b.rs", "w", 2, "b");
        add(&mut store, "/v/c.rs", "v", 1, "c");
        assert_eq!(store.finish(&"w", 2), [PathBuf::from("/w/a.rs")]);
        assert_eq!(items(&store, "/w/b.rs"), ["b"]);
        assert_eq!(
            items(&store, "/v/c.rs"),
            ["c"],
            "another workspace's file stays"
        );
        assert!(store.finish(&"w", 2).is_empty());
    }

    #[test]
    fn a_file_moves_to_the_scope_of_the_run_that_replaced_it() {
        let mut store = Store::default();
        add(&mut store, "/w/inner/a.rs", "w", 1, "outer");
        add(&mut store, "/w/inner/a.rs", "w/inner", 2, "inner");
        assert!(store.finish(&"w", 3).is_empty());
        assert_eq!(
            store.finish(&"w/inner", 3),
            [PathBuf::from("/w/inner/a.rs")]
        );
    }
}
