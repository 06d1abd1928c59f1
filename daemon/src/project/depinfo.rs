//! What cargo's own records say each target reads: the dep-info files rustc writes beside its
//! outputs (`debug/deps/<crate>-<hash>.d`, listing every source file of a crate, including
//! `include_str!` files and `#[path]` modules) and the `rerun-if-changed` lines build scripts
//! printed (`debug/build/<package>-<hash>/output`).
//!
//! Scanning is read-only and runs off the dispatcher (after each job). Only crates whose names
//! belong to the workspace's own targets are read, so a large dependency tree costs nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files each crate and build script was seen to read.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct DepInfo {
    /// Crate name (as rustc names it, with `_`) to the files its compilations read.
    pub(crate) crate_files: BTreeMap<String, BTreeSet<PathBuf>>,
    /// Package name to its build script's `rerun-if-changed` paths (files or directories).
    /// A package whose build script ran without any has an empty set: cargo then reruns it
    /// on any change in the package.
    pub(crate) rerun_if_changed: BTreeMap<String, BTreeSet<PathBuf>>,
}

impl DepInfo {
    /// Whether a build was seen to read `file`: a crate's dep-info or a build script's
    /// `rerun-if-changed` names it.
    pub(crate) fn knows(&self, file: &Path) -> bool {
        self.crate_files.values().any(|files| files.contains(file))
            || self
                .rerun_if_changed
                .values()
                .any(|paths| paths.contains(file))
    }
}

/// Reads the dep-info of `crate_names` and the build-script outputs of `packages` (name to
/// manifest dir) from a target dir. Relative paths are resolved against `root`, where cargo
/// runs rustc for workspace members.
pub(crate) fn scan(
    target_dir: &Path,
    root: &Path,
    crate_names: &BTreeSet<String>,
    packages: &BTreeMap<String, PathBuf>,
) -> DepInfo {
    let mut info = DepInfo::default();
    let profile_dir = target_dir.join("debug");
    if let Ok(entries) = std::fs::read_dir(profile_dir.join("deps")) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".d")) else {
                continue;
            };
            let Some((crate_name, _hash)) = stem.rsplit_once('-') else {
                continue;
            };
            if !crate_names.contains(crate_name) {
                continue;
            }
            let Some(read) = read_depfile(&entry.path(), root) else {
                continue;
            };
            let files = info.crate_files.entry(crate_name.to_owned()).or_default();
            files.extend(read.into_iter().filter(|p| !p.starts_with(target_dir)));
        }
    }
    if let Ok(entries) = std::fs::read_dir(profile_dir.join("build")) {
        for entry in entries.flatten() {
            let output = entry.path().join("output");
            let Ok(text) = std::fs::read_to_string(&output) else {
                continue;
            };
            let dir_name = entry.file_name().to_string_lossy().into_owned();
            let Some((package, _hash)) = dir_name.rsplit_once('-') else {
                continue;
            };
            let Some(manifest_dir) = packages.get(package) else {
                continue;
            };
            let paths = info.rerun_if_changed.entry(package.to_owned()).or_default();
            paths.extend(
                parse_rerun_if_changed(&text)
                    .into_iter()
                    .map(|p| resolve(manifest_dir, &p)),
            );
        }
    }
    info
}

/// The largest dep-info file read; far above any crate's (a line per source file).
const MAX_DEPFILE: u64 = 64 * 1024 * 1024;

/// The files one dep-info file lists, relative ones resolved against `root` (where cargo
/// runs rustc for workspace members); `None` when it cannot be read, or is not a regular
/// file (a build script can put a FIFO in the dir, which would block the reader).
pub(crate) fn read_depfile(path: &Path, root: &Path) -> Option<Vec<PathBuf>> {
    let (text, _) = crate::home::regular_file::read(path, MAX_DEPFILE).ok()??;
    Some(
        parse_depfile(&text)
            .into_iter()
            .map(|p| resolve(root, &p))
            .collect(),
    )
}

/// `base.join(path)` with `.` and `..` folded away: rustc writes `include_str!` paths as
/// the source spelled them (`base/src/../data/words.txt`), and the watcher reports the
/// plain path. Lexical, not canonical: a symlink stays the path the user edits.
fn resolve(base: &Path, path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in base.join(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The prerequisites of every rule in a Makefile-style dep-info file. Spaces in paths are
/// escaped as `\ `; `#` lines (rustc's `# env-dep:`) are comments.
fn parse_depfile(text: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        // The target ends at the first `: ` (or a trailing `:`) that is not escaped.
        let Some(split) = find_rule_colon(line) else {
            continue;
        };
        let mut current = String::new();
        let mut chars = line[split + 1..].chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    current.push(' ');
                    chars.next();
                }
                ' ' => {
                    if !current.is_empty() {
                        files.push(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            files.push(PathBuf::from(current));
        }
    }
    files
}

fn find_rule_colon(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    (0..bytes.len()).find(|&i| {
        bytes[i] == b':'
            && (i + 1 == bytes.len() || bytes[i + 1] == b' ')
            && (i == 0 || bytes[i - 1] != b'\\')
    })
}

/// The paths of `cargo:rerun-if-changed=` and `cargo::rerun-if-changed=` lines.
pub(crate) fn parse_rerun_if_changed(output: &str) -> Vec<PathBuf> {
    output
        .lines()
        .filter_map(|l| {
            l.strip_prefix("cargo::rerun-if-changed=")
                .or_else(|| l.strip_prefix("cargo:rerun-if-changed="))
        })
        .map(|p| PathBuf::from(p.trim()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depfile_prerequisites_with_escaped_spaces() {
        let text = "/t/debug/deps/core_lib-1.d: core-lib/src/lib.rs core-lib/src/my\\ file.txt\n\n\
                    /t/debug/deps/libcore_lib-1.rlib: core-lib/src/lib.rs\n\n\
                    core-lib/src/lib.rs:\n# env-dep:CARGO_PKG_NAME=core-lib\n";
        let files = parse_depfile(text);
        assert!(files.contains(&PathBuf::from("core-lib/src/my file.txt")));
        assert!(files.contains(&PathBuf::from("core-lib/src/lib.rs")));
        assert!(
            !files
                .iter()
                .any(|f| f.to_string_lossy().contains("env-dep"))
        );
    }

    #[test]
    fn include_paths_are_folded() {
        assert_eq!(
            resolve(Path::new("/w"), Path::new("base/src/../data/./words.txt")),
            PathBuf::from("/w/base/data/words.txt")
        );
    }

    #[test]
    fn rerun_if_changed_both_syntaxes() {
        let out =
            "cargo:rerun-if-changed=build.rs\ncargo::rerun-if-changed=data/\ncargo:rustc-cfg=x\n";
        assert_eq!(
            parse_rerun_if_changed(out),
            vec![PathBuf::from("build.rs"), PathBuf::from("data/")]
        );
    }
}
