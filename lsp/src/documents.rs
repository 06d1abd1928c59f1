//! The text of the files the editor has open, as the editor holds it (`didOpen`,
//! `didChange` with full text, `didClose`), and for other files their text on disk.
//!
//! Only the code actions read it: a fix is offered only while the lines at its spans read as
//! rustc compiled them (`code_actions.rs`). The daemon never sees this text; it builds what
//! is saved on disk. This module keeps no history and does not parse.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub(crate) struct Documents {
    /// `None` for a document whose text this server lost track of (a client that sent a
    /// ranged change although the server asked for full texts): no fix is offered in it
    /// until it is opened again, since the file on disk may not be what the editor shows.
    open: HashMap<PathBuf, Option<String>>,
}

impl Documents {
    /// `didOpen`, or a `didChange` with the document's full text (`None`: unknown).
    pub(crate) fn set(&mut self, path: PathBuf, text: Option<String>) {
        self.open.insert(path, text);
    }

    pub(crate) fn close(&mut self, path: &Path) {
        self.open.remove(path);
    }

    /// The text the editor shows for `path`: the open document's, else the file's on disk;
    /// `None` when neither can be read (a fix is then not offered).
    pub(crate) fn text(&self, path: &Path) -> Option<String> {
        match self.open.get(path) {
            Some(text) => text.clone(),
            None => std::fs::read_to_string(path).ok(),
        }
    }
}

/// The lines of a text as LSP counts them: split at `\n`, with a `\r` before it dropped.
pub(crate) fn lines(text: &str) -> Vec<&str> {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_document_wins_over_the_file_and_closing_it_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lib.rs");
        std::fs::write(&file, "on disk\n").unwrap();
        let mut docs = Documents::default();
        assert_eq!(docs.text(&file).as_deref(), Some("on disk\n"));
        docs.set(file.clone(), Some("in the editor".into()));
        assert_eq!(docs.text(&file).as_deref(), Some("in the editor"));
        docs.set(file.clone(), None);
        assert_eq!(docs.text(&file), None, "a lost text is not the file's");
        docs.close(&file);
        assert_eq!(docs.text(&file).as_deref(), Some("on disk\n"));
        assert_eq!(docs.text(&dir.path().join("missing.rs")), None);
    }

    #[test]
    fn lines_drop_carriage_returns() {
        assert_eq!(lines("a\r\nb\n"), vec!["a", "b", ""]);
    }
}
