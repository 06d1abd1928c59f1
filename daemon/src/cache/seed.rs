//! Seeding a new isolated dir from the most similar existing dir of the same workspace, so a
//! new key (other flags, another linker, `CARGO_INCREMENTAL`...) starts warm instead of cold.
//!
//! Cargo decides freshness from its fingerprints and file mtimes, so a seeded dir must keep
//! every mtime of the original. Each file is, in order of preference:
//!
//! - **cloned** with `FICLONE` (copy-on-write, on btrfs, XFS, bcachefs...): no space used
//!   until either side writes;
//! - **hard-linked**, only for files that rustc and cargo never rewrite in place: the `.rlib`
//!   and `.rmeta` files of `<profile>/deps/`. rustc writes both into a temporary file and
//!   renames it over the old one, so a rebuild in the seeded dir replaces its link with a new
//!   file and the original keeps its content and mtime (the e2e test `seeding` forces such a
//!   rebuild and compares the original byte for byte);
//! - **copied** otherwise: fingerprints, dep-info, build script outputs, incremental caches and
//!   executables are rewritten in place (cargo truncates fingerprint files, build scripts
//!   write their `OUT_DIR` as they like, linkers may reuse their output file). A sparse file
//!   is copied data range by data range, so its holes stay holes.
//!
//! Seeding only reads the original dir, and copies into a staging dir that is renamed into
//! place once complete, so a dir is never half seeded. It must never write into the original.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cache::layout::{KEY_FILE, STATE_DIR};
use crate::wire::protocol::{BuildKeyInfo, SeedMethod, SeedStatus};

/// `FICLONE` from `linux/fs.h`: `_IOW(0x94, 9, int)`.
const FICLONE: libc::c_ulong = 0x4004_9409;

/// The dirs a new key of `key` could be seeded from, best first: dirs of the same workspace
/// (siblings under `workspace_dir`) built by the same toolchain for the same target, ranked
/// by how many key variables and settings they share, then by how recently they were used.
///
/// A dir of another toolchain is never a candidate: cargo mixes the rustc version into every
/// unit's metadata hash, so none of its artifacts could be reused, and seeding would only
/// spend time and disk. Nor is a dir on the other side of `fast_link`: its split debug info
/// is in every unit's profile, which cargo mixes into the metadata hash in the same way.
pub(crate) fn candidates(workspace_dir: &Path, key: &BuildKeyInfo) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(workspace_dir) else {
        return Vec::new();
    };
    let mut ranked: Vec<(usize, std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.file_name().to_str() != Some(key.hash.as_str()))
        .filter_map(|e| {
            let path = e.path();
            let other = crate::cache::dirs::read_key(&path)?;
            if other.rustc != key.rustc
                || other.host != key.host
                || other.target != key.target
                || other.fast_link != key.fast_link
            {
                return None;
            }
            let shared_env = key
                .env
                .iter()
                .filter(|(k, v)| other.env.get(*k) == Some(*v))
                .count();
            let extra_env = other
                .env
                .keys()
                .filter(|k| !key.env.contains_key(*k))
                .count();
            let score = 4 * shared_env
                + 2 * usize::from(other.linker == key.linker)
                + usize::from(other.profile == key.profile && other.features == key.features);
            let score = score.saturating_sub(extra_env);
            Some((score, crate::cache::dirs::last_used(&path), path))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    ranked.into_iter().map(|(_, _, path)| path).collect()
}

/// Copies `from` into the new dir `to` (which must not exist), preserving mtimes. Returns
/// what it did; on error, nothing is left at `to`.
pub(crate) fn seed(from: &Path, to: &Path, from_hash: &str) -> io::Result<SeedStatus> {
    let started = Instant::now();
    // A cargo building in the original (a shell after `buildd env`) could leave a copy whose
    // fingerprints and artifacts disagree: hold its locks, so such a cargo waits instead.
    let Some(_locks) = crate::cache::dirs::lock_all(from) else {
        return Err(io::Error::other(
            "a cargo is building in it; a later key change will try again",
        ));
    };
    let staging = to.with_extension("seeding");
    let _ = fs::remove_dir_all(&staging);
    let mut copier = Copier::default();
    let result = copier
        .copy_dir(from, &staging, from, true)
        .and_then(|()| fs::rename(&staging, to));
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    let method = if copier.reflinked > 0 {
        SeedMethod::Reflink
    } else {
        SeedMethod::Copy
    };
    Ok(SeedStatus {
        from: from_hash.to_owned(),
        method,
        files: copier.reflinked + copier.hard_linked + copier.copied,
        bytes: copier.bytes,
        reflinked: copier.reflinked,
        hard_linked: copier.hard_linked,
        copied: copier.copied,
        duration_ms: started.elapsed().as_millis() as u64,
        units_rebuilt: None,
        units_fresh: None,
    })
}

/// Copies a tree file by file with the cheapest safe method, and counts what it did.
#[derive(Default)]
pub(crate) struct Copier {
    /// Set after the first refused clone: the file system cannot, so stop asking.
    no_reflink: bool,
    /// Never hard-link (for trees that leave buildd, such as an import's staging dir).
    pub(crate) no_hard_links: bool,
    pub(crate) reflinked: u64,
    pub(crate) hard_linked: u64,
    pub(crate) copied: u64,
    pub(crate) bytes: u64,
}

impl Copier {
    /// Copies the dir `from` to `to`. `base` is the root of the copy, to tell which files may
    /// be hard-linked; `top` skips buildd's own files at the root.
    pub(crate) fn copy_dir(
        &mut self,
        from: &Path,
        to: &Path,
        base: &Path,
        top: bool,
    ) -> io::Result<()> {
        fs::create_dir(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            let name = entry.file_name();
            if top && (name == STATE_DIR || name == KEY_FILE) {
                continue;
            }
            let source = entry.path();
            let dest = to.join(&name);
            let kind = entry.file_type()?;
            if kind.is_dir() {
                self.copy_dir(&source, &dest, base, false)?;
            } else if kind.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&source)?, &dest)?;
            } else if kind.is_file() {
                let rel = source.strip_prefix(base).unwrap_or(&source);
                self.copy_file(&source, &dest, never_rewritten(rel))?;
            }
            // Sockets, fifos and devices have no place in a target dir.
        }
        let meta = fs::metadata(from)?;
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        set_times(to, &meta)
    }

    fn copy_file(&mut self, from: &Path, to: &Path, may_link: bool) -> io::Result<()> {
        let meta = fs::metadata(from)?;
        self.bytes += meta.len();
        if !self.no_reflink {
            match reflink(from, to) {
                Ok(()) => {
                    self.reflinked += 1;
                    fs::set_permissions(to, meta.permissions())?;
                    return set_times(to, &meta);
                }
                Err(e) if refused(&e) => {
                    self.no_reflink = true;
                    let _ = fs::remove_file(to);
                }
                Err(e) => {
                    let _ = fs::remove_file(to);
                    return Err(e);
                }
            }
        }
        if may_link && !self.no_hard_links && fs::hard_link(from, to).is_ok() {
            self.hard_linked += 1;
            return Ok(());
        }
        if is_sparse(&meta) {
            copy_sparse(from, to, &meta)?;
        } else {
            fs::copy(from, to)?;
        }
        self.copied += 1;
        set_times(to, &meta)
    }
}

/// Whether a file takes less room on the disk than its length: it has holes.
fn is_sparse(meta: &fs::Metadata) -> bool {
    meta.blocks().saturating_mul(512) < meta.len()
}

/// Copies only the data of a sparse file, keeping its holes: a plain copy writes the holes
/// out as zeros, and a 64 GiB hole would fill the disk. The data ranges come from
/// `SEEK_DATA` / `SEEK_HOLE`; a file system without them reports the whole file as data.
fn copy_sparse(from: &Path, to: &Path, meta: &fs::Metadata) -> io::Result<()> {
    use nix::unistd::{Whence, lseek};
    use std::os::unix::fs::FileExt;
    let source = fs::File::open(from)?;
    let dest = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let len = meta.len() as i64;
    let mut buf = vec![0u8; 1 << 20];
    let mut at: i64 = 0;
    while at < len {
        let start = match lseek(&source, at, Whence::SeekData) {
            Ok(start) => start,
            // No data after `at`: the rest is a hole.
            Err(nix::errno::Errno::ENXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let end = lseek(&source, start, Whence::SeekHole)
            .map_err(io::Error::from)?
            .min(len);
        let mut pos = start;
        while pos < end {
            let want = buf.len().min((end - pos) as usize);
            let n = source.read_at(&mut buf[..want], pos as u64)?;
            if n == 0 {
                break;
            }
            dest.write_all_at(&buf[..n], pos as u64)?;
            pos += n as i64;
        }
        at = end;
    }
    // The trailing hole.
    dest.set_len(meta.len())?;
    dest.set_permissions(meta.permissions())
}

/// Whether rustc and cargo only ever replace this file (write a new one and rename it over),
/// never rewrite it in place: the libraries and metadata in `<profile>/deps/`.
pub(crate) fn never_rewritten(rel: &Path) -> bool {
    let mut parts = rel.iter();
    let (Some(_profile), Some(deps), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let name = name.to_string_lossy();
    deps == "deps" && (name.ends_with(".rlib") || name.ends_with(".rmeta"))
}

/// A copy-on-write clone of `from` at `to`.
fn reflink(from: &Path, to: &Path) -> io::Result<()> {
    let source = fs::File::open(from)?;
    let dest = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    // SAFETY: both descriptors are open for the duration of the call; FICLONE reads the
    // source descriptor as its argument and writes nothing into our memory.
    let rc = unsafe { libc::ioctl(dest.as_raw_fd(), FICLONE as _, source.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Errors that mean "this file system (or pair of them) cannot clone".
fn refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EXDEV | libc::EINVAL | libc::ENOTTY | libc::ENOSYS)
    )
}

/// Gives `path` the access and modification times of `meta`, to the nanosecond.
pub(crate) fn set_times(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn write_old(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        let old = fs::metadata("/").unwrap();
        set_times(path, &old).unwrap();
    }

    #[test]
    fn a_seed_keeps_mtimes_links_only_libraries_and_skips_buildd_state() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a");
        write_old(&from.join("debug/deps/libx-1.rlib"), "rlib");
        write_old(&from.join("debug/deps/libx-1.rmeta"), "rmeta");
        write_old(&from.join("debug/deps/x-1.d"), "dep-info");
        write_old(&from.join("debug/.fingerprint/x-1/lib-x"), "fp");
        write_old(&from.join(".buildd/used"), "");
        write_old(&from.join(KEY_FILE), "{}");
        let to = dir.path().join("b");
        let report = seed(&from, &to, "a").unwrap();
        assert_eq!(report.files, 4);
        assert!(!to.join(".buildd").exists() && !to.join(KEY_FILE).exists());
        for rel in [
            "debug/deps/libx-1.rlib",
            "debug/deps/x-1.d",
            "debug/.fingerprint/x-1/lib-x",
        ] {
            let (a, b) = (
                fs::metadata(from.join(rel)).unwrap(),
                fs::metadata(to.join(rel)).unwrap(),
            );
            assert_eq!(a.mtime(), b.mtime(), "{rel}");
            assert_eq!(a.mtime_nsec(), b.mtime_nsec(), "{rel}");
            assert_eq!(
                fs::read(from.join(rel)).unwrap(),
                fs::read(to.join(rel)).unwrap()
            );
        }
        let linked = |rel: &str| {
            fs::metadata(from.join(rel)).unwrap().ino() == fs::metadata(to.join(rel)).unwrap().ino()
        };
        if report.method == SeedMethod::Copy {
            // This file system cannot clone: libraries are shared, the rest is copied.
            assert_eq!(report.hard_linked, 2, "{report:?}");
            assert!(linked("debug/deps/libx-1.rlib"));
        }
        assert!(!linked("debug/deps/x-1.d"));
        assert!(!linked("debug/.fingerprint/x-1/lib-x"));
        assert!(!dir.path().join("b.seeding").exists());
    }

    #[test]
    fn a_sparse_file_is_copied_with_its_holes() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("sparse");
        let file = fs::File::create(&from).unwrap();
        file.set_len(1 << 30).unwrap();
        file.write_all_at(b"start", 0).unwrap();
        file.write_all_at(b"middle", 512 << 20).unwrap();
        drop(file);
        let meta = fs::metadata(&from).unwrap();
        assert!(is_sparse(&meta), "this file system keeps no holes");
        let to = dir.path().join("copy");
        copy_sparse(&from, &to, &meta).unwrap();
        let copy = fs::metadata(&to).unwrap();
        assert_eq!(copy.len(), 1 << 30);
        assert!(
            copy.blocks() * 512 < 1 << 20,
            "holes filled: {} blocks",
            copy.blocks()
        );
        let mut got = [0u8; 6];
        fs::File::open(&to)
            .unwrap()
            .read_exact_at(&mut got, 512 << 20)
            .unwrap();
        assert_eq!(&got, b"middle");
    }

    #[test]
    fn only_deps_libraries_count_as_never_rewritten() {
        assert!(never_rewritten(Path::new("debug/deps/libfoo-abc.rlib")));
        assert!(never_rewritten(Path::new("release/deps/libfoo-abc.rmeta")));
        assert!(!never_rewritten(Path::new("debug/libfoo.rlib")));
        assert!(!never_rewritten(Path::new("debug/deps/foo-abc")));
        assert!(!never_rewritten(Path::new("debug/deps/foo-abc.d")));
        assert!(!never_rewritten(Path::new(
            "debug/build/x-1/out/libgen.rlib"
        )));
    }

    #[test]
    fn candidates_share_the_toolchain_fast_link_and_most_of_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = |hash: &str, rustc: &str, env: &[(&str, &str)]| BuildKeyInfo {
            hash: hash.into(),
            rustc: rustc.into(),
            host: "x86_64-unknown-linux-gnu".into(),
            target: "x86_64-unknown-linux-gnu".into(),
            profile: "dev".into(),
            features: "default".into(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            linker: "default".into(),
            fast_link: false,
        };
        let fast = BuildKeyInfo {
            fast_link: true,
            ..key("fast", "rustc 1.95.0", &[("RUSTFLAGS", "-Dwarnings")])
        };
        for k in [
            key("old", "rustc 1.94.0", &[]),
            key("plain", "rustc 1.95.0", &[]),
            key("flags", "rustc 1.95.0", &[("RUSTFLAGS", "-Dwarnings")]),
            fast.clone(),
        ] {
            let d = dir.path().join(&k.hash);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join(KEY_FILE), serde_json::to_string(&k).unwrap()).unwrap();
        }
        let new = key(
            "new",
            "rustc 1.95.0",
            &[("RUSTFLAGS", "-Dwarnings"), ("CARGO_INCREMENTAL", "0")],
        );
        let found = candidates(dir.path(), &new);
        let names: Vec<_> = found
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, vec!["flags", "plain"]);
        // Across `fast_link`, nothing could be reused: only the dir on its own side counts.
        let new_fast = BuildKeyInfo {
            hash: "new-fast".into(),
            ..fast
        };
        let found = candidates(dir.path(), &new_fast);
        assert_eq!(found, [dir.path().join("fast")]);
    }
}
