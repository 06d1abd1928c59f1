//! The full-screen view of `buildd watch` on a terminal: the workspace's state and running
//! job, its jobs as tabs, errors first and then warnings, keys to rebuild, cancel, run the
//! tests and quit.
//!
//! Layers, imports one way: `wrap` (text to rows) and `model` (the state, pure) know nothing
//! of the others; `keys` maps key presses to the model's actions; `render` draws a model
//! into a ratatui frame; `terminal` is the only one that touches the real terminal. The
//! loop that feeds the model from the daemon lives with the command
//! (`commands/watch/view.rs`); nothing here talks to the daemon.

mod keys;
mod model;
mod render;
mod terminal;
mod wrap;

#[cfg(test)]
mod tests;

pub(crate) use keys::action;
pub(crate) use model::{Effect, View};
pub(crate) use render::Theme;
pub(crate) use terminal::Screen;
