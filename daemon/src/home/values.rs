//! The values of settings written as text (durations, sizes), shared by `config.rs` and
//! `dist_config.rs`, and the one error that says what is wrong with one.

use std::time::Duration;

use thiserror::Error;

/// A value of a setting that does not parse; `text` is the value as given (trimmed for a
/// duration or a size).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ValueError {
    #[error("`{text}` is not a duration ({source}): write it like 3h, 90s or 150ms")]
    Duration {
        text: String,
        source: humantime::DurationError,
    },
    #[error("`{text}` is not a size: write it like 20GiB, 500MB or 1073741824")]
    Size { text: String },
    #[error("`{text}` is not a byte count of at least {min}")]
    ByteCount { text: String, min: usize },
    #[error("`{text}` is not a positive count")]
    Count { text: String },
    #[error(
        "`{text}` is not a watcher: write poll (for network file systems) or inotify (the \
         default; also native or auto)"
    )]
    Watcher { text: String },
}

/// Parses a duration such as `3h`, `90s` or `150ms`; a bare number is seconds.
pub fn duration(text: &str) -> Result<Duration, ValueError> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|source| ValueError::Duration {
        text: text.to_owned(),
        source,
    })
}

/// Parses a size such as `20GiB`, `1.5G`, `500MB`, `64k` or a number of bytes. `K`, `M`, `G`
/// and `T` with or without `iB` are powers of 1024; `KB`, `MB`, `GB`, `TB` powers of 1000.
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || ValueError::Size {
        text: text.to_owned(),
    };
    let number: f64 = number.parse().map_err(|_| bad())?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return Err(bad()),
    };
    Ok((number * factor) as u64)
}
