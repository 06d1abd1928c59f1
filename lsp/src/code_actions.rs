//! `textDocument/codeAction`: rustc's suggestions as quick fixes, every machine-applicable
//! fix of a file as one `source.fixAll.buildd`, and the rendered compiler output of each
//! diagnostic behind a command.
//!
//! In the manner of rust-analyzer's flycheck fixes: one child diagnostic of rustc ("remove
//! the whole `use` item", "consider cloning the value") is one fix, all its spans one
//! `WorkspaceEdit`, in whatever files of the workspace they are. `MachineApplicable` fixes are
//! preferred (the editor's "auto fix" applies them), `MaybeIncorrect` and `HasPlaceholders`
//! are offered but not preferred, `Unspecified` are left out.
//!
//! **Invariant:** a fix is offered only while every line its edits touch reads, in the text
//! the editor has now (the open document, else the file on disk), exactly as rustc compiled
//! it. After an edit the positions may point elsewhere; the fix returns with the next job.
//! Saying nothing is better than corrupting a file.
//!
//! This module is pure: the caller hands it the file's diagnostics and a way to get texts.

use std::collections::HashMap;

use serde_json::json;
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, Command, Range, TextEdit, Uri, WorkspaceEdit,
};

use crate::convert::{SuggestedEdit, Suggestion};
use crate::diagnostics::Item;
use crate::documents;
use crate::ext::SHOW_RENDERED;

/// buildd's fix-all kind, under `source.fixAll` so that `editor.codeActionsOnSave` and
/// clients asking for `source.fixAll` find it.
pub(crate) const FIX_ALL: CodeActionKind = CodeActionKind::new("source.fixAll.buildd");

/// The code actions for `range` of a file whose diagnostics are `items`. `only` is the
/// request's filter; `text_of` gives the current text of a file.
pub(crate) fn actions(
    items: &[Item],
    range: Range,
    only: Option<&[CodeActionKind]>,
    text_of: &mut dyn FnMut(&Uri) -> Option<String>,
) -> Vec<CodeActionOrCommand> {
    let mut texts = Texts {
        text_of,
        cache: HashMap::new(),
    };
    let mut actions: Vec<CodeAction> = Vec::new();
    if wanted(only, &CodeActionKind::QUICKFIX) {
        for item in items.iter().filter(|i| touches(i.diagnostic.range, range)) {
            for suggestion in &item.suggestions {
                let Some(preferred) = preference(&suggestion.applicability) else {
                    continue;
                };
                if !texts.fresh(&suggestion.edits) {
                    continue;
                }
                let action = CodeAction {
                    title: title(suggestion),
                    kind: Some(CodeActionKind::QUICKFIX),
                    diagnostics: Some(vec![item.diagnostic.clone()]),
                    edit: Some(workspace_edit(suggestion.edits.iter())),
                    is_preferred: Some(preferred),
                    ..Default::default()
                };
                push_new(&mut actions, action);
            }
        }
        for item in items.iter().filter(|i| touches(i.diagnostic.range, range)) {
            if let Some(action) = rendered(item) {
                push_new(&mut actions, action);
            }
        }
    }
    if wanted(only, &FIX_ALL)
        && let Some(action) = fix_all(items, &mut texts)
    {
        actions.push(action);
    }
    actions
        .into_iter()
        .map(CodeActionOrCommand::CodeAction)
        .collect()
}

/// Whether the request's `only` filter lets `kind` through: LSP kinds are hierarchical, so
/// `source` and `source.fixAll` both ask for `source.fixAll.buildd`.
fn wanted(only: Option<&[CodeActionKind]>, kind: &CodeActionKind) -> bool {
    let Some(only) = only else {
        return true;
    };
    only.iter().any(|asked| {
        let asked = asked.as_str();
        let kind = kind.as_str();
        kind == asked
            || asked.is_empty()
            || (kind.starts_with(asked) && kind[asked.len()..].starts_with('.'))
    })
}

/// Whether a fix of this applicability is preferred; `None` when it is not offered.
fn preference(applicability: &str) -> Option<bool> {
    match applicability {
        "MachineApplicable" => Some(true),
        "MaybeIncorrect" | "HasPlaceholders" => Some(false),
        _ => None,
    }
}

/// Whether two ranges meet; a cursor (an empty range) at either end of a diagnostic counts.
fn touches(a: Range, b: Range) -> bool {
    !(a.end < b.start || b.end < a.start)
}

/// rustc's words, and the replacement when it is short enough to read in a menu.
fn title(suggestion: &Suggestion) -> String {
    let replacements: Vec<&str> = suggestion
        .edits
        .iter()
        .map(|e| e.new_text.as_str())
        .filter(|t| !t.is_empty())
        .collect();
    match replacements.as_slice() {
        [one] if one.len() <= 60 && !one.contains('\n') => {
            format!("{}: `{one}`", suggestion.message)
        }
        _ => suggestion.message.clone(),
    }
}

fn workspace_edit<'a>(edits: impl Iterator<Item = &'a SuggestedEdit>) -> WorkspaceEdit {
    let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    for edit in edits {
        changes
            .entry(edit.uri.clone())
            .or_default()
            .push(TextEdit::new(edit.range, edit.new_text.clone()));
    }
    for edits in changes.values_mut() {
        edits.sort_by_key(|e| (e.range.start, e.range.end));
    }
    WorkspaceEdit {
        changes: Some(changes),
        ..Default::default()
    }
}

/// The action that shows rustc's rendered output of a diagnostic. A quick fix in kind, so
/// that it is listed where users look for help with a diagnostic (the light bulb, `Ctrl+.`,
/// `vim.lsp.buf.code_action()`); never preferred, so no "auto fix" runs it.
fn rendered(item: &Item) -> Option<CodeAction> {
    let text = item.diagnostic.data.as_ref()?.get("rendered")?.as_str()?;
    let first_line = item.diagnostic.message.lines().next().unwrap_or_default();
    Some(CodeAction {
        title: "Show the full compiler output (buildd)".to_owned(),
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(vec![item.diagnostic.clone()]),
        command: Some(Command {
            title: "Show the full compiler output".to_owned(),
            command: SHOW_RENDERED.to_owned(),
            arguments: Some(vec![json!({"title": first_line, "rendered": text})]),
        }),
        is_preferred: Some(false),
        ..Default::default()
    })
}

/// Every machine-applicable fix of the file's diagnostics that is still fresh, as one edit.
/// A fix whose edits overlap one taken already is left out (two fixes of one spot cannot
/// both apply); the next job offers it again if it still applies.
fn fix_all(items: &[Item], texts: &mut Texts<'_>) -> Option<CodeAction> {
    let mut taken: Vec<&Suggestion> = Vec::new();
    let mut diagnostics = Vec::new();
    for item in items {
        let mut fixes_it = false;
        for suggestion in &item.suggestions {
            if preference(&suggestion.applicability) != Some(true) {
                continue;
            }
            if taken.contains(&suggestion) {
                fixes_it = true;
                continue;
            }
            let overlaps = taken
                .iter()
                .flat_map(|s| &s.edits)
                .any(|a| suggestion.edits.iter().any(|b| overlap(a, b)));
            if overlaps || !texts.fresh(&suggestion.edits) {
                continue;
            }
            taken.push(suggestion);
            fixes_it = true;
        }
        if fixes_it {
            diagnostics.push(item.diagnostic.clone());
        }
    }
    if taken.is_empty() {
        return None;
    }
    let count = taken.len();
    Some(CodeAction {
        title: if count == 1 {
            "Apply the 1 machine-applicable fix of this file (buildd)".to_owned()
        } else {
            format!("Apply the {count} machine-applicable fixes of this file (buildd)")
        },
        kind: Some(FIX_ALL),
        diagnostics: Some(diagnostics),
        edit: Some(workspace_edit(taken.iter().flat_map(|s| &s.edits))),
        ..Default::default()
    })
}

/// Whether two edits of one file touch the same text. Edits that only meet at a point do
/// not, unless both insert there (their order would be a guess).
fn overlap(a: &SuggestedEdit, b: &SuggestedEdit) -> bool {
    if a.uri != b.uri {
        return false;
    }
    let (a, b) = (a.range, b.range);
    let inserts_at_same_point = a.start == a.end && b.start == b.end && a.start == b.start;
    inserts_at_same_point || (a.start < b.end && b.start < a.end)
}

/// Adds an action unless the same one is there already: "unused imports: `a`, `b`" is one
/// diagnostic per import, all with the same fix.
fn push_new(actions: &mut Vec<CodeAction>, action: CodeAction) {
    let same = actions
        .iter_mut()
        .find(|a| a.title == action.title && a.edit == action.edit && a.command == action.command);
    match same {
        Some(existing) => {
            if let (Some(list), Some(more)) = (&mut existing.diagnostics, action.diagnostics) {
                list.extend(more);
            }
        }
        None => actions.push(action),
    }
}

/// The current texts of files, each asked for at most once per request.
struct Texts<'a> {
    text_of: &'a mut dyn FnMut(&Uri) -> Option<String>,
    cache: HashMap<Uri, Option<String>>,
}

impl Texts<'_> {
    /// Whether every edit's lines read as rustc compiled them.
    fn fresh(&mut self, edits: &[SuggestedEdit]) -> bool {
        !edits.is_empty() && edits.iter().all(|e| self.fresh_edit(e))
    }

    fn fresh_edit(&mut self, edit: &SuggestedEdit) -> bool {
        let Some(compiled) = &edit.compiled else {
            return false;
        };
        let text_of = &mut self.text_of;
        let text = self
            .cache
            .entry(edit.uri.clone())
            .or_insert_with(|| text_of(&edit.uri));
        let Some(text) = text else {
            return false;
        };
        let lines = documents::lines(text);
        let first = edit.range.start.line as usize;
        let spanned = edit.range.end.line.checked_sub(edit.range.start.line);
        spanned.map(|n| n as usize + 1) == Some(compiled.len())
            && compiled
                .iter()
                .enumerate()
                .all(|(i, line)| lines.get(first + i) == Some(&line.as_str()))
    }
}

#[cfg(test)]
mod tests;
