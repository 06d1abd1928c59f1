//! Running the `build` and `test --no-run` jobs as one cargo invocation.
//!
//! Two cargo commands one after the other pay cargo's start-up twice (resolving and
//! fingerprinting every unit), and link the binaries, then the test harnesses, one after the
//! other. One command over the union of their targets, `cargo build --lib --bins --tests
//! --examples` with the same options, does the same work once, and links side by side. On
//! the generated 100-crate workspace with its binary edited that took the pair from 0.91 s to
//! 0.61 s, at 0.91x the CPU (docs/benchmarks.md, *One invocation for build and test*).
//!
//! It is only right when it leaves exactly the units both commands look for, so that the
//! user's `cargo build` and `cargo test --no-run` afterwards compile nothing. Building tests
//! activates dev-dependencies, and a dev-dependency that turns on a feature of a dependency
//! `cargo build` uses makes the union build that dependency (and what is above it) with the
//! feature, where `cargo build` wants it without. Rather than model cargo's feature
//! resolver, the first job after each load ([`MergeState::Untried`]) runs the merged
//! invocation and then the two commands apart: when those find every unit fresh and among
//! the units the merged invocation left (told apart by the hash in their file names, which
//! covers their features and their dependencies': a target dir that once built the other
//! variant still holds it, fresh), later jobs merge until the next load; when either needs
//! any other unit, they run apart until the next load (a load is what follows a change of
//! the manifests, the root's lock file, the toolchain or the environment, which decide the
//! unit graph). Status says which, and why. A proc-macro member keeps them apart too: `cargo
//! test` builds it only as a dependency, without debug info (cargo's `build-override`),
//! where `cargo build --lib` builds it as a root, with it.
//!
//! A waiting user command that needs only one of the two (a `buildd cargo build` while the
//! merged invocation runs) stops it, and the job runs the needed part apart (see
//! `job.rs`), so that the command does not wait for the test harnesses.
//!
//! Pure: plans in, plans out.

use crate::build::plan::{Merged, StagePlan};
use crate::wire::protocol::JobOrigin;

/// Whether the workspace's jobs merge `build` and `test`, as the jobs since its last load
/// found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum MergeState {
    /// Not tried since the load: the next job that runs both merges them once and then runs
    /// them apart, to check that they find it all fresh.
    #[default]
    Untried,
    /// Checked: they merge.
    Merges,
    /// They run apart until the next load, for this reason.
    Apart(String),
}

impl MergeState {
    /// What the job the state was checked by found: the units `build` and `test` needed,
    /// run apart after the merged invocation, that it did not leave (`package target`),
    /// none when it was right.
    pub(crate) fn checked(not_left: &[String]) -> MergeState {
        if not_left.is_empty() {
            return MergeState::Merges;
        }
        MergeState::Apart(format!(
            "after one cargo invocation for both, running them apart needed {} unit(s) it \
             did not leave ({}): the two do not build the same units here (a dev-dependency \
             that turns on another feature?), so they run apart until the workspace is loaded \
             again",
            not_left.len(),
            few(not_left)
        ))
    }
}

/// The first few of a check's `units`, for a reason status shows.
pub(crate) fn few(units: &[String]) -> String {
    let mut shown: Vec<&str> = units.iter().take(5).map(String::as_str).collect();
    if units.len() > shown.len() {
        shown.push("...");
    }
    shown.join(", ")
}

/// Options a merged pair may carry: each means the same to `cargo build` and `cargo test`,
/// and none narrows the packages or the targets (the merged invocation picks the targets,
/// and its `--lib` needs to know that some selected package has one, so the pair must
/// select every member with `--workspace`). `true`: takes a value.
const SHARED: &[(&str, bool)] = &[
    ("--workspace", false),
    ("--all", false),
    ("--all-features", false),
    ("--no-default-features", false),
    ("--release", false),
    ("-r", false),
    ("--locked", false),
    ("--offline", false),
    ("--frozen", false),
    ("--keep-going", false),
    ("--ignore-rust-version", false),
    ("--features", true),
    ("-F", true),
    ("--profile", true),
    ("--target", true),
    ("--config", true),
    ("-Z", true),
];

/// The targets the merged invocation selects: those of `cargo build` and `cargo test`
/// (`--lib` only when a member has a library: cargo refuses it otherwise).
fn targets(has_lib: bool) -> Vec<String> {
    let mut targets = vec!["--bins", "--tests", "--examples"];
    if has_lib {
        targets.insert(0, "--lib");
    }
    targets.into_iter().map(str::to_owned).collect()
}

/// The plan's options when it is the `build` or the `test --no-run` of a pair that may
/// merge (its subcommand and `--no-run` left out), sorted; `None` when it is not.
fn options(plan: &StagePlan, subcommand: &str) -> Option<Vec<(String, Option<String>)>> {
    if plan.key.is_some()
        || plan.diagnostics
        || plan.origin == JobOrigin::Learned
        || plan.merged.is_some()
    {
        return None;
    }
    let (first, rest) = plan.args.split_first()?;
    let aliases: &[&str] = match subcommand {
        "build" => &["build", "b"],
        _ => &["test", "t"],
    };
    if !aliases.contains(&first.as_str()) {
        return None;
    }
    let mut no_run = false;
    let mut options = Vec::new();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        if arg == "--no-run" {
            no_run = true;
            continue;
        }
        let (option, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let (_, takes_value) = SHARED.iter().find(|(o, _)| *o == option)?;
        let value = match (takes_value, inline) {
            (true, Some(v)) => Some(v),
            (true, None) => Some(iter.next()?.clone()),
            (false, None) => None,
            (false, Some(_)) => return None,
        };
        let option = match option {
            "--all" => "--workspace",
            "-r" => "--release",
            "-F" => "--features",
            o => o,
        };
        options.push((option.to_owned(), value));
    }
    // `--config` values keep their order (a later one wins); the rest may come in any.
    options.sort_by(|a, b| match (a.0 == "--config", b.0 == "--config") {
        (true, true) => std::cmp::Ordering::Equal,
        _ => a.cmp(b),
    });
    let every_member = options.iter().any(|(o, _)| o == "--workspace");
    (every_member && no_run == (subcommand == "test")).then_some(options)
}

/// Merges the first `build` and `test --no-run` of `plans` that carry the same options into
/// one stage at the place of the first of them, unless `state` says they run apart. With
/// `Untried`, the merged stage then runs the two apart, as the check (see the module's
/// comment).
pub(crate) fn merge(
    mut plans: Vec<StagePlan>,
    state: &MergeState,
    has_lib: bool,
) -> Vec<StagePlan> {
    if matches!(state, MergeState::Apart(_)) {
        return plans;
    }
    let Some((b, build)) = plans
        .iter()
        .enumerate()
        .find_map(|(i, p)| Some((i, options(p, "build")?)))
    else {
        return plans;
    };
    let Some(t) = plans
        .iter()
        .position(|p| options(p, "test").is_some_and(|o| o == build))
    else {
        return plans;
    };
    let (at, other) = (b.min(t), b.max(t));
    let second = plans.remove(other);
    let first = plans.remove(at);
    let (build_plan, test_plan) = if b < t {
        (first, second)
    } else {
        (second, first)
    };
    let mut args = build_plan.args.clone();
    args.extend(targets(has_lib));
    let merged = StagePlan {
        stage: build_plan.stage.clone(),
        args,
        merged: Some(Box::new(Merged {
            also: vec![test_plan.stage.clone()],
            verify: *state == MergeState::Untried,
            split: vec![build_plan.clone(), test_plan],
        })),
        ..build_plan
    };
    plans.insert(at, merged);
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::jobs::{self, JobDef};
    use crate::build::plan;

    fn lines(plans: &[StagePlan]) -> Vec<String> {
        plans
            .iter()
            .map(|p| {
                let mut line = format!("{}: {}", p.stage, p.args.join(" "));
                if let Some(m) = &p.merged {
                    let also: Vec<&str> = m.also.iter().map(|s| s.name()).collect();
                    line.push_str(&format!(" (also {}, verify {})", also.join(" "), m.verify));
                }
                line
            })
            .collect()
    }

    fn planned(defs: &[JobDef]) -> Vec<StagePlan> {
        plan::plan(defs, None, true, None)
    }

    #[test]
    fn the_default_build_and_test_run_as_one_invocation_checked_once_after_a_load() {
        let defs = jobs::defaults(true);
        assert_eq!(
            lines(&merge(planned(&defs), &MergeState::Untried, true)),
            [
                "clippy: clippy --workspace --all-targets",
                "build: build --workspace --lib --bins --tests --examples (also test, verify true)",
            ]
        );
        let merged = merge(planned(&defs), &MergeState::Merges, false);
        assert_eq!(
            lines(&merged)[1],
            "build: build --workspace --bins --tests --examples (also test, verify false)"
        );
        // The parts are the two definitions as they would run apart.
        let split = &merged[1].merged.as_ref().unwrap().split;
        assert_eq!(
            lines(split),
            [
                "build: build --workspace",
                "test: test --no-run --workspace"
            ]
        );
        let apart = MergeState::checked(&["core lib".to_owned()]);
        assert!(
            matches!(&apart, MergeState::Apart(why) if why.contains("needed 1 unit(s) it did not leave (core lib)"))
        );
        assert_eq!(merge(planned(&defs), &apart, true), planned(&defs));
        assert_eq!(MergeState::checked(&[]), MergeState::Merges);
    }

    #[test]
    fn only_a_build_and_a_test_with_the_same_options_that_pick_no_targets_merge() {
        let def = |name: &str, args: &[&str], origin| JobDef::new(name, args, origin, false);
        let merges = |build: &[&str], test: &[&str]| {
            let defs = [
                def("b", build, JobOrigin::Config),
                def("t", test, JobOrigin::Config),
            ];
            merge(planned(&defs), &MergeState::Merges, true).len() == 1
        };
        assert!(merges(
            &["build", "--release", "--features=x", "--workspace"],
            &["test", "--workspace", "--no-run", "-F", "x", "-r"]
        ));
        assert!(merges(&["b", "--all"], &["t", "--no-run", "--workspace"]));
        // Not every member, or not the same options.
        assert!(!merges(&["build"], &["test", "--no-run"]));
        assert!(!merges(
            &["b", "-p", "core"],
            &["t", "--no-run", "--package=core"]
        ));
        assert!(!merges(&["build", "--workspace"], &["test", "--workspace"]));
        assert!(!merges(
            &["build", "--workspace", "--release"],
            &["test", "--no-run", "--workspace"]
        ));
        // Targets, what follows `--`, and options buildd does not know stay apart.
        let w = |args: &[&'static str]| [&args[..1], &["--workspace"], &args[1..]].concat();
        assert!(!merges(
            &w(&["build", "--lib"]),
            &w(&["test", "--no-run", "--lib"])
        ));
        assert!(!merges(
            &w(&["build", "--", "x"]),
            &w(&["test", "--no-run", "--", "x"])
        ));
        assert!(!merges(
            &w(&["build", "--verbose"]),
            &w(&["test", "--no-run", "--verbose"])
        ));
        assert!(!merges(&w(&["check"]), &w(&["test", "--no-run"])));
        // `--config` values keep their order.
        assert!(!merges(
            &w(&["build", "--config", "a", "--config", "b"]),
            &w(&["test", "--no-run", "--config", "b", "--config", "a"])
        ));
        // Learned jobs and diagnostics jobs stay apart.
        let learned = [
            def("b", &["build", "--workspace"], JobOrigin::Learned),
            def(
                "t",
                &["test", "--no-run", "--workspace"],
                JobOrigin::Learned,
            ),
        ];
        assert_eq!(merge(planned(&learned), &MergeState::Merges, true).len(), 2);
        // A test job configured before the build: the merged stage takes the test's place.
        let defs = [
            def("t", &["test", "--no-run", "--workspace"], JobOrigin::Config),
            def("c", &["check"], JobOrigin::Config),
            def("b", &["build", "--workspace"], JobOrigin::Config),
        ];
        assert_eq!(
            lines(&merge(planned(&defs), &MergeState::Merges, true)),
            [
                "b: build --workspace --lib --bins --tests --examples (also t, verify false)",
                "c: check"
            ]
        );
    }
}
