//! The daemon's own settings, resolved once at start-up.
//!
//! Raw settings come from `buildd daemon` flags, from the environment of whichever client
//! started the daemon (`BUILDD_IDLE_TIMEOUT`, `BUILDD_DEBOUNCE`, `BUILDD_CACHE_BUDGET`,
//! `BUILDD_SCCACHE`, `BUILDD_WATCHER`...) and from the daemon's configuration file (`config.toml` in the config
//! dir, or in `BUILDD_HOME`); they are resolved here into one [`DaemonConfig`] with
//! defaults. The environment wins over the file. Bad values are errors that name the
//! variable or the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::home::dist_config::{DistConfig, DistConfigError, DistSection};
use crate::home::paths::{Paths, PathsError, check_private_file};
use crate::home::regular_file::{self, ReadError};
pub use crate::home::values::{ValueError, duration, parse_size};

pub const IDLE_TIMEOUT_ENV: &str = "BUILDD_IDLE_TIMEOUT";
pub const DEBOUNCE_ENV: &str = "BUILDD_DEBOUNCE";
pub const MAX_FRAME_ENV: &str = "BUILDD_MAX_FRAME";
/// How many client connections the daemon serves at once.
pub const MAX_CONNECTIONS_ENV: &str = "BUILDD_MAX_CONNECTIONS";
/// The disk budget of all isolated dirs, such as `20GiB`.
pub const BUDGET_ENV: &str = "BUILDD_CACHE_BUDGET";
/// `off` (or `0`, `false`, `no`), `on` (or `1`, `true`, `yes`, `auto`: `sccache` on `PATH`),
/// or the sccache binary to use.
pub const SCCACHE_ENV: &str = "BUILDD_SCCACHE";
/// How workspaces are watched: `poll`, or `inotify` (the default; also `native`, `auto`).
pub const WATCHER_ENV: &str = "BUILDD_WATCHER";

const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3 * 60 * 60);
/// Long enough to gather an editor's save of several files or a `git checkout` into one
/// job, short enough not to be felt.
const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(150);
/// The longest line a client may send; a longer one closes its connection.
const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;
/// A smaller limit would refuse the daemon's own requests.
const MIN_MAX_FRAME: usize = 1024;
/// Editors, CLIs and event streams of one user: far more than any real session opens, far
/// fewer than the descriptors the daemon may hold.
const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Variables of sccache's that buildd decides itself for its own server: setting them in the
/// configuration could point buildd's server at the user's own cache dir or server.
const RESERVED_SCCACHE_ENV: &[&str] = &[
    "SCCACHE_DIR",
    "SCCACHE_SERVER_UDS",
    "SCCACHE_SERVER_PORT",
    "SCCACHE_CONF",
    "SCCACHE_NO_DAEMON",
    "SCCACHE_START_SERVER",
];

/// Why the daemon's settings could not be resolved. Each text names the variable, or the
/// file and its key, and says what to write.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// `config.toml` could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// `config.toml` is not the user's alone (see `paths.rs`).
    #[error(transparent)]
    NotPrivate(#[from] PathsError),
    #[error("{path}: {source}")]
    Syntax {
        path: PathBuf,
        source: toml::de::Error,
    },
    /// A variable of the environment holds a value that is not one.
    #[error("{name}: {source}")]
    Env {
        name: &'static str,
        source: ValueError,
    },
    #[error("{file}: cache.budget: {source}")]
    Budget { file: PathBuf, source: ValueError },
    #[error(
        "{file}: sccache.env.{name}: buildd sets {name} itself for its own sccache server, so \
         that it never shares the user's cache dir or server; remove it"
    )]
    ReservedSccacheEnv { file: PathBuf, name: String },
    /// `[sccache.dist]` is not one buildd can use.
    #[error("{file}: {source}")]
    Dist {
        file: PathBuf,
        source: DistConfigError,
    },
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub paths: Paths,
    /// Shut down after this long without clients or work.
    pub idle_timeout: Duration,
    pub debounce: Duration,
    pub max_frame: usize,
    /// Connections served at once; more are refused with a `busy` error.
    pub max_connections: usize,
    /// The disk budget of all isolated dirs in bytes; `None`: the smaller of 20 GiB and a
    /// quarter of the space buildd can use (free space plus what its dirs hold).
    pub budget: Option<u64>,
    pub sccache: SccacheConfig,
    pub watcher: WatcherChoice,
}

/// How the daemon watches workspaces for changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatcherChoice {
    /// inotify, falling back to polling when inotify runs out.
    Native,
    /// Polling from the start: network file systems, where inotify sees nothing.
    Poll,
}

/// Whether and how buildd's jobs use sccache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SccacheConfig {
    pub mode: SccacheMode,
    /// The environment of buildd's own sccache server beyond what buildd sets: the shared
    /// backend (`SCCACHE_REDIS_ENDPOINT`, `SCCACHE_BUCKET`, ...), `SCCACHE_CACHE_SIZE`...
    pub env: BTreeMap<String, String>,
    /// An sccache configuration file for buildd's server (`SCCACHE_CONF`), for what only a
    /// file can say, such as sccache-dist's `[dist]` section; by default an empty one, so
    /// that the user's own `~/.config/sccache/config` is not read.
    pub config_file: Option<PathBuf>,
    /// `[sccache.dist]`: distributed compilation through sccache-dist, written into the
    /// configuration file buildd generates for its server.
    pub dist: Option<DistConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SccacheMode {
    /// Use `sccache` from the daemon's `PATH` when there is one.
    Auto,
    Off,
    Binary(PathBuf),
}

/// Settings that may be given; `None` takes the environment, then the file, then the
/// default.
#[derive(Debug, Clone, Default)]
pub struct RawDaemonConfig {
    pub idle_timeout: Option<Duration>,
    pub debounce: Option<Duration>,
}

/// `config.toml`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    cache: CacheSection,
    #[serde(default)]
    sccache: SccacheSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheSection {
    /// A size such as `20GiB`, `500MB` or a number of bytes.
    budget: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SccacheSection {
    /// `false` turns sccache off.
    enabled: Option<bool>,
    /// The sccache binary; default: `sccache` on `PATH`.
    path: Option<PathBuf>,
    /// The environment of buildd's sccache server: the shared backend and its options.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// An sccache configuration file for buildd's server.
    config: Option<PathBuf>,
    /// sccache-dist's scheduler, token and toolchain options.
    dist: Option<DistSection>,
}

impl RawDaemonConfig {
    pub fn resolve(self, paths: Paths) -> Result<DaemonConfig, ConfigError> {
        let file = read_file(&paths.config_file())?;
        let budget = match env_value(BUDGET_ENV) {
            Some(value) => Some(parse_size(&value).map_err(env_error(BUDGET_ENV))?),
            None => match &file.cache.budget {
                Some(value) => Some(parse_size(value).map_err(|source| ConfigError::Budget {
                    file: paths.config_file(),
                    source,
                })?),
                None => None,
            },
        };
        for name in file.sccache.env.keys() {
            if RESERVED_SCCACHE_ENV.contains(&name.as_str()) {
                return Err(ConfigError::ReservedSccacheEnv {
                    file: paths.config_file(),
                    name: name.clone(),
                });
            }
        }
        let dist = match file.sccache.dist {
            None => None,
            Some(_) if file.sccache.config.is_some() => {
                return Err(ConfigError::Dist {
                    file: paths.config_file(),
                    source: DistConfigError::WithConfigFile,
                });
            }
            Some(section) => Some(section.resolve().map_err(|source| ConfigError::Dist {
                file: paths.config_file(),
                source,
            })?),
        };
        let mode = match env_value(SCCACHE_ENV) {
            Some(value) => sccache_mode(&value),
            None => match (file.sccache.enabled, &file.sccache.path) {
                (Some(false), _) => SccacheMode::Off,
                (_, Some(path)) => SccacheMode::Binary(path.clone()),
                _ => SccacheMode::Auto,
            },
        };
        Ok(DaemonConfig {
            paths,
            idle_timeout: match self.idle_timeout {
                Some(d) => d,
                None => env_duration(IDLE_TIMEOUT_ENV)?.unwrap_or(DEFAULT_IDLE_TIMEOUT),
            },
            debounce: match self.debounce {
                Some(d) => d,
                None => env_duration(DEBOUNCE_ENV)?.unwrap_or(DEFAULT_DEBOUNCE),
            },
            max_frame: match std::env::var(MAX_FRAME_ENV) {
                Ok(value) if !value.trim().is_empty() => value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= MIN_MAX_FRAME)
                    .ok_or_else(|| {
                        env_error(MAX_FRAME_ENV)(ValueError::ByteCount {
                            text: value.clone(),
                            min: MIN_MAX_FRAME,
                        })
                    })?,
                _ => DEFAULT_MAX_FRAME,
            },
            max_connections: match std::env::var(MAX_CONNECTIONS_ENV) {
                Ok(value) if !value.trim().is_empty() => value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        env_error(MAX_CONNECTIONS_ENV)(ValueError::Count {
                            text: value.clone(),
                        })
                    })?,
                _ => DEFAULT_MAX_CONNECTIONS,
            },
            budget,
            sccache: SccacheConfig {
                mode,
                env: file.sccache.env,
                config_file: file.sccache.config,
                dist,
            },
            watcher: match env_value(WATCHER_ENV) {
                Some(value) => watcher_choice(&value)?,
                None => WatcherChoice::Native,
            },
        })
    }
}

/// Reads `config.toml`, which names programs buildd runs: it must be a regular file of the
/// user's alone (see `paths.rs`), and the file checked is the one read.
fn read_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    match regular_file::read(path, regular_file::MAX_SETTINGS_FILE)? {
        None => Ok(ConfigFile::default()),
        Some((text, opened)) => {
            check_private_file(path, &opened)?;
            toml::from_str(&text).map_err(|source| ConfigError::Syntax {
                path: path.to_path_buf(),
                source,
            })
        }
    }
}

/// `BUILDD_SCCACHE`: the spellings of a boolean turn it off or leave it to `PATH`; anything
/// else is the binary. (A binary named like a boolean is still reachable as `./on`.)
fn sccache_mode(value: &str) -> SccacheMode {
    match value.trim().to_ascii_lowercase().as_str() {
        "0" | "false" | "no" | "off" => SccacheMode::Off,
        "1" | "true" | "yes" | "on" | "auto" => SccacheMode::Auto,
        _ => SccacheMode::Binary(PathBuf::from(value)),
    }
}

/// `BUILDD_WATCHER`: a value the daemon does not know is an error, not inotify in silence.
fn watcher_choice(value: &str) -> Result<WatcherChoice, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "poll" => Ok(WatcherChoice::Poll),
        "inotify" | "native" | "auto" => Ok(WatcherChoice::Native),
        _ => Err(env_error(WATCHER_ENV)(ValueError::Watcher {
            text: value.to_owned(),
        })),
    }
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The error of the variable `name` holding a bad value.
fn env_error(name: &'static str) -> impl Fn(ValueError) -> ConfigError {
    move |source| ConfigError::Env { name, source }
}

fn env_duration(name: &'static str) -> Result<Option<Duration>, ConfigError> {
    match env_value(name) {
        Some(value) => duration(&value).map(Some).map_err(env_error(name)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("3h").unwrap(), Duration::from_secs(10800));
        assert_eq!(duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("150ms").unwrap(), Duration::from_millis(150));
        assert!(duration("soon").unwrap_err().to_string().contains("soon"));
        assert_eq!(duration(" 2m ").unwrap(), duration("120").unwrap());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("20GiB").unwrap(), 20 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").unwrap_err().to_string().contains("lots"));
        assert!(parse_size("3 parsecs").is_err());
    }

    #[test]
    fn sccache_and_watcher_take_every_spelling() {
        for off in ["0", "false", "No", "OFF"] {
            assert_eq!(sccache_mode(off), SccacheMode::Off, "{off}");
        }
        for on in ["1", "true", "YES", "on", "auto"] {
            assert_eq!(sccache_mode(on), SccacheMode::Auto, "{on}");
        }
        assert_eq!(
            sccache_mode("/opt/sccache"),
            SccacheMode::Binary("/opt/sccache".into())
        );
        assert_eq!(watcher_choice("Poll").ok(), Some(WatcherChoice::Poll));
        for native in ["inotify", "native", "AUTO"] {
            assert_eq!(
                watcher_choice(native).ok(),
                Some(WatcherChoice::Native),
                "{native}"
            );
        }
        let err = watcher_choice("fanotify").unwrap_err().to_string();
        assert!(
            err.contains(WATCHER_ENV) && err.contains("`fanotify`") && err.contains("poll"),
            "{err}"
        );
    }

    #[test]
    fn the_file_is_read_and_its_errors_name_it() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path());
        std::fs::write(
            paths.config_file(),
            "[cache]\nbudget = \"2GiB\"\n[sccache]\npath = \"/opt/sccache\"\n\
             [sccache.env]\nSCCACHE_REDIS_ENDPOINT = \"redis://127.0.0.1:6379\"\n",
        )
        .unwrap();
        let config = RawDaemonConfig::default().resolve(paths.clone()).unwrap();
        assert_eq!(config.budget, Some(2 << 30));
        assert_eq!(
            config.sccache.mode,
            SccacheMode::Binary("/opt/sccache".into())
        );
        assert_eq!(config.sccache.env.len(), 1);

        std::fs::write(paths.config_file(), "[sccache.env]\nSCCACHE_DIR = \"/x\"\n").unwrap();
        let err = RawDaemonConfig::default()
            .resolve(paths.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("SCCACHE_DIR"),
            "{err}"
        );

        std::fs::write(paths.config_file(), "[cache]\nbudget = \"huge\"\n").unwrap();
        let err = RawDaemonConfig::default()
            .resolve(paths)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cache.budget") && err.contains("huge"),
            "{err}"
        );
    }

    /// The texts users see, word for word as they were when they were built with `format!`.
    #[test]
    fn error_texts_name_the_input_and_say_what_to_write() {
        fn value<T: std::fmt::Debug>(parsed: Result<T, ValueError>) -> String {
            parsed.unwrap_err().to_string()
        }
        assert_eq!(
            value(duration(" soon ")),
            "`soon` is not a duration (expected number at 0): write it like 3h, 90s or 150ms"
        );
        assert_eq!(
            value(parse_size("lots")),
            "`lots` is not a size: write it like 20GiB, 500MB or 1073741824"
        );
        let env = |name, source| ConfigError::Env { name, source }.to_string();
        assert_eq!(
            env(
                MAX_FRAME_ENV,
                ValueError::ByteCount {
                    text: " 12".into(),
                    min: MIN_MAX_FRAME
                }
            ),
            "BUILDD_MAX_FRAME: ` 12` is not a byte count of at least 1024"
        );
        assert_eq!(
            env(MAX_CONNECTIONS_ENV, ValueError::Count { text: "0".into() }),
            "BUILDD_MAX_CONNECTIONS: `0` is not a positive count"
        );
        assert_eq!(
            watcher_choice("fanotify").unwrap_err().to_string(),
            "BUILDD_WATCHER: `fanotify` is not a watcher: write poll (for network file \
             systems) or inotify (the default; also native or auto)"
        );
        let file = PathBuf::from("/h/config.toml");
        assert_eq!(
            ConfigError::Budget {
                file: file.clone(),
                source: ValueError::Size {
                    text: "huge".into()
                }
            }
            .to_string(),
            "/h/config.toml: cache.budget: `huge` is not a size: write it like 20GiB, 500MB or \
             1073741824"
        );
        assert_eq!(
            ConfigError::ReservedSccacheEnv {
                file,
                name: "SCCACHE_DIR".into()
            }
            .to_string(),
            "/h/config.toml: sccache.env.SCCACHE_DIR: buildd sets SCCACHE_DIR itself for its \
             own sccache server, so that it never shares the user's cache dir or server; \
             remove it"
        );
    }

    #[test]
    fn sccache_dist_is_resolved_and_refused_beside_a_config_file_of_ones_own() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path());
        let dist = "[sccache.dist]\nscheduler_url = \"http://127.0.0.1:10600\"\ntoken = \"t\"\n";
        std::fs::write(paths.config_file(), dist).unwrap();
        let config = RawDaemonConfig::default().resolve(paths.clone()).unwrap();
        let resolved = config.sccache.dist.unwrap();
        assert_eq!(resolved.scheduler_url, "http://127.0.0.1:10600");

        let both = format!("[sccache]\nconfig = \"/etc/sccache.toml\"\n{dist}");
        std::fs::write(paths.config_file(), both).unwrap();
        let err = RawDaemonConfig::default()
            .resolve(paths.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("sccache.config"),
            "{err}"
        );

        std::fs::write(paths.config_file(), "[sccache.dist]\ntoken = \"t\"\n").unwrap();
        let err = RawDaemonConfig::default()
            .resolve(paths.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("sccache.dist.scheduler_url"),
            "{err}"
        );
        std::fs::write(paths.config_file(), "[sccache.dist]\nschedular = \"x\"\n").unwrap();
        let err = RawDaemonConfig::default()
            .resolve(paths)
            .unwrap_err()
            .to_string();
        assert!(err.contains("schedular"), "{err}");
    }
}
