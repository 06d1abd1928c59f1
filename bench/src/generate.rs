//! The synthetic workspace: N crates in the shapes real workspaces have.
//!
//! One binary (`app`) with crates.io dependencies (a few small ones, or with `--deps large` a
//! tree of a few hundred packages), and N-1 libraries: a base crate, a diamond on top of it
//! (`lib002` and `lib003` both use `lib001`, `lib004` uses both), and chains of four hanging
//! off the diamond's top, whose ends the binary uses. Every library has real code for the
//! compiler (a struct, a trait, generics that are instantiated) and unit tests, and the binary
//! has an integration test, so that `cargo test --no-run` builds test harnesses as it does in
//! real workspaces. This module only writes files; it never runs cargo.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Small, dependency-free crates from crates.io, so the binary has registry dependencies as
/// real ones do without making the cold build long.
const REGISTRY_DEPS: [(&str, &str); 3] = [("itoa", "1"), ("memchr", "2"), ("smallvec", "1")];

/// With `--deps large`, the binary also uses these: widely used crates (a web server, an async
/// runtime, a command-line parser, serialization, logging, a git library...) that pull in 287
/// crates.io packages in all (on 2026-12-08, with rustc 1.95), so cargo's start-up, resolving and
/// fingerprinting them, is a large part of a bare `cargo check` of the binary, as in a real
/// service. The versions are the newest majors that build with that rustc; the workspace uses
/// resolver 3, which picks versions whose `rust-version` the toolchain meets. Each one is
/// used in `app/src/main.rs` ([`LARGE_USES`]), so that rustc loads it as a real binary does.
const LARGE_DEPS: [(&str, &str); 28] = [
    ("tokio", r#"{ version = "1", features = ["full"] }"#),
    ("axum", r#""0.8""#),
    (
        "tower-http",
        r#"{ version = "0.6", features = ["trace", "cors", "fs", "compression-gzip"] }"#,
    ),
    ("hyper", r#"{ version = "1", features = ["full"] }"#),
    ("serde", r#"{ version = "1", features = ["derive"] }"#),
    ("serde_json", r#""1""#),
    ("toml", r#""0.8""#),
    ("clap", r#"{ version = "4", features = ["derive", "env"] }"#),
    ("tracing", r#""0.1""#),
    (
        "tracing-subscriber",
        r#"{ version = "0.3", features = ["env-filter", "json"] }"#,
    ),
    ("chrono", r#"{ version = "0.4", features = ["serde"] }"#),
    ("uuid", r#"{ version = "1", features = ["v4", "serde"] }"#),
    ("rand", r#""0.9""#),
    ("rayon", r#""1""#),
    ("regex", r#""1""#),
    ("anyhow", r#""1""#),
    ("thiserror", r#""2""#),
    ("itertools", r#""0.14""#),
    ("futures", r#""0.3""#),
    ("sha2", r#""0.10""#),
    ("base64", r#""0.22""#),
    ("url", r#""2""#),
    ("dashmap", r#""6""#),
    ("indexmap", r#""2""#),
    ("parking_lot", r#""0.12""#),
    ("crossbeam", r#""0.8""#),
    (
        "syn",
        r#"{ version = "2", features = ["full", "extra-traits", "visit"] }"#,
    ),
    ("gix", r#"{ version = "0.80", default-features = false }"#),
];

/// The binary's code that uses [`LARGE_DEPS`]: three derives (clap's, serde's, thiserror's)
/// and a type of each crate.
const LARGE_USES: &str = r#"
/// The command line, as clap derives it.
#[derive(Debug, clap::Parser)]
struct Cli {
    #[arg(long, env = "APP_N")]
    n: Option<u64>,
}

/// A setting read from a file, as serde derives it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Config {
    name: String,
    tags: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("bad input {0}")]
struct Bad(u64);

/// One use of each large dependency, so that the compiler loads them as a real binary's do.
fn registry_deps(n: u64) -> usize {
    use itertools::Itertools as _;
    use std::mem::size_of;
    let sizes = [
        size_of::<tokio::sync::Mutex<u8>>(),
        size_of::<axum::Router>(),
        size_of::<tower_http::cors::CorsLayer>(),
        size_of::<hyper::StatusCode>(),
        size_of::<serde_json::Value>(),
        size_of::<toml::Value>(),
        size_of::<tracing::Level>(),
        size_of::<tracing_subscriber::EnvFilter>(),
        size_of::<chrono::NaiveDate>(),
        size_of::<uuid::Uuid>(),
        size_of::<rand::rngs::StdRng>(),
        size_of::<rayon::ThreadPoolBuilder>(),
        size_of::<regex::Regex>(),
        size_of::<anyhow::Error>(),
        size_of::<futures::channel::oneshot::Sender<u8>>(),
        size_of::<sha2::Sha256>(),
        size_of::<base64::engine::GeneralPurpose>(),
        size_of::<url::Url>(),
        size_of::<dashmap::DashMap<u8, u8>>(),
        size_of::<indexmap::IndexMap<u8, u8>>(),
        size_of::<parking_lot::Mutex<u8>>(),
        size_of::<crossbeam::channel::Sender<u8>>(),
        size_of::<syn::File>(),
        size_of::<gix::ObjectId>(),
        size_of::<Cli>(),
        size_of::<Config>(),
    ];
    let shown = sizes.iter().take(n as usize % 8 + 1).join(",");
    shown.len() + sizes.iter().sum::<usize>() + Bad(n).to_string().len()
}
"#;

/// How many libraries each chain above the diamond holds.
const CHAIN_LEN: u32 = 4;

/// A generated workspace's layout, for choosing the file to edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generated {
    /// The file a round edits by default, relative to the root: the base library, which every
    /// other crate depends on, so an edit there ripples through the whole graph as an edit to
    /// a core crate does.
    pub(crate) default_edit: PathBuf,
}

/// The binary's crates.io dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Deps {
    /// A few small crates (itoa, memchr, smallvec): a quick cold build.
    #[default]
    Few,
    /// Those and [`LARGE_DEPS`]: 287 crates.io packages in all.
    Large,
}

/// Writes a workspace of `crates` crates (at least 1) into `root`, which must be empty or
/// missing.
pub(crate) fn write(root: &Path, crates: u32, deps: Deps) -> anyhow::Result<Generated> {
    let libs = graph(crates.saturating_sub(1));
    std::fs::create_dir_all(root)
        .with_context(|| format!("failed to create {}", root.display()))?;
    let write = |rel: &str, text: String| -> anyhow::Result<()> {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("relative paths have a parent"))
            .with_context(|| format!("failed to create the parent of {}", path.display()))?;
        std::fs::write(&path, text).with_context(|| format!("failed to write {}", path.display()))
    };

    write(
        "Cargo.toml",
        format!(
            "# A workspace generated by buildd-bench ({crates} crates): a base library, a diamond\n\
             # above it, chains of {CHAIN_LEN} above the diamond, and a binary using the chains' ends.\n\
             [workspace]\nmembers = [\"app\"{}]\nresolver = \"{}\"\n",
            libs.iter()
                .map(|l| format!(", \"crates/{}\"", l.name))
                .collect::<String>(),
            // Resolver 3 picks the dependencies' versions that the toolchain can build.
            match deps {
                Deps::Few => 2,
                Deps::Large => 3,
            }
        ),
    )?;
    for lib in &libs {
        write(
            &format!("crates/{}/Cargo.toml", lib.name),
            manifest(&lib.name, &lib.deps, &[]),
        )?;
        write(&format!("crates/{}/src/lib.rs", lib.name), lib_source(lib))?;
    }
    let heads = heads(&libs);
    let registry: Vec<(&str, String)> = REGISTRY_DEPS
        .iter()
        .map(|(name, version)| (*name, format!("\"{version}\"")))
        .chain(
            LARGE_DEPS
                .iter()
                .filter(|_| deps == Deps::Large)
                .map(|(name, spec)| (*name, (*spec).to_owned())),
        )
        .collect();
    write("app/Cargo.toml", manifest("app", &heads, &registry))?;
    write("app/src/main.rs", app_source(&heads, deps))?;
    write("app/tests/cli.rs", APP_TEST.to_owned())?;

    let default_edit = match libs.first() {
        Some(base) => PathBuf::from(format!("crates/{}/src/lib.rs", base.name)),
        None => PathBuf::from("app/src/main.rs"),
    };
    Ok(Generated { default_edit })
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Lib {
    name: String,
    deps: Vec<String>,
    /// Where it sits, for its doc comment.
    role: String,
}

fn lib_name(i: u32) -> String {
    format!("lib{i:03}")
}

/// The libraries and their dependencies: `count` of them.
fn graph(count: u32) -> Vec<Lib> {
    let mut libs = Vec::new();
    for i in 1..=count {
        let (deps, role) = match i {
            1 => (vec![], "the base every other crate depends on".to_owned()),
            2 | 3 => (vec![1], "a side of the diamond".to_owned()),
            // With fewer than four libraries there is no diamond: lib004 is where it closes.
            4 => (vec![2, 3], "the top of the diamond".to_owned()),
            _ => {
                let offset = i - 5;
                let (chain, link) = (offset / CHAIN_LEN, offset % CHAIN_LEN);
                let dep = if link == 0 { 4 } else { i - 1 };
                (
                    vec![dep],
                    format!("link {} of chain {}", link + 1, chain + 1),
                )
            }
        };
        libs.push(Lib {
            name: lib_name(i),
            deps: deps
                .into_iter()
                .filter(|d| *d <= count)
                .map(lib_name)
                .collect(),
            role,
        });
    }
    libs
}

/// The libraries nothing else depends on: what the binary uses.
fn heads(libs: &[Lib]) -> Vec<String> {
    libs.iter()
        .filter(|l| !libs.iter().any(|o| o.deps.contains(&l.name)))
        .map(|l| l.name.clone())
        .collect()
}

/// A crate's manifest; `registry_deps` are names with their specs as TOML values.
fn manifest(name: &str, path_deps: &[String], registry_deps: &[(&str, String)]) -> String {
    let mut text = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\n"
    );
    let prefix = if name == "app" { "../crates" } else { ".." };
    for dep in path_deps {
        let _ = writeln!(text, "{dep} = {{ path = \"{prefix}/{dep}\" }}");
    }
    for (dep, spec) in registry_deps {
        let _ = writeln!(text, "{dep} = {spec}");
    }
    text
}

fn lib_source(lib: &Lib) -> String {
    let name = &lib.name;
    let upper = name.to_uppercase();
    let dep_sum: String = lib
        .deps
        .iter()
        .enumerate()
        .map(|(k, d)| format!(" + {d}::value(n / {})", k + 2))
        .collect();
    format!(
        r#"//! `{name}`: {role}, in a workspace generated by buildd-bench.

use std::collections::BTreeMap;

/// A record that flows through the crate graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Item {{
    pub id: u64,
    pub name: String,
    pub tags: Vec<String>,
}}

/// Something with a score, implemented here and used generically.
pub trait Score {{
    fn score(&self) -> u64;
}}

impl Score for Item {{
    fn score(&self) -> u64 {{
        let tags: u64 = self.tags.iter().map(|t| t.len() as u64).sum();
        self.id.wrapping_mul(31) + self.name.len() as u64 + tags
    }}
}}

/// A constant that makes this crate's values its own.
pub const SALT_{upper}: u64 = {salt};

pub fn make(n: u64) -> Vec<Item> {{
    (0..n)
        .map(|i| Item {{
            id: i ^ SALT_{upper},
            name: format!("{name}-{{i}}"),
            tags: (0..i % 4).map(|t| format!("tag{{t}}")).collect(),
        }})
        .collect()
}}

/// Groups items by score bucket; generic so that callers instantiate it.
pub fn index<T: Score + Clone>(items: &[T], buckets: u64) -> BTreeMap<u64, Vec<T>> {{
    let mut map: BTreeMap<u64, Vec<T>> = BTreeMap::new();
    for item in items {{
        map.entry(item.score() % buckets.max(1)).or_default().push(item.clone());
    }}
    map
}}

pub fn largest<T: Score>(items: &[T]) -> Option<&T> {{
    items.iter().max_by_key(|i| i.score())
}}

/// This crate's value, built on its dependencies' values.
pub fn value(n: u64) -> u64 {{
    let items = make(n % 64);
    let own: u64 = index(&items, 7).values().map(|v| v.len() as u64).sum::<u64>()
        + largest(&items).map_or(0, Score::score);
    own{dep_sum}
}}

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn value_is_deterministic() {{
        assert_eq!(value(9), value(9));
    }}

    #[test]
    fn index_keeps_every_item() {{
        let items = make(20);
        let total: usize = index(&items, 3).values().map(Vec::len).sum();
        assert_eq!(total, items.len());
    }}
}}
"#,
        role = lib.role,
        salt = name.bytes().map(u64::from).sum::<u64>() * 7919,
    )
}

fn app_source(heads: &[String], deps: Deps) -> String {
    let sum: String = heads
        .iter()
        .map(|h| format!("    total = total.wrapping_add({h}::value(n));\n"))
        .collect();
    let (large_line, large_uses) = match deps {
        Deps::Few => ("", ""),
        Deps::Large => ("    println!(\"deps {}\", registry_deps(n));\n", LARGE_USES),
    };
    format!(
        r#"//! `app`: the binary of a workspace generated by buildd-bench.

fn total(n: u64) -> u64 {{
    let mut total = n;
{sum}    total
}}

fn main() {{
    let n = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10u64);
    let total = total(n);
    let mut buffer = itoa::Buffer::new();
    let text = buffer.format(total);
    let sevens = memchr::memchr_iter(b'7', text.as_bytes()).count();
    let digits: smallvec::SmallVec<[u8; 32]> = text.bytes().collect();
    println!("total {{text}}: {{}} digits, {{sevens}} sevens", digits.len());
{large_line}}}
{large_uses}
#[cfg(test)]
mod tests {{
    #[test]
    fn total_is_deterministic() {{
        assert_eq!(super::total(5), super::total(5));
    }}
}}
"#
    )
}

const APP_TEST: &str = r#"//! Runs the generated binary as a user would.

#[test]
fn prints_a_total() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_app"))
        .arg("3")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("total "));
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(libs: &[Lib], name: &str) -> Vec<String> {
        libs.iter().find(|l| l.name == name).unwrap().deps.clone()
    }

    #[test]
    fn the_graph_has_a_diamond_and_chains() {
        let libs = graph(12);
        assert_eq!(libs.len(), 12);
        assert!(deps(&libs, "lib001").is_empty());
        assert_eq!(deps(&libs, "lib002"), ["lib001"]);
        assert_eq!(deps(&libs, "lib003"), ["lib001"]);
        assert_eq!(deps(&libs, "lib004"), ["lib002", "lib003"]);
        // Two chains of four above the diamond's top.
        assert_eq!(deps(&libs, "lib005"), ["lib004"]);
        assert_eq!(deps(&libs, "lib008"), ["lib007"]);
        assert_eq!(deps(&libs, "lib009"), ["lib004"]);
        assert_eq!(deps(&libs, "lib012"), ["lib011"]);
        assert_eq!(heads(&libs), ["lib008", "lib012"]);
    }

    #[test]
    fn small_graphs_are_chains() {
        let libs = graph(2);
        assert_eq!(deps(&libs, "lib002"), ["lib001"]);
        assert_eq!(heads(&libs), ["lib002"]);
        let libs = graph(3);
        assert_eq!(heads(&libs), ["lib002", "lib003"]);
        assert!(graph(0).is_empty());
    }

    #[test]
    fn writes_every_crate() {
        let dir = tempfile::tempdir().unwrap();
        let generated = write(dir.path(), 6, Deps::Few).unwrap();
        assert_eq!(
            generated.default_edit,
            Path::new("crates/lib001/src/lib.rs")
        );
        let root = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
        for name in ["app", "crates/lib001", "crates/lib005"] {
            assert!(root.contains(&format!("\"{name}\"")), "{root}");
        }
        let app = std::fs::read_to_string(dir.path().join("app/Cargo.toml")).unwrap();
        assert!(
            app.contains("lib005 = { path = \"../crates/lib005\" }"),
            "{app}"
        );
        assert!(app.contains("itoa = \"1\""), "{app}");
        assert!(dir.path().join("app/tests/cli.rs").is_file());

        let only_app = tempfile::tempdir().unwrap();
        let generated = write(only_app.path(), 1, Deps::Few).unwrap();
        assert_eq!(generated.default_edit, Path::new("app/src/main.rs"));
    }

    #[test]
    fn the_large_tree_is_declared_and_used() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 3, Deps::Large).unwrap();
        let root = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
        assert!(root.contains("resolver = \"3\""), "{root}");
        let app = std::fs::read_to_string(dir.path().join("app/Cargo.toml")).unwrap();
        let main = std::fs::read_to_string(dir.path().join("app/src/main.rs")).unwrap();
        assert!(app.contains("itoa = \"1\"\n"), "{app}");
        for (name, spec) in LARGE_DEPS {
            assert!(app.contains(&format!("\n{name} = {spec}\n")), "{app}");
            // Each is used, by its name as rustc sees it (`_` for `-`).
            let path = format!("{}::", name.replace('-', "_"));
            assert!(main.contains(&path), "{name} is not used in main.rs");
        }
        assert!(main.contains("registry_deps(n)"), "{main}");

        // The few small ones only, by default, with the resolver the earlier runs had.
        let few = tempfile::tempdir().unwrap();
        write(few.path(), 3, Deps::Few).unwrap();
        let root = std::fs::read_to_string(few.path().join("Cargo.toml")).unwrap();
        assert!(root.contains("resolver = \"2\""), "{root}");
        let app = std::fs::read_to_string(few.path().join("app/Cargo.toml")).unwrap();
        assert!(!app.contains("tokio"), "{app}");
        let main = std::fs::read_to_string(few.path().join("app/src/main.rs")).unwrap();
        assert!(!main.contains("registry_deps"), "{main}");
    }
}
