use std::str::FromStr;

use serde_json::json;
use tower_lsp_server::ls_types::{Diagnostic, Position};

use super::*;

fn uri(name: &str) -> Uri {
    Uri::from_str(&format!("file:///w/src/{name}")).unwrap()
}

fn range(l1: u32, c1: u32, l2: u32, c2: u32) -> Range {
    Range::new(Position::new(l1, c1), Position::new(l2, c2))
}

/// The fixture text the "compiler" saw.
const TEXT: &str = "use std::fmt::Write;\nuse std::io::Read;\n\npub fn f() { let x = 1; }\n";

fn edit(file: &str, r: Range, new_text: &str) -> SuggestedEdit {
    let lines = documents::lines(TEXT);
    let compiled = (r.start.line..=r.end.line)
        .map(|l| lines[l as usize].to_owned())
        .collect();
    SuggestedEdit {
        uri: uri(file),
        range: r,
        new_text: new_text.to_owned(),
        compiled: Some(compiled),
    }
}

fn item(message: &str, at: Range, suggestions: Vec<Suggestion>) -> Item {
    Item {
        diagnostic: Diagnostic {
            range: at,
            message: message.to_owned(),
            data: Some(json!({"rendered": format!("warning: {message}\n --> src/lib.rs\n")})),
            ..Default::default()
        },
        suggestions,
    }
}

fn suggestion(message: &str, applicability: &str, edits: Vec<SuggestedEdit>) -> Suggestion {
    Suggestion {
        message: message.to_owned(),
        applicability: applicability.to_owned(),
        edits,
    }
}

fn items() -> Vec<Item> {
    let remove_write = suggestion(
        "remove the whole `use` item",
        "MachineApplicable",
        vec![edit("lib.rs", range(0, 0, 1, 0), "")],
    );
    let remove_read = suggestion(
        "remove the whole `use` item",
        "MachineApplicable",
        vec![edit("lib.rs", range(1, 0, 2, 0), "")],
    );
    let underscore = suggestion(
        "if this is intentional, prefix it with an underscore",
        "MaybeIncorrect",
        vec![edit("lib.rs", range(3, 17, 3, 18), "_x")],
    );
    let vague = suggestion(
        "something",
        "Unspecified",
        vec![edit("lib.rs", range(3, 17, 3, 18), "y")],
    );
    vec![
        item(
            "unused import: `std::fmt::Write`",
            range(0, 4, 0, 19),
            vec![remove_write],
        ),
        item(
            "unused import: `std::io::Read`",
            range(1, 4, 1, 17),
            vec![remove_read],
        ),
        item(
            "unused variable: `x`",
            range(3, 17, 3, 18),
            vec![underscore, vague],
        ),
    ]
}

fn run(items: &[Item], at: Range, only: Option<&[CodeActionKind]>, text: &str) -> Vec<CodeAction> {
    let mut text_of = |_: &Uri| Some(text.to_owned());
    actions(items, at, only, &mut text_of)
        .into_iter()
        .map(|a| match a {
            CodeActionOrCommand::CodeAction(a) => a,
            CodeActionOrCommand::Command(c) => panic!("a bare command: {c:?}"),
        })
        .collect()
}

fn titles(actions: &[CodeAction]) -> Vec<&str> {
    actions.iter().map(|a| a.title.as_str()).collect()
}

#[test]
fn a_machine_applicable_fix_is_preferred_and_its_edit_exact() {
    let found = run(
        &items(),
        range(0, 6, 0, 6),
        Some(&[CodeActionKind::QUICKFIX]),
        TEXT,
    );
    assert_eq!(
        titles(&found),
        vec![
            "remove the whole `use` item",
            "Show the full compiler output (buildd)"
        ]
    );
    let fix = &found[0];
    assert_eq!(fix.is_preferred, Some(true));
    let changes = fix.edit.as_ref().unwrap().changes.as_ref().unwrap();
    assert_eq!(
        changes[&uri("lib.rs")],
        vec![TextEdit::new(range(0, 0, 1, 0), String::new())]
    );
    let show = found[1].command.as_ref().unwrap();
    assert_eq!(show.command, SHOW_RENDERED);
    assert!(
        show.arguments.as_ref().unwrap()[0]["rendered"]
            .as_str()
            .unwrap()
            .starts_with("warning: unused import")
    );
}

#[test]
fn maybe_incorrect_is_offered_unpreferred_and_unspecified_is_left_out() {
    let found = run(&items(), range(3, 17, 3, 17), None, TEXT);
    let fixes: Vec<&CodeAction> = found.iter().filter(|a| a.edit.is_some()).collect();
    assert_eq!(
        fixes[0].title,
        "if this is intentional, prefix it with an underscore: `_x`"
    );
    assert_eq!(fixes[0].is_preferred, Some(false));
    assert!(
        found.iter().all(|a| a.title != "something: `y`"),
        "{:?}",
        titles(&found)
    );
    // With no filter, the file's fix-all comes too.
    assert!(found.iter().any(|a| a.kind == Some(FIX_ALL)));
}

#[test]
fn fix_all_takes_every_machine_applicable_fix_of_the_file_at_once() {
    let found = run(
        &items(),
        range(3, 0, 3, 0),
        Some(&[CodeActionKind::SOURCE_FIX_ALL]),
        TEXT,
    );
    assert_eq!(found.len(), 1, "{:?}", titles(&found));
    let all = &found[0];
    assert_eq!(all.kind, Some(FIX_ALL));
    assert_eq!(
        all.title,
        "Apply the 2 machine-applicable fixes of this file (buildd)"
    );
    let edits = &all.edit.as_ref().unwrap().changes.as_ref().unwrap()[&uri("lib.rs")];
    assert_eq!(
        edits.iter().map(|e| e.range).collect::<Vec<_>>(),
        vec![range(0, 0, 1, 0), range(1, 0, 2, 0)],
        "edits that only meet at a line start both apply"
    );
    assert_eq!(all.diagnostics.as_ref().unwrap().len(), 2);
    // `source` asks for it too; `refactor` does not.
    assert_eq!(
        run(
            &items(),
            range(0, 0, 0, 0),
            Some(&[CodeActionKind::SOURCE]),
            TEXT
        )
        .len(),
        1
    );
    assert!(
        run(
            &items(),
            range(0, 0, 0, 0),
            Some(&[CodeActionKind::REFACTOR]),
            TEXT
        )
        .is_empty()
    );
}

#[test]
fn a_fix_is_not_offered_once_its_lines_changed() {
    let changed = TEXT.replace("use std::fmt::Write;", "use std::fmt::Write as _;");
    let found = run(&items(), range(0, 6, 0, 6), None, &changed);
    assert!(
        found
            .iter()
            .all(|a| a.edit.is_none() || a.kind == Some(FIX_ALL)),
        "{:?}",
        titles(&found)
    );
    // The fix-all keeps the fix whose lines did not change.
    let all = found.iter().find(|a| a.kind == Some(FIX_ALL)).unwrap();
    assert_eq!(
        all.title,
        "Apply the 1 machine-applicable fix of this file (buildd)"
    );
    // A line added above shifts everything: nothing fits any more.
    let shifted = format!("// new\n{TEXT}");
    let found = run(&items(), range(0, 0, 9, 0), None, &shifted);
    assert!(
        found.iter().all(|a| a.edit.is_none()),
        "{:?}",
        titles(&found)
    );
    // Without the text (an unreadable file), nothing either.
    let mut none = |_: &Uri| None;
    let found = actions(&items(), range(0, 0, 9, 0), None, &mut none);
    assert!(found.iter().all(|a| match a {
        CodeActionOrCommand::CodeAction(a) => a.edit.is_none(),
        CodeActionOrCommand::Command(_) => false,
    }));
}

#[test]
fn a_multi_span_suggestion_in_two_files_is_one_workspace_edit() {
    let both = suggestion(
        "use the other name",
        "MachineApplicable",
        vec![
            edit("lib.rs", range(3, 17, 3, 18), "y"),
            edit("other.rs", range(0, 0, 0, 3), "pub"),
            edit("lib.rs", range(0, 4, 0, 7), "core"),
        ],
    );
    let items = vec![item("rename", range(3, 17, 3, 18), vec![both])];
    let found = run(
        &items,
        range(3, 17, 3, 17),
        Some(&[CodeActionKind::QUICKFIX]),
        TEXT,
    );
    let changes = found[0].edit.as_ref().unwrap().changes.as_ref().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(
        changes[&uri("lib.rs")]
            .iter()
            .map(|e| e.range)
            .collect::<Vec<_>>(),
        vec![range(0, 4, 0, 7), range(3, 17, 3, 18)],
        "sorted by position"
    );
    assert_eq!(
        found[0].title, "use the other name",
        "several replacements: no single one in the title"
    );
}

#[test]
fn overlapping_fixes_are_not_both_in_the_fix_all_and_duplicates_are_one_action() {
    let a = suggestion(
        "a",
        "MachineApplicable",
        vec![edit("lib.rs", range(3, 13, 3, 20), "")],
    );
    let b = suggestion(
        "b",
        "MachineApplicable",
        vec![edit("lib.rs", range(3, 17, 3, 18), "_x")],
    );
    let items = vec![
        item("one", range(3, 13, 3, 20), vec![a.clone()]),
        item("two", range(3, 17, 3, 18), vec![b]),
        item("three", range(3, 13, 3, 20), vec![a]),
    ];
    let found = run(&items, range(3, 0, 3, 30), None, TEXT);
    let all = found.iter().find(|x| x.kind == Some(FIX_ALL)).unwrap();
    assert_eq!(
        all.title,
        "Apply the 1 machine-applicable fix of this file (buildd)"
    );
    let a_actions = found.iter().filter(|x| x.title == "a").count();
    assert_eq!(a_actions, 1, "{:?}", titles(&found));
    let a_action = found.iter().find(|x| x.title == "a").unwrap();
    assert_eq!(a_action.diagnostics.as_ref().unwrap().len(), 2);
}
