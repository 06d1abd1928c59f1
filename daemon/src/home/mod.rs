//! The daemon's own home: where its dirs are (`BUILDD_HOME` or the platform dirs), its
//! resolved configuration (`config.toml`, flags, environment) and its log.
//!
//! The bottom layer: it imports nothing from the rest of the crate.

pub mod config;
pub mod dist_config;
pub mod logging;
pub mod paths;
pub(crate) mod regular_file;
pub(crate) mod replace_file;
pub(crate) mod values;
