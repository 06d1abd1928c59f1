//! The buildd engine: one per-user daemon that watches cargo workspaces and keeps an
//! isolated target dir of each warm, and the client side of its protocol.
//!
//! This crate knows nothing about LSP; the `lsp` crate turns its events into LSP messages.
//! Its folders are layers (`home`, `wire` and `watch`, `build` and `tools`, `project`, `cache`,
//! `dispatch`, `host`, from the bottom up); a module imports only from the layers below its
//! own, which `daemon/tests/layers.rs` checks. See `docs/ARCHITECTURE.md` for the map.

mod build;
mod cache;
mod dispatch;
mod home;
mod host;
mod project;
mod tools;
mod watch;
mod wire;

// The crate's public face stays flat: the binary, `lsp` and `bench` use these paths.
pub use build::plan::needs_no_daemon;
pub use build::{process_group, rustc_info};
pub use cache::archive;
pub use cache::rustc_info as rustc_info_of;
pub use home::{config, dist_config, logging, paths};
pub use host::server;
pub use project::key::cargo_args;
pub use wire::{client, protocol, roots, stamped};
