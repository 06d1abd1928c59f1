//! Reading the small files buildd reads its settings from (`config.toml`, `buildd.toml`) so
//! that an odd file cannot stall the reader: only a regular file is read; it is opened
//! without blocking (opening a FIFO for reading waits for a writer, forever if none comes)
//! and checked again on the opened descriptor, since what is opened may have been swapped
//! for something else after the first look; and its size is capped.
//!
//! This module does not decide who may own a file: `paths::check_private_file` does, on the
//! metadata returned here. Reading still blocks on a slow file system: callers run it off the
//! async workers.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Settings files are a few lines; a megabyte is a mistake, not a configuration.
pub(crate) const MAX_SETTINGS_FILE: u64 = 1024 * 1024;

/// Why a settings file could not be read.
///
/// `pub` (as is [`NotRegular`]) because `config::ConfigError` carries it; this module stays
/// private to the crate, so neither can be named outside it.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("failed to read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    NotRegular(#[from] NotRegular),
    /// Over `max` bytes.
    #[error(
        "{path} is larger than {} KiB, too large for a settings file: check that it is the \
         file you meant",
        .max / 1024
    )]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{path} is not UTF-8 text: {source}")]
    NotUtf8 {
        path: PathBuf,
        source: std::string::FromUtf8Error,
    },
}

/// Something other than a regular file where buildd, cargo or rustup reads one; `kind` says
/// what it is instead (see [`kind`]).
#[derive(Debug, Clone, Error)]
#[error("{path} is {kind}, not a regular file: replace it with a regular file or remove it")]
pub struct NotRegular {
    pub(crate) path: PathBuf,
    pub(crate) kind: &'static str,
}

/// The text of the regular file at `path` and its metadata as opened, or `None` when there
/// is no file. Errors name the path and say what to do.
pub(crate) fn read(path: &Path, max: u64) -> Result<Option<(String, fs::Metadata)>, ReadError> {
    let failed = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    // A device is refused before it is opened: opening one can have effects of its own.
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
        Ok(meta) => check_regular(path, &meta)?,
    }
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
        Ok(file) => file,
    };
    let meta = file.metadata().map_err(failed)?;
    check_regular(path, &meta)?;
    let too_large = || ReadError::TooLarge {
        path: path.to_path_buf(),
        max,
    };
    if meta.len() > max {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(failed)?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    let text = String::from_utf8(bytes).map_err(|source| ReadError::NotUtf8 {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Some((text, meta)))
}

/// Refuses anything but a regular file, saying what it is instead.
pub(crate) fn check_regular(path: &Path, meta: &fs::Metadata) -> Result<(), NotRegular> {
    if meta.is_file() {
        return Ok(());
    }
    Err(NotRegular {
        path: path.to_path_buf(),
        kind: kind(meta.file_type()),
    })
}

/// Checks, without opening it, that whatever is at `path` is a regular file, if anything
/// is: for files other programs (cargo, rustup) read, which would hang on a FIFO.
pub(crate) fn check_regular_if_present(path: &Path) -> Result<(), NotRegular> {
    match fs::metadata(path) {
        Ok(meta) => check_regular(path, &meta),
        Err(_) => Ok(()),
    }
}

/// What a file type is, for messages.
pub(crate) fn kind(file_type: fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_file() {
        "a regular file"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("buildd.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read(&fifo, MAX_SETTINGS_FILE).unwrap_err().to_string();
        assert!(err.contains("buildd.toml is a FIFO"), "{err}");
        assert!(check_regular_if_present(&fifo).is_err());
        let err = read(Path::new("/dev/null"), MAX_SETTINGS_FILE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("character device"), "{err}");
    }

    #[test]
    fn files_are_read_missing_ones_are_none_and_large_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        assert!(read(&file, 16).unwrap().is_none());
        assert!(check_regular_if_present(&file).is_ok());
        fs::write(&file, "x = 1\n").unwrap();
        assert_eq!(read(&file, 16).unwrap().unwrap().0, "x = 1\n");
        fs::write(&file, "x".repeat(17)).unwrap();
        assert!(
            read(&file, 16)
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
        fs::write(&file, [0xff, 0xfe]).unwrap();
        assert!(read(&file, 16).unwrap_err().to_string().contains("UTF-8"));
    }
}
