//! The isolated dirs: the names inside them (`layout`), listing, sizes, the budget and gc
//! (`dirs`), seeding a new key dir from a similar one, archives for export and import, and
//! where buildd keeps its copies of cargo's cache of the compiler's answers.

pub mod archive;
pub(crate) mod archive_error;
pub(crate) mod dirs;
pub(crate) mod layout;
pub(crate) mod seed;
pub(crate) mod unpack;

use std::path::Path;

use crate::build::rustc_info::RustcInfo;

/// cargo's cache of the compiler's answers in the key dir `dir` (which is cargo's build dir),
/// with buildd's copies in the dir's state.
pub fn rustc_info(dir: &Path) -> RustcInfo {
    RustcInfo::new(
        dir,
        dir.join(layout::STATE_DIR).join(layout::RUSTC_INFO_DIR),
    )
}
