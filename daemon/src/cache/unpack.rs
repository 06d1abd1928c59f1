//! Unpacking an archive for `buildd cache import` into its staging dir, as hostile input:
//! every entry is checked and written here, never by `tar`'s own `unpack`, and what it may
//! write is capped (`Limit`). See `docs/security.md` for what this guarantees.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::cache::archive_error::{ArchiveError, Refusal};
use crate::cache::layout::ARCHIVE_PREFIX as PREFIX;

/// Free space an import leaves on the disk, so that the daemon's next job can still write.
const IMPORT_RESERVE_BYTES: u64 = 256 * 1024 * 1024;
/// What every entry costs at least against the limit, and the unit files are counted in: a
/// file system block. An empty file takes no data block but an inode and a dir entry, so a
/// million empty files are not free.
pub(super) const BLOCK: u64 = 4096;
/// The most entries an archive may hold. The target dir of buildd's own workspace (5.6 GB,
/// dev and test profiles, incremental) holds 18,000; this leaves room for workspaces 25 times
/// its size and refuses an archive made to exhaust the disk's inodes.
const MAX_ENTRIES: u64 = 500_000;

/// What an import may write.
pub(super) struct Limit {
    pub(super) bytes: u64,
    /// Which limit `bytes` is, for the message.
    pub(super) what: String,
    pub(super) entries: u64,
}

impl Limit {
    #[cfg(test)]
    pub(super) fn bytes(bytes: u64) -> Limit {
        Limit {
            bytes,
            what: "the test's limit".into(),
            entries: MAX_ENTRIES,
        }
    }
}

/// Unpacks the dir's entries of `archive` into `staging`, which must be new or empty, and
/// returns how many files it wrote.
///
/// An archive is hostile until checked, so this writes every file itself rather than with
/// `tar`'s `unpack`, which creates links as given: only plain relative names, directories,
/// regular files and hard links to an earlier regular file of the same archive are accepted;
/// symlinks, devices and FIFOs are refused. Nothing it creates is a link, so
/// no later step (the mtime pass, the fingerprint clean-up) can be led outside `staging`, and
/// files are created with `O_EXCL | O_NOFOLLOW`. What it writes is capped at `limit` bytes.
pub(super) fn unpack(archive: &Path, staging: &Path, limit: &Limit) -> Result<u64, ArchiveError> {
    let mut unpacker = Unpacker {
        archive,
        staging,
        limit,
        written: 0,
        entries: 0,
        files: 0,
        regular: BTreeSet::new(),
    };
    // `import` makes the dir (empty) to hold its lock first.
    if !staging.is_dir() {
        fs::create_dir(staging).map_err(|e| unpacker.io_err(e))?;
    }
    let file = fs::File::open(archive).map_err(|e| unpacker.io_err(e))?;
    let decoder = zstd::Decoder::new(file).map_err(|e| unpacker.io_err(e))?;
    let mut tar = tar::Archive::new(decoder);
    for entry in tar.entries().map_err(|e| unpacker.io_err(e))? {
        let entry = entry.map_err(|e| ArchiveError::damaged(archive, e))?;
        unpacker.entry(entry)?;
    }
    Ok(unpacker.files)
}

/// What `unpack` has written so far, and the limits it keeps to.
struct Unpacker<'a> {
    archive: &'a Path,
    staging: &'a Path,
    limit: &'a Limit,
    /// Bytes written, in whole blocks.
    written: u64,
    entries: u64,
    files: u64,
    /// The regular files written so far: the only targets a hard link may name.
    regular: BTreeSet<PathBuf>,
}

impl Unpacker<'_> {
    fn io_err(&self, source: io::Error) -> ArchiveError {
        ArchiveError::Unpack {
            archive: self.archive.to_path_buf(),
            source,
        }
    }

    fn refuse(&self, path: &Path, refusal: Refusal) -> ArchiveError {
        ArchiveError::Refused {
            archive: self.archive.to_path_buf(),
            entry: path.to_path_buf(),
            refusal,
        }
    }

    /// Charges `bytes` (rounded up to whole blocks, at least one) against the limit.
    fn charge(&mut self, bytes: u64) -> Result<(), ArchiveError> {
        self.written = self
            .written
            .saturating_add(bytes.div_ceil(BLOCK).max(1) * BLOCK);
        if self.written > self.limit.bytes {
            return Err(over_limit(self.archive, self.limit));
        }
        Ok(())
    }

    /// Makes the parent dirs of `dest`. Every dir below `staging` was made here, so none of
    /// them is a link.
    fn make_parent(&self, dest: &Path) -> Result<(), ArchiveError> {
        let parent = dest.parent().unwrap_or(self.staging);
        fs::create_dir_all(parent).map_err(|e| self.io_err(e))
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), ArchiveError> {
        let path = entry.path().map_err(|e| self.io_err(e))?.into_owned();
        let kind = entry.header().entry_type();
        let Ok(rel) = path.strip_prefix(PREFIX) else {
            return Ok(());
        };
        if rel.as_os_str().is_empty() {
            return Ok(());
        }
        // Only plain relative names: nothing may land outside the staging dir.
        if !plain(rel) {
            return Err(ArchiveError::Outside {
                archive: self.archive.to_path_buf(),
                entry: path,
            });
        }
        self.entries += 1;
        if self.entries > self.limit.entries {
            return Err(ArchiveError::TooManyEntries {
                archive: self.archive.to_path_buf(),
                limit: self.limit.entries,
            });
        }
        let dest = self.staging.join(rel);
        match kind {
            tar::EntryType::Directory => {
                self.charge(0)?;
                self.make_parent(&dest)?;
                match fs::create_dir(&dest) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(self.io_err(e));
                    }
                    _ => {}
                }
                if !fs::symlink_metadata(&dest)
                    .map_err(|e| self.io_err(e))?
                    .is_dir()
                {
                    return Err(self.refuse(&path, Refusal::DirOverEntry));
                }
            }
            // `tar` writes a sparse file of the dir as a GNU sparse entry, and reads it back
            // whole, holes as zeros: it is written as a regular file and counts at its full
            // length against the limit.
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.file(&mut entry, &path, rel, &dest)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| self.io_err(e))?
                    .unwrap_or_default();
                self.hard_link(&path, rel, &target, &dest)?;
            }
            tar::EntryType::Symlink => return Err(self.refuse(&path, Refusal::Symlink)),
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(self.refuse(&path, Refusal::Device));
            }
            tar::EntryType::Fifo => return Err(self.refuse(&path, Refusal::Fifo)),
            // Extended headers are read by `tar` itself; anything else is not a dir's content.
            other => {
                let refusal = Refusal::OtherType(format!("{other:?}"));
                return Err(self.refuse(&path, refusal));
            }
        }
        Ok(())
    }

    /// A regular file, created new (never through a link), within the limit.
    fn file(
        &mut self,
        entry: &mut (impl Read + TarEntry),
        path: &Path,
        rel: &Path,
        dest: &Path,
    ) -> Result<(), ArchiveError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        self.make_parent(dest)?;
        let left = self.limit.bytes.saturating_sub(self.written);
        if entry.size() > left {
            return Err(over_limit(self.archive, self.limit));
        }
        let mode = entry.mode() & 0o755;
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .mode(0o600)
            .open(dest)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => self.refuse(path, Refusal::Twice),
                _ => self.io_err(e),
            })?;
        let copied = io::copy(&mut entry.take(left.saturating_add(1)), &mut out)
            .map_err(|e| ArchiveError::damaged(self.archive, e))?;
        if copied > left {
            drop(out);
            return Err(over_limit(self.archive, self.limit));
        }
        if copied < entry.size() {
            return Err(ArchiveError::cut_short(self.archive, path));
        }
        self.charge(copied)?;
        out.set_permissions(fs::Permissions::from_mode(mode | 0o600))
            .map_err(|e| self.io_err(e))?;
        self.regular.insert(rel.to_path_buf());
        self.files += 1;
        Ok(())
    }

    /// A hard link, only to an earlier regular file of the archive.
    fn hard_link(
        &mut self,
        path: &Path,
        rel: &Path,
        target: &Path,
        dest: &Path,
    ) -> Result<(), ArchiveError> {
        let target_rel = target.strip_prefix(PREFIX).ok().filter(|t| plain(t));
        let Some(target_rel) = target_rel.filter(|t| self.regular.contains(*t)) else {
            return Err(self.refuse(path, Refusal::HardLink(target.to_path_buf())));
        };
        self.charge(0)?;
        self.make_parent(dest)?;
        fs::hard_link(self.staging.join(target_rel), dest).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => self.refuse(path, Refusal::Twice),
            _ => self.io_err(e),
        })?;
        self.regular.insert(rel.to_path_buf());
        self.files += 1;
        Ok(())
    }
}

/// The size and mode of a tar entry, so `Unpacker::file` reads them after borrowing it as
/// a reader.
trait TarEntry {
    fn size(&self) -> u64;
    fn mode(&self) -> u32;
}

impl<R: Read> TarEntry for tar::Entry<'_, R> {
    fn size(&self) -> u64 {
        tar::Entry::size(self)
    }

    fn mode(&self) -> u32 {
        self.header().mode().unwrap_or(0o644)
    }
}

/// Whether a relative path is only plain names (no `..`, no root, no `.`).
fn plain(rel: &Path) -> bool {
    rel.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn over_limit(archive: &Path, limit: &Limit) -> ArchiveError {
    ArchiveError::OverLimit {
        archive: archive.to_path_buf(),
        bytes: limit.bytes,
        block: BLOCK,
        what: limit.what.clone(),
    }
}

/// The most an import into `targets` may write: the disk budget (`budget`, the configured
/// one and where it is set, or the default), and the free space less a reserve; whichever is
/// smaller, named.
pub(super) fn import_limit(targets: &Path, budget: Option<(u64, String)>) -> Limit {
    let free = crate::cache::dirs::free_space(targets).unwrap_or(0);
    let room = free.saturating_sub(IMPORT_RESERVE_BYTES);
    let (budget, set_by) = match budget {
        Some((bytes, set_by)) => (bytes, set_by),
        None => {
            let used = crate::cache::dirs::size(targets);
            let bytes = crate::cache::dirs::budget(None, targets, used);
            (bytes, "the default".to_owned())
        }
    };
    let (bytes, what) = if budget <= room {
        (budget, format!("the cache's disk budget ({set_by})"))
    } else {
        (
            room,
            format!(
                "the free space on {} ({free} bytes) less {IMPORT_RESERVE_BYTES} bytes kept for \
                 builds",
                targets.display()
            ),
        )
    };
    Limit {
        bytes,
        what,
        entries: MAX_ENTRIES,
    }
}
