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

/// What a user's cargo command needs of buildd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// These stages of the daemon's finished in the warm dir first.
    Stages(&'static [Stage]),
    /// No stage, but the isolated dir: the command cleans it (`clean`) or names it
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
        "build" | "b" | "run" | "r" | "rustc" => Needs::Stages(&[Stage::Build]),
        "test" | "t" | "bench" | "nextest" => Needs::Stages(&[Stage::Build, Stage::Test]),
        "check" | "c" | "clippy" | "fix" | "doc" | "d" => Needs::Stages(&[Stage::Check]),
        "clean" | "metadata" => Needs::TargetDir,
        "update" | "tree" | "fmt" | "locate-project" | "pkgid" | "search" | "add" | "remove"
        | "new" | "init" | "help" | "version" | "verify-project" | "vendor" | "fetch"
        | "generate-lockfile" => Needs::Nothing,
        _ => return None,
    };
    // `cargo build --help` compiles nothing either: a help option before any positional
    // argument or `--` (after those, it may be the program's or the test binary's).
    let help = iter
        .take_while(|a| a.starts_with('-') && *a != "--")
        .any(|a| a == "--help" || a == "-h");
    Some(if help { Needs::Nothing } else { needs })
}

/// The daemon stages a user's cargo command needs, from its arguments: `None` when any may
/// be needed (an unknown subcommand that might build).
pub(crate) fn needed_stages(args: &[String]) -> Option<Vec<Stage>> {
    Some(match needs(args)? {
        Needs::Stages(stages) => stages.to_vec(),
        Needs::TargetDir | Needs::Nothing => vec![],
    })
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
        assert_eq!(needed_stages(&args("build --help")), Some(vec![]));
        assert_eq!(needed_stages(&[]), Some(vec![]));
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
