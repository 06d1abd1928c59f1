//! Printing for the CLI that survives a closed pipe (`buildd status | head -1`).
//!
//! Rust ignores SIGPIPE, so a write to a closed stdout is an `EPIPE` error, and `println!`
//! panics on it. The CLI writes through these macros instead: [`outln!`] and [`out!`] return
//! an error that the top level recognises ([`StdoutClosed`]) and ends the command on quietly
//! with success, as ripgrep does (a classic Unix program would die of SIGPIPE without a
//! word). Only stdout's own EPIPE counts: a broken connection to the daemon stays an error.
//! [`errln!`] writes to stderr and ignores a failure, since there is nowhere left to say it.

use std::io;

/// Stdout was closed by its reader: the command ends quietly.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed")]
pub(crate) struct StdoutClosed;

/// Turns a failed write to stdout into an error for `?`: [`StdoutClosed`] for a closed pipe.
pub(crate) fn stdout_error(error: io::Error) -> anyhow::Error {
    if error.kind() == io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::Error::new(error).context("failed to write to stdout")
    }
}

/// An error and its causes on one line, as `{:#}` prints them, without a cause its message
/// already says: an error type that prints its source itself (`cannot use x: No such file`)
/// would otherwise show it twice.
pub(crate) fn error_text(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// `println!` that returns an `anyhow::Result<()>` instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err($crate::out::stdout_error)
    }};
}

/// `print!` that returns an `anyhow::Result<()>` instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        write!(stdout, $($arg)*)
            .and_then(|()| stdout.flush())
            .map_err($crate::out::stdout_error)
    }};
}

/// `eprintln!` that never panics: a failure to write to stderr is ignored.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
