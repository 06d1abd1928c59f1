//! The cargo workspaces under an editor folder that holds several separate ones (a folder of
//! projects, a repository with fixture workspaces).
//!
//! The walk (the `ignore` crate, as ripgrep walks) honours `.gitignore` and `.ignore` files,
//! skips hidden directories and every `target/`, and finds the directories that hold a
//! `Cargo.toml`. A directory under one already found is a member of that workspace and is
//! skipped, unless its own manifest has a `[workspace]` table: then it is a separate
//! workspace (cargo's rule: a manifest with `[workspace]` is a root). The daemon resolves each
//! directory found as `cargo locate-project --workspace` does; this module only proposes.
//!
//! It reads the file system and is slow on a big tree: the main loop runs it on a blocking
//! thread and takes in the result as an event.

use std::path::{Path, PathBuf};

/// At most this many workspaces are registered from one folder; a note says so beyond.
pub(crate) const CAP: usize = 32;
/// How deep the walk goes below the folder: `tests/fixtures/NAME/Cargo.toml` is 3, and a
/// folder opened by mistake (a home directory) is not walked to its bottom.
const MAX_DEPTH: usize = 6;

/// What the walk of one folder found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// Directories to register, shallowest first, at most [`CAP`].
    pub(crate) dirs: Vec<PathBuf>,
    /// How many more there were beyond the cap.
    pub(crate) left_out: usize,
}

/// Walks `folder` for the directories of separate cargo workspaces. `folder` itself is not
/// among them: the caller registers it anyway (it may lie inside a workspace).
pub(crate) fn workspaces(folder: &Path) -> Found {
    let walk = ignore::WalkBuilder::new(folder)
        .hidden(true)
        .max_depth(Some(MAX_DEPTH))
        .git_ignore(true)
        .git_global(false)
        .git_exclude(true)
        // A folder that is not a git repository still has its `.gitignore` honoured.
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && e.file_name() == "target")
        })
        .build();
    let mut manifests: Vec<PathBuf> = walk
        .flatten()
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()) && e.file_name() == "Cargo.toml")
        .filter_map(|e| e.path().parent().map(Path::to_path_buf))
        .filter(|dir| dir != folder)
        .collect();
    // Parents before children, whatever the walk's order.
    manifests.sort_by_key(|d| d.components().count());
    let folder_is_a_package = folder.join("Cargo.toml").is_file();
    let mut found: Vec<PathBuf> = Vec::new();
    for dir in manifests {
        let inside_found = folder_is_a_package || found.iter().any(|f| dir.starts_with(f));
        if inside_found && !declares_workspace(&dir.join("Cargo.toml")) {
            continue;
        }
        found.push(dir);
    }
    let left_out = found.len().saturating_sub(CAP);
    found.truncate(CAP);
    Found {
        dirs: found,
        left_out,
    }
}

/// Whether a manifest has a `[workspace]` table. A line-wise look is enough for the decision
/// to register; a wrong guess costs one registration that the daemon resolves or refuses.
fn declares_workspace(manifest: &Path) -> bool {
    std::fs::read_to_string(manifest).is_ok_and(|text| {
        text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("[workspace]") || l.starts_with("[workspace.")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    const PACKAGE: &str = "[package]\nname = \"x\"\nversion = \"0.1.0\"\n";

    #[test]
    fn separate_workspaces_are_found_and_members_target_and_ignored_dirs_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            &root.join("alpha/Cargo.toml"),
            "[workspace]\nmembers = [\"m\"]\n",
        );
        write(&root.join("alpha/m/Cargo.toml"), PACKAGE);
        write(&root.join("beta/Cargo.toml"), PACKAGE);
        write(
            &root.join("beta/fixtures/own/Cargo.toml"),
            &format!("{PACKAGE}[workspace]\n"),
        );
        write(&root.join("target/debug/Cargo.toml"), PACKAGE);
        write(&root.join("gamma/target/x/Cargo.toml"), PACKAGE);
        write(&root.join(".hidden/Cargo.toml"), PACKAGE);
        write(&root.join("vendor/Cargo.toml"), PACKAGE);
        write(&root.join(".gitignore"), "vendor/\n");
        let found = workspaces(root);
        assert_eq!(
            found.dirs,
            vec![
                root.join("alpha"),
                root.join("beta"),
                root.join("beta/fixtures/own")
            ]
        );
        assert_eq!(found.left_out, 0);
    }

    #[test]
    fn a_folder_that_is_a_package_only_adds_nested_workspaces() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("Cargo.toml"), "[workspace]\nmembers = [\"a\"]\n");
        write(&root.join("a/Cargo.toml"), PACKAGE);
        assert!(workspaces(root).dirs.is_empty());
        write(
            &root.join("tests/fx/Cargo.toml"),
            "[package]\n[workspace] # its own\n",
        );
        assert_eq!(workspaces(root).dirs, vec![root.join("tests/fx")]);
    }

    #[test]
    fn beyond_the_cap_the_rest_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..CAP + 3 {
            write(&dir.path().join(format!("p{i:02}/Cargo.toml")), PACKAGE);
        }
        let found = workspaces(dir.path());
        assert_eq!(found.dirs.len(), CAP);
        assert_eq!(found.left_out, 3);
    }
}
