//! End-to-end tests of the real `buildd` binary with the real cargo on fixture workspaces.

mod daemon_lifecycle;
mod lsp;
mod lsp_client;
mod neovim;
mod pipeline;
mod support;
mod warm;
mod watch;
