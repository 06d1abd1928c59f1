//! The client side of the protocol, for the CLI and the LSP sidecar: connecting, the
//! handshake, starting the daemon when it is not running, and replacing a daemon of another
//! version.
//!
//! Starting is race-safe without coordination between clients: each client that finds no
//! daemon spawns one, the daemons race for the lock, and the losers exit before touching the
//! socket, so every client ends up talking to the one winner.
//!
//! **Invariant:** a client uses nothing a daemon sends (the environment it hands out for
//! cargo is code execution) unless the home passed [`Paths::check`] and the process serving
//! the socket runs as the client's own uid (`SO_PEERCRED`). A client never waits forever on
//! a daemon that stopped answering: the hello and every reply but `acquire`'s have a time
//! limit (see [`reply_timeout`]), and the error says what to do.

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

use crate::home::paths::{HOME_ENV, Paths, PathsError};
use crate::wire::protocol::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, Request, ServerMessage, binary_version,
};

/// How long a client waits for a daemon it started to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// A client starts another daemon if the one it started has not answered by then.
const RESPAWN_AFTER: Duration = Duration::from_secs(3);
/// Replies can carry a whole status with many diagnostics.
const MAX_FRAME: usize = 64 * 1024 * 1024;
/// How long a daemon may take to answer the hello: it does so from the connection's own
/// task at once, so this is long only for a machine under heavy load.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a daemon may take to answer a request it answers from its loop right away
/// (`status`, `saved`, `shutdown`...): far longer than it ever takes.
const QUICK_REPLY: Duration = Duration::from_secs(60);
/// How long a request whose reply waits for work (a load with `cargo metadata`, which has
/// its own limit of 5 minutes, and seeding; the cache's sizes and deletions) may take.
const SLOW_REPLY: Duration = Duration::from_secs(30 * 60);

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
    /// The daemon this client started exited before it served the socket: a bad setting.
    #[error("the buildd daemon failed to start: {cause} (see {log})")]
    StartFailed { cause: String, log: PathBuf },
    #[error(transparent)]
    Paths(#[from] PathsError),
    #[error("lost the connection to the buildd daemon: {0}")]
    Io(#[from] io::Error),
    #[error("the buildd daemon sent something this client cannot read: {0}")]
    Protocol(String),
    #[error("{message}")]
    Daemon { code: ErrorCode, message: String },
    #[error(
        "the socket {socket} is served by uid {owner}, not by this user (uid {uid}): buildd \
         refuses to use a daemon of another user; stop that process, or set {HOME_ENV} to a \
         directory of your own"
    )]
    ForeignDaemon {
        socket: PathBuf,
        owner: u32,
        uid: u32,
    },
    #[error(
        "the buildd daemon at {socket} {what} within {}s: it may be stuck; see its log in \
         {log}, then stop it (`buildd stop`, or kill the pid the log names) and try again",
        limit.as_secs()
    )]
    NoAnswer {
        socket: PathBuf,
        what: String,
        limit: Duration,
        log: PathBuf,
    },
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
    /// For the message of a reply that does not come.
    socket: PathBuf,
    log_dir: PathBuf,
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
        // Before anything is read from the home, or a daemon started there.
        paths.check()?;
        let socket = paths.socket();
        let deadline = Instant::now() + START_TIMEOUT;
        let mut spawned: Option<Instant> = None;
        let mut exits = Vec::new();
        loop {
            match Client::try_connect(paths, options.client).await {
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
                    // A daemon that lost the race to another exits with success; one that
                    // failed (a bad value in a BUILDD_ variable or in config.toml) said why
                    // on its stderr, and waiting longer would not help.
                    if exits
                        .iter()
                        .any(|exit: &std::sync::mpsc::Receiver<bool>| exit.try_recv() == Ok(false))
                    {
                        return Err(ClientError::StartFailed {
                            cause: start_failure(&paths.daemon_stderr()),
                            log: paths.daemon_stderr(),
                        });
                    }
                    if spawned.is_none_or(|at| at.elapsed() > RESPAWN_AFTER) {
                        exits.push(spawn_daemon(paths)?);
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

    async fn try_connect(paths: &Paths, client: &str) -> Result<Client, ClientError> {
        let socket = &paths.socket();
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
        check_peer(&stream, socket)?;
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
        let answer = tokio::time::timeout(HELLO_TIMEOUT, reader.recv())
            .await
            .map_err(|_| ClientError::NoAnswer {
                socket: socket.to_path_buf(),
                what: "accepted the connection but did not say hello".into(),
                limit: HELLO_TIMEOUT,
                log: paths.log_dir(),
            })?;
        match answer {
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
                socket: socket.to_path_buf(),
                log_dir: paths.log_dir(),
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
        // A daemon that takes the request but never answers is waited for no longer than
        // one that does not exit.
        let deadline = Instant::now() + START_TIMEOUT;
        let _ = tokio::time::timeout(START_TIMEOUT, self.call(Request::Shutdown)).await;
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
        on_event: impl FnMut(ServerMessage),
    ) -> Result<ServerMessage, ClientError> {
        let Some(limit) = reply_timeout(&request) else {
            return self.call_unbounded(request, on_event).await;
        };
        let what = format!("did not answer `{}`", request_name(&request));
        match tokio::time::timeout(limit, self.call_unbounded(request, on_event)).await {
            Ok(reply) => reply,
            Err(_) => Err(ClientError::NoAnswer {
                socket: self.socket.clone(),
                what,
                limit,
                log: self.log_dir.clone(),
            }),
        }
    }

    async fn call_unbounded(
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

/// How long a client waits for the reply to `request`; `None`: as long as it takes. An
/// `acquire` waits, by design, for the daemon's running stage to finish, however long the
/// build takes (the job has its own timeout); a caller that must not wait forever bounds it.
pub fn reply_timeout(request: &Request) -> Option<Duration> {
    match request {
        Request::Acquire { .. } => None,
        Request::Register { .. }
        | Request::CacheList
        | Request::CacheGc
        | Request::CacheClear { .. } => Some(SLOW_REPLY),
        _ => Some(QUICK_REPLY),
    }
}

/// A request's `type` on the wire, for messages.
fn request_name(request: &Request) -> String {
    serde_json::to_value(request)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "the request".to_owned())
}

/// Refuses a socket served by a process of another uid, before anything is read from it: a
/// socket in a dir that passed the checks should be the user's own daemon, and this holds
/// even when it is not (a dir loosened after the check, a link to elsewhere).
fn check_peer(stream: &UnixStream, socket: &Path) -> Result<(), ClientError> {
    let uid = nix::unistd::geteuid().as_raw();
    let owner = stream
        .peer_cred()
        .map_err(|source| ClientError::Unreachable {
            socket: socket.to_path_buf(),
            source,
        })?
        .uid();
    if owner != uid {
        return Err(ClientError::ForeignDaemon {
            socket: socket.to_path_buf(),
            owner,
            uid,
        });
    }
    Ok(())
}

/// The last line the daemon wrote on its stderr, without the `buildd: ` of every error.
fn start_failure(stderr: &Path) -> String {
    let text = std::fs::read_to_string(stderr).unwrap_or_default();
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    match line.strip_prefix("buildd: ").unwrap_or(line) {
        "" => "it exited without saying why".to_owned(),
        cause => cause.to_owned(),
    }
}

/// Starts `buildd daemon` detached from this process: its own session, no terminal, stderr
/// into the state dir. The receiver gets whether the daemon exited with success, once it
/// exits.
fn spawn_daemon(paths: &Paths) -> Result<std::sync::mpsc::Receiver<bool>, ClientError> {
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
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait().is_ok_and(|status| status.success()));
    });
    Ok(exit)
}

/// This process's environment, for [`Request::Register`].
pub fn current_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}
