//! The conversion of real rustc diagnostics (captured from rustc 1.95 on the e2e fixtures,
//! in `lsp/testdata/`) into LSP diagnostics.

use std::path::{Path, PathBuf};

use buildd_daemon::protocol::{Diagnostic as DaemonDiagnostic, Severity};
use serde_json::json;
use tower_lsp_server::ls_types::{DiagnosticSeverity, DiagnosticTag, NumberOrString, Range};

use super::*;

const ROOT: &str = "/w";

fn daemon(rustc_json: &str) -> DaemonDiagnostic {
    let rustc: RustcDiagnostic = serde_json::from_str(rustc_json).unwrap();
    DaemonDiagnostic {
        file: PathBuf::from("/w/src/lib.rs"),
        line: 1,
        column: 1,
        severity: Severity::Error,
        message: rustc.message.clone(),
        package: "fixture".into(),
        rustc,
    }
}

fn ctx(encoding: Encoding, related_information: bool) -> Context<'static> {
    Context {
        root: Path::new(ROOT),
        encoding,
        related_information,
    }
}

fn range(l1: u32, c1: u32, l2: u32, c2: u32) -> Range {
    Range::new(Position::new(l1, c1), Position::new(l2, c2))
}

/// The related information as (range, message) pairs, all in `/w/src/lib.rs`.
fn related(d: &Diagnostic) -> Vec<(Range, String)> {
    d.related_information
        .iter()
        .flatten()
        .map(|r| {
            assert_eq!(r.location.uri.as_str(), "file:///w/src/lib.rs");
            (r.location.range, r.message.clone())
        })
        .collect()
}

fn one(placed: Vec<Placed>) -> Diagnostic {
    assert_eq!(placed.len(), 1, "{placed:#?}");
    assert_eq!(placed[0].file, Path::new("/w/src/lib.rs"));
    placed.into_iter().next().unwrap().diagnostic
}

#[test]
fn columns_after_an_emoji_and_an_accent_count_utf16_units() {
    let d = one(convert(
        ctx(Encoding::Utf16, true),
        &daemon(include_str!("../../testdata/unicode.json")),
    ));
    // rustc: columns 36..39 in characters; the emoji before them is two UTF-16 units.
    assert_eq!(d.range, range(4, 36, 4, 39));
    assert_eq!(
        related(&d),
        vec![(range(4, 30, 4, 33), "expected due to this".to_owned())]
    );
    assert_eq!(d.severity, Some(DiagnosticSeverity::ERROR));
    assert_eq!(d.source.as_deref(), Some("buildd"));
    assert_eq!(d.code, Some(NumberOrString::String("E0308".into())));
    assert_eq!(
        d.code_description.unwrap().href.as_str(),
        "https://doc.rust-lang.org/error_codes/E0308.html"
    );
    assert_eq!(d.message, "mismatched types\nexpected `u32`, found `&str`");
}

#[test]
fn columns_count_bytes_when_utf8_was_negotiated() {
    let d = one(convert(
        ctx(Encoding::Utf8, true),
        &daemon(include_str!("../../testdata/unicode.json")),
    ));
    // The emoji is four bytes and each accented letter two.
    assert_eq!(d.range, range(4, 39, 4, 43));
    assert_eq!(related(&d)[0].0, range(4, 33, 4, 36));
}

#[test]
fn an_error_in_a_macro_body_points_at_the_call_and_the_definition() {
    let d = one(convert(
        ctx(Encoding::Utf16, true),
        &daemon(include_str!("../../testdata/macro.json")),
    ));
    // `"forty-two"` in the body of `make_answer!`, which is in the workspace.
    assert_eq!(d.range, range(5, 12, 5, 23));
    let related = related(&d);
    assert!(
        related.contains(&(
            range(10, 0, 10, 20),
            "in this expansion of `make_answer!`".to_owned()
        )),
        "{related:#?}"
    );
    assert!(
        related.contains(&(
            range(2, 0, 2, 24),
            "`make_answer!` is defined here".to_owned()
        )),
        "{related:#?}"
    );
    assert!(related.contains(&(
        range(4, 26, 4, 29),
        "expected `u32` because of return type".to_owned()
    )));
}

#[test]
fn an_error_inside_a_std_macro_is_placed_at_the_call_in_the_workspace() {
    let d = one(convert(
        ctx(Encoding::Utf16, true),
        &daemon(include_str!("../../testdata/std_macro.json")),
    ));
    // `assert_eq!(S, S)`: rustc's primary span is in /rustc/<hash>/library/core, which no
    // client can open; the call site is where the user can act.
    assert_eq!(d.range, range(2, 4, 2, 20));
    let related = related(&d);
    assert!(
        related.iter().all(|(_, m)| !m.contains("/rustc/")),
        "{related:#?}"
    );
    assert!(related.contains(&(
        range(0, 0, 0, 12),
        "note: an implementation of `PartialEq` might be missing for `S`".to_owned()
    )));
    let data = d.data.unwrap();
    assert_eq!(
        data["suggestions"][0]["edits"][0]["newText"],
        "#[derive(PartialEq)]\n"
    );
    assert_eq!(data["suggestions"][0]["applicability"], "MaybeIncorrect");
}

#[test]
fn a_borrow_error_relates_the_move_and_keeps_the_clone_suggestion() {
    let d = one(convert(
        ctx(Encoding::Utf16, true),
        &daemon(include_str!("../../testdata/borrow.json")),
    ));
    assert_eq!(d.range, range(10, 12, 10, 18));
    assert_eq!(
        d.message,
        "borrow of moved value: `values`\nvalue borrowed here after move"
    );
    let related = related(&d);
    for expected in [
        (range(9, 24, 9, 30), "value moved here"),
        (
            range(8, 8, 8, 14),
            "move occurs because `values` has type `Vec<u32>`, which does not implement the `Copy` trait",
        ),
        (
            range(3, 23, 3, 31),
            "note: consider changing this parameter type in function `consume` to borrow instead if owning the value isn't necessary",
        ),
        (
            range(9, 30, 9, 30),
            "help: consider cloning the value if the performance cost is acceptable: `.clone()`",
        ),
    ] {
        assert!(
            related.contains(&(expected.0, expected.1.to_owned())),
            "{expected:?} not in {related:#?}"
        );
    }
    let data = d.data.unwrap();
    assert_eq!(
        data["suggestions"],
        json!([{
            "message": "consider cloning the value if the performance cost is acceptable",
            "applicability": "MachineApplicable",
            "edits": [{
                "uri": "file:///w/src/lib.rs",
                "range": {"start": {"line": 9, "character": 30}, "end": {"line": 9, "character": 30}},
                "newText": ".clone()"
            }]
        }])
    );
    assert!(data["rendered"].as_str().unwrap().contains("E0382"));
}

#[test]
fn without_related_information_the_places_are_folded_into_the_message() {
    let d = one(convert(
        ctx(Encoding::Utf16, false),
        &daemon(include_str!("../../testdata/borrow.json")),
    ));
    assert_eq!(d.related_information, None);
    assert!(
        d.message.contains("\nvalue moved here (src/lib.rs:10:25)"),
        "{}",
        d.message
    );
    assert!(d.message.contains("help: consider cloning the value"));
}

#[test]
fn a_diagnostic_without_spans_lands_on_the_daemons_file_with_its_notes() {
    let json = r#"{"message":"`main` function not found in crate `app`","code":{"code":"E0601","explanation":null},"level":"error","spans":[],"children":[{"message":"consider adding a `main` function to `src/main.rs`","code":null,"level":"note","spans":[],"children":[],"rendered":null}],"rendered":null}"#;
    let d = one(convert(ctx(Encoding::Utf16, true), &daemon(json)));
    assert_eq!(d.range, range(0, 0, 0, 0));
    assert_eq!(
        d.message,
        "`main` function not found in crate `app`\nnote: consider adding a `main` function to `src/main.rs`"
    );
}

#[test]
fn line_text_missing_from_the_span_is_read_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("src")).unwrap();
    std::fs::write(
        root.join("src/lib.rs"),
        "// 😀😀\nfn x() { let é = 1u8; }\n",
    )
    .unwrap();
    let json = json!({
        "message": "unused variable: `é`", "code": {"code": "unused_variables", "explanation": null},
        "level": "warning", "children": [], "rendered": null,
        "spans": [{"file_name": "src/lib.rs", "byte_start": 0, "byte_end": 0, "line_start": 1,
                   "line_end": 1, "column_start": 4, "column_end": 6, "is_primary": true,
                   "text": [], "label": null, "suggested_replacement": null,
                   "suggestion_applicability": null, "expansion": null}]
    });
    let context = Context {
        root,
        encoding: Encoding::Utf16,
        related_information: true,
    };
    let placed = convert(context, &daemon(&json.to_string()));
    let d = &placed[0].diagnostic;
    assert_eq!(placed[0].file, root.join("src/lib.rs"));
    assert_eq!(d.range, range(0, 3, 0, 7));
    assert_eq!(d.severity, Some(DiagnosticSeverity::WARNING));
    assert_eq!(d.tags, Some(vec![DiagnosticTag::UNNECESSARY]));
    assert_eq!(d.code_description, None);
}

#[test]
fn explanation_links_for_rustc_errors_and_clippy_lints() {
    let link = |code| explanation_link(code).map(|u| u.as_str().to_owned());
    assert_eq!(
        link("E0382").as_deref(),
        Some("https://doc.rust-lang.org/error_codes/E0382.html")
    );
    assert_eq!(
        link("clippy::needless_return").as_deref(),
        Some("https://rust-lang.github.io/rust-clippy/master/index.html#needless_return")
    );
    assert_eq!(link("unused_variables"), None);
    assert_eq!(link("E03"), None);
}

#[test]
fn a_note_whose_only_place_is_in_the_standard_library_goes_into_the_message() {
    let mut rustc: serde_json::Value =
        serde_json::from_str(include_str!("../../testdata/std_macro.json")).unwrap();
    rustc["children"][0]["spans"][0]["file_name"] =
        json!("/rustc/0000000000000000000000000000000000000000/library/core/src/cmp.rs");
    let d = one(convert(
        ctx(Encoding::Utf16, true),
        &daemon(&rustc.to_string()),
    ));
    assert!(
        d.message
            .contains("\nnote: an implementation of `PartialEq` might be missing for `S`"),
        "{}",
        d.message
    );
    assert!(
        related(&d)
            .iter()
            .all(|(_, m)| !m.contains("might be missing")),
        "the note is not related to a place no client can open"
    );
}
