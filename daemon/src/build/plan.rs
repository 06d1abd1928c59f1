//! Planning a job: which packages it covers and which cargo commands its stages run; and
//! which stages a user's own cargo command needs.
//!
//! The check stage is scoped to the predicted packages (`--package` each), so diagnostics of
//! the edited code come first, and the package of the file just saved gets an invocation of
//! its own ahead of the others when other changes compete with it. The build and test
//! stages run over the whole workspace: they must leave behind exactly the units the user's
//! `cargo build` and `cargo test --no-run` at the workspace root look for. Scoping them with
//! `--package` would unify features over the selected packages only, so a dependency used
//! with different features elsewhere would be compiled in a second variant nobody asked for;
//! and cargo compiles only what changed anyway. Over the whole workspace, what cargo rebuilds
//! is also an honest measure of the prediction.

use std::collections::BTreeSet;

use crate::build::job::{Stage, StagePlan};

pub(crate) struct JobPlan {
    pub(crate) stages: Vec<StagePlan>,
}

/// Plans the stages of a job. `predicted` is `None` for a full job; `focus` is the package of
/// the file an editor saved, if any; `focus_alone` says whether other changes compete with it
/// (its own reverse dependencies do not: cargo builds them after it anyway).
pub(crate) fn plan(
    stages: &[Stage],
    predicted: Option<&BTreeSet<String>>,
    focus: Option<&str>,
    focus_alone: bool,
) -> JobPlan {
    let mut plans = Vec::new();
    for &stage in stages {
        match (stage, predicted) {
            (Stage::Check, Some(predicted)) => {
                let mut packages: Vec<String> = predicted.iter().cloned().collect();
                if let Some(focus) = focus.filter(|f| predicted.contains(*f)) {
                    if !focus_alone {
                        plans.push(StagePlan {
                            stage,
                            args: stage.args(Some(&[focus.to_owned()])),
                        });
                    }
                    // The focus package first on the command line too, for the record.
                    packages.retain(|p| p != focus);
                    packages.insert(0, focus.to_owned());
                }
                plans.push(StagePlan {
                    stage,
                    args: stage.args(Some(&packages)),
                });
            }
            (stage, _) => plans.push(StagePlan {
                stage,
                args: stage.args(None),
            }),
        }
    }
    JobPlan { stages: plans }
}

/// The daemon stages a user's cargo command needs, from its arguments: `None` when any may
/// be needed (no arguments, or an unknown subcommand that might build).
pub(crate) fn needed_stages(args: &[String]) -> Option<Vec<Stage>> {
    // The subcommand is the first argument that is not an option or a `+toolchain`.
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
    let stages = match subcommand {
        "build" | "b" | "run" | "r" | "rustc" => vec![Stage::Build],
        "test" | "t" | "bench" | "nextest" => vec![Stage::Build, Stage::Test],
        "check" | "c" | "clippy" | "fix" | "doc" | "d" => vec![Stage::Check],
        // Commands that compile nothing need no stage: `clean`, `update`, `tree`, `fmt`...
        "clean" | "update" | "tree" | "fmt" | "metadata" | "locate-project" | "pkgid"
        | "search" | "add" | "remove" | "new" | "init" | "help" | "version" | "verify-project"
        | "vendor" | "fetch" | "generate-lockfile" => vec![],
        _ => return None,
    };
    Some(stages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn user_commands_need_their_stages() {
        assert_eq!(
            needed_stages(&args("build --release")),
            Some(vec![Stage::Build])
        );
        assert_eq!(
            needed_stages(&args("+nightly -v run")),
            Some(vec![Stage::Build])
        );
        assert_eq!(
            needed_stages(&args("--config x=1 test --no-run")),
            Some(vec![Stage::Build, Stage::Test])
        );
        assert_eq!(needed_stages(&args("clippy")), Some(vec![Stage::Check]));
        assert_eq!(needed_stages(&args("clean")), Some(vec![]));
        assert_eq!(needed_stages(&args("some-plugin")), None);
        assert_eq!(needed_stages(&[]), None);
    }

    #[test]
    fn check_is_scoped_with_the_focus_first_and_build_covers_the_workspace() {
        let predicted: BTreeSet<String> = ["a", "b", "x"].iter().map(|s| s.to_string()).collect();
        let plan = plan(
            &[Stage::Check, Stage::Build, Stage::Test],
            Some(&predicted),
            Some("x"),
            false,
        );
        let lines: Vec<String> = plan.stages.iter().map(|s| s.args.join(" ")).collect();
        assert_eq!(
            lines,
            vec![
                "check --package x",
                "check --package x --package a --package b",
                "build --workspace",
                "test --no-run --workspace",
            ]
        );
        let full = super::plan(&[Stage::Check, Stage::Build, Stage::Test], None, None, true);
        assert_eq!(full.stages[0].args.join(" "), "check --workspace");
    }
}
