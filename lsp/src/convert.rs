//! rustc's JSON diagnostics turned into LSP diagnostics.
//!
//! This module owns the mapping, in the manner of rust-analyzer's `diagnostics/to_proto.rs`:
//! where a diagnostic goes (the primary span, or for a span inside a macro expansion the first
//! span of the expansion chain that lies in the workspace), how positions convert (see
//! `position.rs`), which parts become `relatedInformation` (labelled secondary spans, child
//! notes and helps with a place, the macro call and definition), which are folded into the
//! message (children without a place, and everything related for clients that do not support
//! related information), and what is kept in `data` for a later quick fix (suggestions with
//! replacements). It is pure: it reads a file only to find a line's text when rustc did not
//! include it, and it never talks to the client.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use buildd_daemon::protocol::Diagnostic as DaemonDiagnostic;
use cargo_metadata::diagnostic::{
    Applicability, Diagnostic as RustcDiagnostic, DiagnosticLevel, DiagnosticSpan,
};
use serde::Serialize;
use tower_lsp_server::ls_types::{
    CodeDescription, Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag,
    Location, NumberOrString, Position, Range, Uri,
};

use crate::position::{Encoding, position};
use crate::uri;

/// What every diagnostic is labelled with, so users can tell buildd's from rust-analyzer's.
pub(crate) const SOURCE: &str = "buildd";

/// How to convert, for one session and one workspace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The workspace root: rustc names files relative to it.
    pub(crate) root: &'a Path,
    pub(crate) encoding: Encoding,
    /// Whether the client shows `relatedInformation`; if not, it goes into the message.
    pub(crate) related_information: bool,
}

/// An LSP diagnostic and the file it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Placed {
    pub(crate) file: PathBuf,
    pub(crate) diagnostic: Diagnostic,
    /// The suggestions of `diagnostic.data`, with what the code actions need beyond it.
    pub(crate) suggestions: Vec<Suggestion>,
}

/// A suggestion rustc made, kept in the diagnostic's `data` for a code action to apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Suggestion {
    pub(crate) message: String,
    /// rustc's confidence: `MachineApplicable`, `MaybeIncorrect`, `HasPlaceholders`,
    /// `Unspecified`.
    pub(crate) applicability: String,
    pub(crate) edits: Vec<SuggestedEdit>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SuggestedEdit {
    pub(crate) uri: Uri,
    pub(crate) range: Range,
    pub(crate) new_text: String,
    /// The lines the span covers as rustc saw them when it compiled (the first is at
    /// `range.start.line`), so that a fix is offered only while the file still reads so;
    /// `None` when rustc did not include them. Kept in the server, not sent.
    #[serde(skip)]
    pub(crate) compiled: Option<Vec<String>>,
}

/// The diagnostic's `data`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suggestions: Vec<Suggestion>,
    /// rustc's own rendering, for clients that can show the full compiler output.
    #[serde(skip_serializing_if = "Option::is_none")]
    rendered: Option<String>,
}

/// One related place, before it is either `relatedInformation` or a line of the message.
#[derive(Debug, Clone)]
struct Related {
    file: PathBuf,
    range: Range,
    message: String,
}

/// Converts one daemon diagnostic: one LSP diagnostic per primary span (rustc gives one
/// primary span almost always; "unused imports: `a`, `b`" gives one per import).
pub(crate) fn convert(ctx: Context<'_>, diagnostic: &DaemonDiagnostic) -> Vec<Placed> {
    let rustc = &diagnostic.rustc;
    let mut lines = Lines::default();

    // What every primary span's diagnostic shares: the labelled secondary spans, the
    // children, and their suggestions.
    let mut shared = Vec::new();
    let mut notes = Vec::new();
    let mut suggestions = Vec::new();
    for span in rustc.spans.iter().filter(|s| !s.is_primary) {
        if let Some(label) = span.label.as_deref().filter(|l| !l.is_empty())
            && let Some((file, range)) = place(ctx, span, &mut lines)
        {
            shared.push(Related {
                file,
                range,
                message: label.to_owned(),
            });
        }
    }
    for child in &rustc.children {
        child_parts(
            ctx,
            child,
            &mut lines,
            &mut shared,
            &mut notes,
            &mut suggestions,
        );
    }
    let parts = Parts {
        rustc,
        notes: &notes,
        suggestions: &suggestions,
    };

    let primaries: Vec<&DiagnosticSpan> = rustc.spans.iter().filter(|s| s.is_primary).collect();
    if primaries.is_empty() {
        // No span: a missing `main`, a failed link. The daemon placed it at the target's
        // source file; its first line is as good a place as any.
        let range = Range::new(Position::new(0, 0), Position::new(0, 0));
        return vec![Placed {
            file: diagnostic.file.clone(),
            diagnostic: parts.make(ctx, range, None, &shared),
            suggestions: suggestions.clone(),
        }];
    }
    primaries
        .into_iter()
        .map(|primary| {
            let (file, range) = primary_place(ctx, primary, &mut lines).unwrap_or_else(|| {
                (
                    diagnostic.file.clone(),
                    point(diagnostic.line as usize, diagnostic.column as usize),
                )
            });
            let mut related = macro_related(ctx, primary, (&file, range), &mut lines);
            related.extend(shared.iter().cloned());
            Placed {
                diagnostic: parts.make(ctx, range, primary.label.as_deref(), &related),
                file,
                suggestions: suggestions.clone(),
            }
        })
        .collect()
}

/// Splits a child (a note or help) into a related place, a line of the message when it has
/// no place, and a suggestion when it carries replacements.
fn child_parts(
    ctx: Context<'_>,
    child: &RustcDiagnostic,
    lines: &mut Lines,
    related: &mut Vec<Related>,
    notes: &mut Vec<String>,
    suggestions: &mut Vec<Suggestion>,
) {
    let level = level_word(child.level);
    if child.spans.is_empty() {
        notes.push(format!("{level}: {}", child.message));
    } else {
        let primaries: Vec<&DiagnosticSpan> = {
            let p: Vec<_> = child.spans.iter().filter(|s| s.is_primary).collect();
            if p.is_empty() {
                child.spans.iter().take(1).collect()
            } else {
                p
            }
        };
        let mut placed = false;
        for span in primaries {
            let Some((file, range)) = place(ctx, span, lines) else {
                continue;
            };
            placed = true;
            let mut message = format!("{level}: {}", child.message);
            if let Some(replacement) = span.suggested_replacement.as_deref()
                && !replacement.contains('\n')
                && !replacement.is_empty()
                && replacement.len() <= 80
            {
                message.push_str(&format!(": `{replacement}`"));
            }
            related.push(Related {
                file,
                range,
                message,
            });
        }
        if !placed {
            // Its places are all where no client can go (the standard library's sources):
            // the words still count.
            notes.push(format!("{level}: {}", child.message));
        }
        let edits: Vec<SuggestedEdit> = child
            .spans
            .iter()
            .filter_map(|span| {
                let new_text = span.suggested_replacement.clone()?;
                let (file, range) = place(ctx, span, lines)?;
                let lines = span.line_end.checked_sub(span.line_start).map(|n| n + 1);
                let compiled = (lines == Some(span.text.len()))
                    .then(|| span.text.iter().map(|l| l.text.clone()).collect());
                Some(SuggestedEdit {
                    uri: uri::from_path(&file)?,
                    range,
                    new_text,
                    compiled,
                })
            })
            .collect();
        if !edits.is_empty() {
            let applicability = child
                .spans
                .iter()
                .find_map(|s| s.suggestion_applicability.as_ref())
                .map_or("Unspecified", applicability);
            suggestions.push(Suggestion {
                message: child.message.clone(),
                applicability: applicability.to_owned(),
                edits,
            });
        }
    }
    for grandchild in &child.children {
        child_parts(ctx, grandchild, lines, related, notes, suggestions);
    }
}

/// Related places for a primary span inside macro expansions: where the error really is when
/// the diagnostic moved out of the macro, each call that expanded to it, and each macro's
/// definition.
fn macro_related(
    ctx: Context<'_>,
    primary: &DiagnosticSpan,
    shown: (&Path, Range),
    lines: &mut Lines,
) -> Vec<Related> {
    let mut related: Vec<Related> = Vec::new();
    let mut push = |file: PathBuf, range: Range, message: String| {
        let same_as_shown = file == shown.0 && range == shown.1;
        let duplicate = related
            .iter()
            .any(|r| r.file == file && r.range == range && r.message == message);
        if !same_as_shown && !duplicate {
            related.push(Related {
                file,
                range,
                message,
            });
        }
    };
    let Some(first) = primary.expansion.as_deref() else {
        return related;
    };
    if let Some((file, range)) = place(ctx, primary, lines) {
        push(
            file,
            range,
            format!("the error is here, inside `{}`", first.macro_decl_name),
        );
    }
    let mut expansion = Some(first);
    while let Some(e) = expansion {
        if let Some((file, range)) = place(ctx, &e.span, lines) {
            push(
                file,
                range,
                format!("in this expansion of `{}`", e.macro_decl_name),
            );
        }
        if let Some(def) = &e.def_site_span
            && let Some((file, range)) = place(ctx, def, lines)
        {
            push(
                file,
                range,
                format!("`{}` is defined here", e.macro_decl_name),
            );
        }
        expansion = e.span.expansion.as_deref();
    }
    related
}

/// Where a primary span is shown: the first span of its macro expansion chain (innermost
/// first) that lies in the workspace, else the outermost call site, else nowhere.
fn primary_place(
    ctx: Context<'_>,
    primary: &DiagnosticSpan,
    lines: &mut Lines,
) -> Option<(PathBuf, Range)> {
    let chain: Vec<&DiagnosticSpan> =
        std::iter::successors(Some(primary), |s| s.expansion.as_deref().map(|e| &e.span)).collect();
    chain
        .iter()
        .find(|s| in_workspace(ctx.root, &s.file_name))
        .or(chain.last())
        .and_then(|s| place(ctx, s, lines))
}

/// A span's file and range, when the file is one a client can open: in the workspace, or an
/// existing file elsewhere (a dependency's source in cargo's registry). Macro placeholders
/// (`<::core::macros::panic macros>`) and the standard library's `/rustc/<hash>/` paths are
/// not.
fn place(ctx: Context<'_>, span: &DiagnosticSpan, lines: &mut Lines) -> Option<(PathBuf, Range)> {
    if span.file_name.starts_with('<') {
        return None;
    }
    let file = resolve(ctx.root, &span.file_name);
    if !file.starts_with(ctx.root) && !file.is_file() {
        return None;
    }
    let start_text = span_line(span, span.line_start).or_else(|| lines.get(&file, span.line_start));
    let start = position(
        span.line_start,
        span.column_start,
        start_text.as_deref(),
        ctx.encoding,
    );
    let end_text = span_line(span, span.line_end).or_else(|| lines.get(&file, span.line_end));
    let end = position(
        span.line_end,
        span.column_end,
        end_text.as_deref(),
        ctx.encoding,
    );
    Some((file, Range::new(start, end)))
}

/// The text of a line of the span, as rustc saw it when compiling (it includes every line a
/// span covers). Preferred over the file, which may have changed since.
fn span_line(span: &DiagnosticSpan, line: usize) -> Option<String> {
    let index = line.checked_sub(span.line_start)?;
    span.text.get(index).map(|l| l.text.clone())
}

fn in_workspace(root: &Path, file_name: &str) -> bool {
    let path = Path::new(file_name);
    !file_name.starts_with('<') && (path.is_relative() || path.starts_with(root))
}

/// rustc names files relative to the workspace root, where cargo runs it.
fn resolve(root: &Path, file_name: &str) -> PathBuf {
    let path = Path::new(file_name);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    }
}

fn point(line: usize, column: usize) -> Range {
    let p = position(line, column, None, Encoding::Utf16);
    Range::new(p, p)
}

/// The parts of a diagnostic shared by all of its primary spans.
struct Parts<'a> {
    rustc: &'a RustcDiagnostic,
    /// Children without a place, as message lines.
    notes: &'a [String],
    suggestions: &'a [Suggestion],
}

impl Parts<'_> {
    fn make(
        &self,
        ctx: Context<'_>,
        range: Range,
        label: Option<&str>,
        related: &[Related],
    ) -> Diagnostic {
        let rustc = self.rustc;
        let code = rustc.code.as_ref().map(|c| c.code.clone());
        let related_information = ctx
            .related_information
            .then(|| {
                related
                    .iter()
                    .filter_map(|r| {
                        Some(DiagnosticRelatedInformation {
                            location: Location::new(uri::from_path(&r.file)?, r.range),
                            message: r.message.clone(),
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|r| !r.is_empty());
        let data = Data {
            suggestions: self.suggestions.to_vec(),
            rendered: rustc.rendered.clone(),
        };
        Diagnostic {
            range,
            severity: Some(severity(rustc.level)),
            code_description: code
                .as_deref()
                .and_then(explanation_link)
                .map(|href| CodeDescription { href }),
            tags: code.as_deref().and_then(tags),
            code: code.map(NumberOrString::String),
            source: Some(SOURCE.to_owned()),
            message: self.message(ctx, label, related),
            related_information,
            data: serde_json::to_value(data).ok(),
        }
    }

    /// rustc's message, the primary span's label, the notes without a place, and for
    /// clients without related information, the related places as lines.
    fn message(&self, ctx: Context<'_>, label: Option<&str>, related: &[Related]) -> String {
        let text = &self.rustc.message;
        let mut message = text.clone();
        if let Some(label) = label.filter(|l| !l.is_empty() && l != text) {
            message.push('\n');
            message.push_str(label);
        }
        for note in self.notes {
            message.push('\n');
            message.push_str(note);
        }
        if !ctx.related_information {
            for r in related {
                let shown = r.file.strip_prefix(ctx.root).unwrap_or(&r.file);
                message.push_str(&format!(
                    "\n{} ({}:{}:{})",
                    r.message,
                    shown.display(),
                    r.range.start.line + 1,
                    r.range.start.character + 1
                ));
            }
        }
        message
    }
}

fn severity(level: DiagnosticLevel) -> DiagnosticSeverity {
    match level {
        DiagnosticLevel::Ice | DiagnosticLevel::Error => DiagnosticSeverity::ERROR,
        DiagnosticLevel::Warning => DiagnosticSeverity::WARNING,
        DiagnosticLevel::Help => DiagnosticSeverity::HINT,
        _ => DiagnosticSeverity::INFORMATION,
    }
}

fn level_word(level: DiagnosticLevel) -> &'static str {
    match level {
        DiagnosticLevel::Ice | DiagnosticLevel::Error => "error",
        DiagnosticLevel::Warning => "warning",
        DiagnosticLevel::Help => "help",
        _ => "note",
    }
}

fn applicability(a: &Applicability) -> &'static str {
    match a {
        Applicability::MachineApplicable => "MachineApplicable",
        Applicability::HasPlaceholders => "HasPlaceholders",
        Applicability::MaybeIncorrect => "MaybeIncorrect",
        _ => "Unspecified",
    }
}

/// The page that explains a code: rustc's error index for `E0308`, clippy's lint list for
/// `clippy::needless_return`. rustc's own lints (`unused_variables`) have no page per lint.
pub(crate) fn explanation_link(code: &str) -> Option<Uri> {
    let href = if let Some(lint) = code.strip_prefix("clippy::") {
        format!("https://rust-lang.github.io/rust-clippy/master/index.html#{lint}")
    } else if code.len() == 5
        && code.starts_with('E')
        && code[1..].bytes().all(|b| b.is_ascii_digit())
    {
        format!("https://doc.rust-lang.org/error_codes/{code}.html")
    } else {
        return None;
    };
    Uri::from_str(&href).ok()
}

/// Unused code fades and deprecated code is struck through in clients that show tags.
fn tags(code: &str) -> Option<Vec<DiagnosticTag>> {
    if code == "dead_code" || code.starts_with("unused_") {
        Some(vec![DiagnosticTag::UNNECESSARY])
    } else if code == "deprecated" {
        Some(vec![DiagnosticTag::DEPRECATED])
    } else {
        None
    }
}

/// Lines of files read from disk, for spans whose text rustc left out; each file is read at
/// most once per conversion.
#[derive(Default)]
struct Lines {
    files: HashMap<PathBuf, Option<Vec<String>>>,
}

impl Lines {
    fn get(&mut self, file: &Path, line: usize) -> Option<String> {
        let lines = self.files.entry(file.to_path_buf()).or_insert_with(|| {
            let text = std::fs::read(file).ok()?;
            Some(
                String::from_utf8_lossy(&text)
                    .split('\n')
                    .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
                    .collect(),
            )
        });
        lines.as_ref()?.get(line.checked_sub(1)?).cloned()
    }
}

#[cfg(test)]
mod tests;
