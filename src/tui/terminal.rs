//! The terminal while the view is open: raw mode and the alternate screen, given back on
//! every way out. Quitting, an error and a stop signal (SIGTERM, SIGHUP: the watch loop
//! ends and drops the [`Screen`]) restore it through `Drop`; a panic through the hook that
//! `ratatui::try_init` installs, which restores the terminal before the panic is printed.
//! SIGKILL cannot be caught: `reset` puts such a terminal right.
//!
//! The only module of the view that touches the real terminal.

use std::io;
use std::time::Instant;

use ratatui::DefaultTerminal;

use crate::tui::model::View;
use crate::tui::render::{Theme, draw};

pub(crate) struct Screen {
    terminal: DefaultTerminal,
}

impl Screen {
    /// Switches the terminal to the view: raw mode, the alternate screen, no cursor.
    pub(crate) fn open() -> io::Result<Screen> {
        let terminal = ratatui::try_init()?;
        Ok(Screen { terminal })
    }

    /// Draws the view at the terminal's current size (a resize is picked up here), and
    /// returns how far the screen shown can scroll.
    pub(crate) fn draw(&mut self, view: &View, now: Instant, theme: Theme) -> io::Result<usize> {
        let mut max_scroll = 0;
        self.terminal
            .draw(|frame| max_scroll = draw(frame, view, now, theme))?;
        Ok(max_scroll)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.terminal.show_cursor();
        ratatui::restore();
    }
}
