//! Diagnostics: turning cargo's compiler messages into [`Diagnostic`]s placed in the
//! workspace, and keeping the current set per file.
//!
//! The store is keyed by file and stamped with the job that reported each file's entries,
//! by the rule of `wire/stamped.rs` (which `buildd lsp` applies too): a job's first
//! diagnostic for a file replaces what older jobs said of it; when a job ends (not
//! cancelled), files it said nothing about are cleared. So a file's entries always come from
//! one job, and an older job never overwrites a newer one.

use std::path::{Path, PathBuf};

use cargo_metadata::diagnostic::{DiagnosticLevel, DiagnosticSpan};
use cargo_metadata::{CompilerMessage, PackageId};

use crate::wire::protocol::{
    Diagnostic, DiagnosticSummary, FailingTest, FileDiagnostics, Severity,
};
use crate::wire::stamped::Stamped;

/// Whether cargo counts `package` as local, a path package (the workspace's members and
/// their path dependencies): cargo caps the lints of every other package at `allow`, and
/// shows none of their warnings, except with `-vv`, where it caps them at `warn` and shows
/// them. The diagnostics stage runs with `-vv` when it records compiler commands
/// (`cargo_run.rs`, `record`).
pub(crate) fn is_local(package: &PackageId) -> bool {
    // `path+file:///w/core#0.1.0` since cargo 1.77; `core 0.1.0 (path+file:///w/core)` before.
    package.repr.starts_with("path+") || package.repr.contains(" (path+")
}

/// Converts a compiler message, or returns `None` for rustc's summaries ("aborting due to
/// 2 previous errors", "3 warnings emitted") and notes that carry no place of their own.
pub(crate) fn convert(root: &Path, message: CompilerMessage) -> Option<Diagnostic> {
    convert_rustc(
        root,
        &package_name(&message.package_id),
        message.target.src_path.as_std_path(),
        message.message,
    )
}

/// [`convert`] for rustc's own diagnostic of a crate of `package` whose root is `src_path`
/// (where an error without a place goes).
pub(crate) fn convert_rustc(
    root: &Path,
    package: &str,
    src_path: &Path,
    rustc: cargo_metadata::diagnostic::Diagnostic,
) -> Option<Diagnostic> {
    let severity = match rustc.level {
        DiagnosticLevel::Ice | DiagnosticLevel::Error => Severity::Error,
        DiagnosticLevel::Warning => Severity::Warning,
        DiagnosticLevel::Note => Severity::Note,
        DiagnosticLevel::Help => Severity::Help,
        _ => return None,
    };
    let (file, line, column) = match rustc.spans.iter().find(|s| s.is_primary) {
        Some(span) => {
            let span = workspace_span(root, span);
            (
                resolve(root, &span.file_name),
                span.line_start as u32,
                span.column_start as u32,
            )
        }
        None if is_summary(&rustc.message) => return None,
        // Errors without a span (a missing `main`, a failed link) belong to the target.
        None => (src_path.to_path_buf(), 1, 1),
    };
    Some(Diagnostic {
        file,
        line,
        column,
        severity,
        message: rustc.message.clone(),
        package: package.to_owned(),
        rustc,
    })
}

/// A failing test with a known place, as a diagnostic at that place. rustc's part is made
/// up in rustc's own JSON shape, so that every edge converts it like any other.
pub(crate) fn test_failure(root: &Path, failing: &FailingTest) -> Option<Diagnostic> {
    let file = resolve(root, failing.file.as_ref()?.to_str()?);
    let line = failing.line?;
    let column = failing.column.unwrap_or(1);
    let message = match &failing.message {
        Some(m) => format!("test `{}` failed: {m}", failing.name),
        None => format!("test `{}` failed", failing.name),
    };
    let relative = file
        .strip_prefix(root)
        .unwrap_or(&file)
        .to_string_lossy()
        .into_owned();
    let rustc = serde_json::from_value(serde_json::json!({
        "message": message,
        "code": null,
        "level": "error",
        "spans": [{
            "file_name": relative,
            "byte_start": 0, "byte_end": 0,
            "line_start": line, "line_end": line,
            "column_start": column, "column_end": column,
            "is_primary": true, "text": [], "label": null,
            "suggested_replacement": null, "suggestion_applicability": null, "expansion": null
        }],
        "children": [],
        "rendered": format!("error: {message}\n --> {relative}:{line}:{column}\n"),
    }))
    .ok()?;
    Some(Diagnostic {
        file,
        line,
        column,
        severity: Severity::Error,
        message,
        package: String::new(),
        rustc,
    })
}

fn is_summary(message: &str) -> bool {
    message.starts_with("aborting due to")
        || (message.ends_with(" emitted")
            && message
                .split(' ')
                .next()
                .is_some_and(|n| n.parse::<u64>().is_ok()))
}

/// The span to show: the primary one, or for a span inside a macro defined outside the
/// workspace, the macro call in the workspace that expanded to it.
pub(crate) fn workspace_span<'a>(root: &Path, span: &'a DiagnosticSpan) -> &'a DiagnosticSpan {
    let mut current = span;
    loop {
        if in_workspace(root, &current.file_name) {
            return current;
        }
        match &current.expansion {
            Some(expansion) => current = &expansion.span,
            None => return span,
        }
    }
}

fn in_workspace(root: &Path, file_name: &str) -> bool {
    let path = Path::new(file_name);
    !file_name.starts_with('<') && (path.is_relative() || path.starts_with(root))
}

/// rustc names files relative to the workspace root, where cargo runs it.
pub(crate) fn resolve(root: &Path, file_name: &str) -> PathBuf {
    let path = Path::new(file_name);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    }
}

#[derive(Debug, Default)]
pub(crate) struct DiagnosticStore {
    /// Each file's diagnostics, stamped with the job that reported them (the rule both sides
    /// of the wire apply, in `wire/stamped.rs`).
    files: Stamped<(), u64, Diagnostic>,
    /// The newest job that reported; older jobs are stale.
    latest: u64,
}

/// Whether two diagnostics are one: a later stage replays the cached messages of units an
/// earlier stage compiled, and clippy and build say the same warning, so the place, the
/// severity and the message decide, not the stage or the rendered text.
fn same(a: &Diagnostic, b: &Diagnostic) -> bool {
    (a.line, a.column, a.severity, &a.message) == (b.line, b.column, b.severity, &b.message)
}

impl DiagnosticStore {
    /// Adds a diagnostic of `job`. Returns false for a duplicate within the job and for a
    /// diagnostic of a job older than the newest one that reported.
    pub(crate) fn add(&mut self, job: u64, diagnostic: &Diagnostic) -> bool {
        if job < self.latest {
            return false;
        }
        self.latest = job;
        self.files
            .add(&diagnostic.file, &(), job, diagnostic.clone(), same)
    }

    /// Ends `job`: files whose entries are older are cleared. Returns the cleared files.
    pub(crate) fn finish(&mut self, job: u64) -> Vec<PathBuf> {
        self.files.finish(&(), job)
    }

    /// Every file's diagnostics with the job that reported them, for the `diagnostics` reply.
    pub(crate) fn files(&self) -> Vec<FileDiagnostics> {
        self.files
            .iter()
            .map(|(file, entry)| FileDiagnostics {
                file: file.clone(),
                job: entry.generation,
                diagnostics: entry.items.clone(),
            })
            .collect()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files.iter().flat_map(|(_, e)| e.items.iter())
    }

    pub(crate) fn summaries(&self) -> Vec<DiagnosticSummary> {
        let mut all: Vec<DiagnosticSummary> = self.iter().map(Diagnostic::summary).collect();
        all.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        all
    }

    pub(crate) fn count(&self, severity: Severity) -> u64 {
        self.iter().filter(|d| d.severity == severity).count() as u64
    }
}

/// The package name in a cargo package id: `path+file:///w/core#core-lib@0.1.0` names it
/// after `#`; `path+file:///w/core-lib#0.1.0` leaves it to the path's last segment.
pub(crate) fn package_name(id: &PackageId) -> String {
    let repr = id.repr.as_str();
    let (url, fragment) = repr.rsplit_once('#').unwrap_or((repr, ""));
    match fragment.split_once('@') {
        Some((name, _)) => name.to_owned(),
        None => url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(url)
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiler_message(json: &str) -> CompilerMessage {
        serde_json::from_str(json).unwrap()
    }

    const TYPE_ERROR: &str = r#"{"package_id":"path+file:///w/core#core-lib@0.1.0","manifest_path":"/w/core/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"core_lib","src_path":"/w/core/src/lib.rs","edition":"2021","doc":true,"doctest":true,"test":true},"message":{"rendered":"error[E0308]: mismatched types\n","$message_type":"diagnostic","children":[],"code":{"code":"E0308","explanation":"x"},"level":"error","message":"mismatched types","spans":[{"byte_end":40,"byte_start":38,"column_end":20,"column_start":18,"expansion":null,"file_name":"core/src/lib.rs","is_primary":true,"label":"expected `u32`, found `&str`","line_end":3,"line_start":3,"suggested_replacement":null,"suggestion_applicability":null,"text":[]}]}}"#;

    #[test]
    fn type_error_is_placed_in_the_workspace() {
        let d = convert(Path::new("/w"), compiler_message(TYPE_ERROR)).unwrap();
        assert_eq!(d.file, Path::new("/w/core/src/lib.rs"));
        assert_eq!((d.line, d.column), (3, 18));
        assert_eq!(d.severity, Severity::Error);
        assert_eq!(d.package, "core-lib");
    }

    #[test]
    fn only_path_packages_are_local_as_cargo_counts_them() {
        let id = |repr: &str| PackageId {
            repr: repr.to_owned(),
        };
        assert!(is_local(&id("path+file:///w/core#core-lib@0.1.0")));
        assert!(is_local(&id("core-lib 0.1.0 (path+file:///w/core)")));
        assert!(!is_local(&id(
            "registry+https://github.com/rust-lang/crates.io-index#memchr@2.7.4"
        )));
        assert!(!is_local(&id(
            "git+https://example.com/x.git?rev=1#x@0.1.0"
        )));
        assert!(!is_local(&id(
            "memchr 2.7.4 (registry+https://github.com/rust-lang/crates.io-index)"
        )));
    }

    #[test]
    fn summaries_are_dropped() {
        let json = TYPE_ERROR
            .replace(
                r#""message":"mismatched types""#,
                r#""message":"aborting due to 1 previous error""#,
            )
            .replace(r#""spans":[{"#, r#""spans":[],"x":[{"#);
        assert!(convert(Path::new("/w"), compiler_message(&json)).is_none());
    }

    #[test]
    fn newer_job_replaces_a_file_and_finish_clears_the_rest() {
        let d = convert(Path::new("/w"), compiler_message(TYPE_ERROR)).unwrap();
        let mut other = d.clone();
        other.file = PathBuf::from("/w/app/src/main.rs");
        let mut store = DiagnosticStore::default();
        assert!(store.add(1, &d));
        assert!(!store.add(1, &d), "a replay in the same job is a duplicate");
        assert!(store.add(1, &other));
        assert!(store.add(2, &d));
        assert_eq!(store.iter().count(), 2);
        assert!(
            !store.add(1, &other),
            "an older job never overwrites a newer one"
        );
        assert_eq!(store.finish(2), vec![PathBuf::from("/w/app/src/main.rs")]);
        assert_eq!(store.count(Severity::Error), 1);
    }

    #[test]
    fn files_carry_the_job_that_reported_them() {
        let d = convert(Path::new("/w"), compiler_message(TYPE_ERROR)).unwrap();
        let mut other = d.clone();
        other.file = PathBuf::from("/w/app/src/main.rs");
        let mut store = DiagnosticStore::default();
        store.add(3, &other);
        store.add(4, &d);
        let files = store.files();
        let stamps: Vec<(&Path, u64, usize)> = files
            .iter()
            .map(|f| (f.file.as_path(), f.job, f.diagnostics.len()))
            .collect();
        assert_eq!(
            stamps,
            vec![
                (Path::new("/w/app/src/main.rs"), 3, 1),
                (Path::new("/w/core/src/lib.rs"), 4, 1)
            ]
        );
        assert_eq!(files[1].diagnostics[0], d);
    }

    #[test]
    fn package_names_from_both_id_forms() {
        let id = |repr: &str| PackageId { repr: repr.into() };
        assert_eq!(
            package_name(&id("path+file:///w/core#core-lib@0.1.0")),
            "core-lib"
        );
        assert_eq!(
            package_name(&id("path+file:///w/core-lib#0.1.0")),
            "core-lib"
        );
        assert_eq!(
            package_name(&id(
                "registry+https://github.com/rust-lang/crates.io-index#serde@1.0.0"
            )),
            "serde"
        );
    }
}
