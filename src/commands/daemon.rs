//! `buildd daemon` (the daemon in the foreground) and `buildd stop`.

use std::io::IsTerminal;
use std::time::Duration;

use buildd_daemon::client::{Client, ClientError, ConnectOptions};
use buildd_daemon::config::RawDaemonConfig;
use buildd_daemon::paths::Paths;
use buildd_daemon::server::{self, RunOutcome};

use crate::exit;

pub(crate) async fn run(idle_timeout: Duration, debounce: Duration) -> anyhow::Result<i32> {
    let paths = Paths::from_env()?;
    paths.create_all()?;
    let config = RawDaemonConfig {
        idle_timeout: Some(idle_timeout),
        debounce: Some(debounce),
    }
    .resolve(paths.clone())
    .map_err(anyhow::Error::msg)?;
    // A daemon started by a client has its stderr in a file; the log file is enough there.
    let _guard = buildd_daemon::logging::init(&paths.log_dir(), std::io::stderr().is_terminal())
        .map_err(anyhow::Error::msg)?;
    match server::run(config).await? {
        RunOutcome::Stopped => Ok(exit::SUCCESS),
        RunOutcome::AlreadyRunning => {
            errln!(
                "buildd: a daemon is already running on {}",
                paths.socket().display()
            );
            Ok(exit::SUCCESS)
        }
    }
}

pub(crate) async fn stop() -> anyhow::Result<i32> {
    let paths = Paths::from_env()?;
    let options = ConnectOptions {
        autostart: false,
        client: "cli",
    };
    match Client::connect(&paths, options).await {
        Ok(client) => {
            let pid = client.daemon.pid;
            client.shutdown_and_wait(&paths.socket()).await?;
            outln!("stopped the buildd daemon (pid {pid})")?;
            Ok(exit::SUCCESS)
        }
        Err(ClientError::NotRunning { .. }) => {
            outln!("the buildd daemon is not running")?;
            Ok(exit::SUCCESS)
        }
        Err(e) => Err(e.into()),
    }
}
