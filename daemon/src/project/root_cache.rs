//! The roots `cargo locate-project` found, so that a `register` from a dir the daemon has
//! seen does not run cargo again (on a 100-crate workspace that is a process, rustup's proxy
//! and a parse of every member's manifest, for every `buildd cargo` command).
//!
//! An answer is reused only while everything cargo and rustup read to find the root is the
//! same, byte for byte: in the dir and in each dir above it, `Cargo.toml`, the
//! `rust-toolchain` files and `.cargo/config[.toml]`, and cargo's home config; and only for
//! the same environment (the variables that choose cargo, its home and its toolchain). The
//! fingerprint of those files is taken before cargo runs and again after it, and the answer
//! is kept only when the two agree, so an edit during the run is never recorded as the old
//! content's answer.
//!
//! What the fingerprint does not cover: the manifests of the other members, which
//! `cargo locate-project --workspace` also loads. A broken one makes cargo fail, and the
//! daemon then falls back to the nearest manifest's dir (see `load::locate_root`), a guess
//! meant to show the error; failures are never kept, and the dispatcher forgets a root's
//! answers when its load fails ([`RootCache::forget_root`]), so once the daemon knows of the
//! error, cargo answers again. Until it knows (the watcher's debounce after the edit), a
//! register from a member's dir gets the workspace's root, which then shows the same error.
//!
//! This module must not run cargo or block: reading the files is [`fingerprint`]'s, which
//! callers run on a blocking thread.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::home::regular_file;

/// Dirs a daemon serves are few; past this many the record starts again (it only saves time).
const MAX_ENTRIES: usize = 1024;

/// What the files read to find a root are allowed to weigh: manifests and configs are small,
/// and a larger one is simply not cached.
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// Files in each dir, from the dir up, that cargo or rustup read before they know the root.
const CHAIN_FILES: &[&str] = &[
    "Cargo.toml",
    "rust-toolchain",
    "rust-toolchain.toml",
    ".cargo/config",
    ".cargo/config.toml",
];

/// Variables that choose which cargo runs and what it reads: the toolchain, the homes, the
/// path, and cargo's own settings from the environment.
fn chooses_cargo(name: &str) -> bool {
    matches!(
        name,
        "PATH" | "HOME" | "CARGO_HOME" | "RUSTUP_HOME" | "RUSTUP_TOOLCHAIN" | "CARGO"
    ) || name.starts_with("CARGO_")
        || name.starts_with("__CARGO")
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Key {
    fn new(dir: &Path, env: &BTreeMap<String, String>) -> Key {
        Key {
            dir: dir.to_path_buf(),
            env: env
                .iter()
                .filter(|(k, _)| chooses_cargo(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// What the files cargo reads to find a root contained, as a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint([u8; 32]);

/// The record, shared by the connections (which look up and record) and the dispatcher
/// (which forgets).
#[derive(Debug, Default)]
pub(crate) struct RootCache {
    entries: Mutex<HashMap<Key, (Fingerprint, PathBuf)>>,
}

impl RootCache {
    /// The root found for `dir` with `env` when the files read then were as `fingerprint`
    /// says they are now.
    pub(crate) fn get(
        &self,
        dir: &Path,
        env: &BTreeMap<String, String>,
        fingerprint: Fingerprint,
    ) -> Option<PathBuf> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(&Key::new(dir, env)) {
            Some((seen, root)) if *seen == fingerprint => Some(root.clone()),
            _ => None,
        }
    }

    /// Records cargo's answer for `dir`, found with the files as `fingerprint` says.
    pub(crate) fn insert(
        &self,
        dir: &Path,
        env: &BTreeMap<String, String>,
        fingerprint: Fingerprint,
        root: PathBuf,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(Key::new(dir, env), (fingerprint, root));
    }

    /// Forgets every answer that named `root`: its load failed, so cargo may now answer
    /// differently for some of its dirs.
    pub(crate) fn forget_root(&self, root: &Path) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (_, found)| found != root);
    }
}

/// The fingerprint of what cargo reads to find the root of `dir` with `env`; `None` when
/// one of the files cannot be read as a small regular file (cargo then answers each time).
/// Blocking: run it off the async workers.
pub(crate) fn fingerprint(dir: &Path, env: &BTreeMap<String, String>) -> Option<Fingerprint> {
    let mut hash = Sha256::new();
    let mut add = |path: &Path| -> Option<()> {
        hash.update(path.as_os_str().as_encoded_bytes());
        match regular_file::read(path, MAX_FILE).ok()? {
            None => hash.update([0]),
            Some((text, _)) => {
                hash.update([1]);
                hash.update((text.len() as u64).to_le_bytes());
                hash.update(text.as_bytes());
            }
        }
        Some(())
    };
    for ancestor in dir.ancestors() {
        for name in CHAIN_FILES {
            add(&ancestor.join(name))?;
        }
    }
    let cargo_home = match (env.get("CARGO_HOME"), env.get("HOME")) {
        (Some(home), _) => Some(PathBuf::from(home)),
        (None, Some(home)) => Some(Path::new(home).join(".cargo")),
        (None, None) => None,
    };
    if let Some(home) = cargo_home {
        add(&home.join("config"))?;
        add(&home.join("config.toml"))?;
    }
    Some(Fingerprint(hash.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_answer_holds_while_the_files_and_the_cargo_environment_are_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        let member = root.join("crates/a");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/*\"]\n",
        )
        .unwrap();
        std::fs::write(member.join("Cargo.toml"), "[package]\nname = \"a\"\n").unwrap();
        let home = dir.path().join("home");
        let env = env(&[("HOME", home.to_str().unwrap()), ("PWD", "/x")]);
        let cache = RootCache::default();

        let seen = fingerprint(&member, &env).unwrap();
        cache.insert(&member, &env, seen, root.clone());
        assert_eq!(cache.get(&member, &env, seen), Some(root.clone()));
        // A variable that does not choose cargo is no other environment.
        let mut moved = env.clone();
        moved.insert("PWD".into(), "/y".into());
        assert_eq!(
            cache.get(&member, &moved, fingerprint(&member, &moved).unwrap()),
            Some(root.clone())
        );
        // One that does is.
        let mut toolchain = env.clone();
        toolchain.insert("RUSTUP_TOOLCHAIN".into(), "nightly".into());
        assert_eq!(cache.get(&member, &toolchain, seen), None);

        // Each file cargo or rustup reads on the way up changes the fingerprint: the
        // member's manifest, a new manifest between, a toolchain file, cargo's home config.
        let changes: Vec<(PathBuf, &str)> = vec![
            (
                member.join("Cargo.toml"),
                "[package]\nname = \"a\"\n[workspace]\n",
            ),
            (root.join("crates/Cargo.toml"), "[workspace]\n"),
            (
                root.join("rust-toolchain.toml"),
                "[toolchain]\nchannel = \"nightly\"\n",
            ),
            (root.join(".cargo/config.toml"), "[build]\njobs = 1\n"),
            (home.join(".cargo/config.toml"), "[net]\noffline = true\n"),
        ];
        for (file, text) in changes {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            let before = std::fs::read(&file).ok();
            std::fs::write(&file, text).unwrap();
            let now = fingerprint(&member, &env).unwrap();
            assert_ne!(now, seen, "{} is read to find the root", file.display());
            assert_eq!(cache.get(&member, &env, now), None);
            match before {
                Some(before) => std::fs::write(&file, before).unwrap(),
                None => std::fs::remove_file(&file).unwrap(),
            }
            assert_eq!(fingerprint(&member, &env).unwrap(), seen);
        }

        // A failed load forgets what named the root.
        cache.forget_root(&root);
        assert_eq!(cache.get(&member, &env, seen), None);
    }

    #[test]
    fn a_file_that_cannot_be_read_as_a_small_regular_file_is_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("Cargo.toml"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        assert_eq!(fingerprint(dir.path(), &BTreeMap::new()), None);
    }
}
