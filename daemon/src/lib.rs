//! The buildd engine: one per-user daemon that watches cargo workspaces and keeps an
//! isolated target dir of each warm, and the client side of its protocol.
//!
//! This crate knows nothing about LSP; the `lsp` crate turns its events into LSP messages.
//! See `docs/ARCHITECTURE.md` for the map.

mod cargo_run;
pub mod client;
pub mod config;
mod depinfo;
mod diagnostics;
mod job;
mod key;
mod load;
pub mod logging;
mod main_loop;
mod orphans;
pub mod paths;
mod plan;
mod predict;
pub mod protocol;
pub mod server;
mod settings;
mod watch;
mod workspace;

pub use key::cargo_env;
