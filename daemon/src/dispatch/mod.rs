//! The dispatcher: the one loop that owns the daemon's state (`main_loop`), the state it keeps
//! per workspace, and which tools each workspace uses.
//!
//! The top of the engine with `host`: it may use every layer below; nothing below uses it.

pub(crate) mod main_loop;
pub(crate) mod reports;
pub(crate) mod schedule;
pub(crate) mod tools;
pub(crate) mod workspace;
