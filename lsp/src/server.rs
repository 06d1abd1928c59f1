//! The LSP face: tower-lsp-server's `LanguageServer` and buildd's custom methods.
//!
//! This module reads what the editor sends, answers `initialize` with the server's
//! capabilities, and forwards everything else to the main loop as an [`LspEvent`]. It keeps no
//! state of its own. Bad input (a URI that is not a local file, params of the wrong shape) is
//! logged or answered with an error; it never panics.

use std::path::PathBuf;
use std::str::FromStr;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::LanguageServer;
use tower_lsp_server::jsonrpc::{self, ErrorCode};
use tower_lsp_server::ls_types::{
    CodeActionKind, CodeActionOptions, CodeActionParams, CodeActionProviderCapability,
    CodeActionResponse, DidChangeTextDocumentParams, DidChangeWorkspaceFoldersParams,
    DidCloseTextDocumentParams, DidOpenTextDocumentParams, DidSaveTextDocumentParams,
    ExecuteCommandOptions, ExecuteCommandParams, InitializeParams, InitializeResult,
    InitializedParams, LSPAny, OneOf, SaveOptions, ServerCapabilities, ServerInfo,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextDocumentSyncOptions,
    TextDocumentSyncSaveOptions, Uri, WorkDoneProgressCancelParams, WorkspaceFolder,
    WorkspaceFoldersServerCapabilities, WorkspaceServerCapabilities,
};

use crate::code_actions::FIX_ALL;
use crate::config;
use crate::ext::{CANCEL, REBUILD, SHOW_RENDERED, StatusParams};
use crate::main_loop::{Command, Event, LspEvent, Reply, Setup};
use crate::position::Encoding;
use crate::uri;

pub(crate) struct Backend {
    tx: mpsc::UnboundedSender<Event>,
    /// `--no-start` / `BUILDD_NO_START`: the default of `noStart`.
    no_start: bool,
}

impl Backend {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Event>, no_start: bool) -> Backend {
        Backend { tx, no_start }
    }

    fn send(&self, event: LspEvent) {
        if self.tx.send(Event::Lsp(event)).is_err() {
            tracing::error!("the main loop has stopped");
        }
    }

    /// Sends a request to the main loop and waits for its answer.
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> LspEvent) -> jsonrpc::Result<T> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply));
        match answer.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(error(message)),
            Err(_) => Err(error("the server is shutting down".to_owned())),
        }
    }

    /// `buildd/status`: the same JSON as `buildd status --json`, narrowed to this editor's
    /// workspaces, or to the workspace of `uri`.
    pub(crate) async fn status(&self, params: Option<StatusParams>) -> jsonrpc::Result<Value> {
        let path = match params.and_then(|p| p.uri) {
            Some(text) => Some(path_argument(&text).map_err(jsonrpc::Error::invalid_params)?),
            None => None,
        };
        self.ask(|reply| LspEvent::Status { path, reply }).await
    }

    /// `window/workDoneProgress/cancel`: the user pressed cancel on a job's progress.
    pub(crate) async fn cancel_progress(&self, params: WorkDoneProgressCancelParams) {
        let token = match params.token {
            tower_lsp_server::ls_types::NumberOrString::String(token) => token,
            tower_lsp_server::ls_types::NumberOrString::Number(n) => n.to_string(),
        };
        self.send(LspEvent::CancelProgress(token));
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> jsonrpc::Result<InitializeResult> {
        let setup = setup(&params, self.no_start);
        let encoding = setup.encoding;
        tracing::info!(
            folders = ?setup.folders,
            ?encoding,
            progress = setup.work_done_progress,
            related = setup.related_information,
            client = ?params.client_info.as_ref().map(|c| &c.name),
            "initialize"
        );
        self.send(LspEvent::Initialize(Box::new(setup)));
        Ok(InitializeResult {
            capabilities: capabilities(encoding),
            server_info: Some(ServerInfo {
                name: "buildd".to_owned(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        self.send(LspEvent::Initialized);
    }

    async fn shutdown(&self) -> jsonrpc::Result<()> {
        // Nothing to undo: the daemon and its workspaces stay for other clients, and the
        // connection closes when the process exits.
        Ok(())
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        match uri::to_path(&params.text_document.uri) {
            Ok(path) => self.send(LspEvent::Saved(path)),
            Err(e) => tracing::debug!("didSave ignored: {e}"),
        }
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        match uri::to_path(&params.text_document.uri) {
            Ok(path) => self.send(LspEvent::DocumentText {
                path,
                text: Some(params.text_document.text),
            }),
            Err(e) => tracing::debug!("didOpen ignored: {e}"),
        }
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let Ok(path) = uri::to_path(&params.text_document.uri) else {
            return;
        };
        // The server asks for full texts: the last change without a range is the document.
        // A ranged one (a client that ignored the sync kind) leaves the text unknown.
        let text = match params.content_changes.last() {
            Some(change) if change.range.is_none() => Some(change.text.clone()),
            _ => None,
        };
        self.send(LspEvent::DocumentText { path, text });
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        if let Ok(path) = uri::to_path(&params.text_document.uri) {
            self.send(LspEvent::DocumentClosed(path));
        }
    }

    async fn code_action(
        &self,
        params: CodeActionParams,
    ) -> jsonrpc::Result<Option<CodeActionResponse>> {
        let path = match uri::to_path(&params.text_document.uri) {
            Ok(path) => path,
            // Not a local file: nothing of buildd's is there.
            Err(_) => return Ok(None),
        };
        let actions = self
            .ask(|reply| LspEvent::CodeActions {
                path,
                range: params.range,
                only: params.context.only,
                reply,
            })
            .await?;
        Ok(Some(actions))
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        let added = folder_paths(&params.event.added);
        let removed = folder_paths(&params.event.removed);
        self.send(LspEvent::FoldersChanged { added, removed });
    }

    async fn execute_command(
        &self,
        params: ExecuteCommandParams,
    ) -> jsonrpc::Result<Option<LSPAny>> {
        let command = match params.command.as_str() {
            REBUILD => Command::Rebuild,
            CANCEL => Command::Cancel,
            SHOW_RENDERED => {
                let text =
                    rendered_argument(&params.arguments).map_err(jsonrpc::Error::invalid_params)?;
                self.send(LspEvent::ShowText(text));
                return Ok(None);
            }
            other => {
                return Err(jsonrpc::Error::invalid_params(format!(
                    "unknown command `{other}`: buildd has {REBUILD}, {CANCEL} and {SHOW_RENDERED}"
                )));
            }
        };
        let path = match params.arguments.first() {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                Some(path_argument(text).map_err(jsonrpc::Error::invalid_params)?)
            }
            Some(Value::Object(map)) if map.get("uri").is_some_and(Value::is_string) => {
                let text = map["uri"].as_str().unwrap_or_default();
                Some(path_argument(text).map_err(jsonrpc::Error::invalid_params)?)
            }
            Some(other) => {
                return Err(jsonrpc::Error::invalid_params(format!(
                    "{}: the argument is a file URI, got {other}",
                    params.command
                )));
            }
        };
        self.ask(|reply| LspEvent::Command {
            command,
            path,
            reply,
        })
        .await?;
        Ok(None)
    }
}

/// Everything `initialize` settles.
fn setup(params: &InitializeParams, no_start: bool) -> Setup {
    let capabilities = &params.capabilities;
    let (options, warnings) = config::resolve(params.initialization_options.as_ref(), no_start);
    let offered = capabilities
        .general
        .as_ref()
        .and_then(|g| g.position_encodings.as_deref());
    let related_information = capabilities
        .text_document
        .as_ref()
        .and_then(|t| t.publish_diagnostics.as_ref())
        .and_then(|p| p.related_information)
        .unwrap_or(false);
    let work_done_progress = capabilities
        .window
        .as_ref()
        .and_then(|w| w.work_done_progress)
        .unwrap_or(false);
    Setup {
        folders: initial_folders(params),
        options,
        warnings,
        encoding: Encoding::negotiate(offered),
        related_information,
        work_done_progress,
    }
}

/// The workspace folders, or for older clients `rootUri` (or the older still `rootPath`).
#[allow(deprecated)]
fn initial_folders(params: &InitializeParams) -> Vec<PathBuf> {
    if let Some(folders) = params.workspace_folders.as_ref().filter(|f| !f.is_empty()) {
        return folder_paths(folders);
    }
    if let Some(root) = &params.root_uri {
        return folder_paths(&[WorkspaceFolder {
            uri: root.clone(),
            name: String::new(),
        }]);
    }
    params
        .root_path
        .as_deref()
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .into_iter()
        .collect()
}

fn folder_paths(folders: &[WorkspaceFolder]) -> Vec<PathBuf> {
    folders
        .iter()
        .filter_map(|f| match uri::to_path(&f.uri) {
            Ok(path) => Some(path),
            Err(e) => {
                tracing::warn!("workspace folder ignored: {e}");
                None
            }
        })
        .collect()
}

/// The text `buildd.showRenderedDiagnostic` shows: its argument's `rendered`.
fn rendered_argument(arguments: &[Value]) -> Result<String, String> {
    arguments
        .first()
        .and_then(|a| a.get("rendered"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            format!("{SHOW_RENDERED}: the argument is an object with a `rendered` string, as the code action gives it")
        })
}

/// A file or folder argument: a `file:` URI, or an absolute path for convenience.
fn path_argument(text: &str) -> Result<PathBuf, String> {
    if text.starts_with('/') {
        return Ok(PathBuf::from(text));
    }
    let parsed = Uri::from_str(text).map_err(|e| format!("`{text}` is not a URI: {e}"))?;
    uri::to_path(&parsed).map_err(|e| e.to_string())
}

fn capabilities(encoding: Encoding) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(encoding.kind()),
        // The daemon builds what is saved on disk; the open documents' texts are only for
        // the code actions, which must know whether a fix still fits the text. Full texts:
        // buildd does not edit them, and a file is a few dozen kilobytes at most.
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::FULL),
                save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions {
                    include_text: Some(false),
                })),
                ..Default::default()
            },
        )),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX, FIX_ALL]),
            ..Default::default()
        })),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: vec![
                REBUILD.to_owned(),
                CANCEL.to_owned(),
                SHOW_RENDERED.to_owned(),
            ],
            ..Default::default()
        }),
        workspace: Some(WorkspaceServerCapabilities {
            workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                supported: Some(true),
                change_notifications: Some(OneOf::Left(true)),
            }),
            file_operations: None,
        }),
        ..Default::default()
    }
}

fn error(message: String) -> jsonrpc::Error {
    jsonrpc::Error {
        code: ErrorCode::InternalError,
        message: message.into(),
        data: None,
    }
}
