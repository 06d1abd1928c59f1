//! A small LSP client of the harness's own, talking to `buildd lsp` over its stdio the way
//! an editor does: `initialize` with the workspace, `didOpen`/`didChange`/`didSave` for the
//! edited file, and `textDocument/publishDiagnostics` read back with the instant each one
//! arrived.
//!
//! The framing, the reader thread that stamps each message with when it arrived and answers
//! the server's own requests, and the URI encoding are the shared client's
//! (`buildd-lsp-client`, which the end-to-end tests use too); this module adds what the
//! harness measures and its errors. It is the only module of the bench that knows LSP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use buildd_lsp_client::{Connection, Received, same_file, uri_of as file_uri};
use serde_json::{Value, json};

use crate::env;

/// Why there is no LSP figure: this buildd has no `buildd lsp`.
#[derive(Debug, Clone)]
pub(crate) struct Unavailable {
    pub(crate) reason: String,
}

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
    server: Connection,
    sync: Sync,
    versions: BTreeMap<String, i64>,
    stderr_path: PathBuf,
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
        let mut command = env::command(buildd, env);
        command.arg("lsp").current_dir(root).stderr(stderr);
        let server = Connection::spawn(command)
            .with_context(|| format!("failed to run {} lsp", buildd.display()))?;
        let mut client = LspClient {
            server,
            sync: Sync {
                open_close: false,
                change: false,
                save: false,
            },
            versions: BTreeMap::new(),
            stderr_path: stderr_path.to_path_buf(),
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
                if let Some(status) = client.server.wait_exit(Duration::from_secs(5)) {
                    let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
                    // clap's usage error for a subcommand this binary does not have.
                    if status.code() == Some(2) && stderr.contains("unrecognized subcommand") {
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

    fn notify(&self, method: &str, params: Value) -> anyhow::Result<()> {
        self.server
            .notify(method, params)
            .context("failed to write to buildd lsp")
    }

    /// Sends a request and waits for its response, keeping nothing that arrives meanwhile
    /// (diagnostics of a cold build are not what a round waits for).
    fn request(&mut self, method: &str, params: Value, timeout: Duration) -> anyhow::Result<Value> {
        let id = self
            .server
            .send_request(method, params)
            .context("failed to write to buildd lsp")?;
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
        match self.server.recv(deadline) {
            Received::Message(_, message) => Ok(message),
            Received::Closed => bail!(
                "buildd lsp closed its output while the harness waited for {waiting_for}: {}",
                self.broke_off()
            ),
            Received::Timeout => bail!(
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
        while self.server.try_recv().is_some() {}
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
            let (at, message) = match self.server.recv(deadline) {
                Received::Message(at, message) => (at, message),
                Received::Closed => bail!(
                    "buildd lsp exited before publishing the warning `{marker}`: {}",
                    self.broke_off()
                ),
                Received::Timeout => bail!(
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
        if self.server.wait_exit(Duration::from_secs(10)).is_none() {
            self.server.kill();
        }
    }

    /// What the server said on its way out: why its output broke off, and its stderr.
    fn broke_off(&self) -> String {
        let stderr = crate::daemon::read_tail(&self.stderr_path);
        match self.server.read_error() {
            Some(e) => format!("{e}; {stderr}"),
            None => stderr,
        }
    }
}

/// Whether `message` publishes, for `uri`, a diagnostic from buildd containing `marker`.
fn publishes(message: &Value, uri: &str, marker: &str) -> bool {
    if message.get("method").and_then(Value::as_str) != Some("textDocument/publishDiagnostics") {
        return false;
    }
    let params = &message["params"];
    let same_file = params["uri"].as_str().is_some_and(|u| same_file(u, uri));
    same_file
        && params["diagnostics"].as_array().is_some_and(|all| {
            all.iter().any(|d| {
                d["source"].as_str() == Some("buildd")
                    && d["message"].as_str().is_some_and(|m| m.contains(marker))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

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
