//! Code actions, folders of workspaces and late joiners, with the real `buildd lsp`, its
//! daemon and the real cargo: rustc's fixes applied as an editor applies them (the edit
//! applied to the text in UTF-16 columns, saved, rebuilt), and nothing offered once the text
//! changed.

use std::path::Path;

use serde_json::{Value, json};

use crate::lsp_client::{Caps, LspClient, file_uri, init_params};
use crate::support::World;

fn check_only() -> Value {
    json!({"stages": ["check"]})
}

const UNUSED_MAP: &str = "unused import: `std::collections::HashMap`";
const UNUSED_WRITE: &str = "unused import: `std::fmt::Write`";
const UNUSED_VAR: &str = "unused variable: `unused`";

fn has(start: &'static str) -> impl Fn(&[Value]) -> bool {
    move |ds: &[Value]| {
        ds.iter()
            .any(|d| d["message"].as_str().unwrap_or("").starts_with(start))
    }
}

fn find<'a>(diagnostics: &'a [Value], start: &str) -> &'a Value {
    diagnostics
        .iter()
        .find(|d| d["message"].as_str().unwrap_or("").starts_with(start))
        .unwrap_or_else(|| panic!("no {start:?} in {diagnostics:#?}"))
}

/// The roots of the workspaces the daemon has, by the LSP's `buildd/status`, sorted.
fn registered_roots(client: &mut LspClient) -> Vec<String> {
    let status = client.request("buildd/status", Value::Null);
    let mut roots: Vec<String> = status["result"]["workspaces"]
        .as_array()
        .unwrap_or_else(|| panic!("{status:#}"))
        .iter()
        .map(|w| w["root"].as_str().unwrap().to_owned())
        .collect();
    roots.sort();
    roots
}

/// Starts an editor on the fix fixture and waits for its three warnings.
fn start(world: &World) -> (LspClient, std::path::PathBuf, Vec<Value>) {
    let ws = world.workspace("lsp-fix", "ws");
    let file = ws.join("src/lib.rs");
    let mut client = LspClient::start(world, &ws, "editor", &[]);
    let init = client.initialize(init_params(&[&ws], check_only(), Caps::default()));
    assert_eq!(
        init["capabilities"]["codeActionProvider"]["codeActionKinds"],
        json!(["quickfix", "source.fixAll.buildd"]),
        "{init:#}"
    );
    let diagnostics = client.wait_diagnostics(&file, "the three warnings", |ds| {
        has(UNUSED_MAP)(ds) && has(UNUSED_WRITE)(ds) && has(UNUSED_VAR)(ds)
    });
    open(&mut client, &file);
    (client, file, diagnostics)
}

fn open(client: &mut LspClient, file: &Path) {
    let text = std::fs::read_to_string(file).unwrap();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": file_uri(file), "languageId": "rust", "version": 1, "text": text}}),
    );
}

fn change(client: &mut LspClient, file: &Path, version: u64, text: &str) {
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": file_uri(file), "version": version},
               "contentChanges": [{"text": text}]}),
    );
}

fn code_actions(client: &mut LspClient, file: &Path, range: &Value, only: &[&str]) -> Vec<Value> {
    let mut context = json!({"diagnostics": []});
    if !only.is_empty() {
        context["only"] = json!(only);
    }
    let response = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": file_uri(file)}, "range": range, "context": context}),
    );
    response["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no actions: {response:#}"))
        .clone()
}

/// The byte offset of an LSP position counted in UTF-16 units, as VS Code counts.
fn offset(text: &str, position: &Value) -> usize {
    let line = position["line"].as_u64().unwrap() as usize;
    let units = position["character"].as_u64().unwrap() as usize;
    let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
    let mut seen = 0;
    for (i, c) in text[start..].char_indices() {
        if seen >= units || c == '\n' {
            return start + i;
        }
        seen += c.len_utf16();
    }
    text.len()
}

/// Applies an action's edits to `file` (all in that file), last first, and returns the text.
fn apply(action: &Value, file: &Path) -> String {
    let changes = action["edit"]["changes"].as_object().unwrap();
    assert_eq!(changes.len(), 1, "{action:#}");
    let edits = changes[&file_uri(file)].as_array().unwrap();
    let mut text = std::fs::read_to_string(file).unwrap();
    let mut spans: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|e| {
            (
                offset(&text, &e["range"]["start"]),
                offset(&text, &e["range"]["end"]),
                e["newText"].as_str().unwrap(),
            )
        })
        .collect();
    spans.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (start, end, new) in spans {
        text.replace_range(start..end, new);
    }
    text
}

/// Writes the fixed text as an editor saving it does.
fn save(client: &mut LspClient, file: &Path, version: u64, text: &str) {
    change(client, file, version, text);
    std::fs::write(file, text).unwrap();
    client.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": file_uri(file)}}),
    );
}

fn titled<'a>(actions: &'a [Value], start: &str) -> &'a Value {
    actions
        .iter()
        .find(|a| a["title"].as_str().unwrap_or("").starts_with(start))
        .unwrap_or_else(|| panic!("no action {start:?} in {actions:#?}"))
}

#[test]
fn an_unused_import_has_a_preferred_quick_fix_that_removes_it_and_the_warning_goes() {
    let world = World::new();
    let (mut client, file, diagnostics) = start(&world);
    let warning = find(&diagnostics, UNUSED_MAP);
    let actions = code_actions(&mut client, &file, &warning["range"], &["quickfix"]);
    let fix = titled(&actions, "remove the whole `use` item");
    assert_eq!(fix["kind"], "quickfix");
    assert_eq!(fix["isPreferred"], true, "{fix:#}");
    assert_eq!(fix["diagnostics"][0]["message"], warning["message"]);
    // The rendered output is one action away.
    let show = titled(&actions, "Show the full compiler output");
    assert_eq!(show["command"]["command"], "buildd.showRenderedDiagnostic");
    let rendered = show["command"]["arguments"][0]["rendered"]
        .as_str()
        .unwrap();
    assert!(rendered.contains("--> src/lib.rs:3:5"), "{rendered}");
    client.mark();
    let shown = client.request("workspace/executeCommand", show["command"].clone());
    assert_eq!(shown["result"], Value::Null, "{shown:#}");
    let message = client.wait_notification("window/showMessage", "the rendered text", |p| {
        p["message"]
            .as_str()
            .unwrap_or("")
            .contains("--> src/lib.rs:3:5")
    });
    assert_eq!(message["type"], 3, "information: {message:#}");
    // Bad input is refused, and a document that is no local file has no actions.
    let bad = client.request(
        "workspace/executeCommand",
        json!({"command": "buildd.showRenderedDiagnostic", "arguments": [42]}),
    );
    assert_eq!(bad["error"]["code"], -32602, "{bad:#}");
    let elsewhere = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": "untitled:Untitled-1"}, "range": warning["range"],
               "context": {"diagnostics": []}}),
    );
    assert_eq!(elsewhere["result"], Value::Null, "{elsewhere:#}");

    let fixed = apply(fix, &file);
    assert!(!fixed.contains("HashMap"), "{fixed}");
    assert!(
        fixed.contains("use std::fmt::Write;\n"),
        "only that import went: {fixed}"
    );
    client.mark();
    save(&mut client, &file, 2, &fixed);
    // A job publishes as its diagnostics come: wait for both warnings that stay.
    client.wait_diagnostics(&file, "the warning to go, the others to stay", |ds| {
        !has(UNUSED_MAP)(ds) && has(UNUSED_WRITE)(ds) && has(UNUSED_VAR)(ds)
    });
}

#[test]
fn a_fix_after_an_emoji_lands_at_the_exact_utf16_column() {
    let world = World::new();
    let (mut client, file, diagnostics) = start(&world);
    let warning = find(&diagnostics, UNUSED_VAR);
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .nth(6)
        .unwrap()
        .to_owned();
    let at = line.find("unused =").unwrap();
    let utf16 = line[..at].encode_utf16().count();
    assert_ne!(
        utf16,
        line[..at].chars().count(),
        "the fixture has an emoji before it"
    );
    let cursor = json!({"start": warning["range"]["start"], "end": warning["range"]["start"]});
    let actions = code_actions(&mut client, &file, &cursor, &[]);
    let fix = titled(
        &actions,
        "if this is intentional, prefix it with an underscore",
    );
    let edit = &fix["edit"]["changes"][file_uri(&file)][0];
    assert_eq!(edit["newText"], "_unused");
    assert_eq!(
        edit["range"],
        json!({"start": {"line": 6, "character": utf16}, "end": {"line": 6, "character": utf16 + 6}}),
        "{fix:#}"
    );
    let fixed = apply(fix, &file);
    assert!(
        fixed.contains("let face = \"😀é\"; let _unused = 5;"),
        "{fixed}"
    );
    client.mark();
    save(&mut client, &file, 2, &fixed);
    client.wait_diagnostics(
        &file,
        "the unused variable to go, the imports' to stay",
        |ds| !has(UNUSED_VAR)(ds) && has(UNUSED_MAP)(ds) && has(UNUSED_WRITE)(ds),
    );
}

#[test]
fn fix_all_applies_every_machine_applicable_fix_of_the_file_at_once() {
    let world = World::new();
    let (mut client, file, _) = start(&world);
    let whole = json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}});
    let actions = code_actions(&mut client, &file, &whole, &["source.fixAll"]);
    assert_eq!(actions.len(), 1, "{actions:#?}");
    let all = &actions[0];
    assert_eq!(all["kind"], "source.fixAll.buildd");
    assert_eq!(
        all["title"],
        "Apply the 3 machine-applicable fixes of this file (buildd)"
    );
    let fixed = apply(all, &file);
    assert!(!fixed.contains("use std"), "{fixed}");
    assert!(fixed.contains("let _unused = 5;"), "{fixed}");
    client.mark();
    save(&mut client, &file, 2, &fixed);
    client.wait_diagnostics(&file, "every warning to go", |ds| ds.is_empty());
}

#[test]
fn a_fix_is_not_offered_once_the_text_changed_and_is_again_when_it_is_back() {
    let world = World::new();
    let (mut client, file, diagnostics) = start(&world);
    let warning = find(&diagnostics, UNUSED_WRITE);
    let original = std::fs::read_to_string(&file).unwrap();
    // Unsaved: a line above moves every span; the job's positions no longer fit.
    change(
        &mut client,
        &file,
        2,
        &format!("// a new first line\n{original}"),
    );
    let actions = code_actions(&mut client, &file, &warning["range"], &[]);
    assert!(
        actions.iter().all(|a| a["edit"].is_null()),
        "a fix against changed text: {actions:#?}"
    );
    // The same line edited in place.
    let edited = original.replace("use std::fmt::Write;", "use std::fmt::Write as _;");
    change(&mut client, &file, 3, &edited);
    let actions = code_actions(&mut client, &file, &warning["range"], &["quickfix"]);
    assert!(actions.iter().all(|a| a["edit"].is_null()), "{actions:#?}");
    // Back as compiled: offered again.
    change(&mut client, &file, 4, &original);
    let actions = code_actions(&mut client, &file, &warning["range"], &["quickfix"]);
    titled(&actions, "remove the whole `use` item");
}

#[test]
fn every_workspace_in_a_folder_of_workspaces_gets_diagnostics() {
    let world = World::new();
    let borrow = world.workspace("lsp-borrow", "projects/borrow");
    let macros = world.workspace("lsp-macro", "projects/tools/macros");
    let folder = borrow.parent().unwrap().to_path_buf();
    let mut client = LspClient::start(&world, &folder, "editor", &[]);
    client.initialize(init_params(&[&folder], check_only(), Caps::default()));
    client.wait_diagnostics(
        &borrow.join("src/lib.rs"),
        "the borrow workspace's error",
        has("borrow of moved value"),
    );
    client.wait_diagnostics(
        &macros.join("src/lib.rs"),
        "the macro workspace's error",
        has("mismatched types"),
    );
    for ws in [&borrow, &macros] {
        client.wait_state(ws, "each workspace's state", |s| s["state"] == "failed");
    }
    assert_eq!(
        registered_roots(&mut client),
        [borrow.to_str().unwrap(), macros.to_str().unwrap()]
    );
    // The folder itself is no workspace, and says nothing of it: its workspaces speak.
    let folder_uri = file_uri(&folder);
    assert!(
        !client
            .seen()
            .iter()
            .any(|m| m["method"] == "buildd/state" && m["params"]["uri"] == folder_uri.as_str()),
        "a state for the folder of workspaces"
    );
}

#[test]
fn with_discovery_off_a_folder_registers_its_own_workspace_and_not_the_fixtures_under_it() {
    let world = World::new();
    let repo = world.workspace("lsp-borrow", "repo");
    // A fixture with a `[workspace]` of its own, as buildd's tests have: discovery would
    // register it (see the test above).
    let fixture = world.workspace("lsp-macro", "repo/tests/fixtures/macros");
    let mut client = LspClient::start(&world, &repo, "editor", &[]);
    let mut options = check_only();
    options["discoverWorkspaces"] = json!(false);
    client.initialize(init_params(&[&repo], options, Caps::default()));
    client.wait_diagnostics(
        &repo.join("src/lib.rs"),
        "the folder's own error",
        has("borrow of moved value"),
    );
    client.wait_state(&repo, "the folder's job done", |s| s["state"] == "failed");
    // Discovery registers what it finds within milliseconds of `initialize`, long before a
    // cold job ends: by now the fixture would be there.
    assert_eq!(registered_roots(&mut client), [repo.to_str().unwrap()]);
    assert!(
        !client
            .seen()
            .iter()
            .any(|m| m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == file_uri(&fixture.join("src/lib.rs")).as_str()),
        "diagnostics of the fixture"
    );
}

#[test]
fn an_editor_that_connects_mid_job_gets_its_progress_before_it_ends() {
    let world = World::new();
    let ws = world.workspace("lsp-gate", "ws");
    let gate = world.dir.path().join("gate");
    let env = [("BUILDD_TEST_GATE", gate.to_str().unwrap())];
    let mut first = LspClient::start(&world, &ws, "first", &env);
    first.initialize(init_params(&[&ws], check_only(), Caps::default()));
    // The build script holds the job until the gate opens.
    let begun = first.wait_notification("$/progress", "the job to begin", |p| {
        p["value"]["kind"] == "begin"
    });
    let mut second = LspClient::start(&world, &ws, "second", &env);
    second.initialize(init_params(&[&ws], check_only(), Caps::default()));
    let joined = second.wait_notification("$/progress", "the running job's progress", |p| {
        p["value"]["kind"] == "begin"
    });
    // Tokens are `buildd/<connection>/<job>`: the same job.
    let job = |p: &Value| -> Option<u64> { p["token"].as_str()?.rsplit('/').next()?.parse().ok() };
    assert_eq!(job(&joined), job(&begun), "{joined:#} {begun:#}");
    assert!(joined["value"]["percentage"].is_u64(), "{joined:#}");
    let running = second.wait_state(&ws, "the running state", |s| s["state"] == "running");
    assert_eq!(running["job"].as_u64(), job(&begun));
    assert!(
        !second
            .seen()
            .iter()
            .any(|m| m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"),
        "the job ended before the gate opened"
    );
    std::fs::write(&gate, "open").unwrap();
    let end = second.wait_notification("$/progress", "the joined job's end", |p| {
        p["token"] == joined["token"] && p["value"]["kind"] == "end"
    });
    assert!(
        end["value"]["message"]
            .as_str()
            .unwrap()
            .starts_with("done"),
        "{end:#}"
    );
}

#[test]
fn a_suggestion_in_another_file_is_offered_unpreferred_and_applying_it_fixes_the_error() {
    let world = World::new();
    let ws = world.workspace("lsp-derive", "ws");
    let (lib, shape) = (ws.join("src/lib.rs"), ws.join("src/shape.rs"));
    let mut client = LspClient::start(&world, &ws, "editor", &[]);
    client.initialize(init_params(&[&ws], check_only(), Caps::default()));
    let diagnostics = client.wait_diagnostics(
        &lib,
        "the missing Debug",
        has("`Square` doesn't implement `Debug`"),
    );
    let error = find(&diagnostics, "`Square` doesn't implement `Debug`");
    let actions = code_actions(&mut client, &lib, &error["range"], &["quickfix"]);
    let fix = titled(
        &actions,
        "consider annotating `Square` with `#[derive(Debug)]`",
    );
    // rustc is not sure (MaybeIncorrect): offered, not preferred.
    assert_eq!(fix["isPreferred"], false, "{fix:#}");
    let changes = fix["edit"]["changes"].as_object().unwrap();
    assert_eq!(
        changes.keys().collect::<Vec<_>>(),
        vec![&file_uri(&shape)],
        "{fix:#}"
    );
    assert_eq!(
        changes[&file_uri(&shape)][0],
        json!({"range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}},
               "newText": "#[derive(Debug)]\n"})
    );
    // Not machine-applicable: no fix-all for it.
    let whole = json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}});
    assert!(code_actions(&mut client, &lib, &whole, &["source.fixAll"]).is_empty());

    let fixed = apply(fix, &shape);
    assert_eq!(
        fixed,
        "/// A square, without `Debug`.\n#[derive(Debug)]\npub struct Square;\n"
    );
    client.mark();
    std::fs::write(&shape, &fixed).unwrap();
    client.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": file_uri(&shape)}}),
    );
    client.wait_diagnostics(&lib, "the error to go", |ds| ds.is_empty());
}
