//! The isolated dirs: the names inside them (`layout`), listing, sizes, the budget and gc
//! (`dirs`), seeding a new key dir from a similar one, and archives for export and import.

pub mod archive;
pub(crate) mod archive_error;
pub(crate) mod dirs;
pub(crate) mod layout;
pub(crate) mod seed;
pub(crate) mod unpack;
