//! What a workspace is: its root, toolchain and `cargo metadata` (load), its settings, its
//! build keys (and what `fast_link` adds to them), cargo's dep-info records and the
//! prediction of what an edit affects.

pub(crate) mod depinfo;
pub(crate) mod fast_link;
pub(crate) mod key;
pub(crate) mod load;
pub(crate) mod predict;
pub(crate) mod root_cache;
pub(crate) mod settings;
