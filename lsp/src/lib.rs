//! The LSP sidecar (`buildd lsp`): an editor starts it on stdio next to rust-analyzer; it
//! connects to the daemon (starting it if needed), registers the editor's workspace folders,
//! and turns the daemon's jobs into LSP diagnostics, progress and buildd's own `buildd/state`
//! notifications. This is the only crate that knows LSP types.
//!
//! Built on tower-lsp-server, the maintained community fork of tower-lsp (see
//! `docs/editors/lsp.md` for why). Stdout carries only the protocol; logs go to stderr.

mod code_actions;
mod config;
mod convert;
mod daemon_link;
mod diagnostics;
mod discover;
mod documents;
mod ext;
mod main_loop;
mod position;
mod progress;
mod server;
mod state_feed;
mod uri;
mod workspaces;

#[cfg(test)]
mod typescript;

use tokio::sync::mpsc;
use tower::ServiceBuilder;
use tower_lsp_server::jsonrpc::Request;
use tower_lsp_server::{LspService, Server};

/// The `file:` URI of an absolute path as text (`None` for a relative one), encoded byte for
/// byte as the server encodes it, so a client (the test client, the bench) names a file
/// exactly as the server will.
pub fn file_uri(path: &std::path::Path) -> Option<String> {
    uri::from_path(path).map(|u| u.as_str().to_owned())
}

/// The path a `file:` URI names, decoding `%XX` escapes to raw bytes; `None` for a URI that
/// is not a local absolute `file:` URI.
pub fn file_path(uri: &str) -> Option<std::path::PathBuf> {
    let uri = std::str::FromStr::from_str(uri).ok()?;
    uri::to_path(&uri).ok()
}

/// How `buildd lsp` was started.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--no-start` (or `BUILDD_NO_START`): the default of `noStart`.
    pub no_start: bool,
}

/// Serves LSP on stdin and stdout until the editor exits.
pub async fn run_stdio(options: RunOptions) {
    init_logging();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "buildd lsp started");
    let (tx, rx) = mpsc::unbounded_channel();
    let (service, socket) = LspService::build(|client| {
        let main_loop = main_loop::MainLoop::new(client, tx.clone());
        tokio::spawn(main_loop.run(rx));
        server::Backend::new(tx, options.no_start)
    })
    .custom_method(ext::STATUS, server::Backend::status)
    .custom_method(
        "window/workDoneProgress/cancel",
        server::Backend::cancel_progress,
    )
    .finish();
    let service = ServiceBuilder::new()
        .map_request(params_for_status)
        .service(service);
    Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
        .serve(service)
        .await;
    tracing::info!("the editor closed the connection");
}

/// tower-lsp-server refuses a request without `params` when its handler takes some; the
/// contract lets `buildd/status` go without, so it gets `null`.
fn params_for_status(request: Request) -> Request {
    if request.method() != ext::STATUS || request.params().is_some() {
        return request;
    }
    let (method, id, _) = request.into_parts();
    let mut builder = Request::build(method).params(serde_json::Value::Null);
    if let Some(id) = id {
        builder = builder.id(id);
    }
    builder.finish()
}

/// Logs go to stderr (editors keep them: Neovim's `lsp.log`, VS Code's output panel),
/// filtered by `BUILDD_LOG` like the daemon's.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env(buildd_daemon::logging::LOG_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
