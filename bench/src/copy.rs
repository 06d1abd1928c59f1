//! Copying a workspace into the harness's temporary dir: the original is only ever read.
//!
//! Build output is left behind (a root `target/` and any dir cargo marked with
//! `CACHEDIR.TAG`), as is `.git/`: both sides must start cold, and neither cargo nor buildd
//! needs the history. Symbolic links are copied as links.

use std::path::Path;

use anyhow::Context;

/// Copies the directory `from` to `to` (which must not exist).
pub(crate) fn copy_workspace(from: &Path, to: &Path) -> anyhow::Result<()> {
    copy_dir(from, to, true)
}

fn copy_dir(from: &Path, to: &Path, top: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("failed to create {}", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("failed to read {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to read {}", from.display()))?;
        let source = entry.path();
        let dest = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .with_context(|| format!("failed to stat {}", source.display()))?;
        if kind.is_dir() {
            let name = entry.file_name();
            let skip = name == ".git"
                || (top && name == "target")
                || source.join("CACHEDIR.TAG").is_file();
            if !skip {
                copy_dir(&source, &dest, false)?;
            }
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&source)
                .with_context(|| format!("failed to read the link {}", source.display()))?;
            std::os::unix::fs::symlink(&target, &dest)
                .with_context(|| format!("failed to create the link {}", dest.display()))?;
        } else {
            std::fs::copy(&source, &dest).with_context(|| {
                format!("failed to copy {} to {}", source.display(), dest.display())
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_build_output_and_history_behind() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        for file in [
            "Cargo.toml",
            "src/lib.rs",
            "target/debug/big",
            ".git/HEAD",
            "other-target/CACHEDIR.TAG",
            "sub/target/kept.rs",
        ] {
            let path = from.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, file).unwrap();
        }
        std::os::unix::fs::symlink("src/lib.rs", from.join("link.rs")).unwrap();
        let to = dir.path().join("to");
        copy_workspace(&from, &to).unwrap();
        assert_eq!(
            std::fs::read_to_string(to.join("src/lib.rs")).unwrap(),
            "src/lib.rs"
        );
        assert!(to.join("Cargo.toml").is_file());
        // A `target` below the root is not cargo's unless cargo tagged it.
        assert!(to.join("sub/target/kept.rs").is_file());
        assert!(!to.join("target").exists());
        assert!(!to.join(".git").exists());
        assert!(!to.join("other-target").exists());
        assert_eq!(
            std::fs::read_link(to.join("link.rs")).unwrap(),
            Path::new("src/lib.rs")
        );
    }
}
