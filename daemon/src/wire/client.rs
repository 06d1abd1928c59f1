//! The client side of the protocol, for the CLI and the LSP sidecar: connecting, the
//! handshake, starting the daemon when it is not running, and replacing a daemon of another
//! version.
//!
//! Starting is race-safe without coordination between clients: each client that finds no
//! daemon spawns one, the daemons race for the lock, and the losers exit before touching the
//! socket, so every client ends up talking to the one winner.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use crate::home::paths::{Paths, PathsError};
use crate::wire::protocol::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, Request, ServerMessage, binary_version,
};

/// How long a client waits for a daemon it started to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// A client starts another daemon if the one it started has not answered by then.
const RESPAWN_AFTER: Duration = Duration::from_secs(3);
/// Replies can carry a whole status with many diagnostics.
const MAX_FRAME: usize = 64 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("the buildd daemon is not running (no socket at {socket})")]
    NotRunning { socket: PathBuf },
    #[error("cannot reach the buildd daemon at {socket}: {source}")]
    Unreachable { socket: PathBuf, source: io::Error },
    #[error("the buildd daemon refused the connection: {0}")]
    Refused(String),
    #[error("the buildd daemon did not start within {}s; see {log}", START_TIMEOUT.as_secs())]
    StartTimeout { log: PathBuf },
    #[error("failed to start the buildd daemon: {0}")]
    Start(String),
    #[error(transparent)]
    Paths(#[from] PathsError),
    #[error("lost the connection to the buildd daemon: {0}")]
    Io(#[from] io::Error),
    #[error("the buildd daemon sent something this client cannot read: {0}")]
    Protocol(String),
    #[error("{message}")]
    Daemon { code: ErrorCode, message: String },
}

#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// Start the daemon when none is running (and replace one of another version).
    pub autostart: bool,
    /// What this client is, for the daemon's log.
    pub client: &'static str,
}

/// The daemon's side of the handshake.
#[derive(Debug, Clone)]
pub struct DaemonHello {
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
}

pub struct Client {
    reader: ClientReader,
    writer: ClientWriter,
    pub daemon: DaemonHello,
}

pub struct ClientReader {
    frames: FramedRead<OwnedReadHalf, LinesCodec>,
}

pub struct ClientWriter {
    write: OwnedWriteHalf,
    next_id: u64,
}

impl ClientReader {
    /// The next message, or `None` when the daemon closed the connection.
    pub async fn recv(&mut self) -> Result<Option<ServerMessage>, ClientError> {
        match self.frames.next().await {
            None => Ok(None),
            Some(Err(LinesCodecError::Io(e))) => Err(ClientError::Io(e)),
            Some(Err(e)) => Err(ClientError::Protocol(e.to_string())),
            Some(Ok(line)) => serde_json::from_str(&line)
                .map(Some)
                .map_err(|e| ClientError::Protocol(format!("{e}: {line}"))),
        }
    }
}

impl ClientWriter {
    /// Sends a request and returns its id.
    pub async fn send(&mut self, request: Request) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_string(&ClientMessage { id, request })
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push('\n');
        self.write.write_all(line.as_bytes()).await?;
        Ok(id)
    }
}

impl Client {
    /// Connects to the user's daemon, starting it (or replacing one of another version)
    /// when `options.autostart` is set.
    pub async fn connect(paths: &Paths, options: ConnectOptions) -> Result<Client, ClientError> {
        let socket = paths.socket();
        let deadline = Instant::now() + START_TIMEOUT;
        let mut spawned: Option<Instant> = None;
        loop {
            match Client::try_connect(&socket, options.client).await {
                Ok(client) if client.daemon.version == binary_version() => return Ok(client),
                Ok(client) => {
                    if !options.autostart {
                        return Ok(client);
                    }
                    tracing::info!(
                        theirs = %client.daemon.version,
                        ours = %binary_version(),
                        "replacing a daemon of another version"
                    );
                    client.shutdown_and_wait(&socket).await?;
                }
                Err(ClientError::NotRunning { .. }) if options.autostart => {
                    if spawned.is_none_or(|at| at.elapsed() > RESPAWN_AFTER) {
                        spawn_daemon(paths)?;
                        spawned = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
            if Instant::now() > deadline {
                return Err(ClientError::StartTimeout {
                    log: paths.daemon_stderr(),
                });
            }
        }
    }

    async fn try_connect(socket: &Path, client: &str) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    ClientError::NotRunning {
                        socket: socket.to_path_buf(),
                    }
                }
                _ => ClientError::Unreachable {
                    socket: socket.to_path_buf(),
                    source: e,
                },
            })?;
        let (read, write) = stream.into_split();
        let mut reader = ClientReader {
            frames: FramedRead::new(read, LinesCodec::new_with_max_length(MAX_FRAME)),
        };
        let mut writer = ClientWriter { write, next_id: 1 };
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            version: binary_version(),
            client: client.to_owned(),
        };
        // A daemon that refuses the peer writes why and closes, possibly before the hello is
        // written: read its answer whether or not the write went through. One that is
        // shutting down closes without a word: that is "not running".
        let _ = writer.send(hello).await;
        match reader.recv().await {
            Ok(Some(ServerMessage::Hello {
                protocol,
                version,
                pid,
                ..
            })) => Ok(Client {
                reader,
                writer,
                daemon: DaemonHello {
                    version,
                    protocol,
                    pid,
                },
            }),
            Ok(Some(ServerMessage::Error {
                code: ErrorCode::Forbidden | ErrorCode::Busy,
                message,
                ..
            })) => Err(ClientError::Refused(message)),
            Ok(Some(other)) => Err(ClientError::Protocol(format!(
                "expected a hello, got {other:?}"
            ))),
            Ok(None) | Err(ClientError::Io(_)) => Err(ClientError::NotRunning {
                socket: socket.to_path_buf(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Asks the daemon to stop and waits until its socket no longer answers.
    pub async fn shutdown_and_wait(mut self, socket: &Path) -> Result<(), ClientError> {
        let _ = self.call(Request::Shutdown).await;
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            match UnixStream::connect(socket).await {
                Err(_) => return Ok(()),
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        Err(ClientError::Start(format!(
            "the daemon (pid {}) did not stop within {}s",
            self.daemon.pid,
            START_TIMEOUT.as_secs()
        )))
    }

    pub async fn send(&mut self, request: Request) -> Result<u64, ClientError> {
        self.writer.send(request).await
    }

    pub async fn recv(&mut self) -> Result<Option<ServerMessage>, ClientError> {
        self.reader.recv().await
    }

    /// Sends a request and waits for its reply, passing events that arrive meanwhile to
    /// `on_event`. An error reply becomes [`ClientError::Daemon`].
    pub async fn call_with(
        &mut self,
        request: Request,
        mut on_event: impl FnMut(ServerMessage),
    ) -> Result<ServerMessage, ClientError> {
        let id = self.send(request).await?;
        loop {
            match self.recv().await? {
                None => {
                    return Err(ClientError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the daemon closed the connection",
                    )));
                }
                Some(ServerMessage::Error {
                    code,
                    message,
                    id: Some(reply),
                }) if reply == id => {
                    return Err(ClientError::Daemon { code, message });
                }
                Some(message) if message.reply_id() == Some(id) => return Ok(message),
                Some(ServerMessage::Error {
                    id: None,
                    code,
                    message,
                }) => {
                    return Err(ClientError::Daemon { code, message });
                }
                Some(other) => on_event(other),
            }
        }
    }

    pub async fn call(&mut self, request: Request) -> Result<ServerMessage, ClientError> {
        self.call_with(request, |_| {}).await
    }

    pub fn into_split(self) -> (ClientReader, ClientWriter) {
        (self.reader, self.writer)
    }
}

/// Starts `buildd daemon` detached from this process: its own session, no terminal, stderr
/// into the state dir.
fn spawn_daemon(paths: &Paths) -> Result<(), ClientError> {
    paths.create_all()?;
    let exe = std::env::current_exe()
        .map_err(|e| ClientError::Start(format!("cannot find the buildd binary: {e}")))?;
    let stderr_path = paths.daemon_stderr();
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&stderr_path)
        .map_err(|e| ClientError::Start(format!("cannot open {}: {e}", stderr_path.display())))?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent's.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
    }
    let mut child = command
        .spawn()
        .map_err(|e| ClientError::Start(format!("failed to run `buildd daemon`: {e}")))?;
    // Reap the daemon whenever it exits, so that a long-lived client (the LSP sidecar)
    // keeps no zombie.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// This process's environment, for [`Request::Register`].
pub fn current_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}
