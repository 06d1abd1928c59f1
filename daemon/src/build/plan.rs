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
    pub(crate) origin: JobOrigin,
    /// Another build key this stage warms instead of the workspace's own; `None` for the
    /// workspace's key.
    pub(crate) key: Option<Arc<OtherKeyEnv>>,
}

/// What cargo runs with to warm another key the workspace was used with lately (another
/// toolchain, other flags): the environment of the client that used it, and the
/// environment that points cargo at that key's dir.
#[derive(Debug, PartialEq)]
pub(crate) struct OtherKeyEnv {
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) cargo_env: CargoEnv,
}

/// Plans the stages of a job over `defs`, in order. `focus` is the package of the file an
/// editor saved, if any, among the predicted packages; `focus_alone` says whether other
/// changes compete with it (its own reverse dependencies do not: cargo builds them after it
/// anyway).
pub(crate) fn plan(defs: &[JobDef], focus: Option<&str>, focus_alone: bool) -> Vec<StagePlan> {
    let mut plans = Vec::new();
    for def in defs {
        let stage = |args: Vec<String>| StagePlan {
            stage: def.name.clone(),
            args,
            dir: def.dir.clone(),
            diagnostics: def.diagnostics,
            origin: def.origin,
            key: None,
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
    // The subcommand is the first argument that is not an option or a `+toolchain`.
    let mut iter = args.iter();
    let subcommand = loop {
        let Some(arg) = iter.next() else {
            // No subcommand: `cargo --version`, `-V`, `--help`, `--list`, `--explain E0308`
            // print and exit; a bare `cargo` prints its usage.
            return Some(Needs::Nothing);
        };
        if arg.starts_with('+') || arg.starts_with('-') {
            // Options that take a value in the next argument.
            if matches!(arg.as_str(), "-C" | "--config" | "-Z" | "--color") {
                iter.next();
            }
            continue;
        }
        break arg.as_str();
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
            plan(&defs, focus, alone)
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
            plan(&pedantic, Some("x"), false)[0].args.join(" "),
            "clippy --package x -- -W clippy::pedantic"
        );
    }
}
