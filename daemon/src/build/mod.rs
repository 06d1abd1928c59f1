//! Running cargo: the job definitions (default, configured, learned), a job's plan of
//! stages (with `build` and `test` merged into one invocation where that leaves the same
//! units), the check of what a plain `cargo build` at the root selects, the job itself, one cargo command in its own
//! process group, the diagnostics it prints, the early run of a saved crate's own compiler
//! command, the record of process groups left behind, and cargo's cache of the compiler's
//! answers kept per kind of command.
//!
//! It knows cargo and processes, not workspaces, watchers or the cache.

pub(crate) mod cargo_run;
pub(crate) mod diagnostics;
pub(crate) mod early;
pub(crate) mod invocation;
pub(crate) mod job;
pub(crate) mod jobs;
pub(crate) mod learned;
pub(crate) mod merge;
pub(crate) mod orphans;
pub(crate) mod plan;
pub(crate) mod process;
pub mod process_group;
pub mod rustc_info;
pub(crate) mod selection;
