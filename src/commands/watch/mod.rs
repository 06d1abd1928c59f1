//! `buildd watch`: follow a workspace's jobs in the terminal until Ctrl-C (the daemon keeps
//! running afterwards), and optionally act after each successful build:
//!
//! - `--test` runs the workspace's tests on the warm dir and reports the counts;
//! - `--run` keeps a binary of the workspace running, restarting it when a build changed it
//!   (and, with `--test`, only when the tests pass); a failed build keeps the old one.
//!
//! On a terminal it opens the full-screen view (`view`, drawn by `crate::tui`); with
//! `--plain`, or when stdout is not a terminal, it prints lines (`lines`). What it does after
//! a job is the same for both (`after`), and is reported to the daemon, so that
//! `buildd status`, editors and `buildd events` see test results and restarts.

mod after;
mod command;
mod lines;
mod view;

pub(crate) use command::run;
