//! The dependency rule of `daemon/src`, checked on the source: folders are layers, and a
//! module imports only from the layers below it. Within a folder, files import each other
//! without cycles.
//!
//! This reads `crate::` paths from the source text instead of asking the compiler, as
//! rust-analyzer's tidy test does: the rule is about what a reader sees, and a text scan
//! has no dependency of its own. Paths in comments count too, since a doc link is a
//! dependency a reader follows.
//!
//! It also checks the modules whose errors are typed (`TYPED_ERRORS`): no `pub` function
//! of theirs returns `Result<_, String>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers from the bottom up. A module may import from its own folder and from the
/// layers before its own; two modules of one layer are independent.
const LAYERS: &[&[&str]] = &[
    // The daemon's own dirs, configuration and log.
    &["home"],
    // The wire protocol and its client; the watcher thread.
    &["wire", "watch"],
    // Running cargo; the tools put between cargo and rustc.
    &["build", "tools"],
    // What a workspace is: load, settings, keys, dep-info, prediction.
    &["project"],
    // The isolated dirs: layout, gc, seeding, archives.
    &["cache"],
    // The dispatcher that owns the state.
    &["dispatch"],
    // The daemon process: lock, socket, connections.
    &["host"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/cache/seed.rs` is `["cache", "seed"]`, `src/watch.rs` is
/// `["watch"]`, `src/dispatch/main_loop/cache_ops.rs` is `["dispatch", "main_loop", "cache_ops"]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_str().unwrap().to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every `crate::a::b` path in a file, as `["a", "b"]`.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        // `buildd_daemon::` or `$crate::` are not paths into this crate's modules.
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        let path: Vec<String> = rest
            .split("::")
            .map(|seg| {
                seg.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|seg| !seg.is_empty() && seg.chars().next().unwrap().is_lowercase())
            .collect();
        if !path.is_empty() {
            found.push(path);
        }
    }
    found
}

struct Source {
    file: PathBuf,
    module: Vec<String>,
    imports: Vec<Vec<String>>,
}

fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "lib.rs"))
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            Source {
                module: module_path(&file),
                imports: crate_paths(&text),
                file,
            }
        })
        .collect()
}

#[test]
fn every_top_level_module_has_a_layer() {
    let mut missing = BTreeSet::new();
    for source in sources() {
        if rank(&source.module[0]).is_none() {
            missing.insert(source.module[0].clone());
        }
    }
    assert!(
        missing.is_empty(),
        "modules of daemon/src that are in no layer of daemon/tests/layers.rs: {missing:?}; \
         put each in a folder of a layer (see docs/ARCHITECTURE.md)"
    );
}

#[test]
fn imports_run_down_the_layers() {
    let sources = sources();
    // Text like `crate::bin tests::adds` in a doc comment is not a path to a module.
    let tops: BTreeSet<&String> = sources.iter().map(|s| &s.module[0]).collect();
    let mut wrong = Vec::new();
    for source in &sources {
        let top = &source.module[0];
        let Some(own) = rank(top) else { continue };
        for import in &source.imports {
            let target = &import[0];
            if target == top || !tops.contains(target) {
                continue;
            }
            match rank(target) {
                Some(r) if r < own => {}
                _ => wrong.push(format!(
                    "{} imports crate::{} ({top} may use only layers below it)",
                    source.file.strip_prefix(src()).unwrap().display(),
                    import.join("::"),
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layer rule:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn files_of_one_folder_import_each_other_without_cycles() {
    // Edges between the files (modules) of one folder: `cache::seed -> cache::dirs`.
    let sources = sources();
    let known: BTreeSet<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for source in &sources {
        for import in &source.imports {
            // The longest known module that is a prefix of the import is what it names.
            let Some(target) = (1..=import.len())
                .rev()
                .map(|n| import[..n].to_vec())
                .find(|m| known.contains(m))
            else {
                continue;
            };
            let same_folder = target.len() > 1
                && source.module.len() > 1
                && target[0] == source.module[0]
                && target != source.module
                // A child module using its parent's items (`main_loop::cache_ops` and
                // `main_loop`) is one module split in files, not a dependency.
                && !target.starts_with(&source.module)
                && !source.module.starts_with(&target);
            if same_folder {
                edges
                    .entry(source.module.clone())
                    .or_default()
                    .insert(target);
            }
        }
    }
    let mut cycles = Vec::new();
    for start in edges.keys() {
        // A path back to `start` is a cycle.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, trail)) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if next == start {
                    let names: Vec<String> =
                        trail.iter().chain([start]).map(|m| m.join("::")).collect();
                    cycles.push(names.join(" -> "));
                } else if seen.insert(next.clone()) {
                    let mut trail = trail.clone();
                    trail.push(next.clone());
                    stack.push((next.clone(), trail));
                }
            }
        }
    }
    cycles.sort();
    cycles.dedup();
    assert!(
        cycles.is_empty(),
        "import cycles inside a folder:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_scanner_sees_paths_and_skips_other_crates() {
    let text = "use crate::cache::layout::{KEY_FILE};\nlet x = buildd_daemon::protocol::X;\n\
                crate::build::job::Stage::Build; $crate::y;";
    assert_eq!(
        crate_paths(text),
        vec![
            vec!["cache".to_owned(), "layout".to_owned()],
            vec!["build".to_owned(), "job".to_owned()],
        ]
    );
}

/// Modules whose edges have typed errors (`thiserror` enums, see docs/ARCHITECTURE.md): no
/// `pub` function of theirs returns `Result<_, String>`. Add a module here once its errors
/// are typed.
const TYPED_ERRORS: &[&str] = &[
    "build/jobs.rs",
    "build/learned.rs",
    "build/merge.rs",
    "build/plan.rs",
    "build/selection.rs",
    "cache/archive.rs",
    "cache/archive_error.rs",
    "cache/unpack.rs",
    "dispatch/main_loop/cache_ops.rs",
    "dispatch/main_loop/loads.rs",
    "dispatch/main_loop/requests.rs",
    "dispatch/reports.rs",
    "dispatch/tools.rs",
    "home/config.rs",
    "home/dist_config.rs",
    "home/logging.rs",
    "home/values.rs",
    "home/regular_file.rs",
    "host/server.rs",
    "project/load.rs",
    "project/settings.rs",
    "tools/linker.rs",
    "tools/sccache.rs",
    "tools/sccache_dist.rs",
    "watch.rs",
];

/// Functions of `TYPED_ERRORS` modules let through, as `(module, function)`, each with the
/// reason it still returns `String`. Keep this short: an entry is a debt, not a design.
const STRING_ERROR_ADAPTERS: &[(&str, &str)] = &[];

/// The name of the function a signature declares: `pub(crate) async fn b(` is `b`.
fn fn_name(signature: &str) -> &str {
    let after = signature.split_once("fn ").map_or("", |(_, rest)| rest);
    after
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("")
}

/// The functions of `text` with any `pub` visibility whose return type is a `Result` with
/// `String` for its error, as `(line, signature)` (lines from 1).
fn string_errors(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let start = line.trim_start();
        let Some(rest) = start.strip_prefix("pub") else {
            continue;
        };
        // `pub`, `pub(crate)`, `pub(super)`, `pub(in path)`, then the qualifiers.
        let rest = match rest.strip_prefix('(') {
            Some(inner) => inner.split_once(')').map_or("", |(_, after)| after),
            None => rest,
        };
        let mut words = rest.split_whitespace();
        let is_fn = words
            .find(|w| !matches!(*w, "async" | "const" | "unsafe"))
            .is_some_and(|w| w == "fn");
        if !is_fn {
            continue;
        }
        // The signature runs to the body or the `;` of a declaration.
        let mut signature = String::new();
        for line in &lines[i..] {
            signature.push_str(line.trim());
            signature.push(' ');
            if line.contains('{') || line.trim_end().ends_with(';') {
                break;
            }
        }
        let signature = signature.split('{').next().unwrap_or("").trim().to_owned();
        let Some((_, returned)) = signature.rsplit_once("->") else {
            continue;
        };
        let returned = returned.split(" where ").next().unwrap_or("").trim();
        if error_type(returned).is_some_and(|e| e == "String" || e.ends_with("::String")) {
            found.push((i + 1, signature.clone()));
        }
    }
    found
}

/// The error type of `Result<T, E>` (or `std::result::Result<T, E>`), as written.
fn error_type(returned: &str) -> Option<&str> {
    let inner = returned
        .strip_prefix("std::result::")
        .unwrap_or(returned)
        .strip_prefix("Result<")?
        .strip_suffix('>')?;
    // The last argument at depth 0: `Result<(A, B<C, D>), E>` has `E`.
    let mut depth = 0i32;
    let mut last = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => last = i + 1,
            _ => {}
        }
    }
    (last > 0).then(|| inner[last..].trim())
}

#[test]
fn modules_with_typed_errors_return_no_string_errors() {
    let mut wrong = Vec::new();
    let mut adapters_seen = BTreeSet::new();
    for module in TYPED_ERRORS {
        let file = src().join(module);
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "daemon/src/{module} is listed in TYPED_ERRORS of daemon/tests/layers.rs but \
                 cannot be read ({e}): update the list"
            )
        });
        for (line, signature) in string_errors(&text) {
            let name = fn_name(&signature);
            if let Some(entry) = STRING_ERROR_ADAPTERS
                .iter()
                .find(|(m, f)| m == module && *f == name)
            {
                adapters_seen.insert(entry);
                continue;
            }
            wrong.push(format!("daemon/src/{module}:{line}: {signature}"));
        }
    }
    let stale: Vec<_> = STRING_ERROR_ADAPTERS
        .iter()
        .filter(|entry| !adapters_seen.contains(entry))
        .collect();
    assert!(
        stale.is_empty(),
        "STRING_ERROR_ADAPTERS of daemon/tests/layers.rs lets through functions that no longer \
         return Result<_, String>: remove {stale:?}"
    );
    assert!(
        wrong.is_empty(),
        "functions that return Result<_, String> in modules whose errors are typed; return a \
         thiserror enum instead (see docs/ARCHITECTURE.md):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_error_scanner_finds_string_errors_in_signatures_over_lines() {
    let text = "/// pub fn doc() -> Result<(), String>\n\
                pub fn a() -> Result<(), String> {\n\
                pub(crate) async fn b(\n    x: u8,\n) -> Result<Vec<String>, std::string::String> {\n\
                pub(super) fn c() -> Result<String, ArchiveError> {\n\
                fn private() -> Result<(), String> {\n\
                pub(crate) fn d<T>(t: T) -> Result<(BTreeMap<String, u8>, T), String>\nwhere\n    T: Clone,\n{\n\
                pub const fn e() -> io::Result<String> {\n\
                pub(crate) struct S { f: Result<(), String> }\n";
    let found = string_errors(text);
    let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![2, 3, 8]);
    let names: Vec<&str> = found.iter().map(|(_, s)| fn_name(s)).collect();
    assert_eq!(names, vec!["a", "b", "d"]);
}
