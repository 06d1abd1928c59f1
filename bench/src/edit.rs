//! The code change each round makes: the same text in both copies, unique per round.
//!
//! A round's edit is the original file plus one new private function with a body no earlier
//! round had, so cargo really recompiles the crate (and, since cargo has no early cutoff,
//! everything that depends on it). In a diagnostic round the function also binds an unused
//! variable with a unique name, which rustc reports as a warning that both sides can look
//! for by name. Each edit replaces the previous round's function rather than adding to it,
//! so the file does not grow and at most one warning of ours exists at a time.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The file being edited, with its original text.
#[derive(Debug, Clone)]
pub(crate) struct EditTarget {
    /// Relative to the workspace root.
    pub(crate) relative: PathBuf,
    original: String,
}

/// One round's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edit {
    pub(crate) text: String,
    /// In a diagnostic round, the unused variable's name: rustc's warning message contains it.
    pub(crate) warning_marker: Option<String>,
}

impl EditTarget {
    /// Reads `relative` from the workspace copy at `root`.
    pub(crate) fn read(root: &Path, relative: &Path) -> anyhow::Result<EditTarget> {
        let path = root.join(relative);
        let original = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read the file to edit, {}", path.display()))?;
        Ok(EditTarget {
            relative: relative.to_path_buf(),
            original,
        })
    }

    /// The change for round `round` (1-based).
    pub(crate) fn edit(&self, round: u32, diagnostic: bool) -> Edit {
        let mut text = self.original.clone();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        // The allow keeps the new function from adding a `dead_code` warning of its own: the
        // only warning a round introduces is the one it looks for.
        let body = if diagnostic {
            format!(
                "    let buildd_bench_unused_{round} = {round}u64;\n    \
                 {round}u64.wrapping_mul(2654435761)\n"
            )
        } else {
            format!("    {round}u64.wrapping_mul(2654435761) ^ 0x5bd1e995\n")
        };
        text.push_str(&format!(
            "\n// Added by buildd-bench, round {round}.\n#[allow(dead_code)]\n\
             fn buildd_bench_round_{round}() -> u64 {{\n{body}}}\n"
        ));
        Edit {
            text,
            warning_marker: diagnostic.then(|| format!("buildd_bench_unused_{round}")),
        }
    }

    /// Writes an edit into the copy at `root`.
    pub(crate) fn apply(&self, root: &Path, edit: &Edit) -> anyhow::Result<PathBuf> {
        let path = root.join(&self.relative);
        std::fs::write(&path, &edit.text)
            .with_context(|| format!("failed to write {}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_changes_the_file_differently() {
        let target = EditTarget {
            relative: "src/lib.rs".into(),
            original: "pub fn f() {}".into(),
        };
        let one = target.edit(1, true);
        let two = target.edit(2, false);
        let three = target.edit(3, true);
        assert!(one.text.starts_with("pub fn f() {}\n"));
        assert!(one.text.contains("let buildd_bench_unused_1 = 1u64;"));
        assert_eq!(one.warning_marker.as_deref(), Some("buildd_bench_unused_1"));
        assert_eq!(two.warning_marker, None);
        assert!(!two.text.contains("unused"));
        assert_ne!(one.text, three.text);
        // Each edit replaces the last one's function.
        assert!(!three.text.contains("round_1"));
    }
}
