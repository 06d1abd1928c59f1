//! cargo's cache of what the compiler says about itself, kept once per kind of command.
//!
//! At its start cargo runs `rustc -vV` and probes the target (`--print cfg`, file names...),
//! and caches the answers in `.rustc_info.json` in the build dir, under a fingerprint of the
//! compiler *and of its wrappers*. `cargo clippy` runs cargo with clippy-driver as the
//! workspace wrapper, so every switch between clippy and another command in one dir makes
//! cargo throw the file away and probe again. A job runs clippy, then the build, every time:
//! on the generated 100-crate workspace, cargo finding everything fresh took 0.11 s when clippy
//! and the build alternated against 0.07 to 0.09 s when one command repeated (medians of 12 on
//! a quiet machine; under load, 0.23 s against 0.13 s: docs/benchmarks.md, "cargo's rustc
//! cache").
//!
//! So buildd keeps a copy of the file per kind of command ([`Kind`]) in its state dir, puts the
//! kind's copy back before a command of that kind ([`RustcInfo::restore`]) and takes a copy
//! after it ([`RustcInfo::keep`]). cargo checks the fingerprint of what it reads, so a copy that
//! no longer fits (another toolchain, a rebuilt rustc) costs the probe it would have cost
//! anyway, never a wrong answer; and a kind guessed wrong costs the same. Both files are in
//! buildd's own dir. Errors are ignored: the cache is an optimisation of cargo's own.

use std::path::{Path, PathBuf};

/// cargo's name for the file, in the build dir.
const FILE: &str = ".rustc_info.json";

/// Which copy a cargo command gets: clippy's wrapper changes cargo's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Clippy,
    Rustc,
}

impl Kind {
    /// The kind of `cargo ARGS`, by its subcommand.
    pub fn of(args: &[String]) -> Kind {
        match crate::build::jobs::split_subcommand(args) {
            Some(("clippy", _)) => Kind::Clippy,
            _ => Kind::Rustc,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Clippy => "clippy.json",
            Kind::Rustc => "rustc.json",
        }
    }
}

/// The cache of one build dir, and where buildd keeps its copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustcInfo {
    build_dir: PathBuf,
    store: PathBuf,
}

impl RustcInfo {
    pub(crate) fn new(build_dir: &Path, store: PathBuf) -> RustcInfo {
        RustcInfo {
            build_dir: build_dir.to_path_buf(),
            store,
        }
    }

    /// Before a cargo command of `kind`: its copy in place of cargo's file, when they differ.
    pub fn restore(&self, kind: Kind) {
        let Some(copy) = read(&self.store.join(kind.name())) else {
            return;
        };
        let live = self.build_dir.join(FILE);
        if read(&live).is_some_and(|current| current == copy) {
            return;
        }
        replace(&live, &copy);
    }

    /// After a cargo command of `kind`: a copy of cargo's file, when it changed.
    pub fn keep(&self, kind: Kind) {
        let Some(current) = read(&self.build_dir.join(FILE)) else {
            return;
        };
        // A file cut short (a cargo killed while it wrote) is not kept.
        if serde_json::from_str::<serde_json::Value>(&current).is_err() {
            return;
        }
        let copy = self.store.join(kind.name());
        if read(&copy).is_some_and(|kept| kept == current) {
            return;
        }
        if std::fs::create_dir_all(&self.store).is_ok() {
            replace(&copy, &current);
        }
    }
}

/// cargo's file is a few kilobytes; anything larger is not cargo's.
const MAX_FILE: u64 = 1024 * 1024;

/// The text of the regular file at `path`, if it is one of at most [`MAX_FILE`] bytes: the
/// build dir is written by build scripts too, and a FIFO or a huge file there must not stall
/// the job (see `home/regular_file.rs`).
fn read(path: &Path) -> Option<String> {
    crate::home::regular_file::read(path, MAX_FILE)
        .ok()
        .flatten()
        .map(|(text, _)| text)
}

/// Writes `text` to `path` whole, so that a cargo reading `path` meanwhile sees the old
/// content or the new, never a part; a link planted there is replaced, never followed
/// (`home/replace_file.rs`).
fn replace(path: &Path, text: &str) {
    use crate::home::replace_file;
    let _ = replace_file::replace(path, text.as_bytes(), replace_file::PRIVATE, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_the_subcommands() {
        let of = |args: &str| {
            Kind::of(
                &args
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(of("clippy --workspace"), Kind::Clippy);
        assert_eq!(of("+nightly -v clippy"), Kind::Clippy);
        assert_eq!(of("--config build.target-dir=\"x\" clippy"), Kind::Clippy);
        assert_eq!(of("build -p clippy"), Kind::Rustc);
        assert_eq!(of("test --no-run"), Kind::Rustc);
        assert_eq!(of(""), Kind::Rustc);
    }

    #[test]
    fn each_kind_gets_back_its_own_copy_and_a_broken_file_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let info = RustcInfo::new(dir.path(), dir.path().join(".buildd/rustc-info"));
        let live = dir.path().join(FILE);
        let clippy = br#"{"rustc_fingerprint":1,"outputs":{}}"#;
        let rustc = br#"{"rustc_fingerprint":2,"outputs":{}}"#;
        // Nothing kept yet: cargo's file stays as it is.
        std::fs::write(&live, clippy).unwrap();
        info.restore(Kind::Rustc);
        assert_eq!(std::fs::read(&live).unwrap(), clippy);
        info.keep(Kind::Clippy);
        std::fs::write(&live, rustc).unwrap();
        info.keep(Kind::Rustc);
        info.restore(Kind::Clippy);
        assert_eq!(std::fs::read(&live).unwrap(), clippy);
        info.restore(Kind::Rustc);
        assert_eq!(std::fs::read(&live).unwrap(), rustc);
        // A file cut short is not kept over a good copy.
        std::fs::write(&live, b"{\"rustc_fing").unwrap();
        info.keep(Kind::Rustc);
        info.restore(Kind::Rustc);
        assert_eq!(std::fs::read(&live).unwrap(), rustc);
    }

    #[test]
    fn a_fifo_in_the_build_dir_stalls_nothing_and_a_planted_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let info = RustcInfo::new(dir.path(), dir.path().join(".buildd/rustc-info"));
        let live = dir.path().join(FILE);
        let rustc = br#"{"rustc_fingerprint":2,"outputs":{}}"#;
        std::fs::write(&live, rustc).unwrap();
        info.keep(Kind::Rustc);
        // A FIFO where cargo's file was: reading it would wait for a writer forever.
        std::fs::remove_file(&live).unwrap();
        nix::unistd::mkfifo(&live, nix::sys::stat::Mode::S_IRWXU).unwrap();
        info.keep(Kind::Rustc);
        info.restore(Kind::Rustc);
        assert_eq!(
            std::fs::read(&live).unwrap(),
            rustc,
            "the FIFO was replaced"
        );
        // A link where cargo's file is, to a file of the user's: replaced, not written through.
        let users = dir.path().join("users-file");
        std::fs::write(&users, "mine").unwrap();
        std::fs::remove_file(&live).unwrap();
        std::os::unix::fs::symlink(&users, &live).unwrap();
        info.restore(Kind::Rustc);
        assert_eq!(std::fs::read(&live).unwrap(), rustc);
        assert_eq!(std::fs::read_to_string(&users).unwrap(), "mine");
    }
}
