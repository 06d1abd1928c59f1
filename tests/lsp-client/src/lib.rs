//! The one LSP client that drives the real `buildd lsp` over its stdio, for the end-to-end
//! tests (`tests/e2e/lsp_client.rs`) and the bench (`bench/src/lsp_client.rs`), which wrap it
//! in their own reporting: the tests panic with what the server sent and logged, the bench
//! returns errors.
//!
//! It frames JSON-RPC with `Content-Length` headers, numbers requests, and has a reader
//! thread that stamps every message with the instant it arrived and answers the server's
//! own requests as a minimal editor does (progress tokens and registrations accepted, no
//! configuration). Plain `serde_json` values, not an LSP types crate: the callers check a
//! dozen fields, and they check what is on the wire.

use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use buildd_lsp::{file_path, file_uri};

/// What one wait for the server's next message found.
#[derive(Debug)]
pub enum Received {
    /// A message, and when the reader thread read it.
    Message(Instant, Value),
    /// Nothing before the deadline.
    Timeout,
    /// The server closed its output (it exited, or wrote something that is not a message;
    /// then `Connection::read_error` says what).
    Closed,
}

/// A running `buildd lsp` (or any LSP server on stdio).
pub struct Connection {
    /// `None` once reaped.
    child: Option<Child>,
    stdin: Arc<Mutex<ChildStdin>>,
    incoming: Receiver<(Instant, Value)>,
    read_error: Arc<Mutex<Option<String>>>,
    next_id: i64,
}

impl Connection {
    /// Spawns `command` with piped stdin and stdout (the caller chooses stderr) and starts
    /// reading what it writes.
    pub fn spawn(mut command: Command) -> io::Result<Connection> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = Arc::new(Mutex::new(child.stdin.take().expect("piped")));
        let stdout = child.stdout.take().expect("piped");
        let (tx, incoming) = mpsc::channel();
        let read_error = Arc::new(Mutex::new(None));
        let (answer, error) = (Arc::clone(&stdin), Arc::clone(&read_error));
        std::thread::spawn(move || read_loop(BufReader::new(stdout), &answer, &tx, &error));
        Ok(Connection {
            child: Some(child),
            stdin,
            incoming,
            read_error,
            next_id: 1,
        })
    }

    /// Sends a notification.
    pub fn notify(&self, method: &str, params: Value) -> io::Result<()> {
        send(
            &self.stdin,
            &json!({"jsonrpc": "2.0", "method": method, "params": params}),
        )
    }

    /// Sends a request (without `params` when they are null) and returns its id; the
    /// response comes in as a message with that id and no method.
    pub fn send_request(&mut self, method: &str, params: Value) -> io::Result<i64> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if !params.is_null() {
            message["params"] = params;
        }
        send(&self.stdin, &message)?;
        Ok(id)
    }

    /// Waits until `deadline` for the next message.
    pub fn recv(&mut self, deadline: Instant) -> Received {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.incoming.recv_timeout(left) {
            Ok((at, message)) => Received::Message(at, message),
            Err(RecvTimeoutError::Timeout) => Received::Timeout,
            Err(RecvTimeoutError::Disconnected) => Received::Closed,
        }
    }

    /// The next message if one has arrived.
    pub fn try_recv(&mut self) -> Option<(Instant, Value)> {
        self.incoming.try_recv().ok()
    }

    /// Why the reader stopped early, if the server wrote something that is not a message.
    pub fn read_error(&self) -> Option<String> {
        self.read_error.lock().ok()?.clone()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's exit status if it exits within `grace` (it is reaped then).
    pub fn wait_exit(&mut self, grace: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + grace;
        let child = self.child.as_mut()?;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return None,
            }
        }
    }

    /// Kills and reaps the server if it still runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // A test or a bench round that failed must not leave its server running.
        self.kill();
    }
}

/// Whether two `file:` URIs name the same file (escapes are compared decoded: `%C3%A9` and
/// `%c3%a9` and `é` are one name).
pub fn same_file(a: &str, b: &str) -> bool {
    match (file_path(a), file_path(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

/// The `file:` URI of a path the caller knows is absolute.
///
/// # Panics
/// On a relative path: a caller's bug.
pub fn uri_of(path: &Path) -> String {
    file_uri(path).unwrap_or_else(|| panic!("{} is not absolute", path.display()))
}

/// The path of a URI the server sent, for messages.
pub fn path_of(uri: &str) -> PathBuf {
    file_path(uri).unwrap_or_else(|| PathBuf::from(uri))
}

fn send(stdin: &Mutex<ChildStdin>, message: &Value) -> io::Result<()> {
    let mut stdin = stdin
        .lock()
        .map_err(|_| io::Error::other("a writer panicked"))?;
    write_message(&mut *stdin, message)
}

/// Reads messages until the server closes stdout: answers its requests, forwards all.
fn read_loop(
    mut reader: impl BufRead,
    stdin: &Mutex<ChildStdin>,
    tx: &mpsc::Sender<(Instant, Value)>,
    error: &Mutex<Option<String>>,
) {
    loop {
        let message = match read_message(&mut reader) {
            Ok(Some(message)) => message,
            Ok(None) => return,
            Err(e) => {
                if let Ok(mut slot) = error.lock() {
                    *slot = Some(e.to_string());
                }
                return;
            }
        };
        let at = Instant::now();
        if let Some(reply) = answer(&message) {
            // A server that exited makes the write fail; the caller's waits report it.
            let _ = send(stdin, &reply);
        }
        if tx.send((at, message)).is_err() {
            return;
        }
    }
}

/// A minimal editor's answer to a request from the server; `None` for anything else.
pub fn answer(message: &Value) -> Option<Value> {
    let (id, method) = (message.get("id")?, message.get("method")?.as_str()?);
    let reply = match method {
        "window/workDoneProgress/create" | "client/registerCapability" => {
            json!({"jsonrpc": "2.0", "id": id, "result": null})
        }
        // No configuration: null for each item asked.
        "workspace/configuration" => {
            let items = message["params"]["items"].as_array().map_or(0, Vec::len);
            json!({"jsonrpc": "2.0", "id": id, "result": vec![Value::Null; items]})
        }
        _ => json!({"jsonrpc": "2.0", "id": id,
                    "error": {"code": -32601, "message": "not supported by this client"}}),
    };
    Some(reply)
}

/// Writes one framed message.
pub fn write_message(out: &mut impl Write, message: &Value) -> io::Result<()> {
    let body = serde_json::to_vec(message)?;
    write!(out, "Content-Length: {}\r\n\r\n", body.len())?;
    out.write_all(&body)?;
    out.flush()
}

/// Reads one framed message; `None` at the end of the stream. Headers other than
/// `Content-Length` (any case) are read and ignored, as the spec allows.
pub fn read_message(reader: &mut impl BufRead) -> io::Result<Option<Value>> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut length: Option<usize> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let header = line.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            let value = value.trim();
            length = Some(
                value
                    .parse()
                    .map_err(|_| bad(format!("a bad Content-Length: {value:?}")))?,
            );
        }
    }
    let length = length.ok_or_else(|| bad("a message without Content-Length".to_owned()))?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| bad(format!("a message that is not JSON ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let message = json!({"jsonrpc": "2.0", "id": 1, "result": {"text": "é\r\n"}});
        let mut wire = Vec::new();
        write_message(&mut wire, &message).unwrap();
        write_message(&mut wire, &json!({"jsonrpc": "2.0", "method": "exit"})).unwrap();
        let mut reader = &wire[..];
        assert_eq!(read_message(&mut reader).unwrap(), Some(message));
        assert_eq!(
            read_message(&mut reader).unwrap().unwrap()["method"],
            "exit"
        );
        assert_eq!(read_message(&mut reader).unwrap(), None);
    }

    #[test]
    fn headers_other_than_the_length_are_ignored() {
        let wire = b"content-length: 2\r\nContent-Type: application/vscode-jsonrpc\r\n\r\n{}";
        assert_eq!(read_message(&mut &wire[..]).unwrap(), Some(json!({})));
    }

    #[test]
    fn a_frame_without_a_length_or_with_a_bad_body_is_an_error() {
        assert!(read_message(&mut &b"X: 1\r\n\r\n{}"[..]).is_err());
        assert!(read_message(&mut &b"Content-Length: x\r\n\r\n"[..]).is_err());
        assert!(read_message(&mut &b"Content-Length: 3\r\n\r\nnot"[..]).is_err());
    }

    #[test]
    fn the_servers_requests_get_an_editors_answers() {
        let create = json!({"jsonrpc": "2.0", "id": 7, "method": "window/workDoneProgress/create"});
        assert_eq!(answer(&create).unwrap()["result"], Value::Null);
        let config = json!({"jsonrpc": "2.0", "id": "c", "method": "workspace/configuration",
                            "params": {"items": [{}, {}]}});
        assert_eq!(answer(&config).unwrap()["result"], json!([null, null]));
        let other = json!({"jsonrpc": "2.0", "id": 8, "method": "window/showDocument"});
        assert_eq!(answer(&other).unwrap()["error"]["code"], -32601);
        assert!(answer(&json!({"jsonrpc": "2.0", "method": "window/logMessage"})).is_none());
    }

    #[test]
    fn uris_are_the_servers_and_compare_decoded() {
        let uri = uri_of(Path::new("/tmp/a b/é.rs"));
        assert_eq!(uri, "file:///tmp/a%20b/%C3%A9.rs");
        assert!(same_file(&uri, "file:///tmp/a%20b/%c3%a9.rs"));
        assert!(!same_file(&uri, "file:///tmp/a%20b/e.rs"));
        assert_eq!(path_of(&uri), Path::new("/tmp/a b/é.rs"));
    }
}
