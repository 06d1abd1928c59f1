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

use std::path::PathBuf;

use crate::build::jobs::{self, JobDef};
use crate::wire::protocol::{JobOrigin, Stage};

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

/// The job definitions a user's cargo command needs, from its arguments: the default and
/// configured ones of its family (see [`jobs::family`]) and the learned one of its shape.
/// `None` when any may be needed (no arguments, or an unknown subcommand that might build).
pub(crate) fn needed_stages(args: &[String], defs: &[JobDef]) -> Option<Vec<Stage>> {
    let family = match subcommand(args)? {
        // Commands that compile nothing need no job: `clean`, `update`, `tree`, `fmt`...
        Subcommand::Nothing => return Some(Vec::new()),
        Subcommand::Named(name) => jobs::family(name)?,
    };
    let shape = jobs::shape(args);
    Some(
        defs.iter()
            .filter(|d| match d.origin {
                JobOrigin::Learned => shape.as_ref() == Some(&d.args),
                _ => family.contains(&d.subcommand()),
            })
            .map(|d| d.name.clone())
            .collect(),
    )
}

enum Subcommand<'a> {
    Named(&'a str),
    Nothing,
}

/// The subcommand: the first argument that is not an option or a `+toolchain`. `None` for
/// none.
fn subcommand(args: &[String]) -> Option<Subcommand<'_>> {
    let mut iter = args.iter();
    let subcommand = loop {
        let arg = iter.next()?;
        if arg.starts_with('+') || arg.starts_with('-') {
            // Options that take a value in the next argument.
            if matches!(arg.as_str(), "-C" | "--config" | "-Z" | "--color") {
                iter.next();
            }
            continue;
        }
        break arg.as_str();
    };
    Some(match subcommand {
        "clean" | "update" | "tree" | "fmt" | "metadata" | "locate-project" | "pkgid"
        | "search" | "add" | "remove" | "new" | "init" | "help" | "version" | "verify-project"
        | "vendor" | "fetch" | "generate-lockfile" => Subcommand::Nothing,
        other => Subcommand::Named(other),
    })
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
    fn user_commands_need_the_jobs_of_their_family() {
        let mut defs = jobs::defaults(true);
        defs.push(JobDef::new(
            "build --release",
            &["build", "--release"],
            JobOrigin::Learned,
            false,
        ));
        let needed = |s: &str| names(needed_stages(&args(s), &defs));
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
        assert_eq!(needed(""), None);
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
