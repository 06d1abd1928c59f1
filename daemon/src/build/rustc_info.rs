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

/// Options of cargo that take their value as the next argument, before the subcommand.
const VALUE_OPTIONS: &[&str] = &["--config", "-Z", "-C", "--color", "--manifest-path"];

impl Kind {
    /// The kind of `cargo ARGS`: by its subcommand, the first word that is neither an option
    /// (nor an option's value) nor a `+toolchain`.
    pub fn of<S: AsRef<str>>(args: &[S]) -> Kind {
        let mut words = args.iter().map(AsRef::as_ref);
        while let Some(word) = words.next() {
            if VALUE_OPTIONS.contains(&word) {
                words.next();
            } else if !word.starts_with('-') && !word.starts_with('+') {
                return if word == "clippy" {
                    Kind::Clippy
                } else {
                    Kind::Rustc
                };
            }
        }
        Kind::Rustc
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
        let Ok(copy) = std::fs::read(self.store.join(kind.name())) else {
            return;
        };
        let live = self.build_dir.join(FILE);
        if std::fs::read(&live).is_ok_and(|current| current == copy) {
            return;
        }
        replace(&live, &copy);
    }

    /// After a cargo command of `kind`: a copy of cargo's file, when it changed.
    pub fn keep(&self, kind: Kind) {
        let Ok(current) = std::fs::read(self.build_dir.join(FILE)) else {
            return;
        };
        // A file cut short (a cargo killed while it wrote) is not kept.
        if serde_json::from_slice::<serde_json::Value>(&current).is_err() {
            return;
        }
        let copy = self.store.join(kind.name());
        if std::fs::read(&copy).is_ok_and(|kept| kept == current) {
            return;
        }
        if std::fs::create_dir_all(&self.store).is_ok() {
            replace(&copy, &current);
        }
    }
}

/// Writes `bytes` to `path` through a file beside it and a rename, so that a cargo reading
/// `path` meanwhile sees the old content or the new, never a part.
fn replace(path: &Path, bytes: &[u8]) {
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".buildd-{}", std::process::id()));
    let temp = PathBuf::from(temp);
    if std::fs::write(&temp, bytes).is_err() || std::fs::rename(&temp, path).is_err() {
        let _ = std::fs::remove_file(&temp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_the_subcommands() {
        assert_eq!(Kind::of(&["clippy", "--workspace"]), Kind::Clippy);
        assert_eq!(Kind::of(&["+nightly", "-v", "clippy"]), Kind::Clippy);
        assert_eq!(
            Kind::of(&["--config", "build.target-dir=\"x\"", "clippy"]),
            Kind::Clippy
        );
        assert_eq!(Kind::of(&["build", "-p", "clippy"]), Kind::Rustc);
        assert_eq!(Kind::of(&["test", "--no-run"]), Kind::Rustc);
        assert_eq!(Kind::of::<&str>(&[]), Kind::Rustc);
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
}
