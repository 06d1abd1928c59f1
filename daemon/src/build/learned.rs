//! The learned jobs of one workspace: the shapes of the `buildd cargo` commands its user
//! ran, most recently used first, with what their last run cost. The dispatcher keeps the
//! record in the state dir so that it survives a daemon restart.
//!
//! Pure: no I/O and no clock but the times it is given, so its rules are unit-tested below.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::build::jobs::{self, JobDef};
use crate::wire::protocol::{JobOrigin, JobResult, Stage};

/// A shape unused this long is forgotten.
pub(crate) const FORGET_AFTER_SECS: u64 = 7 * 24 * 3600;
/// The number of the workspace's latest jobs over which a shape's use is counted.
pub(crate) const RECENT_CHANGES: u64 = 20;
/// At most this many uses are kept per shape: enough to tell "rare" within
/// [`RECENT_CHANGES`].
const MAX_USES: usize = 4;
/// The version of the file's format.
const VERSION: u32 = 1;

/// Whether `dir` is a plain relative path (`a/b`, or empty): no root, no `..`, no `.`.
pub(crate) fn is_plain(dir: &Path) -> bool {
    dir.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Why a job waits for a quiet workspace instead of running after each change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeldBack {
    /// A learned job, expensive (its last run) and used at most once over the latest
    /// [`RECENT_CHANGES`] changes.
    Rare,
    /// A default job the user's recent commands did not need: those of its family were
    /// these jobs, each warm on its own (learned ones, or the default jobs that select the
    /// root's packages the other way: `selection.rs`).
    Unused(Vec<Stage>),
}

impl HeldBack {
    /// How long the workspace must be quiet before it runs: `quiet` for a rare learned job,
    /// `unused_quiet` (a break, not the pause between two edits) for an unused default.
    pub(crate) fn wait(
        &self,
        quiet: std::time::Duration,
        unused_quiet: std::time::Duration,
    ) -> std::time::Duration {
        match self {
            HeldBack::Rare => quiet,
            HeldBack::Unused(_) => unused_quiet,
        }
    }

    /// The reason, as status shows it; `last_ms` is the job's last run, `quiet` its
    /// [`wait`](HeldBack::wait).
    pub(crate) fn reason(&self, last_ms: Option<u64>, quiet: std::time::Duration) -> String {
        let quiet = quiet.as_secs();
        match self {
            HeldBack::Rare => format!(
                "expensive (its last run took {}s) and rarely used: it runs once the \
                 workspace has been quiet for {quiet}s",
                last_ms.unwrap_or(0) / 1000
            ),
            HeldBack::Unused(narrower) => {
                let names: Vec<String> = narrower.iter().map(|n| format!("`{n}`")).collect();
                format!(
                    "not needed by your recent commands (those of its kind ran as the \
                     jobs {}): it runs once the workspace has been quiet for {quiet}s, and \
                     after each change again once you run its own command",
                    names.join(", ")
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Learned {
    /// The compile-only cargo command (`build --release`).
    pub(crate) args: Vec<String>,
    /// Where the user ran it, relative to the workspace root.
    #[serde(default)]
    pub(crate) dir: PathBuf,
    /// Seconds since the Unix epoch.
    pub(crate) last_used: u64,
    /// The workspace's change count at its latest uses, newest last.
    #[serde(default)]
    pub(crate) uses: Vec<u64>,
    #[serde(default)]
    pub(crate) last_result: Option<JobResult>,
    #[serde(default)]
    pub(crate) last_duration_ms: Option<u64>,
}

impl Learned {
    /// Its name in status and on the wire: the command, after its dir when it has one.
    pub(crate) fn name(&self) -> Stage {
        let command = self.args.join(" ");
        if self.dir.as_os_str().is_empty() {
            Stage::new(command)
        } else {
            Stage::new(format!("{}: {command}", self.dir.display()))
        }
    }

    pub(crate) fn def(&self) -> JobDef {
        JobDef {
            name: self.name(),
            args: self.args.clone(),
            dir: self.dir.clone(),
            origin: JobOrigin::Learned,
            diagnostics: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LearnedJobs {
    #[serde(default)]
    pub(crate) version: u32,
    /// The workspace it belongs to: a record found under another root's name is not used.
    #[serde(default)]
    pub(crate) root: PathBuf,
    /// Jobs started for changes since the record began: the clock of "rarely used".
    #[serde(default)]
    pub(crate) changes: u64,
    /// Most recently used first.
    #[serde(default)]
    pub(crate) shapes: Vec<Learned>,
    /// Per default job, the change count at the latest user command that needed it without
    /// a learned job of its own (the command was the default job's, or had no shape): the
    /// evidence that the user uses the wide job itself.
    #[serde(default)]
    pub(crate) default_uses: BTreeMap<String, u64>,
}

impl LearnedJobs {
    pub(crate) fn new(root: &Path) -> LearnedJobs {
        LearnedJobs {
            version: VERSION,
            root: root.to_path_buf(),
            ..LearnedJobs::default()
        }
    }

    /// A record read from disk, when it is of this format and this workspace; a shape whose
    /// dir is not a plain path below the root is dropped.
    pub(crate) fn parse(text: &str, root: &Path) -> Option<LearnedJobs> {
        let mut jobs: LearnedJobs = serde_json::from_str(text).ok()?;
        jobs.shapes.retain(|s| is_plain(&s.dir));
        (jobs.version == VERSION && jobs.root == root).then_some(jobs)
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The user ran a command of this shape in `dir` at `now`: it goes first. Keeps at most
    /// `limit` shapes.
    pub(crate) fn record(&mut self, args: Vec<String>, dir: PathBuf, now: u64, limit: usize) {
        let mut entry = match self
            .shapes
            .iter()
            .position(|s| s.args == args && s.dir == dir)
        {
            Some(i) => self.shapes.remove(i),
            None => Learned {
                args,
                dir,
                last_used: now,
                uses: Vec::new(),
                last_result: None,
                last_duration_ms: None,
            },
        };
        entry.last_used = now;
        entry.uses.push(self.changes);
        if entry.uses.len() > MAX_USES {
            entry.uses.remove(0);
        }
        self.shapes.insert(0, entry);
        self.shapes.truncate(limit);
    }

    /// Forgets the shapes unused for [`FORGET_AFTER_SECS`]; returns whether any went.
    pub(crate) fn forget_old(&mut self, now: u64) -> bool {
        let before = self.shapes.len();
        self.shapes
            .retain(|s| now.saturating_sub(s.last_used) < FORGET_AFTER_SECS);
        self.shapes.len() != before
    }

    /// The user's latest use of a job definition, as a change count: a learned job's latest
    /// command, or, for a default job, the latest command that needed it without a learned
    /// job of its own; `None` when no command did (and for configured jobs).
    fn last_use(&self, def: &JobDef) -> Option<u64> {
        match def.origin {
            JobOrigin::Learned => self
                .shapes
                .iter()
                .find(|s| s.name() == def.name)?
                .uses
                .last()
                .copied(),
            JobOrigin::Default => self.default_uses.get(def.name.name()).copied(),
            JobOrigin::Config => None,
        }
    }

    /// Puts `defs` in the order a job runs them: the diagnostics jobs first (the editor waits
    /// for them), then the others by the user's latest use of each, the most recent first,
    /// and those the user's commands never used last, as they were. Stable: within one change
    /// the learned jobs stay most recently used first.
    pub(crate) fn order(&self, defs: &mut [JobDef]) {
        defs.sort_by_key(|d| (!d.diagnostics, std::cmp::Reverse(self.last_use(d))));
    }

    /// A job started for changes.
    pub(crate) fn changed(&mut self) {
        self.changes += 1;
    }

    /// Whether a shape was used at most once over the latest [`RECENT_CHANGES`] jobs.
    pub(crate) fn is_rare(&self, shape: &Learned) -> bool {
        // The window is the latest RECENT_CHANGES change counts, up to and with the current.
        shape.uses.iter().filter(|&&u| self.is_recent(u)).count() <= 1
    }

    /// The user ran a command that needs the default job `name` and that no learned job of
    /// its own serves.
    pub(crate) fn used_default(&mut self, name: &Stage) {
        self.default_uses.insert(name.0.clone(), self.changes);
    }

    /// Whether a change count falls in the latest [`RECENT_CHANGES`] jobs.
    fn is_recent(&self, change: u64) -> bool {
        change + RECENT_CHANGES > self.changes
    }

    /// Why the default job `def` waits for a quiet workspace instead of running after each
    /// change, if it does: the user's recent commands of its family (see [`jobs::family`])
    /// were all served by learned jobs of their own, among `running` (the definitions that
    /// run after each change, without those held back as rare), and none needed the
    /// default job itself. Returns those learned jobs'
    /// names. A diagnostics job (the editor's) and a configured one never wait, and without
    /// a recent command of its family there is no evidence, so the default job runs.
    pub(crate) fn unused_default(&self, def: &JobDef, running: &[JobDef]) -> Option<Vec<Stage>> {
        if def.origin != JobOrigin::Default || def.diagnostics {
            return None;
        }
        if self
            .default_uses
            .get(&def.name.0)
            .is_some_and(|&u| self.is_recent(u))
        {
            return None;
        }
        let narrower: Vec<Stage> = self
            .shapes
            .iter()
            .filter(|s| s.uses.iter().any(|&u| self.is_recent(u)))
            .filter(|s| {
                let subcommand = s.args.first().map_or("", String::as_str);
                jobs::family(subcommand).is_some_and(|f| f.contains(&def.subcommand()))
            })
            .map(Learned::name)
            .collect();
        let all_run = narrower.iter().all(|name| {
            running
                .iter()
                .any(|d| d.origin == JobOrigin::Learned && &d.name == name)
        });
        (!narrower.is_empty() && all_run).then_some(narrower)
    }

    /// Why the default job `def` waits for a quiet workspace beside `other_way`, the
    /// running default jobs that select the packages the other way (`selection.rs`'s
    /// `other_way`): the user's recent commands needed some of those and not `def`. Returns
    /// those; `None` without such evidence, so that both ways run.
    pub(crate) fn unused_beside(&self, def: &JobDef, other_way: &[Stage]) -> Option<Vec<Stage>> {
        if def.origin != JobOrigin::Default || def.diagnostics {
            return None;
        }
        let recent = |name: &Stage| {
            self.default_uses
                .get(name.name())
                .is_some_and(|&u| self.is_recent(u))
        };
        if recent(&def.name) {
            return None;
        }
        let used: Vec<Stage> = other_way.iter().filter(|s| recent(s)).cloned().collect();
        (!used.is_empty()).then_some(used)
    }

    /// Records how a learned job's run ended.
    pub(crate) fn finished(&mut self, name: &Stage, result: JobResult, duration_ms: u64) {
        if let Some(shape) = self.shapes.iter_mut().find(|s| &s.name() == name) {
            shape.last_result = Some(result);
            shape.last_duration_ms = Some(duration_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_latest_use_goes_first_and_the_limit_drops_the_oldest() {
        let mut jobs = LearnedJobs::new(Path::new("/ws"));
        jobs.record(shape("build --release"), PathBuf::new(), 10, 2);
        jobs.record(shape("test --no-run --package a"), PathBuf::new(), 11, 2);
        jobs.record(shape("build --release"), PathBuf::new(), 12, 2);
        let names: Vec<String> = jobs.shapes.iter().map(|s| s.name().0).collect();
        assert_eq!(names, ["build --release", "test --no-run --package a"]);
        jobs.record(shape("doc"), "core".into(), 13, 2);
        let names: Vec<String> = jobs.shapes.iter().map(|s| s.name().0).collect();
        assert_eq!(names, ["core: doc", "build --release"]);
    }

    #[test]
    fn shapes_unused_for_a_week_are_forgotten() {
        let mut jobs = LearnedJobs::new(Path::new("/ws"));
        jobs.record(shape("build --release"), PathBuf::new(), 0, 6);
        jobs.record(shape("check"), PathBuf::new(), FORGET_AFTER_SECS, 6);
        assert!(jobs.forget_old(FORGET_AFTER_SECS + 1));
        assert_eq!(jobs.shapes.len(), 1);
        assert!(!jobs.forget_old(FORGET_AFTER_SECS + 1));
    }

    #[test]
    fn a_shape_used_once_in_the_latest_changes_is_rare() {
        let mut jobs = LearnedJobs::new(Path::new("/ws"));
        jobs.record(shape("build --release"), PathBuf::new(), 0, 6);
        assert!(jobs.is_rare(&jobs.shapes[0]));
        for _ in 0..5 {
            jobs.changed();
        }
        jobs.record(shape("build --release"), PathBuf::new(), 1, 6);
        assert!(!jobs.is_rare(&jobs.shapes[0]));
        for _ in 0..RECENT_CHANGES {
            jobs.changed();
        }
        jobs.record(shape("build --release"), PathBuf::new(), 2, 6);
        assert!(
            jobs.is_rare(&jobs.shapes[0]),
            "the earlier uses are too old"
        );
    }

    /// The defaults, and the learned jobs of `jobs`, as a job would run them.
    fn running(jobs: &LearnedJobs) -> Vec<JobDef> {
        let mut defs = jobs::defaults(true);
        defs.extend(jobs.shapes.iter().map(Learned::def));
        defs
    }

    fn unused(jobs: &LearnedJobs, name: &str) -> Option<Vec<String>> {
        let defs = running(jobs);
        let def = defs.iter().find(|d| d.name.0 == name).unwrap();
        jobs.unused_default(def, &defs)
            .map(|n| n.into_iter().map(|n| n.0).collect())
    }

    #[test]
    fn a_default_job_waits_when_the_users_commands_of_its_family_were_all_narrower() {
        let mut jobs = LearnedJobs::new(Path::new("/ws"));
        // No command yet: no evidence, every default runs.
        assert_eq!(unused(&jobs, "build"), None);
        assert_eq!(unused(&jobs, "test"), None);
        // The day's user: `cargo run -p app`, `cargo test -p lib001`, `cargo clippy`.
        jobs.record(shape("build --package app"), PathBuf::new(), 0, 6);
        jobs.record(
            shape("test --no-run --package lib001"),
            PathBuf::new(),
            0,
            6,
        );
        jobs.record(shape("clippy --workspace"), PathBuf::new(), 0, 6);
        assert_eq!(
            unused(&jobs, "build"),
            Some(vec![
                "test --no-run --package lib001".to_owned(),
                "build --package app".to_owned()
            ]),
            "a test command needs the build family too"
        );
        assert_eq!(
            unused(&jobs, "test"),
            Some(vec!["test --no-run --package lib001".to_owned()])
        );
        assert_eq!(
            unused(&jobs, "clippy"),
            None,
            "the editor's job always runs"
        );
    }

    #[test]
    fn a_default_job_runs_again_once_its_own_command_is_run_and_waits_once_that_is_old() {
        let mut jobs = LearnedJobs::new(Path::new("/ws"));
        jobs.record(shape("build --package app"), PathBuf::new(), 0, 6);
        jobs.used_default(&Stage::new("build"));
        assert_eq!(unused(&jobs, "build"), None, "`cargo build` itself ran");
        for _ in 0..RECENT_CHANGES {
            jobs.changed();
        }
        assert_eq!(
            unused(&jobs, "build"),
            None,
            "and the narrower one is as old"
        );
        jobs.record(shape("build --package app"), PathBuf::new(), 1, 6);
        assert_eq!(
            unused(&jobs, "build"),
            Some(vec!["build --package app".to_owned()]),
            "only the narrower command is recent"
        );
    }

    #[test]
    fn a_default_job_runs_when_a_narrower_command_is_not_a_job_or_it_is_configured() {
        let mut jobs = LearnedJobs::new(Path::new("/ws"));
        jobs.record(shape("build --package app"), PathBuf::new(), 0, 6);
        let defaults = jobs::defaults(true);
        let build = &defaults[1];
        assert_eq!(
            jobs.unused_default(build, &defaults),
            None,
            "the learned job does not run (over the limit): the default serves the command"
        );
        let mut configured = build.clone();
        configured.origin = JobOrigin::Config;
        assert_eq!(jobs.unused_default(&configured, &running(&jobs)), None);
    }

    #[test]
    fn the_diagnostics_job_runs_first_then_what_the_user_ran_most_recently() {
        let mut jobs = LearnedJobs::new(Path::new("/w"));
        let names = |jobs: &LearnedJobs| {
            let mut defs = crate::build::jobs::defaults(true);
            defs.extend(jobs.shapes.iter().map(Learned::def));
            jobs.order(&mut defs);
            defs.iter()
                .map(|d| d.name.name().to_owned())
                .collect::<Vec<_>>()
        };
        // Nothing used: as configured.
        assert_eq!(names(&jobs), ["clippy", "build", "test"]);
        jobs.record(shape("build --release"), PathBuf::new(), 1, 6);
        jobs.changed();
        jobs.used_default(&Stage::new("test"));
        jobs.changed();
        jobs.record(shape("build -p app"), PathBuf::new(), 2, 6);
        assert_eq!(
            names(&jobs),
            ["clippy", "build -p app", "test", "build --release", "build"]
        );
    }

    #[test]
    fn status_says_why_a_job_waits() {
        let quiet = std::time::Duration::from_secs(30);
        assert_eq!(
            HeldBack::Rare.reason(Some(12_500), quiet),
            "expensive (its last run took 12s) and rarely used: it runs once the workspace \
             has been quiet for 30s"
        );
        let unused = HeldBack::Unused(vec![Stage::new("build --package app")]);
        let reason = unused.reason(None, quiet);
        assert!(
            reason.starts_with(
                "not needed by your recent commands (those of its kind ran as the jobs \
                 `build --package app`)"
            ),
            "{reason}"
        );
        assert!(reason.contains("quiet for 30s"), "{reason}");
    }

    #[test]
    fn a_default_job_waits_beside_the_other_way_only_when_that_one_was_used() {
        let mut jobs = LearnedJobs::new(Path::new("/ws"));
        let wide = JobDef::new(
            "build",
            &["build", "--workspace"],
            JobOrigin::Default,
            false,
        );
        let members = Stage::new("build (default members)");
        let other = [members.clone()];
        // No evidence: both run.
        assert_eq!(jobs.unused_beside(&wide, &other), None);
        jobs.used_default(&members);
        assert_eq!(
            jobs.unused_beside(&wide, &other),
            Some(vec![members.clone()])
        );
        // Used itself too: it runs.
        jobs.used_default(&Stage::new("build"));
        assert_eq!(jobs.unused_beside(&wide, &other), None);
        // Uses age out of the window.
        let mut old = LearnedJobs::new(Path::new("/ws"));
        old.used_default(&members);
        for _ in 0..RECENT_CHANGES {
            old.changed();
        }
        assert_eq!(old.unused_beside(&wide, &other), None);
        // Never a diagnostics job or a learned one.
        let clippy = JobDef::new("clippy", &["clippy"], JobOrigin::Default, true);
        assert_eq!(jobs.unused_beside(&clippy, &other), None);
    }

    #[test]
    fn a_record_without_default_uses_still_reads() {
        let text = r#"{"version":1,"root":"/ws","changes":3,"shapes":[]}"#;
        let jobs = LearnedJobs::parse(text, Path::new("/ws")).unwrap();
        assert!(jobs.default_uses.is_empty());
    }

    #[test]
    fn only_plain_dirs_below_the_root_are_kept() {
        assert!(is_plain(Path::new("")) && is_plain(Path::new("core/src")));
        assert!(!is_plain(Path::new("../etc")) && !is_plain(Path::new("/etc")));
        assert!(!is_plain(Path::new("a/../../b")));
        let mut jobs = LearnedJobs::new(Path::new("/ws"));
        jobs.record(shape("build"), "../elsewhere".into(), 0, 6);
        jobs.record(shape("check"), "core".into(), 0, 6);
        let kept = LearnedJobs::parse(&jobs.to_json(), Path::new("/ws")).unwrap();
        assert_eq!(kept.shapes.len(), 1);
        assert_eq!(kept.shapes[0].dir, Path::new("core"));
    }

    #[test]
    fn a_record_of_another_workspace_or_format_is_not_used() {
        let mut jobs = LearnedJobs::new(Path::new("/ws"));
        jobs.record(shape("build"), PathBuf::new(), 0, 6);
        let text = jobs.to_json();
        assert_eq!(LearnedJobs::parse(&text, Path::new("/ws")), Some(jobs));
        assert_eq!(LearnedJobs::parse(&text, Path::new("/other")), None);
        assert_eq!(LearnedJobs::parse("{", Path::new("/ws")), None);
    }
}
