//! The connection to the buildd daemon: connecting (starting the daemon unless `noStart`),
//! reading its messages, and noticing when it goes away.
//!
//! Each attempt is numbered (an *epoch*); everything it reports carries the number, so the
//! main loop can drop what a dead connection still had in flight. This module only reports
//! facts as [`LinkEvent`]s: when to retry, what to register and what a message means are the
//! main loop's decisions.

use std::time::Duration;

use buildd_daemon::client::{Client, ClientWriter, ConnectOptions};
use buildd_daemon::paths::Paths;
use buildd_daemon::protocol::ServerMessage;
use tokio::sync::mpsc;

pub(crate) enum LinkEvent {
    /// Connected: requests go through `writer`.
    Connected {
        epoch: u64,
        writer: ClientWriter,
        pid: u32,
    },
    /// No connection (no daemon and `noStart`, or it failed to start).
    Failed { epoch: u64, error: String },
    /// A reply or an event, in the order the daemon sent them.
    Message { epoch: u64, message: ServerMessage },
    /// The daemon closed the connection or died.
    Lost { epoch: u64, error: String },
}

/// Connects in the background after `delay`, then reads until the connection ends.
pub(crate) fn connect<E>(epoch: u64, delay: Duration, no_start: bool, tx: mpsc::UnboundedSender<E>)
where
    E: From<LinkEvent> + Send + 'static,
{
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let paths = match Paths::from_env() {
            Ok(paths) => paths,
            Err(e) => {
                let _ = tx.send(E::from(LinkEvent::Failed {
                    epoch,
                    error: e.to_string(),
                }));
                return;
            }
        };
        let options = ConnectOptions {
            autostart: !no_start,
            client: "lsp",
        };
        let client = match Client::connect(&paths, options).await {
            Ok(client) => client,
            Err(e) => {
                let _ = tx.send(E::from(LinkEvent::Failed {
                    epoch,
                    error: e.to_string(),
                }));
                return;
            }
        };
        let pid = client.daemon.pid;
        let (mut reader, writer) = client.into_split();
        tracing::info!(pid, epoch, "connected to the buildd daemon");
        if tx
            .send(E::from(LinkEvent::Connected { epoch, writer, pid }))
            .is_err()
        {
            return;
        }
        let error = loop {
            match reader.recv().await {
                Ok(Some(message)) => {
                    if tx
                        .send(E::from(LinkEvent::Message { epoch, message }))
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break "the daemon closed the connection".to_owned(),
                Err(e) => break e.to_string(),
            }
        };
        tracing::warn!(pid, epoch, "lost the buildd daemon: {error}");
        let _ = tx.send(E::from(LinkEvent::Lost { epoch, error }));
    });
}

/// How long to wait before the next attempt after `failures` failed ones in a row: quick at
/// first (a daemon replaced by a newer version is back at once), then every 10 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    let ms = 250u64.saturating_mul(1 << failures.min(6));
    Duration::from_millis(ms.min(10_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_slow_down_to_ten_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(5), Duration::from_secs(8));
        assert_eq!(backoff(6), Duration::from_secs(10));
        assert_eq!(backoff(40), Duration::from_secs(10));
    }
}
