//! Day mode (`--day`): the commands a user runs between two edits (clippy, a run of the
//! binary, a library's tests, a release build), plain cargo against the warm `buildd cargo`
//! once the daemon has learned their shapes. `script` parses the commands, `run` measures
//! them, `report` turns the rounds into the table of both sides and the summary line.

pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod script;
