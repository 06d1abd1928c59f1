//! Planning a job: the cargo commands its stages run, one per job definition; and which job
//! definitions a user's own cargo command needs.
//!
//! Every definition runs as written, over what it selects (the defaults select the whole
//! workspace): it must leave behind exactly the units the user's command looks for, and a
//! narrower `--package` selection would unify features differently, so a dependency used
//! with other features elsewhere would be compiled in a variant nobody asked for. cargo
//! compiles only what changed anyway, and over the whole workspace what it rebuilds is an
//! honest measure of the prediction. One exception makes diagnostics come sooner: when the
//! package of the file an editor saved competes with other changes, the diagnostics job
//! first runs over that package alone.
//!
//! The definitions run in their order (the diagnostics job first), except while a
//! `buildd watch --run` keeps a program running: then the job that links it runs first, and
//! reports diagnostics too, so that the program restarts without waiting for clippy, and
//! an error that stops the build is still shown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::build::jobs::{self, JobDef};
use crate::wire::protocol::{CargoEnv, JobOrigin, Stage};

/// One cargo invocation of a job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StagePlan {
    pub(crate) stage: Stage,
    pub(crate) args: Vec<String>,
    /// Relative to the workspace root; empty for the root.
    pub(crate) dir: PathBuf,
    /// Its compiler messages are the workspace's diagnostics.
    pub(crate) diagnostics: bool,
    /// Its compiler commands are recorded for early diagnostics: the diagnostics job's own
    /// (`check` or `clippy`), not a build that runs first and reports too.
    pub(crate) record: bool,
    pub(crate) origin: JobOrigin,
    /// Another build key this stage warms instead of the workspace's own; `None` for the
    /// workspace's key.
    pub(crate) key: Option<Arc<OtherKeyEnv>>,
    /// It runs several definitions as one cargo invocation (`merge.rs`).
    pub(crate) merged: Option<Box<Merged>>,
}

/// A stage that runs several job definitions as one cargo invocation (`merge.rs`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Merged {
    /// The definitions it runs for besides its own (`stage`).
    pub(crate) also: Vec<Stage>,
    /// After it, run the parts apart and report the units of theirs it did not leave: the
    /// check that the merged invocation leaves the units each part looks for.
    pub(crate) verify: bool,
    /// The definitions as they run apart, in order: when a waiting user command needs only
    /// some of them, and for the check.
    pub(crate) split: Vec<StagePlan>,
}

impl StagePlan {
    /// The definitions it runs: its own, then those merged into it.
    pub(crate) fn names(&self) -> Vec<Stage> {
        let mut names = vec![self.stage.clone()];
        if let Some(merged) = &self.merged {
            names.extend(merged.also.iter().cloned());
        }
        names
    }
}

/// What cargo runs with to warm another key the workspace was used with lately (another
/// toolchain, other flags): the environment of the client that used it, and the
/// environment that points cargo at that key's dir.
#[derive(Debug, PartialEq)]
pub(crate) struct OtherKeyEnv {
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) cargo_env: CargoEnv,
    /// cargo's cache of the compiler's answers in that key's dir.
    pub(crate) rustc_info: crate::build::rustc_info::RustcInfo,
}

/// Plans the stages of a job over `defs`, in order. `focus` is the package of the file an
/// editor saved, if any, among the predicted packages; `focus_alone` says whether other
/// changes compete with it (its own reverse dependencies do not: cargo builds them after it
/// anyway). `first` is the definition that links a program a watch keeps running (see
/// [`links_programs`]): it runs first, and reports diagnostics.
pub(crate) fn plan(
    defs: &[JobDef],
    focus: Option<&str>,
    focus_alone: bool,
    first: Option<&Stage>,
) -> Vec<StagePlan> {
    let first = first.and_then(|name| defs.iter().find(|d| &d.name == name));
    let ordered = first
        .into_iter()
        .chain(defs.iter().filter(|d| Some(*d) != first));
    let mut plans = Vec::new();
    for def in ordered {
        let stage = |args: Vec<String>| StagePlan {
            stage: def.name.clone(),
            args,
            dir: def.dir.clone(),
            diagnostics: def.diagnostics || Some(def) == first,
            record: def.diagnostics,
            origin: def.origin,
            key: None,
            merged: None,
        };
        if let Some(focus) = focus
            && !focus_alone
            && def.diagnostics
            && plans.is_empty()
            && def.dir.as_os_str().is_empty()
            && !def
                .args
                .iter()
                .any(|a| a == "--package" || a == "-p" || a == "--exclude")
        {
            let mut args: Vec<String> = def
                .args
                .iter()
                .filter(|a| *a != "--workspace" && *a != "--all")
                .cloned()
                .collect();
            let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
            args.splice(at..at, ["--package".to_owned(), focus.to_owned()]);
            plans.push(stage(args));
        }
        plans.push(stage(def.args.clone()));
    }
    plans
}

/// The definition that links the binaries a `buildd watch --run` runs (`debug/NAME` in the
/// warm dir): the first one that builds every member's binaries with the dev profile for
/// the host, from the root. The default `build` is it; a learned or narrower one is not.
pub(crate) fn links_programs(defs: &[JobDef]) -> Option<&JobDef> {
    defs.iter().find(|d| {
        let options: Vec<&str> = d
            .args
            .iter()
            .skip(1)
            .take_while(|a| *a != "--")
            .map(String::as_str)
            .collect();
        d.origin != JobOrigin::Learned
            && d.subcommand() == "build"
            && d.dir.as_os_str().is_empty()
            && options.iter().all(|o| {
                let option = o.split_once('=').map_or(*o, |(option, _)| option);
                !NARROWS.contains(&option)
            })
            && options.iter().any(|o| *o == "--workspace" || *o == "--all")
    })
}

/// Options that build another profile or target, or fewer packages or targets, than the
/// binaries a watch runs from `debug/`.
const NARROWS: &[&str] = &[
    "--release",
    "-r",
    "--profile",
    "--target",
    "--package",
    "-p",
    "--exclude",
    "--lib",
    "--bin",
    "--example",
    "--examples",
    "--test",
    "--tests",
    "--bench",
    "--benches",
    "--manifest-path",
];

/// What a user's cargo command needs of buildd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// The jobs of these subcommands finished in the warm dir first (see [`jobs::family`]).
    Family(&'static [&'static str]),
    /// No job, but the isolated dir: the command cleans it (`clean`) or names it
    /// (`metadata`), so it runs there, under a lease.
    TargetDir,
    /// Nothing of buildd's: the command neither compiles nor touches a target dir (`--version`,
    /// `help`, `fmt`, `add`...), so plain cargo runs it, without a daemon.
    Nothing,
}

/// What `cargo ARGS` needs: the one list of the cargo commands buildd knows. `None` for an
/// unknown subcommand, which might build (a plugin).
fn needs(args: &[String]) -> Option<Needs> {
    let Some((subcommand, iter)) = jobs::split_subcommand(args) else {
        // No subcommand: `cargo --version`, `-V`, `--help`, `--list`, `--explain E0308`
        // print and exit; a bare `cargo` prints its usage.
        return Some(Needs::Nothing);
    };
    let needs = match subcommand {
        "clean" | "metadata" => Needs::TargetDir,
        "update" | "tree" | "fmt" | "locate-project" | "pkgid" | "search" | "add" | "remove"
        | "new" | "init" | "help" | "version" | "verify-project" | "vendor" | "fetch"
        | "generate-lockfile" => Needs::Nothing,
        other => Needs::Family(jobs::family(other)?),
    };
    // `cargo build --help` compiles nothing either: a help option before any positional
    // argument or `--` (after those, it may be the program's or the test binary's).
    let help = iter
        .take_while(|a| a.starts_with('-') && *a != "--")
        .any(|a| a == "--help" || a == "-h");
    Some(if help { Needs::Nothing } else { needs })
}

/// The job definitions a user's cargo command needs, from its arguments: the default and
/// configured ones of its family (see [`jobs::family`]) and the learned one of its shape
/// (`shape`, as learning made it, or the command's own shape).
/// `None` when any may be needed (an unknown subcommand that might build).
pub(crate) fn needed_stages(
    args: &[String],
    defs: &[JobDef],
    shape: Option<&[String]>,
) -> Option<Vec<Stage>> {
    let family = match needs(args)? {
        Needs::Family(family) => family,
        Needs::TargetDir | Needs::Nothing => return Some(Vec::new()),
    };
    let own = jobs::shape(args);
    let shape = shape.or(own.as_deref());
    Some(
        defs.iter()
            .filter(|d| match d.origin {
                JobOrigin::Learned => shape == Some(d.args.as_slice()),
                _ => family.contains(&d.subcommand()),
            })
            .map(|d| d.name.clone())
            .collect(),
    )
}

/// Whether `cargo ARGS` needs nothing of buildd, so that `buildd cargo` runs it as plain cargo
/// without starting or asking the daemon.
pub fn needs_no_daemon(args: &[String]) -> bool {
    needs(args) == Some(Needs::Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn names(stages: Option<Vec<Stage>>) -> Option<Vec<String>> {
        stages.map(|s| s.into_iter().map(|s| s.0).collect())
    }

    #[test]
    fn commands_that_neither_compile_nor_touch_a_target_dir_need_no_daemon() {
        for command in [
            "--version",
            "-V",
            "+stable --version",
            "--help",
            "-h",
            "--list",
            "help",
            "help build",
            "version",
            "-C sub fmt",
            "build --help",
            "test -h",
            "",
        ] {
            assert!(needs_no_daemon(&args(command)), "{command}");
        }
        for command in [
            "build",
            "clean",
            "metadata --format-version 1",
            "test -- --help",
            "run prog --help",
            "some-plugin --version",
            "--config x=1 check",
        ] {
            assert!(!needs_no_daemon(&args(command)), "{command}");
        }
    }

    #[test]
    fn user_commands_need_the_jobs_of_their_family() {
        let mut defs = jobs::defaults(true);
        defs.push(JobDef::new(
            "build --release",
            &["build", "--release"],
            JobOrigin::Learned,
            false,
        ));
        let needed = |s: &str| names(needed_stages(&args(s), &defs, None));
        assert_eq!(
            needed("build --release"),
            Some(vec!["build".into(), "build --release".into()])
        );
        assert_eq!(needed("+nightly -v run"), Some(vec!["build".into()]));
        assert_eq!(
            needed("--config x=1 test --no-run"),
            Some(vec!["build".into(), "test".into()])
        );
        assert_eq!(needed("clippy"), Some(vec!["clippy".into()]));
        assert_eq!(needed("clean"), Some(vec![]));
        assert_eq!(needed("some-plugin"), None);
        assert_eq!(needed("build --help"), Some(vec![]));
        assert_eq!(needed(""), Some(vec![]));
    }

    #[test]
    fn the_diagnostics_job_runs_over_the_focus_first_when_other_changes_compete() {
        let defs = jobs::defaults(true);
        let lines = |focus, alone| -> Vec<String> {
            plan(&defs, focus, alone, None)
                .iter()
                .map(|s| format!("{}: {}", s.stage, s.args.join(" ")))
                .collect()
        };
        assert_eq!(
            lines(Some("x"), false),
            [
                "clippy: clippy --all-targets --package x",
                "clippy: clippy --workspace --all-targets",
                "build: build --workspace",
                "test: test --no-run --workspace",
            ]
        );
        assert_eq!(lines(Some("x"), true).len(), 3);
        assert_eq!(lines(None, false).len(), 3);
        let pedantic = [JobDef::new(
            "pedantic",
            &["clippy", "--workspace", "--", "-W", "clippy::pedantic"],
            JobOrigin::Config,
            true,
        )];
        assert_eq!(
            plan(&pedantic, Some("x"), false, None)[0].args.join(" "),
            "clippy --package x -- -W clippy::pedantic"
        );
    }

    #[test]
    fn the_job_that_links_a_watched_program_runs_first_and_reports_diagnostics() {
        let defs = jobs::defaults(true);
        let first = links_programs(&defs).map(|d| d.name.clone());
        assert_eq!(first, Some(Stage::new("build")));
        let stages = plan(&defs, Some("x"), false, first.as_ref());
        let lines: Vec<String> = stages
            .iter()
            .map(|s| {
                format!(
                    "{}: {} (diagnostics {}, record {})",
                    s.stage,
                    s.args.join(" "),
                    s.diagnostics,
                    s.record
                )
            })
            .collect();
        // The build reports what it compiles; clippy's commands stay the ones recorded for
        // early runs, and the focus stage goes with clippy no longer being first.
        assert_eq!(
            lines,
            [
                "build: build --workspace (diagnostics true, record false)",
                "clippy: clippy --workspace --all-targets (diagnostics true, record true)",
                "test: test --no-run --workspace (diagnostics false, record false)",
            ]
        );
    }

    #[test]
    fn only_a_dev_build_of_every_member_from_the_root_links_the_watched_programs() {
        let def = |args: &[&str], origin| JobDef::new("j", args, origin, false);
        let links = |args: &[&str], origin| links_programs(&[def(args, origin)]).is_some();
        assert!(links(&["build", "--workspace"], JobOrigin::Default));
        assert!(links(
            &["build", "--all", "--features", "x"],
            JobOrigin::Config
        ));
        assert!(!links(&["build", "--workspace"], JobOrigin::Learned));
        assert!(!links(
            &["build", "--workspace", "--release"],
            JobOrigin::Config
        ));
        assert!(!links(
            &["build", "--workspace", "--profile=dev2"],
            JobOrigin::Config
        ));
        assert!(!links(
            &["build", "--workspace", "-p", "app"],
            JobOrigin::Config
        ));
        assert!(!links(&["build"], JobOrigin::Config));
        assert!(!links(&["check", "--workspace"], JobOrigin::Default));
        let mut elsewhere = def(&["build", "--workspace"], JobOrigin::Config);
        elsewhere.dir = PathBuf::from("sub");
        assert!(links_programs(&[elsewhere]).is_none());
    }
}
