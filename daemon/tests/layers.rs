//! The dependency rule of `daemon/src`, checked on the source: folders are layers, and a
//! module imports only from the layers below it. Within a folder, files import each other
//! without cycles.
//!
//! This reads `crate::` paths from the source text instead of asking the compiler, as
//! rust-analyzer's tidy test does: the rule is about what a reader sees, and a text scan
//! has no dependency of its own. Paths in comments count too, since a doc link is a
//! dependency a reader follows.

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
