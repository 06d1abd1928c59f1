//! Where buildd keeps its per-user state: the socket, the isolated target dirs, the logs.
//!
//! `BUILDD_HOME=DIR` puts everything under `DIR` (`run/`, `cache/`, `state/`); otherwise the
//! platform's directories from `directories` are used. Every directory buildd creates is
//! mode 0700 and must be owned by the current user; this module refuses to use one that is
//! not, rather than put a socket that runs builds where another user can reach it.

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
    #[error(
        "{path} is owned by uid {owner}, not by this user (uid {uid}): remove it or set {HOME_ENV} elsewhere"
    )]
    NotOwned { path: PathBuf, owner: u32, uid: u32 },
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

    /// Creates every directory the daemon needs, private to the user.
    pub fn create_all(&self) -> Result<(), PathsError> {
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
        let socket = self.socket();
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(PathsError::SocketPathTooLong { path: socket });
        }
        Ok(())
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Creates `dir` (and its parents) with mode 0700, or checks that an existing one belongs to
/// this user and tightens its mode.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PathsError> {
    let create = |source| PathsError::Create {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(create)?;
    let meta = fs::metadata(dir).map_err(create)?;
    let uid = nix::unistd::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(PathsError::NotOwned {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(create)?;
    }
    Ok(())
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
    fn overlong_socket_path_is_an_error_naming_the_fix() {
        let home = tempfile::tempdir().unwrap();
        let long = home.path().join("x".repeat(120));
        let err = Paths::under(&long).create_all().unwrap_err();
        assert!(err.to_string().contains(HOME_ENV), "{err}");
    }
}
