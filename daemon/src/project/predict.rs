//! Predicting which packages an edit affects.
//!
//! A changed file is read by a target when cargo's dep-info says so (every file rustc read,
//! `include_str!` and `#[path]` modules included), when it lies under the target's source
//! directory (which also covers files that are new since the last build), when it is the
//! package's `build.rs`, or when the build script asked to rerun on it (`rerun-if-changed`;
//! a build script that printed none reruns on any file of its package, as cargo does). The
//! affected set is the packages of those targets and their reverse dependencies inside the
//! workspace. A file nothing reads affects nothing, and starts no job.
//!
//! This module is pure: it reads the metadata and dep-info it is given and touches no file
//! but to check for existence.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use cargo_metadata::{Metadata, TargetKind};

use crate::project::depinfo::DepInfo;
use crate::wire::roots;

#[derive(Debug, Clone)]
struct TargetInfo {
    /// The crate name rustc uses (`-` replaced by `_`), as in dep-info file names.
    crate_name: String,
    src_path: PathBuf,
    src_dir: PathBuf,
    /// Tests, benches and examples: targets `cargo build` does not build.
    test_like: bool,
    /// A library: other packages depend on it, so its change rebuilds them too.
    is_lib: bool,
}

#[derive(Debug, Clone)]
struct PackageInfo {
    dir: PathBuf,
    targets: Vec<TargetInfo>,
    build_script: Option<PathBuf>,
}

/// The workspace's members and the path dependencies between them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    packages: BTreeMap<String, PackageInfo>,
    /// Member name to the members that depend on it (normal, build or dev dependency).
    rdeps: BTreeMap<String, BTreeSet<String>>,
    /// Directories of path dependencies outside the workspace, to the members using them.
    outside: BTreeMap<PathBuf, BTreeSet<String>>,
    /// cargo's default selection at the root is every member (a virtual workspace without
    /// `default-members`, or a workspace of one package).
    default_is_workspace: bool,
    /// cargo said its default selection at the root leaves out some member (a root
    /// manifest that is a package too, or `default-members`). False when cargo did not say.
    default_differs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Reader {
    package: String,
    test_like: bool,
    /// Whether the packages that depend on this one are affected too.
    propagates: bool,
}

/// What an edit affects.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Prediction {
    /// The affected packages: readers of the changed files and their reverse dependencies.
    pub(crate) affected: BTreeSet<String>,
    /// Only tests, benches or examples read the changes: `cargo build` is not stale.
    pub(crate) tests_only: bool,
    /// A target file appeared or vanished: the metadata must be loaded again.
    pub(crate) reload: bool,
    /// Changed files that no target reads.
    pub(crate) unread: Vec<PathBuf>,
}

impl Graph {
    pub(crate) fn new(metadata: &Metadata) -> Graph {
        let members: BTreeSet<_> = metadata.workspace_members.iter().collect();
        let mut graph = Graph::default();
        let mut dir_to_name = BTreeMap::new();
        for package in metadata.packages.iter().filter(|p| members.contains(&p.id)) {
            let dir = package
                .manifest_path
                .parent()
                .map(|d| d.as_std_path().to_path_buf())
                .unwrap_or_default();
            dir_to_name.insert(dir.clone(), package.name.to_string());
            let mut info = PackageInfo {
                dir,
                targets: Vec::new(),
                build_script: None,
            };
            for target in &package.targets {
                let src_path = target.src_path.as_std_path().to_path_buf();
                if target.kind.contains(&TargetKind::CustomBuild) {
                    info.build_script = Some(src_path);
                    continue;
                }
                info.targets.push(TargetInfo {
                    crate_name: target.name.replace('-', "_"),
                    src_dir: src_path.parent().map(Path::to_path_buf).unwrap_or_default(),
                    src_path,
                    test_like: target.kind.iter().all(|k| {
                        matches!(
                            k,
                            TargetKind::Test | TargetKind::Bench | TargetKind::Example
                        )
                    }),
                    is_lib: target.kind.iter().any(|k| {
                        matches!(
                            k,
                            TargetKind::Lib
                                | TargetKind::RLib
                                | TargetKind::DyLib
                                | TargetKind::CDyLib
                                | TargetKind::StaticLib
                                | TargetKind::ProcMacro
                        )
                    }),
                });
            }
            graph.packages.insert(package.name.to_string(), info);
        }
        for package in metadata.packages.iter().filter(|p| members.contains(&p.id)) {
            for dep in &package.dependencies {
                // Normal, build and dev dependencies all make the user rebuild: a dev
                // dependency's change rebuilds the user's tests.
                let Some(path) = &dep.path else { continue };
                let path = path.as_std_path().to_path_buf();
                match dir_to_name.get(&path) {
                    Some(name) => {
                        graph
                            .rdeps
                            .entry(name.clone())
                            .or_default()
                            .insert(package.name.to_string());
                    }
                    None => {
                        graph
                            .outside
                            .entry(path)
                            .or_default()
                            .insert(package.name.to_string());
                    }
                }
            }
        }
        // Before cargo 1.71 the default members are not reported: then only a virtual
        // workspace is known to select every member.
        graph.default_is_workspace = if metadata.workspace_default_members.is_available() {
            metadata
                .workspace_members
                .iter()
                .all(|m| metadata.workspace_default_members.contains(m))
        } else {
            metadata.root_package().is_none()
        };
        // Only what cargo reports: without the list, whether a root package's selection
        // differs is unknown, and the daemon checks nothing it cannot name.
        graph.default_differs =
            metadata.workspace_default_members.is_available() && !graph.default_is_workspace;
        graph
    }

    /// Whether a member has a library (cargo refuses `--lib` over members that have none).
    pub(crate) fn has_lib(&self) -> bool {
        self.packages
            .values()
            .any(|p| p.targets.iter().any(|t| t.is_lib))
    }

    pub(crate) fn members(&self) -> BTreeSet<String> {
        self.packages.keys().cloned().collect()
    }

    pub(crate) fn crate_names(&self) -> BTreeSet<String> {
        self.packages
            .values()
            .flat_map(|p| p.targets.iter().map(|t| t.crate_name.clone()))
            .collect()
    }

    pub(crate) fn package_dirs(&self) -> BTreeMap<String, PathBuf> {
        self.packages
            .iter()
            .map(|(name, p)| (name.clone(), p.dir.clone()))
            .collect()
    }

    /// Path dependencies outside the workspace, which the watcher must watch too.
    pub(crate) fn outside_dirs(&self) -> Vec<PathBuf> {
        self.outside.keys().cloned().collect()
    }

    /// The package whose directory holds `file`: the deepest one, as nested packages are
    /// packages of their own.
    pub(crate) fn package_dir(&self, name: &str) -> Option<&Path> {
        self.packages.get(name).map(|p| p.dir.as_path())
    }

    pub(crate) fn default_is_workspace(&self) -> bool {
        self.default_is_workspace
    }

    /// Whether cargo's default selection at the root is known to leave out some member, so
    /// that a plain `cargo build` there may need other units than `--workspace` leaves
    /// (`build/selection.rs`).
    pub(crate) fn default_differs(&self) -> bool {
        self.default_differs
    }

    pub(crate) fn package_of(&self, file: &Path) -> Option<&str> {
        roots::deepest_containing(&self.packages, file, |(_, p)| &p.dir)
            .map(|(name, _)| name.as_str())
    }

    pub(crate) fn predict(&self, files: &BTreeSet<PathBuf>, info: &DepInfo) -> Prediction {
        let mut direct = BTreeSet::new();
        let mut propagating = BTreeSet::new();
        let mut prediction = Prediction {
            tests_only: true,
            ..Prediction::default()
        };
        for file in files {
            let readers = self.readers(file, info);
            if readers.is_empty() {
                prediction.unread.push(file.clone());
            }
            for reader in readers {
                prediction.tests_only &= reader.test_like;
                if reader.propagates {
                    propagating.insert(reader.package.clone());
                }
                direct.insert(reader.package);
            }
            prediction.reload |= self.changes_targets(file);
        }
        if direct.is_empty() {
            prediction.tests_only = false;
        }
        // Only a library's (or build script's) change reaches the packages that depend on
        // it; a binary, test or example of a package is its own business.
        let mut affected = self.closure(propagating);
        affected.extend(direct);
        prediction.affected = affected;
        prediction
    }

    /// The targets, grouped by package, that read `file`.
    fn readers(&self, file: &Path, info: &DepInfo) -> BTreeSet<Reader> {
        let mut readers = BTreeSet::new();
        let owner = self.package_of(file);
        let rust_source = file.extension().is_some_and(|e| e == "rs");
        for (name, package) in &self.packages {
            for target in &package.targets {
                let by_depinfo = info
                    .crate_files
                    .get(&target.crate_name)
                    .is_some_and(|files| files.contains(file));
                // A Rust file under a target's source dir may be a module that is new since
                // the last build; other files there count only when dep-info lists them
                // (or before there is any dep-info).
                let by_dir = owner == Some(name.as_str())
                    && file.starts_with(&target.src_dir)
                    && (rust_source || info.crate_files.is_empty());
                if by_depinfo || by_dir {
                    readers.insert(Reader {
                        package: name.clone(),
                        test_like: target.test_like,
                        propagates: target.is_lib,
                    });
                }
            }
            if let Some(script) = &package.build_script {
                let reruns = match info.rerun_if_changed.get(name) {
                    // A build script that named its inputs reruns only on them.
                    Some(paths) if !paths.is_empty() => paths.iter().any(|p| file.starts_with(p)),
                    // One that named none (or has not run yet) reruns on any file of its
                    // package.
                    _ => owner == Some(name.as_str()),
                };
                if file == script || reruns {
                    readers.insert(Reader {
                        package: name.clone(),
                        test_like: false,
                        propagates: true,
                    });
                }
            }
        }
        for (dir, users) in &self.outside {
            if file.starts_with(dir) {
                // The users' libraries read the dependency; they propagate as libraries do.
                readers.extend(users.iter().map(|u| Reader {
                    package: u.clone(),
                    test_like: false,
                    propagates: true,
                }));
            }
        }
        readers
    }

    /// Whether `file` adds or removes a target cargo discovers by its place: a file directly
    /// in `tests/`, `examples/`, `benches/` or `src/bin/`.
    fn changes_targets(&self, file: &Path) -> bool {
        let Some(owner) = self.package_of(file).and_then(|n| self.packages.get(n)) else {
            return false;
        };
        if file.extension().is_none_or(|e| e != "rs") {
            return false;
        }
        let Some(parent) = file.parent() else {
            return false;
        };
        let auto_dir = ["tests", "examples", "benches", "src/bin"]
            .iter()
            .any(|d| parent == owner.dir.join(d));
        let known = owner.targets.iter().any(|t| t.src_path == file);
        auto_dir && (known != file.exists())
    }

    /// A package and its reverse dependencies.
    pub(crate) fn affected_by(&self, package: &str) -> BTreeSet<String> {
        self.closure(BTreeSet::from([package.to_owned()]))
    }

    fn closure(&self, direct: BTreeSet<String>) -> BTreeSet<String> {
        let mut seen = direct.clone();
        let mut queue: VecDeque<String> = direct.into_iter().collect();
        while let Some(name) = queue.pop_front() {
            for user in self.rdeps.get(&name).into_iter().flatten() {
                if seen.insert(user.clone()) {
                    queue.push_back(user.clone());
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    //! Prediction over a small graph made by hand: `app` (a binary) depends on `core` (a
    //! library with a build script that names its input, and an integration test), `tool`
    //! depends on nothing, and `core` uses a path dependency outside the workspace.

    use super::*;

    const W: &str = "/w";

    fn target(name: &str, src: &str, test_like: bool, is_lib: bool) -> TargetInfo {
        let src_path = Path::new(W).join(src);
        TargetInfo {
            crate_name: name.replace('-', "_"),
            src_dir: src_path.parent().unwrap().to_path_buf(),
            src_path,
            test_like,
            is_lib,
        }
    }

    fn graph() -> Graph {
        let mut graph = Graph::default();
        graph.packages.insert(
            "core".into(),
            PackageInfo {
                dir: Path::new(W).join("core"),
                targets: vec![
                    target("core", "core/src/lib.rs", false, true),
                    target("smoke", "core/tests/smoke.rs", true, false),
                ],
                build_script: Some(Path::new(W).join("core/build.rs")),
            },
        );
        graph.packages.insert(
            "app".into(),
            PackageInfo {
                dir: Path::new(W).join("app"),
                targets: vec![target("app", "app/src/main.rs", false, false)],
                build_script: None,
            },
        );
        graph.packages.insert(
            "tool".into(),
            PackageInfo {
                dir: Path::new(W).join("tool"),
                targets: vec![target("tool", "tool/src/main.rs", false, false)],
                build_script: None,
            },
        );
        graph
            .rdeps
            .insert("core".into(), BTreeSet::from(["app".to_owned()]));
        graph.outside.insert(
            PathBuf::from("/vendor/fmt"),
            BTreeSet::from(["core".to_owned()]),
        );
        graph
    }

    /// Dep-info as after a build: each crate read its root and `core` also an included file;
    /// the build script asked to rerun on `core/schema.txt` only.
    fn built() -> DepInfo {
        let files = |list: &[&str]| list.iter().map(|f| Path::new(W).join(f)).collect();
        DepInfo {
            crate_files: BTreeMap::from([
                (
                    "core".to_owned(),
                    files(&["core/src/lib.rs", "core/data/table.txt"]),
                ),
                ("smoke".to_owned(), files(&["core/tests/smoke.rs"])),
                ("app".to_owned(), files(&["app/src/main.rs"])),
                ("tool".to_owned(), files(&["tool/src/main.rs"])),
            ]),
            rerun_if_changed: BTreeMap::from([("core".to_owned(), files(&["core/schema.txt"]))]),
        }
    }

    fn predict(graph: &Graph, info: &DepInfo, changed: &[&str]) -> Prediction {
        let files = changed
            .iter()
            .map(|f| {
                if f.starts_with('/') {
                    PathBuf::from(f)
                } else {
                    Path::new(W).join(f)
                }
            })
            .collect();
        graph.predict(&files, info)
    }

    fn names(set: &BTreeSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_library_change_reaches_its_reverse_dependencies_and_no_one_else() {
        let p = predict(&graph(), &built(), &["core/src/lib.rs"]);
        assert_eq!(names(&p.affected), ["app", "core"]);
        assert!(!p.tests_only && !p.reload && p.unread.is_empty());
    }

    #[test]
    fn a_binary_change_stays_in_its_package() {
        let p = predict(&graph(), &built(), &["app/src/main.rs"]);
        assert_eq!(names(&p.affected), ["app"]);
    }

    #[test]
    fn an_integration_test_change_is_tests_only() {
        let p = predict(&graph(), &built(), &["core/tests/smoke.rs"]);
        assert_eq!(names(&p.affected), ["core"]);
        assert!(p.tests_only);
    }

    #[test]
    fn an_included_file_counts_by_dep_info_and_an_unread_one_by_nothing() {
        let p = predict(&graph(), &built(), &["core/data/table.txt"]);
        assert_eq!(names(&p.affected), ["app", "core"]);
        let p = predict(&graph(), &built(), &["core/notes.md"]);
        assert!(p.affected.is_empty(), "{p:?}");
        assert_eq!(p.unread, [Path::new("/w/core/notes.md")]);
        assert!(!p.tests_only, "nothing affected is not 'tests only'");
    }

    #[test]
    fn a_build_script_reruns_on_what_it_named_and_on_its_own_source() {
        for file in ["core/schema.txt", "core/build.rs"] {
            let p = predict(&graph(), &built(), &[file]);
            assert_eq!(names(&p.affected), ["app", "core"], "{file}");
        }
        // Before the script ran (no rerun-if-changed yet) any file of its package counts.
        let mut fresh = built();
        fresh.rerun_if_changed.clear();
        let p = predict(&graph(), &fresh, &["core/notes.md"]);
        assert_eq!(names(&p.affected), ["app", "core"]);
    }

    #[test]
    fn a_new_module_counts_before_any_dep_info_lists_it() {
        let p = predict(&graph(), &built(), &["tool/src/new_module.rs"]);
        assert_eq!(names(&p.affected), ["tool"]);
        // A non-Rust file there counts only without dep-info.
        let p = predict(&graph(), &built(), &["tool/src/notes.txt"]);
        assert!(p.affected.is_empty());
        let p = predict(&graph(), &DepInfo::default(), &["tool/src/notes.txt"]);
        assert_eq!(names(&p.affected), ["tool"]);
    }

    #[test]
    fn a_path_dependency_outside_affects_its_users_as_a_library_does() {
        let p = predict(&graph(), &built(), &["/vendor/fmt/src/lib.rs"]);
        assert_eq!(names(&p.affected), ["app", "core"]);
    }

    #[test]
    fn a_new_file_in_an_auto_discovered_target_dir_asks_for_a_reload() {
        // `app/tests/it.rs` does not exist on disk and is no known target: nothing changes.
        let p = predict(&graph(), &built(), &["app/tests/it.rs"]);
        assert!(!p.reload);
        // A known target that no longer exists on disk vanished: reload.
        let p = predict(&graph(), &built(), &["core/tests/smoke.rs"]);
        assert!(p.reload, "a known test target missing from disk");
    }

    #[test]
    fn several_files_unite_their_packages() {
        let p = predict(
            &graph(),
            &built(),
            &["tool/src/main.rs", "core/tests/smoke.rs"],
        );
        assert_eq!(names(&p.affected), ["core", "tool"]);
        assert!(!p.tests_only);
        assert_eq!(names(&graph().affected_by("core")), ["app", "core"]);
        assert_eq!(
            graph().package_of(Path::new("/w/core/src/x.rs")),
            Some("core")
        );
        assert_eq!(graph().package_of(Path::new("/elsewhere.rs")), None);
    }
}
