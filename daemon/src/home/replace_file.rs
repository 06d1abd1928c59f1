//! Writing the small files buildd keeps (the key file and record of an isolated dir, cargo's
//! cache of the compiler's answers, the learned jobs, sccache's configuration, the linker
//! wrapper) so that nothing else is written through them and no reader sees half of one.
//!
//! The new content goes to a file of a random name beside the old one, created by the
//! `tempfile` crate with `O_EXCL` (a link planted under any name is never followed), and is
//! then renamed over it: the rename replaces whatever is at the path, a link included,
//! rather than writing through it. A reader sees the old content or the new. On a failure
//! the file beside it is removed (`tempfile` does it when it is dropped).

use std::fs::Permissions;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Files only the user reads and writes.
pub(crate) const PRIVATE: u32 = 0o600;
/// A program the user runs (the linker wrapper), readable by all as `cargo` installs them.
pub(crate) const PROGRAM: u32 = 0o755;

/// Replaces `path` whole with `bytes`, with permissions `mode`. The dir must exist. With
/// `sync`, the content is on the disk before the rename (a secret a server reads at start).
pub(crate) fn replace(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".buildd-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    if sync {
        file.as_file().sync_all()?;
    }
    file.persist(path).map(drop).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, symlink};

    use super::*;

    #[test]
    fn the_content_is_replaced_whole_with_the_mode_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        fs::write(&path, "an older and longer content").unwrap();
        replace(&path, b"new", PRIVATE, true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, PRIVATE);
        replace(&path, b"#!/bin/sh\n", PROGRAM, false).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, PROGRAM);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["key.json"], "nothing is left beside it");
    }

    #[test]
    fn a_link_at_the_path_is_replaced_and_the_file_it_names_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("the-users-file");
        fs::write(&users, "the user's text").unwrap();
        let path = dir.path().join("key.json");
        symlink(&users, &path).unwrap();
        replace(&path, b"buildd's", PRIVATE, false).unwrap();
        assert_eq!(fs::read_to_string(&users).unwrap(), "the user's text");
        assert!(!fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(fs::read_to_string(&path).unwrap(), "buildd's");
    }

    #[test]
    fn a_missing_dir_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone/key.json");
        assert!(replace(&path, b"x", PRIVATE, false).is_err());
        assert!(!dir.path().join("gone").exists());
    }
}
