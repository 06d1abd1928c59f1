//! End-to-end tests of the real `buildd` binary with the real cargo on fixture workspaces.

mod bad_input;
mod blocking;
mod cache;
mod daemon_lifecycle;
mod early;
mod edges;
mod env_settings;
mod fast_link;
mod faults;
mod floods;
mod home_dir;
mod jobs;
mod lsp;
mod lsp_client;
mod lsp_fixes;
mod neovim;
mod pipeline;
mod procs;
mod sccache_dist;
mod support;
mod tools;
mod warm;
mod watch;
mod watch_restart;
mod watch_view;
mod watcher;
