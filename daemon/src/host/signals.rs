//! SIGTERM and SIGINT: they become [`Event::Terminate`] for the dispatcher, and they stop the
//! daemon whatever else is going on. A second signal, or a shutdown that takes longer than
//! [`FORCED_EXIT_AFTER`], ends the process at once.
//!
//! The signals are read on a thread of their own, not in a task: a task runs only while
//! tokio's workers and its driver are free, and a signal must work when they are not (a
//! worker stuck in a blocking read once made the daemon ignore SIGTERM). The handler only
//! writes a byte into a pipe, which is async-signal-safe; the thread reads it.

use std::fs;
use std::io::Read;
use std::os::fd::IntoRawFd;
use std::path::PathBuf;
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::sync::mpsc;

use crate::dispatch::main_loop::Event;

/// How long a signalled daemon may take to stop before it exits without finishing: its
/// shutdown waits up to 5 s for jobs and up to 10 s for sccache's server to stop.
const FORCED_EXIT_AFTER: Duration = Duration::from_secs(20);
/// The exit code of a daemon that had to leave without finishing its shutdown.
const FORCED_EXIT_CODE: i32 = 1;

/// Installs the handlers and starts the thread. `socket` is removed on a forced exit, so that
/// clients start a new daemon rather than wait on a dead one. Jobs left running then are
/// killed by the next daemon (see `orphans.rs`).
pub(crate) fn forward(tx: mpsc::UnboundedSender<Event>, socket: PathBuf) -> std::io::Result<()> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // A flood of signals must never block the handler on a full pipe.
    fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    // The write end lives as long as the process: the handlers use it until then.
    let write = write.into_raw_fd();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the action only calls write(2), which is async-signal-safe, on a
        // descriptor that is never closed.
        unsafe {
            signal_hook_registry::register(signal, move || {
                let byte = signal as u8;
                let _ = libc::write(write, (&raw const byte).cast(), 1);
            })
        }?;
    }
    let mut pipe = fs::File::from(read);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            if pipe.read_exact(&mut byte).is_err() {
                return;
            }
            tracing::info!("signal received; shutting down");
            let _ = tx.send(Event::Terminate);
            let (second, wait) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                if pipe.read_exact(&mut byte).is_ok() {
                    let _ = second.send(());
                }
            });
            let why = match wait.recv_timeout(FORCED_EXIT_AFTER) {
                Ok(()) => "a second signal came".to_owned(),
                Err(_) => format!(
                    "the shutdown did not finish within {}s",
                    FORCED_EXIT_AFTER.as_secs()
                ),
            };
            // The log is written by a thread that may not get to it: say it on stderr too.
            tracing::warn!("{why}; exiting without finishing it");
            eprintln!("buildd daemon: {why}; exiting without finishing the shutdown");
            let _ = fs::remove_file(&socket);
            std::process::exit(FORCED_EXIT_CODE);
        })?;
    Ok(())
}
