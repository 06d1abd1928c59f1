//! A small LSP client of the harness's own, talking to `buildd lsp` over its stdio the way
//! an editor does: `initialize` with the workspace, `didOpen`/`didChange`/`didSave` for the
//! edited file, and `textDocument/publishDiagnostics` read back with the instant each one
//! arrived.
//!
//! Messages are JSON-RPC with `Content-Length` framing. A reader thread reads every message
//! as soon as the server writes it, stamps it, answers the server's own requests (such as
//! `window/workDoneProgress/create`) with a null result as a minimal editor would, and hands
//! the rest to the harness. This is the only module that knows LSP; it uses plain
//! `serde_json` values instead of an LSP types crate because it needs a dozen fields.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::env;

/// Why there is no LSP figure: this buildd has no `buildd lsp`.
#[derive(Debug, Clone)]
pub(crate) struct Unavailable {
    pub(crate) reason: String,
}

/// A message from the server and when it arrived; `None` when the server closed stdout.
type Incoming = (Instant, Option<Value>);

/// Which document notifications the server asked for in its `textDocumentSync`
/// capability: a client sends only those, as editors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sync {
    open_close: bool,
    change: bool,
    save: bool,
}

impl Sync {
    fn of(initialize_result: &Value) -> Sync {
        let sync = &initialize_result["capabilities"]["textDocumentSync"];
        match sync {
            // The short form is a change kind: 0 none, 1 full, 2 incremental.
            Value::Number(kind) => {
                let on = kind.as_u64().is_some_and(|k| k > 0);
                Sync {
                    open_close: on,
                    change: on,
                    save: on,
                }
            }
            Value::Object(options) => Sync {
                open_close: options.get("openClose") == Some(&Value::Bool(true)),
                change: options
                    .get("change")
                    .and_then(Value::as_u64)
                    .is_some_and(|k| k > 0),
                save: options
                    .get("save")
                    .is_some_and(|s| s.is_object() || s == &Value::Bool(true)),
            },
            _ => Sync {
                open_close: false,
                change: false,
                save: false,
            },
        }
    }
}

pub(crate) struct LspClient {
    child: Child,
    sync: Sync,
    stdin: Arc<Mutex<ChildStdin>>,
    incoming: mpsc::Receiver<Incoming>,
    next_id: i64,
    versions: BTreeMap<String, i64>,
    stderr_path: PathBuf,
    closed: bool,
}

impl LspClient {
    /// Starts `buildd lsp` and initializes it on the workspace at `root`. `Ok(Err(..))` means
    /// this buildd has no `lsp` command; any other failure of a server that exists is an
    /// error.
    pub(crate) fn start(
        buildd: &Path,
        env: &BTreeMap<String, String>,
        root: &Path,
        stderr_path: &Path,
        timeout: Duration,
    ) -> anyhow::Result<Result<LspClient, Unavailable>> {
        let stderr = std::fs::File::create(stderr_path)
            .with_context(|| format!("failed to create {}", stderr_path.display()))?;
        let mut child = env::command(buildd, env)
            .arg("lsp")
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("failed to run {} lsp", buildd.display()))?;
        let stdin = Arc::new(Mutex::new(child.stdin.take().expect("piped")));
        let stdout = child.stdout.take().expect("piped");
        let (tx, incoming) = mpsc::channel();
        let answer = Arc::clone(&stdin);
        std::thread::spawn(move || read_loop(BufReader::new(stdout), &answer, &tx));
        let mut client = LspClient {
            child,
            stdin,
            incoming,
            next_id: 1,
            sync: Sync {
                open_close: false,
                change: false,
                save: false,
            },
            versions: BTreeMap::new(),
            stderr_path: stderr_path.to_path_buf(),
            closed: false,
        };
        let uri = file_uri(root);
        let name = root.file_name().map_or_else(
            || "workspace".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let params = json!({
            "processId": std::process::id(),
            "clientInfo": {"name": "buildd-bench"},
            "rootUri": uri,
            "rootPath": root,
            "workspaceFolders": [{"uri": uri, "name": name}],
            "capabilities": {
                "window": {"workDoneProgress": true},
                "textDocument": {
                    "synchronization": {"didSave": true},
                    "publishDiagnostics": {"relatedInformation": true}
                },
                "workspace": {"workspaceFolders": true}
            }
        });
        match client.request("initialize", params, timeout) {
            Ok(result) => client.sync = Sync::of(&result),
            Err(error) => {
                if let Some(status) = client.exit_status(Duration::from_secs(5)) {
                    let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
                    // clap's usage error for a subcommand this binary does not have.
                    if status.code() == Some(2) && stderr.contains("unrecognized subcommand") {
                        client.closed = true;
                        let first = stderr.lines().next().unwrap_or_default().trim();
                        return Ok(Err(Unavailable {
                            reason: format!(
                                "buildd lsp is not available in this buildd binary ({}): {first}",
                                buildd.display()
                            ),
                        }));
                    }
                }
                return Err(error);
            }
        }
        // The harness's clock starts at a save: a server that does not ask for saves cannot
        // be measured the way an editor would drive it.
        if !client.sync.save {
            bail!(
                "buildd lsp does not ask for textDocument/didSave in its textDocumentSync                  capability, so an editor would not tell it about saves"
            );
        }
        client.notify("initialized", json!({}))?;
        Ok(Ok(client))
    }

    /// The server's exit status if it exits within `grace`: a server that failed to start
    /// may still be on its way out when its pipe breaks.
    fn exit_status(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return None,
            }
        }
    }

    fn send(&self, message: &Value) -> anyhow::Result<()> {
        let mut stdin = self
            .stdin
            .lock()
            .expect("no writer panics while holding it");
        write_message(&mut *stdin, message).context("failed to write to buildd lsp")
    }

    fn notify(&self, method: &str, params: Value) -> anyhow::Result<()> {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
    }

    /// Sends a request and waits for its response, keeping nothing that arrives meanwhile
    /// (diagnostics of a cold build are not what a round waits for).
    fn request(&mut self, method: &str, params: Value, timeout: Duration) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        let deadline = Instant::now() + timeout;
        loop {
            let message = self.next_message(deadline, method)?;
            if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
                if let Some(error) = message.get("error") {
                    bail!("buildd lsp answered {method} with an error: {error}");
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
        }
    }

    fn next_message(&mut self, deadline: Instant, waiting_for: &str) -> anyhow::Result<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.incoming.recv_timeout(left) {
            Ok((_, Some(message))) => Ok(message),
            Ok((_, None)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.closed = true;
                bail!(
                    "buildd lsp closed its output while the harness waited for {waiting_for}: {}",
                    crate::daemon::read_tail(&self.stderr_path)
                )
            }
            Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                "buildd lsp sent no {waiting_for} in time: {}",
                crate::daemon::read_tail(&self.stderr_path)
            ),
        }
    }

    /// Opens `path` with `text`, as an editor does when the user opens the file (if the
    /// server asked for open and close notifications).
    pub(crate) fn did_open(&mut self, path: &Path, text: &str) -> anyhow::Result<()> {
        if !self.sync.open_close {
            return Ok(());
        }
        let uri = file_uri(path);
        self.versions.insert(uri.clone(), 1);
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}}),
        )
    }

    /// The user typed: the buffer now holds `text`, not yet on disk (if the server asked for
    /// changes).
    pub(crate) fn did_change(&mut self, path: &Path, text: &str) -> anyhow::Result<()> {
        if !self.sync.change {
            return Ok(());
        }
        let uri = file_uri(path);
        let version = self.versions.entry(uri.clone()).or_insert(1);
        *version += 1;
        let version = *version;
        self.notify(
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": text}]
            }),
        )
    }

    /// The editor wrote the buffer to disk.
    pub(crate) fn did_save(&mut self, path: &Path) -> anyhow::Result<()> {
        self.notify(
            "textDocument/didSave",
            json!({"textDocument": {"uri": file_uri(path)}}),
        )
    }

    /// Forgets what the server sent so far.
    pub(crate) fn drain(&mut self) {
        while self.incoming.try_recv().is_ok() {}
    }

    /// Waits for a `publishDiagnostics` for `path` with a diagnostic from buildd whose
    /// message contains `marker`, and returns when it arrived.
    pub(crate) fn wait_for_diagnostic(
        &mut self,
        path: &Path,
        marker: &str,
        timeout: Duration,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        let uri = file_uri(path);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, message) = match self.incoming.recv_timeout(left) {
                Ok((at, Some(message))) => (at, message),
                Ok((_, None)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.closed = true;
                    bail!(
                        "buildd lsp exited before publishing the warning `{marker}`: {}",
                        crate::daemon::read_tail(&self.stderr_path)
                    )
                }
                Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                    "buildd lsp published no warning containing `{marker}` for {} within \
                     {timeout:?}",
                    path.display()
                ),
            };
            if publishes(&message, &uri, marker) {
                return Ok(at);
            }
        }
    }

    /// Shuts the server down as an editor does (`shutdown`, then `exit`) and reaps it.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let result = self
            .request("shutdown", Value::Null, Duration::from_secs(20))
            .and_then(|_| self.notify("exit", Value::Null));
        self.reap();
        result.map(drop)
    }

    fn reap(&mut self) {
        if self.exit_status(Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.closed = true;
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `message` publishes, for `uri`, a diagnostic from buildd containing `marker`.
fn publishes(message: &Value, uri: &str, marker: &str) -> bool {
    if message.get("method").and_then(Value::as_str) != Some("textDocument/publishDiagnostics") {
        return false;
    }
    let params = &message["params"];
    let same_file = params["uri"]
        .as_str()
        .is_some_and(|u| percent_decode(u) == percent_decode(uri));
    same_file
        && params["diagnostics"].as_array().is_some_and(|all| {
            all.iter().any(|d| {
                d["source"].as_str() == Some("buildd")
                    && d["message"].as_str().is_some_and(|m| m.contains(marker))
            })
        })
}

/// Reads messages until the server closes stdout; answers its requests, forwards the rest.
fn read_loop(mut reader: impl BufRead, stdin: &Mutex<ChildStdin>, tx: &mpsc::Sender<Incoming>) {
    loop {
        let message = match read_message(&mut reader) {
            Ok(Some(message)) => message,
            Ok(None) | Err(_) => {
                let _ = tx.send((Instant::now(), None));
                return;
            }
        };
        let at = Instant::now();
        if let (Some(id), Some(method)) = (message.get("id"), message.get("method")) {
            // A request from the server. A minimal editor accepts progress tokens and
            // registrations, and has no configuration: null for each item asked.
            let result = match method.as_str() {
                Some("workspace/configuration") => {
                    let items = message["params"]["items"].as_array().map_or(0, Vec::len);
                    Value::Array(vec![Value::Null; items])
                }
                _ => Value::Null,
            };
            let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
            if let Ok(mut stdin) = stdin.lock() {
                let _ = write_message(&mut *stdin, &reply);
            }
        }
        if tx.send((at, Some(message))).is_err() {
            return;
        }
    }
}

fn write_message(out: &mut impl Write, message: &Value) -> std::io::Result<()> {
    let body = serde_json::to_vec(message)?;
    write!(out, "Content-Length: {}\r\n\r\n", body.len())?;
    out.write_all(&body)?;
    out.flush()
}

/// One framed message, or `None` at the end of the stream.
fn read_message(reader: &mut impl BufRead) -> anyhow::Result<Option<Value>> {
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
            length = Some(value.trim().parse().context("a bad Content-Length")?);
        }
    }
    let length = length.context("a message without Content-Length")?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(serde_json::from_slice(&body)?))
}

/// `file://` URI of an absolute path, percent-encoding all but unreserved characters and `/`.
pub(crate) fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                uri.push(*byte as char)
            }
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    uri
}

/// Decodes `%XX` escapes, so that two spellings of one URI compare equal.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buffer = Vec::new();
        let one = json!({"jsonrpc": "2.0", "id": 1, "result": {"capabilities": {}}});
        let two = json!({"jsonrpc": "2.0", "method": "buildd/state", "params": {"state": "idle"}});
        write_message(&mut buffer, &one).unwrap();
        write_message(&mut buffer, &two).unwrap();
        let mut reader = BufReader::new(&buffer[..]);
        assert_eq!(read_message(&mut reader).unwrap(), Some(one));
        assert_eq!(read_message(&mut reader).unwrap(), Some(two));
        assert_eq!(read_message(&mut reader).unwrap(), None);
    }

    #[test]
    fn headers_other_than_the_length_are_ignored() {
        let text = "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\
                    content-length: 2\r\n\r\n{}";
        let mut reader = BufReader::new(text.as_bytes());
        assert_eq!(read_message(&mut reader).unwrap(), Some(json!({})));
    }

    #[test]
    fn sends_only_the_notifications_the_server_asked_for() {
        let of = |sync: Value| Sync::of(&json!({"capabilities": {"textDocumentSync": sync}}));
        let saves_only = of(json!({"save": {"includeText": false}}));
        assert_eq!(
            saves_only,
            Sync {
                open_close: false,
                change: false,
                save: true
            }
        );
        let full = of(json!({"openClose": true, "change": 1, "save": true}));
        assert!(full.open_close && full.change && full.save);
        assert!(!of(json!(0)).save);
        assert!(of(json!(2)).change);
        assert!(!Sync::of(&json!({"capabilities": {}})).save);
    }

    #[test]
    fn uris_are_encoded_and_compared_decoded() {
        let uri = file_uri(Path::new("/tmp/a b/src/lib.rs"));
        assert_eq!(uri, "file:///tmp/a%20b/src/lib.rs");
        assert_eq!(
            percent_decode("file:///tmp/a%20b/src/lib.rs"),
            percent_decode("file:///tmp/a b/src/lib.rs")
        );
        assert_eq!(percent_decode("100%"), b"100%");
    }

    #[test]
    fn recognises_the_published_warning() {
        let uri = file_uri(Path::new("/w/src/lib.rs"));
        let publish = |source: &str, message: &str| {
            json!({"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {
                "uri": uri, "diagnostics": [
                    {"source": source, "severity": 2, "message": message,
                     "range": {"start": {"line": 1, "character": 8}, "end": {"line": 1, "character": 9}}}
                ]
            }})
        };
        let marker = "buildd_bench_unused_3";
        let warning = "unused variable: `buildd_bench_unused_3`";
        assert!(publishes(&publish("buildd", warning), &uri, marker));
        assert!(!publishes(&publish("rustc", warning), &uri, marker));
        assert!(!publishes(
            &publish("buildd", "unused variable: `x`"),
            &uri,
            marker
        ));
        assert!(!publishes(
            &publish("buildd", warning),
            &file_uri(Path::new("/w/src/main.rs")),
            marker
        ));
    }
}
