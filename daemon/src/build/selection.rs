//! What a plain `cargo build` or `cargo test --no-run` at the workspace root selects, against
//! the `--workspace` of the default jobs.
//!
//! Without `--package` or `--workspace`, cargo at the root of a workspace whose root
//! manifest is also a package (or that sets `default-members`) selects its *default members*
//! only, and resolver 2 unifies features over the selected packages only. A member outside
//! that selection which turns on a feature of a dependency the root package uses makes
//! `--workspace` build that dependency (and what is above it) with the feature, where the
//! user's first `cargo build` at the root wants it without: on buildd's own tree that was 9
//! units compiled by a command that should have compiled nothing. A learned job fixes it
//! after that first use; this fixes the first use.
//!
//! As `merge.rs` does for one invocation of `build` and `test`, this does not model cargo's
//! feature resolver. The load says whether the selection may differ (cargo reports the
//! default members since 1.71; an older cargo leaves it unknown, and nothing is done). Then
//! the first job that runs the workspace-wide `build` and `test --no-run` well
//! ([`DefaultSelection::Untried`]) runs both without a selection at the root after them, as
//! a check ([`SelectionCheck`]): when they find every unit fresh and among those the
//! workspace-wide stages left (told apart by the hash in their file names, `job.rs`'s
//! `unit_key`), the selection is covered until the next load; when they need any other
//! unit, later jobs also run them as default definitions of their own ([`defs`]) until the
//! next load. The check itself warms those units, so the first command finds them either
//! way. Its cost is one pair of cargo no-ops per load when the selection is covered.
//!
//! Pure: definitions in, definitions and plans out.

use crate::build::jobs::{self, JobDef};
use crate::build::merge;
use crate::build::plan::StagePlan;
use crate::wire::protocol::{JobOrigin, Stage};

/// Whether a plain `cargo build` / `cargo test --no-run` at the root needs other units than
/// the workspace-wide jobs leave, as found since the last load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum DefaultSelection {
    /// cargo selects every member at the root, or did not say which it selects (older than
    /// 1.71): nothing to check.
    #[default]
    NotNeeded,
    /// The default members are not every member, and no job has checked since the load:
    /// the next job that runs the workspace-wide build and test checks after them.
    Untried,
    /// Checked: the workspace-wide jobs leave every unit the root's commands look for.
    Covered,
    /// Checked: the root's commands need other units, for this reason; they run as default
    /// jobs of their own until the next load.
    Differs(String),
}

impl DefaultSelection {
    /// The state a load leaves: `differs` says cargo reported default members that are not
    /// every member.
    pub(crate) fn after_load(differs: bool) -> DefaultSelection {
        if differs {
            DefaultSelection::Untried
        } else {
            DefaultSelection::NotNeeded
        }
    }

    /// What the check found: the units the root's commands needed that the workspace-wide
    /// stages did not leave (`package target`), none when they left them all.
    pub(crate) fn checked(not_left: &[String]) -> DefaultSelection {
        if not_left.is_empty() {
            return DefaultSelection::Covered;
        }
        DefaultSelection::Differs(format!(
            "`cargo build` and `cargo test --no-run` at the root select only the default \
             members, and after the `--workspace` jobs they needed {} unit(s) those did not \
             leave ({}): features are unified over the selected packages only (a member \
             outside the default ones that turns on a feature of a shared dependency?), so \
             they run too until the workspace is loaded again",
            not_left.len(),
            merge::few(not_left)
        ))
    }
}

/// The workspace-wide default commands and, for each, the command without a selection
/// that the user runs at the root and the name of its job when it runs as one.
const PAIRS: &[(&[&str], &[&str], &str)] = &[
    (
        &["build", "--workspace"],
        &["build"],
        "build (default members)",
    ),
    (
        &["test", "--no-run", "--workspace"],
        &["test", "--no-run"],
        "test (default members)",
    ),
];

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// The workspace-wide `build` and `test --no-run` among `defs` (a default, or a configured
/// job with the same command, at the root), each with the command without a selection and
/// the name of its job.
fn wide(defs: &[JobDef]) -> Vec<(&JobDef, Vec<String>, &'static str)> {
    defs.iter()
        .filter(|d| d.origin != JobOrigin::Learned && d.dir.as_os_str().is_empty())
        .filter_map(|d| {
            PAIRS
                .iter()
                .find(|(wide, _, _)| jobs::same_command(&d.args, &strings(wide)))
                .map(|(_, plain, name)| (d, strings(plain), *name))
        })
        .collect()
}

/// The default definitions that run besides `configured` (the configured and default
/// ones) while the state is [`DefaultSelection::Differs`]: for each workspace-wide `build`
/// and `test --no-run` among them, the same command without a selection at the root. One
/// that a `learned` job already runs (the same command at the root, `jobs::same_command`)
/// is left to it.
pub(crate) fn defs(
    state: &DefaultSelection,
    configured: &[JobDef],
    learned: &[JobDef],
) -> Vec<JobDef> {
    if !matches!(state, DefaultSelection::Differs(_)) {
        return Vec::new();
    }
    wide(configured)
        .into_iter()
        .filter(|(_, plain, _)| {
            !learned
                .iter()
                .any(|l| l.dir.as_os_str().is_empty() && jobs::same_command(&l.args, plain))
        })
        .map(|(_, plain, name)| JobDef {
            name: Stage::new(name),
            args: plain,
            dir: Default::default(),
            origin: JobOrigin::Default,
            diagnostics: false,
        })
        .collect()
}

/// The definitions among `defs` that select the other way than `def`: for a workspace-wide
/// `build` or `test --no-run`, the jobs for the default members; for one of those, the
/// workspace-wide ones; none for any other definition. While the selection differs, both
/// ways run, and the user's commands show which one they need: a command served by one way
/// is no use of the other (`learning.rs`), and a default job of one way that the user's
/// recent commands did not need waits for a quiet workspace when the other way's did
/// ([`LearnedJobs::unused_beside`]).
///
/// [`LearnedJobs::unused_beside`]: crate::build::learned::LearnedJobs::unused_beside
pub(crate) fn other_way(def: &JobDef, defs: &[JobDef]) -> Vec<Stage> {
    let wide = wide(defs);
    let for_members = |d: &&JobDef| {
        d.origin == JobOrigin::Default && PAIRS.iter().any(|(_, _, name)| d.name.name() == *name)
    };
    if wide.iter().any(|(d, _, _)| *d == def) {
        defs.iter()
            .filter(for_members)
            .map(|d| d.name.clone())
            .collect()
    } else if for_members(&def) {
        wide.into_iter().map(|(d, _, _)| d.name.clone()).collect()
    } else {
        Vec::new()
    }
}

/// The check a job runs after its workspace-wide `build` and `test --no-run` stages.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SelectionCheck {
    /// The workspace-wide definitions: it runs once all of them succeeded in the job, and
    /// compares with the units their stages left.
    pub(crate) after: Vec<Stage>,
    /// The commands without a selection, each under the name of the workspace-wide
    /// definition it pairs with: a waiting user command that needs that one needs this one,
    /// and its units count as that job's.
    pub(crate) plans: Vec<StagePlan>,
}

/// The check for a job that runs `running`, of the workspace's definitions `all`; `None`
/// unless the state is [`DefaultSelection::Untried`] and every workspace-wide `build` and
/// `test --no-run` of `all` runs in this job (one held back until the workspace is quiet
/// would leave its units unknown).
pub(crate) fn check(
    state: &DefaultSelection,
    all: &[JobDef],
    running: &[JobDef],
) -> Option<SelectionCheck> {
    if *state != DefaultSelection::Untried {
        return None;
    }
    let wide = wide(all);
    if wide.is_empty() || !wide.iter().all(|(d, _, _)| running.contains(d)) {
        return None;
    }
    Some(SelectionCheck {
        after: wide.iter().map(|(d, _, _)| d.name.clone()).collect(),
        plans: wide
            .into_iter()
            .map(|(d, plain, _)| StagePlan {
                stage: d.name.clone(),
                args: plain,
                dir: Default::default(),
                diagnostics: false,
                record: false,
                origin: d.origin,
                key: None,
                merged: None,
            })
            .collect(),
    })
}

/// What status says of definition `def` of `all` in `state`: of a workspace-wide one, what
/// the check found or will do; of one that runs for the default members, why it runs.
pub(crate) fn note(state: &DefaultSelection, def: &JobDef, all: &[JobDef]) -> Option<String> {
    let wide = wide(all);
    if let Some((_, plain, _)) = wide.iter().find(|(d, _, _)| *d == def) {
        let plain = plain.join(" ");
        return match state {
            DefaultSelection::NotNeeded => None,
            DefaultSelection::Untried => Some(format!(
                "`cargo {plain}` at the root selects only the default members: the first job \
                 since the workspace was loaded runs it after this one, to check that it \
                 needs no other units"
            )),
            DefaultSelection::Covered => Some(format!(
                "also leaves the units of `cargo {plain}` at the root (only the default \
                 members), checked since the workspace was loaded"
            )),
            // The definition that runs for the default members says why.
            DefaultSelection::Differs(_) => None,
        };
    }
    match state {
        DefaultSelection::Differs(why)
            if def.origin == JobOrigin::Default
                && PAIRS.iter().any(|(_, _, name)| def.name.name() == *name) =>
        {
            Some(format!("runs without `--workspace`: {why}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(defs: &[JobDef]) -> Vec<String> {
        defs.iter()
            .map(|d| format!("{}: {}", d.name, d.args.join(" ")))
            .collect()
    }

    fn learned(args: &[&str]) -> JobDef {
        JobDef::new(&args.join(" "), args, JobOrigin::Learned, false)
    }

    #[test]
    fn a_load_checks_only_what_cargo_says_differs_and_the_check_decides() {
        assert_eq!(
            DefaultSelection::after_load(false),
            DefaultSelection::NotNeeded
        );
        assert_eq!(
            DefaultSelection::after_load(true),
            DefaultSelection::Untried
        );
        assert_eq!(DefaultSelection::checked(&[]), DefaultSelection::Covered);
        let names: Vec<String> = (0..7).map(|i| format!("shared lib{i}")).collect();
        let DefaultSelection::Differs(why) = DefaultSelection::checked(&names) else {
            panic!("differs");
        };
        assert!(
            why.contains("needed 7 unit(s)") && why.contains("shared lib4, ...)"),
            "{why}"
        );
        assert!(!why.contains("lib5"), "{why}");
    }

    #[test]
    fn only_an_untried_state_checks_and_only_after_every_wide_job_of_the_workspace() {
        let defaults = jobs::defaults(true);
        let check = check(&DefaultSelection::Untried, &defaults, &defaults).unwrap();
        assert_eq!(check.after, [Stage::new("build"), Stage::new("test")]);
        let plans: Vec<String> = check
            .plans
            .iter()
            .map(|p| format!("{}: {} ({:?})", p.stage, p.args.join(" "), p.origin))
            .collect();
        assert_eq!(
            plans,
            ["build: build (Default)", "test: test --no-run (Default)"]
        );
        assert!(
            check
                .plans
                .iter()
                .all(|p| !p.diagnostics && p.dir.as_os_str().is_empty())
        );
        for state in [
            DefaultSelection::NotNeeded,
            DefaultSelection::Covered,
            DefaultSelection::Differs("x".into()),
        ] {
            assert_eq!(super::check(&state, &defaults, &defaults), None);
        }
        // The test build held back: its units are unknown, a later job checks.
        let running = &defaults[..2];
        assert_eq!(
            super::check(&DefaultSelection::Untried, &defaults, running),
            None
        );
        // No workspace-wide build or test at all: nothing to compare with.
        let clippy = &defaults[..1];
        assert_eq!(
            super::check(&DefaultSelection::Untried, clippy, clippy),
            None
        );
        // A configured job with the default's command in another spelling counts; a
        // learned one does not.
        let configured = [JobDef::new("b", &["b", "--all"], JobOrigin::Config, false)];
        let found = super::check(&DefaultSelection::Untried, &configured, &configured);
        assert_eq!(found.unwrap().plans[0].args, ["build"]);
        let mine = [learned(&["build", "--workspace"])];
        assert_eq!(super::check(&DefaultSelection::Untried, &mine, &mine), None);
    }

    #[test]
    fn a_differing_selection_runs_the_root_commands_unless_a_learned_job_does() {
        let defaults = jobs::defaults(true);
        let differs = DefaultSelection::Differs("why".into());
        assert_eq!(
            lines(&defs(&differs, &defaults, &[])),
            [
                "build (default members): build",
                "test (default members): test --no-run"
            ]
        );
        for state in [
            DefaultSelection::NotNeeded,
            DefaultSelection::Untried,
            DefaultSelection::Covered,
        ] {
            assert!(defs(&state, &defaults, &[]).is_empty());
        }
        // The user's own `cargo t --no-run` at the root, learned before: it stays the job.
        let mine = [learned(&["t", "--no-run"])];
        assert_eq!(
            lines(&defs(&differs, &defaults, &mine)),
            ["build (default members): build"]
        );
        // The same command elsewhere is another selection.
        let mut elsewhere = learned(&["build"]);
        elsewhere.dir = "app".into();
        assert_eq!(defs(&differs, &defaults, &[elsewhere]).len(), 2);
        // Without the workspace-wide test job, no test job for the default members.
        assert_eq!(
            lines(&defs(&differs, &defaults[..2], &[])),
            ["build (default members): build"]
        );
    }

    #[test]
    fn the_two_ways_of_selecting_are_each_others_other_way() {
        let defaults = jobs::defaults(true);
        let differs = DefaultSelection::Differs("why".into());
        let mut all = defaults.clone();
        all.extend(defs(&differs, &defaults, &[]));
        let names =
            |stages: Vec<Stage>| -> Vec<String> { stages.into_iter().map(|s| s.0).collect() };
        for wide in &all[1..3] {
            assert_eq!(
                names(other_way(wide, &all)),
                ["build (default members)", "test (default members)"]
            );
        }
        for member in &all[3..] {
            assert_eq!(names(other_way(member, &all)), ["build", "test"]);
        }
        // The diagnostics job, and a learned job of the same command, are neither way.
        assert!(other_way(&all[0], &all).is_empty());
        assert!(other_way(&learned(&["build"]), &all).is_empty());
        // Covered: only the workspace-wide way runs, and it has no other.
        assert!(other_way(&defaults[1], &defaults).is_empty());
    }

    #[test]
    fn status_says_what_the_check_found_and_why_the_root_commands_run() {
        let defaults = jobs::defaults(true);
        let build = &defaults[1];
        let note = |state: &DefaultSelection, def: &JobDef| note(state, def, &defaults);
        assert_eq!(note(&DefaultSelection::NotNeeded, build), None);
        assert!(
            note(&DefaultSelection::Untried, build)
                .unwrap()
                .contains("runs it after this one, to check")
        );
        assert!(
            note(&DefaultSelection::Covered, build)
                .unwrap()
                .contains("also leaves the units of `cargo build` at the root")
        );
        assert_eq!(note(&DefaultSelection::Untried, &defaults[0]), None);
        let differs = DefaultSelection::checked(&["shared lib".into()]);
        assert_eq!(note(&differs, build), None);
        let extra = defs(&differs, &defaults, &[]);
        let text = note(&differs, &extra[0]).unwrap();
        assert!(
            text.starts_with("runs without `--workspace`: `cargo build`")
                && text.contains("(shared lib)"),
            "{text}"
        );
    }
}
