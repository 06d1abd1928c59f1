//! What can go wrong exporting or importing an archive (`archive.rs`, `unpack.rs`): one
//! variant per cause, each naming the file, the dir or the entry and saying what the user can
//! do. The texts are what `buildd cache export` and `import` print.
//!
//! A leaf of `cache/`: it names the archive's files through `layout.rs` and imports nothing
//! else of the crate, so that both the archive and the unpacker can build its variants.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::cache::layout::ARCHIVE_MANIFEST as MANIFEST;

/// Why an export or an import failed. Nothing is half-done after one: an export leaves no
/// archive, an import leaves the isolated dir as it was.
#[derive(Debug, Error)]
pub enum ArchiveError {
    /// A cargo outside buildd holds the dir's locks; `step` is `export` or `import`.
    #[error("a cargo is building in {dir} (a shell after `buildd env`?): {step} when it is done")]
    CargoBuilding { dir: PathBuf, step: &'static str },
    #[error("another import is writing {staging}: import when it is done")]
    ImportRunning { staging: PathBuf },
    #[error("failed to read the workspace {root}: {source}")]
    ReadWorkspace { root: PathBuf, source: io::Error },
    #[error("failed to write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot open {archive}: {source}")]
    Open { archive: PathBuf, source: io::Error },
    /// The zstd decoder could not start.
    #[error("{archive}: {source}")]
    Decompress { archive: PathBuf, source: io::Error },
    #[error("{archive} is not a buildd archive: {source}")]
    NotTar { archive: PathBuf, source: io::Error },
    #[error(
        "{archive} is not a buildd archive (no {MANIFEST} first): make one with `buildd cache \
         export`"
    )]
    NoManifest { archive: PathBuf },
    /// The manifest is over `limit` bytes: it is read whole before anything else.
    #[error("{archive}: its manifest is over the limit of {limit} bytes: refusing the archive")]
    ManifestTooBig { archive: PathBuf, limit: u64 },
    #[error("{archive}: unreadable manifest: {source}")]
    BadManifest {
        archive: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{archive} has archive format {format}; this buildd reads format {supported}: export \
         it again with this version of buildd"
    )]
    Format {
        archive: PathBuf,
        format: u32,
        supported: u32,
    },
    /// The archive was built for another build key; the text is `archive::mismatch`'s.
    #[error("{0}")]
    KeyMismatch(String),
    /// The archive's data ends or breaks mid-way. The text carries the whole chain of
    /// `source`: `tar` keeps the reason (an unexpected end of file) in the source of its
    /// errors, which their own text leaves out.
    #[error(
        "cannot read {archive} ({}): it is cut short, damaged or not a buildd archive; copy it \
         again, or make one with `buildd cache export`",
        cause(source)
    )]
    Damaged { archive: PathBuf, source: io::Error },
    #[error("failed to unpack {archive}: {source}")]
    Unpack { archive: PathBuf, source: io::Error },
    #[error("{archive} holds an entry outside its dir ({entry}): refusing it")]
    Outside { archive: PathBuf, entry: PathBuf },
    /// More entries than `limit`, the most an import accepts.
    #[error(
        "{archive} holds more than {limit} entries, the most an import accepts: refusing the \
         archive; export it again with `buildd cache export`"
    )]
    TooManyEntries { archive: PathBuf, limit: u64 },
    /// What the archive unpacks to is over `bytes`, counted in `block`-byte blocks; `what`
    /// says which limit that is (the disk budget and where it is set, or the free space).
    #[error(
        "{archive} unpacks to more than {bytes} bytes (each entry counted as at least one \
         {block}-byte block), the most this import may write: {what}. Free space, raise the \
         budget, or import a smaller archive"
    )]
    OverLimit {
        archive: PathBuf,
        bytes: u64,
        block: u64,
        what: String,
    },
    /// An entry the import never writes.
    #[error(
        "{archive} holds {refusal} ({entry}): refusing the archive; export it again with \
         `buildd cache export`"
    )]
    Refused {
        archive: PathBuf,
        entry: PathBuf,
        refusal: Refusal,
    },
    #[error("cargo metadata failed in {root}: {source}")]
    Metadata {
        root: PathBuf,
        source: cargo_metadata::Error,
    },
    #[error("failed to make {staging}: {source}")]
    MakeStaging { staging: PathBuf, source: io::Error },
    #[error("failed to move {dir} aside: {source}")]
    MoveAside { dir: PathBuf, source: io::Error },
    #[error("failed to install into {dir}: {source}")]
    Install { dir: PathBuf, source: io::Error },
}

/// What a refused entry is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("a symbolic link")]
    Symlink,
    #[error("a device")]
    Device,
    #[error("a FIFO")]
    Fifo,
    /// A tar entry type that is not a dir's content, as `tar` names it.
    #[error("an entry of type {0}")]
    OtherType(String),
    #[error("a dir over another entry")]
    DirOverEntry,
    #[error("an entry twice")]
    Twice,
    /// A hard link to something that is not an earlier regular file of the archive.
    #[error("a hard link to {0}, which is not an earlier file of the archive")]
    HardLink(PathBuf),
}

impl ArchiveError {
    pub(crate) fn damaged(archive: &Path, source: io::Error) -> ArchiveError {
        ArchiveError::Damaged {
            archive: archive.to_path_buf(),
            source,
        }
    }

    /// `entry` ends before its size: `tar` ends such an entry without an error.
    pub(crate) fn cut_short(archive: &Path, entry: &Path) -> ArchiveError {
        ArchiveError::damaged(
            archive,
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("unexpected EOF in {}", entry.display()),
            ),
        )
    }
}

/// The text of `error` and of its sources, each said once, marked as an unexpected end of
/// file when it is one.
fn cause(error: &io::Error) -> String {
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        let text = inner.to_string();
        if !cause.contains(&text) {
            cause = format!("{cause}: {text}");
        }
        source = inner.source();
    }
    // `tar` reports a header cut short as "failed to read entire block", of kind `Other`.
    let eof = error.kind() == io::ErrorKind::UnexpectedEof || cause.contains("entire block");
    if eof && !cause.contains("EOF") {
        cause = format!("{cause} (unexpected EOF)");
    }
    cause
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are what users read and what the e2e tests look for: they are the ones
    /// `buildd cache` printed before the errors had types, word for word.
    #[test]
    fn the_texts_name_the_archive_and_say_what_to_do() {
        let archive = || PathBuf::from("/tmp/app.tar.zst");
        let io = || io::Error::new(io::ErrorKind::PermissionDenied, "denied");
        let cases = [
            (
                ArchiveError::CargoBuilding {
                    dir: "/c/k".into(),
                    step: "import",
                },
                "a cargo is building in /c/k (a shell after `buildd env`?): import when it is done",
            ),
            (
                ArchiveError::NoManifest { archive: archive() },
                "/tmp/app.tar.zst is not a buildd archive (no buildd-manifest.json first): make \
                 one with `buildd cache export`",
            ),
            (
                ArchiveError::ManifestTooBig {
                    archive: archive(),
                    limit: 64,
                },
                "/tmp/app.tar.zst: its manifest is over the limit of 64 bytes: refusing the \
                 archive",
            ),
            (
                ArchiveError::Format {
                    archive: archive(),
                    format: 2,
                    supported: 1,
                },
                "/tmp/app.tar.zst has archive format 2; this buildd reads format 1: export it \
                 again with this version of buildd",
            ),
            (
                ArchiveError::cut_short(&archive(), Path::new("target/debug/a")),
                "cannot read /tmp/app.tar.zst (unexpected EOF in target/debug/a): it is cut \
                 short, damaged or not a buildd archive; copy it again, or make one with \
                 `buildd cache export`",
            ),
            (
                ArchiveError::damaged(&archive(), io::Error::other("failed to read entire block")),
                "cannot read /tmp/app.tar.zst (failed to read entire block (unexpected EOF)): \
                 it is cut short, damaged or not a buildd archive; copy it again, or make one \
                 with `buildd cache export`",
            ),
            (
                ArchiveError::Unpack {
                    archive: archive(),
                    source: io(),
                },
                "failed to unpack /tmp/app.tar.zst: denied",
            ),
            (
                ArchiveError::TooManyEntries {
                    archive: archive(),
                    limit: 60,
                },
                "/tmp/app.tar.zst holds more than 60 entries, the most an import accepts: \
                 refusing the archive; export it again with `buildd cache export`",
            ),
            (
                ArchiveError::OverLimit {
                    archive: archive(),
                    bytes: 8000,
                    block: 4096,
                    what: "the test's limit".into(),
                },
                "/tmp/app.tar.zst unpacks to more than 8000 bytes (each entry counted as at \
                 least one 4096-byte block), the most this import may write: the test's limit. \
                 Free space, raise the budget, or import a smaller archive",
            ),
            (
                ArchiveError::Refused {
                    archive: archive(),
                    entry: "target/debug/x".into(),
                    refusal: Refusal::HardLink("/etc/passwd".into()),
                },
                "/tmp/app.tar.zst holds a hard link to /etc/passwd, which is not an earlier \
                 file of the archive (target/debug/x): refusing the archive; export it again \
                 with `buildd cache export`",
            ),
            (
                ArchiveError::Outside {
                    archive: archive(),
                    entry: "target/../x".into(),
                },
                "/tmp/app.tar.zst holds an entry outside its dir (target/../x): refusing it",
            ),
            (
                ArchiveError::MoveAside {
                    dir: "/c/k".into(),
                    source: io(),
                },
                "failed to move /c/k aside: denied",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
        assert_eq!(
            Refusal::OtherType(format!("{:?}", tar::EntryType::GNULongName)).to_string(),
            "an entry of type GNULongName"
        );
    }
}
