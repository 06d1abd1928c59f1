//! End-to-end tests of the real `buildd` binary with the real cargo on fixture workspaces.

mod daemon_lifecycle;
mod pipeline;
mod support;
mod warm;
