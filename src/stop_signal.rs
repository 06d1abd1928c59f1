//! The signals that stop a long-running command (`buildd watch`, `buildd events`): Ctrl-C,
//! `kill` and a closed terminal.
//!
//! The listeners are created once, when the command starts, and live as long as it does. A
//! `tokio::signal::ctrl_c()` made anew on each turn of a loop loses a signal that arrives
//! while the loop is busy elsewhere (running the tests, restarting the program): nothing is
//! listening then, and the command would never stop.

use tokio::signal::unix::{Signal, SignalKind, signal};

pub(crate) struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl StopSignals {
    /// Starts listening; from here on these signals no longer kill the process but are kept
    /// until [`StopSignals::recv`] takes them.
    pub(crate) fn listen() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Resolves when one of the signals arrived (at once if one arrived since the last call).
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}
