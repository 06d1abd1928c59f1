//! The daemon's log: a daily-rotated file in the user's state dir, filtered by `BUILDD_LOG`
//! (an `EnvFilter` directive such as `debug` or `buildd_daemon=trace`), and stderr too when
//! the daemon runs in the foreground.

use std::path::{Path, PathBuf};

use thiserror::Error;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{InitError, RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::ParseError;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub const LOG_ENV: &str = "BUILDD_LOG";
const PREFIX: &str = "buildd";
const SUFFIX: &str = "log";
/// Days of logs kept.
const KEEP: usize = 7;

/// Why the daemon has no log: it does not start without one.
#[derive(Debug, Error)]
pub enum LoggingError {
    #[error("{LOG_ENV}: {source}")]
    Filter { source: ParseError },
    #[error("failed to open the log in {dir}: {source}")]
    Open { dir: PathBuf, source: InitError },
    /// A global subscriber is installed already.
    #[error("failed to set up logging: {source}")]
    Install {
        source: tracing_subscriber::util::TryInitError,
    },
}

/// Installs the global subscriber. Keep the guard alive: dropping it flushes the file.
pub fn init(log_dir: &Path, foreground: bool) -> Result<WorkerGuard, LoggingError> {
    let filter = EnvFilter::try_from_env(LOG_ENV)
        .or_else(|_| EnvFilter::try_new("info"))
        .map_err(|source| LoggingError::Filter { source })?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(PREFIX)
        .filename_suffix(SUFFIX)
        .max_log_files(KEEP)
        .build(log_dir)
        .map_err(|source| LoggingError::Open {
            dir: log_dir.to_path_buf(),
            source,
        })?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    let stderr_layer =
        foreground.then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(stderr_layer)
        .try_init()
        .map_err(|source| LoggingError::Install { source })?;
    Ok(guard)
}

/// The log file being written: the newest in the log dir.
pub fn current_log(log_dir: &Path) -> PathBuf {
    std::fs::read_dir(log_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(PREFIX) && name.ends_with(SUFFIX)
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .unwrap_or_else(|| log_dir.to_path_buf())
}
