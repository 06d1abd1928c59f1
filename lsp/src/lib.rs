//! The LSP sidecar (`buildd lsp`). Filled in by the LSP issue; the only crate that knows LSP types.
