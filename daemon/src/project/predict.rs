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
        graph
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
