//! One module per subcommand.

mod cache;
mod cargo;
mod daemon;
mod env;
mod events;
mod jobs;
mod lsp;
mod status;
mod wait;
mod watch;

use crate::cli::{Cli, Command};
use crate::connect::Session;
use crate::exit;

/// Runs a command and returns the process's exit code. Errors are printed here, once.
pub(crate) async fn run(cli: Cli) -> i32 {
    let session = Session {
        autostart: !cli.no_start,
    };
    let result = match cli.command {
        Command::Cargo { args } => cargo::run(&session, args).await,
        Command::Env { path } => env::run(&session, path).await,
        Command::Watch { path, options } => watch::run(&session, path, options).await,
        Command::Events { path, json } => events::run(&session, path, json).await,
        Command::Wait { path, timeout } => wait::run(&session, path, timeout).await,
        Command::Status { path, json } => status::run(&session, path, json).await,
        Command::Stop => daemon::stop().await,
        Command::Lsp { stdio: _ } => lsp::run(&session).await,
        Command::Cache { command } => cache::run(&session, command).await,
        Command::Jobs { command } => jobs::run(&session, command).await,
        Command::Daemon {
            idle_timeout,
            debounce,
        } => daemon::run(idle_timeout, debounce).await,
    };
    match result {
        Ok(code) => code,
        // The reader of stdout went away (`buildd status | head -1`): nothing is wrong.
        Err(error) if error.downcast_ref::<crate::out::StdoutClosed>().is_some() => exit::SUCCESS,
        Err(error) => {
            errln!("buildd: {}", crate::out::error_text(&error));
            exit::for_error(&error)
        }
    }
}
