//! `buildd lsp`: the LSP sidecar on stdio, for editors. Everything is in the `buildd-lsp`
//! crate; this only hands it the command line. Stdout carries the protocol alone.

use crate::connect::Session;
use crate::exit;

pub(crate) async fn run(session: &Session) -> anyhow::Result<i32> {
    buildd_lsp::run_stdio(buildd_lsp::RunOptions {
        no_start: !session.autostart,
    })
    .await;
    Ok(exit::SUCCESS)
}
