//! The daemon's own settings, resolved once at start-up.
//!
//! Raw settings come from `buildd daemon` flags and from the environment of whichever
//! client started the daemon (`BUILDD_IDLE_TIMEOUT`, `BUILDD_DEBOUNCE`); they are resolved
//! here into one [`DaemonConfig`] with defaults, and bad values are errors that name the
//! variable.

use std::time::Duration;

use crate::paths::Paths;

pub const IDLE_TIMEOUT_ENV: &str = "BUILDD_IDLE_TIMEOUT";
pub const DEBOUNCE_ENV: &str = "BUILDD_DEBOUNCE";
pub const MAX_FRAME_ENV: &str = "BUILDD_MAX_FRAME";

const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3 * 60 * 60);
/// Long enough to gather an editor's save of several files or a `git checkout` into one
/// job, short enough not to be felt.
const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(150);
/// The longest line a client may send; a longer one closes its connection.
const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub paths: Paths,
    /// Shut down after this long without clients or work.
    pub idle_timeout: Duration,
    pub debounce: Duration,
    pub max_frame: usize,
}

/// Settings that may be given; `None` takes the environment, then the default.
#[derive(Debug, Clone, Default)]
pub struct RawDaemonConfig {
    pub idle_timeout: Option<Duration>,
    pub debounce: Option<Duration>,
}

impl RawDaemonConfig {
    pub fn resolve(self, paths: Paths) -> Result<DaemonConfig, String> {
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
                    .filter(|n| *n >= 1024)
                    .ok_or_else(|| {
                        format!("{MAX_FRAME_ENV}: `{value}` is not a byte count of at least 1024")
                    })?,
                _ => DEFAULT_MAX_FRAME,
            },
        })
    }
}

/// Parses a duration such as `3h`, `90s` or `150ms`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}): write it like 3h, 90s or 150ms"))
}

fn env_duration(name: &str) -> Result<Option<Duration>, String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => parse_duration(&value)
            .map(Some)
            .map_err(|e| format!("{name}: {e}")),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3h").unwrap(), Duration::from_secs(10800));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("150ms").unwrap(), Duration::from_millis(150));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
    }
}
