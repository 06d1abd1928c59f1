//! The `buildd` binary: the CLI, the daemon (`buildd daemon`) and the LSP sidecar
//! (`buildd lsp`).

// First: its printing macros are used by every module below.
#[macro_use]
mod out;

mod cli;
mod commands;
mod connect;
mod exit;
mod lease;
mod render;
mod stop_signal;
mod supervise;
mod test_run;
mod tui;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            errln!("buildd: failed to start the async runtime: {e}");
            std::process::exit(exit::FAILURE);
        }
    };
    let code = runtime.block_on(commands::run(cli));
    // Dropping the runtime would wait for blocking tasks (a reader of stdin, a daemon's
    // reaper thread); the command is over, so exit now.
    std::process::exit(code);
}
