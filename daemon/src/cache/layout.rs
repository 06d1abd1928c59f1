//! The names of everything buildd keeps in its isolated dirs, in one leaf module so that
//! the seeder, the exporter, gc and the dispatcher cannot disagree about them.
//!
//! This module holds constants only and imports nothing from the crate.

/// The file in each key dir that describes its key (and workspace).
pub(crate) const KEY_FILE: &str = "buildd-key.json";
/// buildd's own per-dir state (the last-used stamp, the linker's log and captures); never
/// seeded or exported.
pub(crate) const STATE_DIR: &str = ".buildd";
/// In [`STATE_DIR`]: the stamp whose mtime is the dir's last use.
pub(crate) const USED_FILE: &str = "used";
/// In [`STATE_DIR`]: the workspace root the dir was built for.
pub(crate) const WORKSPACE_FILE: &str = "workspace";
/// In [`STATE_DIR`]: buildd's copies of cargo's `.rustc_info.json`, one per kind of command
/// (`build/rustc_info.rs`).
pub(crate) const RUSTC_INFO_DIR: &str = "rustc-info";

/// Entries of the dir live under this prefix in an exported archive.
pub(crate) const ARCHIVE_PREFIX: &str = "target";
/// The first entry of an exported archive: what the archive says about itself.
pub(crate) const ARCHIVE_MANIFEST: &str = "buildd-manifest.json";
