//! The end-to-end tests' face of the shared LSP client (`buildd-lsp-client`): it runs the
//! real `buildd lsp` on stdio with the test world's `BUILDD_HOME`, and turns every failure
//! into a panic that shows what the server sent and what it and the daemon logged.
//!
//! Every message from the server is kept in order. `wait_*` look for a message after a
//! cursor that the test moves with `mark` before an action, with the generous deadline of
//! `support.rs`.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Instant;

use buildd_lsp_client::{Connection, Received};
use serde_json::{Value, json};

use crate::support::{DEADLINE, World};

pub(crate) struct LspClient {
    name: String,
    server: Connection,
    /// Every message from the server, in order.
    seen: Vec<Value>,
    /// Where the next wait starts looking.
    cursor: usize,
    stderr: PathBuf,
    /// The daemon's log dir, shown when a wait times out.
    logs: PathBuf,
}

/// What the test client tells the server it supports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub(crate) work_done_progress: bool,
    pub(crate) related_information: bool,
    pub(crate) utf8: bool,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            work_done_progress: true,
            related_information: true,
            utf8: false,
        }
    }
}

pub(crate) use buildd_lsp_client::uri_of as file_uri;

/// `initialize` params for these folders.
pub(crate) fn init_params(folders: &[&Path], options: Value, caps: Caps) -> Value {
    let folders: Vec<Value> = folders
        .iter()
        .map(|f| json!({"uri": file_uri(f), "name": f.file_name().unwrap().to_str().unwrap()}))
        .collect();
    let mut general = json!({});
    if caps.utf8 {
        general = json!({"positionEncodings": ["utf-8", "utf-16"]});
    }
    json!({
        "processId": std::process::id(),
        "clientInfo": {"name": "buildd-e2e"},
        "rootUri": folders.first().map(|f| f["uri"].clone()),
        "workspaceFolders": folders,
        "initializationOptions": options,
        "capabilities": {
            "general": general,
            "window": {"workDoneProgress": caps.work_done_progress},
            "textDocument": {
                "publishDiagnostics": {"relatedInformation": caps.related_information},
                "synchronization": {"didSave": true}
            },
            "workspace": {"workspaceFolders": true}
        }
    })
}

impl LspClient {
    /// Starts `buildd lsp` in `cwd` with the world's home; `env` adds variables.
    pub(crate) fn start(world: &World, cwd: &Path, name: &str, env: &[(&str, &str)]) -> LspClient {
        let stderr = world.dir.path().join(format!("{name}.stderr"));
        let mut cmd = world.cmd(cwd, &["lsp"]);
        cmd.stderr(std::fs::File::create(&stderr).unwrap());
        for (key, value) in env {
            cmd.env(key, value);
        }
        LspClient {
            name: name.to_owned(),
            server: Connection::spawn(cmd).unwrap(),
            seen: Vec::new(),
            cursor: 0,
            stderr,
            logs: world.home().join("state/logs"),
        }
    }

    /// `initialize` then `initialized`; returns the `initialize` result.
    pub(crate) fn initialize(&mut self, params: Value) -> Value {
        let response = self.request("initialize", params);
        let result = response["result"].clone();
        assert!(result.is_object(), "initialize failed: {response}");
        self.notify("initialized", json!({}));
        result
    }

    pub(crate) fn notify(&mut self, method: &str, params: Value) {
        // A server that exited makes writes fail; the waits report it.
        let _ = self.server.notify(method, params);
    }

    /// Sends a request and returns the whole response (`result` or `error`).
    pub(crate) fn request(&mut self, method: &str, params: Value) -> Value {
        let Ok(id) = self.server.send_request(method, params) else {
            self.fail(&format!("a server to send {method} to"));
        };
        // Responses are found wherever they are, not only after the cursor.
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(response) = self
                .seen
                .iter()
                .find(|m| m["id"] == id && m.get("method").is_none())
            {
                return response.clone();
            }
            if !self.receive(deadline) {
                self.fail(&format!("the response to {method} #{id}"));
            }
        }
    }

    /// Moves the cursor past everything received so far: call it before an action, and the
    /// waits after it see only what came after (what the action caused, and more).
    pub(crate) fn mark(&mut self) {
        self.cursor = self.seen().len();
    }

    /// Waits for a message after the cursor that satisfies `matches`, and returns it. The
    /// cursor stays: messages that the server sends in no fixed order (a state and the end
    /// of a progress) can be waited for in any order.
    pub(crate) fn wait_for(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(found) = self.seen[self.cursor..].iter().find(|m| matches(m)) {
                return found.clone();
            }
            if !self.receive(deadline) {
                self.fail(what);
            }
        }
    }

    /// Waits for a notification `method` whose params satisfy `matches`; returns the params.
    pub(crate) fn wait_notification(
        &mut self,
        method: &str,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_for(what, |m| {
            m["method"] == method && m.get("id").is_none() && matches(&m["params"])
        })["params"]
            .clone()
    }

    /// Waits for a `buildd/state` of `root` that satisfies `matches`.
    pub(crate) fn wait_state(
        &mut self,
        root: &Path,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let root = root.to_str().unwrap().to_owned();
        self.wait_notification("buildd/state", what, |p| p["root"] == root && matches(p))
    }

    /// Waits for diagnostics of `file` that satisfy `matches`; returns them.
    pub(crate) fn wait_diagnostics(
        &mut self,
        file: &Path,
        what: &str,
        matches: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let uri = file_uri(file);
        let params = self.wait_notification("textDocument/publishDiagnostics", what, |p| {
            p["uri"] == uri.as_str() && matches(p["diagnostics"].as_array().unwrap())
        });
        params["diagnostics"].as_array().unwrap().clone()
    }

    /// The messages received since the last [`LspClient::mark`].
    pub(crate) fn since_mark(&mut self) -> &[Value] {
        let cursor = self.cursor;
        &self.seen()[cursor..]
    }

    /// Every message received so far (for checking sequences).
    pub(crate) fn seen(&mut self) -> &[Value] {
        while let Some((_, message)) = self.server.try_recv() {
            self.seen.push(message);
        }
        &self.seen
    }

    /// `shutdown`, `exit`, and the server's exit status.
    pub(crate) fn exit(mut self) -> ExitStatus {
        let response = self.request("shutdown", Value::Null);
        assert!(response.get("error").is_none(), "shutdown: {response}");
        self.notify("exit", Value::Null);
        match self.server.wait_exit(DEADLINE) {
            Some(status) => status,
            None => {
                self.server.kill();
                panic!("{} did not exit after `exit`", self.name)
            }
        }
    }

    /// Takes in one message; false when the deadline passed or the server is gone.
    fn receive(&mut self, deadline: Instant) -> bool {
        match self.server.recv(deadline) {
            Received::Message(_, message) => {
                self.seen.push(message);
                true
            }
            Received::Timeout | Received::Closed => false,
        }
    }

    fn fail(&mut self, what: &str) -> ! {
        let recent: Vec<String> = self.seen[self.seen.len().saturating_sub(30)..]
            .iter()
            .map(|m| m.to_string())
            .collect();
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let stderr: Vec<&str> = stderr.lines().collect();
        let mut daemon_log = String::new();
        for entry in std::fs::read_dir(&self.logs)
            .into_iter()
            .flatten()
            .flatten()
        {
            daemon_log.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
        let daemon_log: Vec<&str> = daemon_log.lines().collect();
        let read_error = self
            .server
            .read_error()
            .map(|e| format!("the server's output broke off: {e}\n"))
            .unwrap_or_default();
        panic!(
            "{}: timed out waiting for {what} (cursor at {} of {})\n{read_error}last messages:\n{}\n\
             server stderr:\n{}\ndaemon log:\n{}",
            self.name,
            self.cursor,
            self.seen.len(),
            recent.join("\n"),
            stderr[stderr.len().saturating_sub(40)..].join("\n"),
            daemon_log[daemon_log.len().saturating_sub(30)..].join("\n"),
        );
    }
}
