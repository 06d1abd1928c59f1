//! The daemon process: the lock that makes it the only one, the Unix socket, and one task per
//! connection that turns lines into [`Event`]s for the dispatcher.
//!
//! **Invariant:** only peers with the daemon's own uid are served. The socket lives in a
//! 0700 directory and is itself 0600, and each accepted connection's peer credentials are
//! checked as well, so that a loosened directory still admits no one else. There is no TCP
//! listener.
//!
//! Connections are capped (see [`limits`]): one past the cap gets a `busy` error line that
//! says what to do, and is closed.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use futures_util::StreamExt;
use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::{FramedRead, LinesCodecError};

use crate::build::orphans::Orphans;
use crate::dispatch::main_loop::{Dispatcher, Event, Subscribers, Subscription};
use crate::home::config::{DaemonConfig, MAX_CONNECTIONS_ENV};
use crate::home::paths::PathsError;
use crate::host::limits::{self, Throttle};
use crate::host::lines::{Lines, NotUtf8};
use crate::project::load;
use crate::project::root_cache::RootCache;
use crate::wire::protocol::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, Request, ServerMessage, binary_version,
    decode_request,
};

/// Messages queued for one client before it counts as not reading.
const OUTBOX: usize = 4096;
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the daemon could not start serving. Each text says what failed; the cause is the
/// error's source, which `buildd daemon` prints after it (`failed to listen on /x: ...`).
#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    Paths(#[from] PathsError),
    #[error("failed to open the lock file {path}")]
    OpenLock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to lock {path}")]
    Lock {
        path: PathBuf,
        source: nix::errno::Errno,
    },
    #[error("failed to remove the stale socket {path}")]
    StaleSocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to listen on {path}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The socket could not be made 0600.
    #[error(transparent)]
    SocketMode(std::io::Error),
    #[error("failed to set up the handlers of SIGTERM and SIGINT")]
    Signals { source: std::io::Error },
}

#[derive(Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The daemon ran and stopped.
    Stopped,
    /// Another daemon holds the lock; this one did nothing.
    AlreadyRunning,
}

/// Runs the daemon until it is asked to stop, a signal arrives, or it is idle.
pub async fn run(config: DaemonConfig) -> Result<RunOutcome, ServerError> {
    let paths = config.paths.clone();
    paths.create_all()?;
    let fd_limit = limits::raise_fd_limit();

    // The lock decides which of several racing daemons serves: the others leave at once,
    // before they touch the socket.
    let lock_path = paths.lock_file();
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|source| ServerError::OpenLock {
            path: lock_path.clone(),
            source,
        })?;
    let _lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(RunOutcome::AlreadyRunning),
        Err((_, source)) => {
            return Err(ServerError::Lock {
                path: lock_path,
                source,
            });
        }
    };

    let socket = paths.socket();
    match fs::remove_file(&socket) {
        Ok(()) => tracing::info!("removed a stale socket at {}", socket.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ServerError::StaleSocket {
                path: socket,
                source,
            });
        }
    }
    // The umask makes the socket 0600 from its creation; the chmod is for the record.
    let old_mask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = UnixListener::bind(&socket);
    nix::sys::stat::umask(old_mask);
    let listener = listener.map_err(|source| ServerError::Listen {
        path: socket.clone(),
        source,
    })?;
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o600))
        .map_err(ServerError::SocketMode)?;
    tracing::info!(
        pid = std::process::id(),
        version = %binary_version(),
        socket = %socket.display(),
        "daemon started"
    );
    // The settings as resolved, so that a user (and a test) sees which of the environment's
    // took effect.
    tracing::info!(
        idle_timeout = %humantime::format_duration(config.idle_timeout),
        debounce = %humantime::format_duration(config.debounce),
        max_frame = config.max_frame,
        budget = ?config.budget,
        watcher = ?config.watcher,
        sccache = ?config.sccache.mode,
        "settings"
    );

    let orphans = Arc::new(Orphans::new(paths.runtime_dir.join("jobs.pgids")));
    let reaped = orphans.reap_leftovers(&paths.targets_dir());
    if reaped > 0 {
        tracing::warn!("killed {reaped} build(s) an earlier daemon left running");
    }

    let (tx, rx) = mpsc::unbounded_channel();
    let subscribers: Subscribers = Arc::new(DashMap::new());
    let roots = Arc::new(RootCache::default());
    let max_connections = limits::connection_cap(config.max_connections, fd_limit);
    tracing::info!(fd_limit, max_connections, "connection limits");
    let accept = tokio::spawn(accept_loop(
        listener,
        tx.clone(),
        subscribers.clone(),
        roots.clone(),
        config.max_frame,
        max_connections,
    ));
    crate::host::signals::forward(tx.clone(), socket.clone())
        .map_err(|source| ServerError::Signals { source })?;
    Dispatcher::new(config, tx, subscribers, orphans, roots)
        .await
        .run(rx)
        .await;

    accept.abort();
    let _ = fs::remove_file(&socket);
    tracing::info!("daemon stopped");
    Ok(RunOutcome::Stopped)
}

async fn accept_loop(
    listener: UnixListener,
    tx: mpsc::UnboundedSender<Event>,
    subscribers: Subscribers,
    roots: Arc<RootCache>,
    max_frame: usize,
    max_connections: usize,
) {
    let next_conn = AtomicU64::new(1);
    let uid = nix::unistd::geteuid().as_raw();
    // A connection holds a permit until it ends.
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut accept_failures = Throttle::default();
    let mut refusals = Throttle::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, accept fails again at once: one line per period.
                if let Some(more) = accept_failures.allow(Instant::now()) {
                    tracing::warn!(
                        "accept failed: {e} ({more} more failure(s) in the last {}s)",
                        limits::LOG_EVERY.as_secs()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        let peer = stream.peer_cred().map(|c| c.uid());
        if peer.as_ref().ok() != Some(&uid) {
            tracing::warn!(conn, ?peer, "refused a peer of another user");
            tokio::spawn(refuse(stream, peer.ok(), uid));
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Some(more) = refusals.allow(Instant::now()) {
                tracing::warn!(
                    conn,
                    "refused a connection: {max_connections} are open ({more} more refused in \
                     the last {}s)",
                    limits::LOG_EVERY.as_secs()
                );
            }
            tokio::spawn(refuse_busy(stream, max_connections));
            continue;
        };
        let (tx, subscribers, roots) = (tx.clone(), subscribers.clone(), roots.clone());
        tokio::spawn(async move {
            serve(stream, conn, tx, subscribers, roots, max_frame).await;
            drop(slot);
        });
    }
}

/// Tells a client past the cap why it is turned away, before hello, so that it neither waits
/// nor takes the daemon for dead.
async fn refuse_busy(mut stream: UnixStream, max_connections: usize) {
    let message = ServerMessage::Error {
        id: None,
        code: ErrorCode::Busy,
        message: format!(
            "too many connections: the daemon serves {max_connections} at once and all are \
             open; close idle clients (editors, `buildd events`, scripts) and try again, or \
             raise {MAX_CONNECTIONS_ENV} when the daemon starts"
        ),
    };
    let _ = write_message(&mut stream, &message).await;
}

async fn refuse(mut stream: UnixStream, peer: Option<u32>, uid: u32) {
    let who = peer.map_or("unknown".to_owned(), |p| p.to_string());
    let message = ServerMessage::Error {
        id: None,
        code: ErrorCode::Forbidden,
        message: format!(
            "refused: this daemon serves only uid {uid} and the peer is uid {who}; run your own \
             daemon as your own user"
        ),
    };
    let _ = write_message(&mut stream, &message).await;
}

async fn write_message(
    writer: &mut (impl AsyncWriteExt + Unpin),
    message: &ServerMessage,
) -> std::io::Result<()> {
    let mut line = serde_json::to_string(message).map_err(std::io::Error::other)?;
    line.push('\n');
    writer.write_all(line.as_bytes()).await
}

async fn write_loop(mut writer: OwnedWriteHalf, mut rx: mpsc::Receiver<ServerMessage>) {
    while let Some(message) = rx.recv().await {
        if write_message(&mut writer, &message).await.is_err() {
            return;
        }
    }
}

async fn serve(
    stream: UnixStream,
    conn: u64,
    tx: mpsc::UnboundedSender<Event>,
    subscribers: Subscribers,
    roots: Arc<RootCache>,
    max_frame: usize,
) {
    let (read, write) = stream.into_split();
    let (out, out_rx) = mpsc::channel(OUTBOX);
    let writer = tokio::spawn(write_loop(write, out_rx));
    let mut frames = FramedRead::new(read, Lines::new(max_frame));

    let Some(same_protocol) = handshake(&mut frames, &out, conn).await else {
        drop(out);
        let _ = writer.await;
        return;
    };
    let _ = tx.send(Event::Connected);
    let connection = Connection {
        conn,
        tx: &tx,
        subscribers: &subscribers,
        roots: &roots,
        out: &out,
    };
    while let Some(frame) = frames.next().await {
        let line = match frame {
            Ok(Ok(line)) => line,
            Ok(Err(NotUtf8)) => {
                connection
                    .error(
                        None,
                        ErrorCode::BadRequest,
                        "invalid message: the line is not UTF-8".into(),
                    )
                    .await;
                continue;
            }
            Err(LinesCodecError::MaxLineLengthExceeded) => {
                connection
                    .error(
                        None,
                        ErrorCode::BadRequest,
                        format!("message longer than {max_frame} bytes; closing the connection"),
                    )
                    .await;
                break;
            }
            Err(LinesCodecError::Io(_)) => break,
        };
        match decode_request(&line) {
            Ok(message) => connection.route(message, same_protocol).await,
            Err(error) => {
                let _ = out.send(*error).await;
            }
        }
    }
    subscribers.remove(&conn);
    let _ = tx.send(Event::Disconnected { conn });
    drop(out);
    let _ = writer.await;
}

/// Reads the client's hello and answers it. Returns whether it speaks this protocol (a
/// client of another one may still ask for shutdown); `None` when the connection is to end
/// (no hello in time, or something else first, which gets an error).
async fn handshake(
    frames: &mut FramedRead<tokio::net::unix::OwnedReadHalf, Lines>,
    out: &mpsc::Sender<ServerMessage>,
    conn: u64,
) -> Option<bool> {
    let Ok(Some(Ok(Ok(line)))) = tokio::time::timeout(HELLO_TIMEOUT, frames.next()).await else {
        return None;
    };
    match decode_request(&line) {
        Ok(ClientMessage {
            id,
            request:
                Request::Hello {
                    protocol,
                    version,
                    client,
                },
        }) => {
            tracing::debug!(conn, %client, %version, protocol, "client connected");
            let _ = out
                .send(ServerMessage::Hello {
                    id,
                    protocol: PROTOCOL_VERSION,
                    version: binary_version(),
                    pid: std::process::id(),
                })
                .await;
            Some(protocol == PROTOCOL_VERSION)
        }
        _ => {
            let _ = out
                .send(reply_error(
                    None,
                    ErrorCode::VersionMismatch,
                    "the first message must be a hello".into(),
                ))
                .await;
            None
        }
    }
}

/// One connection after its hello: where its requests go.
struct Connection<'a> {
    conn: u64,
    tx: &'a mpsc::UnboundedSender<Event>,
    subscribers: &'a Subscribers,
    /// The roots found before, shared by all connections.
    roots: &'a Arc<RootCache>,
    out: &'a mpsc::Sender<ServerMessage>,
}

impl Connection<'_> {
    async fn error(&self, id: Option<u64>, code: ErrorCode, message: String) {
        let _ = self.out.send(reply_error(id, code, message)).await;
    }

    /// Answers what the connection answers itself (`hello` again, `subscribe`, the root of
    /// `register`) and hands the rest to the dispatcher.
    async fn route(&self, message: ClientMessage, same_protocol: bool) {
        let (id, out) = (message.id, self.out);
        if !same_protocol && message.request != Request::Shutdown {
            let text = format!(
                "this daemon speaks protocol {PROTOCOL_VERSION}; only shutdown is accepted"
            );
            return self.error(Some(id), ErrorCode::VersionMismatch, text).await;
        }
        match message.request {
            Request::Hello { .. } => {
                self.error(
                    Some(id),
                    ErrorCode::BadRequest,
                    "hello was already said".into(),
                )
                .await;
            }
            Request::Subscribe { root } => {
                self.subscribers.insert(
                    self.conn,
                    Subscription {
                        root,
                        tx: out.clone(),
                    },
                );
                let _ = out.send(ServerMessage::Ok { id }).await;
            }
            Request::Register {
                path,
                env,
                settings,
            } => match resolve_root(&path, &env, self.roots).await {
                Ok(root) => {
                    let _ = self.tx.send(Event::Register {
                        id,
                        root,
                        env,
                        settings,
                        reply: out.clone(),
                    });
                }
                Err(e) => {
                    self.error(Some(id), ErrorCode::NotAWorkspace, e.to_string())
                        .await;
                }
            },
            request => {
                let _ = self.tx.send(Event::Request {
                    conn: self.conn,
                    id,
                    request,
                    reply: out.clone(),
                });
            }
        }
    }
}

/// Why a `register` names no workspace: answered as `not_a_workspace`.
#[derive(Debug, Error)]
enum RegisterError {
    #[error("cannot register {path}: {source}")]
    Resolve {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No `Cargo.toml` in the dir or above it, or one that is not a regular file.
    #[error(transparent)]
    NoWorkspace(load::LoadError),
}

async fn resolve_root(
    path: &std::path::Path,
    env: &BTreeMap<String, String>,
    roots: &Arc<RootCache>,
) -> Result<PathBuf, RegisterError> {
    let path = fs::canonicalize(path).map_err(|source| RegisterError::Resolve {
        path: path.to_path_buf(),
        source,
    })?;
    load::locate_root(&path, env, roots)
        .await
        .map_err(RegisterError::NoWorkspace)
}

fn reply_error(id: Option<u64>, code: ErrorCode, message: String) -> ServerMessage {
    ServerMessage::Error { id, code, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::config::RawDaemonConfig;
    use crate::home::paths::Paths;

    /// The error and its sources as `buildd daemon` prints them (anyhow's `{:#}`).
    fn chain(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(inner) = source {
            text = format!("{text}: {inner}");
            source = inner.source();
        }
        text
    }

    #[tokio::test]
    async fn a_lock_file_that_cannot_be_opened_is_named_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        paths.create_all().unwrap();
        fs::create_dir(paths.lock_file()).unwrap();
        let config = RawDaemonConfig::default().resolve(paths.clone()).unwrap();
        let err = run(config).await.unwrap_err();
        assert!(matches!(err, ServerError::OpenLock { .. }), "{err:?}");
        assert_eq!(
            chain(&err),
            format!(
                "failed to open the lock file {}: Is a directory (os error 21)",
                paths.lock_file().display()
            )
        );
        assert!(!paths.socket().exists(), "no socket before the lock");
    }
}
