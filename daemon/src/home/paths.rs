//! Where buildd keeps its per-user state: the socket, the isolated target dirs, the logs.
//!
//! `BUILDD_HOME=DIR` puts everything under `DIR` (`run/`, `cache/`, `state/`); otherwise the
//! platform's directories from `directories` are used. Every directory buildd creates is
//! mode 0700 and must be owned by the current user; this module refuses to use one that is
//! not, rather than put a socket that runs builds where another user can reach it.
//!
//! What buildd reads from these directories decides what it runs (`config.toml` names the
//! sccache binary; the socket hands out cargo's environment), so, as ssh does for `~/.ssh`,
//! the home, `run/`, `state/`, `cache/` and `config.toml` are refused when another user owns
//! them or when the group or others can write them, with the `chown` or `chmod` that fixes
//! it. A directory of buildd's own that others can merely read is tightened to 0700: no one
//! could have changed what it holds. Clients run [`Paths::check`] before they connect; the
//! daemon runs [`Paths::create_all`] before it reads anything, and checks `config.toml` again
//! on the descriptor it reads (`config.rs`).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The environment variable that moves all of buildd's per-user state.
pub const HOME_ENV: &str = "BUILDD_HOME";

/// `sun_path` holds 108 bytes on Linux, including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, Error)]
pub enum PathsError {
    #[error("cannot find a home directory for buildd's state: set {HOME_ENV} to a directory")]
    NoHome,
    #[error("failed to create {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot check {path}: {source}")]
    Inspect { path: PathBuf, source: io::Error },
    #[error(
        "{path} is owned by uid {owner}, not by this user (uid {uid}), so that user could \
         change what buildd runs: if it is yours, run `{fix}`; otherwise remove it or set \
         {HOME_ENV} to a directory of your own"
    )]
    NotOwned {
        path: PathBuf,
        owner: u32,
        uid: u32,
        fix: String,
    },
    #[error(
        "{path} is writable by {who} (mode {mode:04o}), so another user could change what \
         buildd runs: check what it holds, then run `{fix}`"
    )]
    Writable {
        path: PathBuf,
        mode: u32,
        who: &'static str,
        fix: String,
    },
    #[error("{0}")]
    WrongKind(String),
    #[error(
        "the socket path {path} is longer than {MAX_SOCKET_PATH} bytes: set {HOME_ENV} to a shorter directory"
    )]
    SocketPathTooLong { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Holds the socket and the daemon's lock file.
    pub runtime_dir: PathBuf,
    /// Holds the isolated target dirs.
    pub cache_dir: PathBuf,
    /// Holds the logs.
    pub state_dir: PathBuf,
    /// Holds the daemon's configuration file, `config.toml`.
    pub config_dir: PathBuf,
}

impl Paths {
    /// Resolves the directories from `BUILDD_HOME` or the platform's conventions. Creates
    /// nothing.
    pub fn from_env() -> Result<Paths, PathsError> {
        if let Some(home) = std::env::var_os(HOME_ENV).filter(|h| !h.is_empty()) {
            return Ok(Paths::under(Path::new(&home)));
        }
        let dirs = directories::ProjectDirs::from("", "", "buildd").ok_or(PathsError::NoHome)?;
        let state_dir = dirs
            .state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_path_buf();
        // Without XDG_RUNTIME_DIR (root in a container, a cron job) the socket goes under the
        // state dir, which is private to the user, rather than under a shared /tmp.
        let runtime_dir = dirs
            .runtime_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| state_dir.join("run"));
        Ok(Paths {
            runtime_dir,
            cache_dir: dirs.cache_dir().to_path_buf(),
            state_dir,
            config_dir: dirs.config_dir().to_path_buf(),
        })
    }

    pub fn under(home: &Path) -> Paths {
        let home = absolute(home);
        Paths {
            runtime_dir: home.join("run"),
            cache_dir: home.join("cache"),
            state_dir: home.join("state"),
            config_dir: home,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.runtime_dir.join("daemon.sock")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.runtime_dir.join("daemon.lock")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// Where a detached daemon's stderr goes: whatever it prints before its log is set up.
    pub fn daemon_stderr(&self) -> PathBuf {
        self.log_dir().join("daemon.stderr")
    }

    pub fn targets_dir(&self) -> PathBuf {
        self.cache_dir.join("targets")
    }

    /// The daemon's configuration file: the disk budget, sccache and its backend.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    /// Where buildd keeps its own tools: the linker wrapper, sccache's local cache and
    /// configuration, remembered linker measurements.
    pub fn tools_dir(&self) -> PathBuf {
        self.cache_dir.join("tools")
    }

    /// Creates every directory the daemon needs, private to the user, after checking that
    /// the config dir (the home, with `BUILDD_HOME`) and `config.toml` are the user's alone.
    pub fn create_all(&self) -> Result<(), PathsError> {
        // The config dir first: with BUILDD_HOME it holds the others, and nothing is created
        // inside a directory that is refused.
        check_existing_dir(&self.config_dir)?;
        for dir in [
            &self.runtime_dir,
            &self.cache_dir,
            &self.state_dir,
            &self.log_dir(),
            &self.targets_dir(),
            &self.tools_dir(),
        ] {
            ensure_private_dir(dir)?;
        }
        self.check_config_file()?;
        let socket = self.socket();
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(PathsError::SocketPathTooLong { path: socket });
        }
        Ok(())
    }

    /// Checks, creating and changing nothing, that the dirs that exist and `config.toml` are
    /// the user's alone. A client runs this before it connects, so that it never talks
    /// through, or starts a daemon from, a home another user controls.
    pub fn check(&self) -> Result<(), PathsError> {
        for dir in [
            &self.config_dir,
            &self.runtime_dir,
            &self.cache_dir,
            &self.state_dir,
        ] {
            check_existing_dir(dir)?;
        }
        self.check_config_file()
    }

    /// Checks `config.toml` where it is, if it exists: a regular file of the user's that no
    /// one else can write.
    pub fn check_config_file(&self) -> Result<(), PathsError> {
        let path = self.config_file();
        match fs::metadata(&path) {
            Ok(meta) => check_private_file(&path, &meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PathsError::Inspect { path, source }),
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// A path quoted for a shell command in an error message.
fn quoted(path: &Path) -> String {
    let text = path.to_string_lossy();
    shlex::try_quote(&text).map_or_else(|_| text.to_string(), |q| q.into_owned())
}

/// Who besides the owner may write, from a mode's `022` bits.
fn writers(mode: u32) -> &'static str {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and others",
        (true, false) => "its group",
        _ => "others",
    }
}

/// Refuses `meta` (of `path`) unless it belongs to this user and neither its group nor
/// others can write it. `recursive` puts `-R` in the `chown` a directory needs.
fn check_owner_and_mode(
    path: &Path,
    meta: &fs::Metadata,
    recursive: bool,
) -> Result<(), PathsError> {
    let uid = uid();
    if meta.uid() != uid {
        let flag = if recursive { "-R " } else { "" };
        return Err(PathsError::NotOwned {
            path: path.to_path_buf(),
            owner: meta.uid(),
            uid,
            fix: format!("chown {flag}{uid} {}", quoted(path)),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(PathsError::Writable {
            path: path.to_path_buf(),
            mode,
            who: writers(mode),
            fix: format!("chmod go-w {}", quoted(path)),
        });
    }
    Ok(())
}

/// A file buildd reads its settings from must be a regular file of the user's that neither
/// the group nor others can write. `meta` describes the file as opened, or as it is.
pub(crate) fn check_private_file(path: &Path, meta: &fs::Metadata) -> Result<(), PathsError> {
    crate::home::regular_file::check_regular(path, meta)
        .map_err(|e| PathsError::WrongKind(e.to_string()))?;
    check_owner_and_mode(path, meta, false)
}

/// Checks a directory buildd keeps state in: a directory of the user's that no one else can
/// write. With `tighten`, read and search bits for others are dropped too (buildd's own
/// dirs are 0700).
fn check_dir(dir: &Path, tighten: bool) -> Result<(), PathsError> {
    let meta = fs::metadata(dir).map_err(|source| PathsError::Inspect {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(PathsError::WrongKind(format!(
            "{} is {}, not a directory: move it away or set {HOME_ENV} elsewhere",
            dir.display(),
            crate::home::regular_file::kind(meta.file_type())
        )));
    }
    // Write access for others means they may have put something in it already: tightening
    // would hide that, so the user is asked to look.
    check_owner_and_mode(dir, &meta, true)?;
    if tighten && meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
            PathsError::Create {
                path: dir.to_path_buf(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Checks a directory if it exists, changing nothing.
fn check_existing_dir(dir: &Path) -> Result<(), PathsError> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        _ => check_dir(dir, false),
    }
}

/// Creates `dir` (and its parents) with mode 0700, or checks that an existing one belongs to
/// this user and that no one else can write it, and tightens its mode. The umask can only
/// take bits away from 0700, so a created dir is never more open than that.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PathsError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PathsError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
    check_dir(dir, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildd_home_puts_everything_under_it() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path());
        paths.create_all().unwrap();
        for dir in [&paths.runtime_dir, &paths.cache_dir, &paths.state_dir] {
            assert!(dir.starts_with(home.path()));
            let mode = fs::metadata(dir).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
    }

    #[test]
    fn loose_existing_dir_is_tightened() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("run");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_dir_others_can_write_is_refused_with_the_chmod_that_fixes_it() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("run");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
        let err = ensure_private_dir(&dir).unwrap_err().to_string();
        assert!(
            err.contains(&format!("chmod go-w {}", dir.display())) && err.contains("0770"),
            "{err}"
        );
        // Refused, not tightened: the user is to look at what it holds first.
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o770);
        let err = Paths::under(home.path()).check().unwrap_err().to_string();
        assert!(err.contains("run"), "{err}");
    }

    #[test]
    fn a_config_file_others_can_write_is_refused() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path());
        fs::write(paths.config_file(), "").unwrap();
        paths.check().unwrap();
        fs::set_permissions(paths.config_file(), fs::Permissions::from_mode(0o646)).unwrap();
        for err in [paths.check().unwrap_err(), paths.create_all().unwrap_err()] {
            let err = err.to_string();
            assert!(
                err.contains(&format!("chmod go-w {}", paths.config_file().display())),
                "{err}"
            );
        }
    }

    #[test]
    fn a_home_of_another_user_is_refused_with_the_chown() {
        let uid = uid();
        let home = tempfile::tempdir().unwrap();
        // Root can give a dir away; anyone else tries a dir of root's.
        let (theirs, owner) = if uid == 0 {
            let theirs = home.path().join("theirs");
            fs::create_dir(&theirs).unwrap();
            nix::unistd::chown(&theirs, Some(65534.into()), None).unwrap();
            (theirs, 65534)
        } else {
            (PathBuf::from("/"), 0)
        };
        let err = Paths::under(&theirs).create_all().unwrap_err().to_string();
        assert!(
            err.contains(&format!("owned by uid {owner}"))
                && err.contains(&format!("chown -R {uid} {}", theirs.display())),
            "{err}"
        );
        if uid == 0 {
            assert!(!theirs.join("run").exists(), "nothing is created there");
        }
    }

    #[test]
    fn overlong_socket_path_is_an_error_naming_the_fix() {
        let home = tempfile::tempdir().unwrap();
        let long = home.path().join("x".repeat(120));
        let err = Paths::under(&long).create_all().unwrap_err();
        assert!(err.to_string().contains(HOME_ENV), "{err}");
    }
}
