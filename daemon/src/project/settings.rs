//! Per-workspace settings: raw ([`WorkspaceSettings`], every field optional) from three
//! places, resolved once into [`Resolved`] with defaults.
//!
//! Precedence, highest first: what the registering client asked for (an editor's
//! initialization options), `buildd.toml` at the workspace root, `[workspace.metadata.buildd]`
//! in the root manifest, then the defaults. A malformed file is an error that names it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::build::jobs::{self, JobDef, JobError};
use crate::home::regular_file::{self, ReadError};
use crate::tools::linker::UnknownLinker;
use crate::wire::protocol::{JobOrigin, JobsSetting, WorkspaceSettings};

pub(crate) const FILE_NAME: &str = "buildd.toml";
const DEFAULT_NICE: i32 = 10;
/// An hour: longer than any sane build of the dev profile, short enough that a hung build
/// script does not hold a workspace forever.
const DEFAULT_JOB_TIMEOUT_SECS: u64 = 3600;
const DEFAULT_LEARN_LIMIT: u32 = 6;
const DEFAULT_QUIET_SECS: u64 = 30;
/// Five minutes: the wide `build` and `test` of someone who runs narrower commands are
/// warmed in a break, not in the pauses between edits, where 30 s of quiet comes after
/// nearly every change (measured in docs/benchmarks.md, *Day mode*).
const DEFAULT_UNUSED_QUIET_SECS: u64 = 300;
const DEFAULT_EXPENSIVE_SECS: u64 = 10;
const DEFAULT_OTHER_KEYS: u32 = 2;
/// The most other keys a workspace's jobs keep warm.
pub(crate) const MAX_OTHER_KEYS: usize = 8;

/// Why a workspace's settings files could not be read. The text names the file; it becomes
/// the workspace's error, which `buildd status` and the editor show.
#[derive(Debug, Error)]
pub(crate) enum SettingsError {
    #[error("[workspace.metadata.buildd] in {manifest}: {source}")]
    Manifest {
        manifest: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    /// `detail` is toml's error on one line (see [`toml_error`]); toml's own text, with its
    /// snippet of the file over several lines, is left out of the chain on purpose.
    #[error("{path}: {detail}")]
    Syntax { path: PathBuf, detail: String },
    /// `path` is `buildd.toml`: the value may come from it or from the manifest.
    #[error("{path} or [workspace.metadata.buildd]: {source}")]
    Invalid {
        path: PathBuf,
        source: InvalidSetting,
    },
}

/// A value serde accepts but buildd does not, found by [`validate`]; each text says what to
/// write instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum InvalidSetting {
    #[error("the list of stages is empty: name at least one of check, build, test")]
    NoStages,
    #[error("unknown stage `{stage}`: use check, build or test (or define jobs in [jobs.NAME])")]
    UnknownStage { stage: String },
    #[error("jobs must be at least 1")]
    NoJobs,
    #[error("job name `{name}`: use letters, digits, `-` and `_` only")]
    JobName { name: String },
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("cargo_jobs must be at least 1")]
    NoCargoJobs,
    #[error("learn_limit must be at least 1 (`learn = false` turns learning off)")]
    NoLearnLimit,
    #[error("job_timeout_secs must be at least 1")]
    NoJobTimeout,
    #[error("nice must be between 0 and 19, not {nice}")]
    Nice { nice: i32 },
    #[error("other_keys must be at most {MAX_OTHER_KEYS}, not {n} (each is a job's work again)")]
    TooManyOtherKeys { n: u32 },
    #[error(transparent)]
    Linker(#[from] UnknownLinker),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    /// The default and configured job definitions, diagnostics jobs first.
    pub(crate) jobs: Vec<JobDef>,
    /// cargo's `-j`.
    pub(crate) cargo_jobs: Option<u32>,
    /// How many learned shapes to keep warm; 0 when learning is off.
    pub(crate) learn_limit: usize,
    /// How long an expensive, rarely used learned job waits for the workspace to be quiet.
    pub(crate) quiet: Duration,
    /// How long a default job the user's recent commands did not need waits for it.
    pub(crate) unused_quiet: Duration,
    /// A learned job whose last run took this long is expensive.
    pub(crate) expensive: Duration,
    pub(crate) debounce: Duration,
    pub(crate) nice: i32,
    pub(crate) job_timeout: Duration,
    /// How many other keys the jobs keep warm; 0: none.
    pub(crate) other_keys: usize,
    /// Early diagnostics (`build/early.rs`) are on.
    pub(crate) early: bool,
}

/// Reads `buildd.toml` and `[workspace.metadata.buildd]`, the file winning field by field.
/// `workspace_metadata` is the root manifest's `[workspace.metadata]`, from cargo metadata.
/// Blocking file work: the load runs it off the async workers.
pub(crate) fn read(
    root: &Path,
    workspace_metadata: Option<&serde_json::Value>,
) -> Result<WorkspaceSettings, SettingsError> {
    let from_manifest = match workspace_metadata.map(|m| &m["buildd"]) {
        Some(value) if !value.is_null() => {
            serde_json::from_value(value.clone()).map_err(|source| SettingsError::Manifest {
                manifest: root.join("Cargo.toml"),
                source,
            })?
        }
        _ => WorkspaceSettings::default(),
    };
    let path = root.join(FILE_NAME);
    // A FIFO or a device here must not stall the load: only a regular file is read.
    let from_file = match regular_file::read(&path, regular_file::MAX_SETTINGS_FILE)? {
        Some((text, _)) => toml::from_str(&text).map_err(|e| SettingsError::Syntax {
            path: path.clone(),
            detail: toml_error(&text, &e),
        })?,
        None => WorkspaceSettings::default(),
    };
    let merged = over(&from_file, &from_manifest);
    validate(&merged).map_err(|source| SettingsError::Invalid { path, source })?;
    Ok(merged)
}

/// A TOML error on one line: where, and what. toml's own text spans several lines with a
/// snippet of the file, more than the one line `buildd cargo` prints about a broken file.
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let Some(span) = error.span() else {
        return error.message().to_owned();
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    format!(
        "line {}, column {}: {}",
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
        error.message().trim()
    )
}

/// `high`'s fields where set, `low`'s otherwise.
pub(crate) fn over(high: &WorkspaceSettings, low: &WorkspaceSettings) -> WorkspaceSettings {
    WorkspaceSettings {
        stages: high.stages.clone().or_else(|| low.stages.clone()),
        jobs: over_jobs(high.jobs.as_ref(), low.jobs.as_ref()),
        cargo_jobs: high.cargo_jobs.or(low.cargo_jobs),
        learn: high.learn.or(low.learn),
        learn_limit: high.learn_limit.or(low.learn_limit),
        quiet_secs: high.quiet_secs.or(low.quiet_secs),
        unused_quiet_secs: high.unused_quiet_secs.or(low.unused_quiet_secs),
        expensive_secs: high.expensive_secs.or(low.expensive_secs),
        debounce_ms: high.debounce_ms.or(low.debounce_ms),
        nice: high.nice.or(low.nice),
        job_timeout_secs: high.job_timeout_secs.or(low.job_timeout_secs),
        other_keys: high.other_keys.or(low.other_keys),
        early: high.early.or(low.early),
        linker: high.linker.clone().or_else(|| low.linker.clone()),
        sccache: high.sccache.or(low.sccache),
        fast_link: high.fast_link.or(low.fast_link),
    }
}

/// The job definitions of both, `high`'s winning name by name; the old count (`jobs = 4`)
/// only where neither defines jobs.
fn over_jobs(high: Option<&JobsSetting>, low: Option<&JobsSetting>) -> Option<JobsSetting> {
    match (high, low) {
        (Some(JobsSetting::Defs(high)), Some(JobsSetting::Defs(low))) => {
            let mut defs = low.clone();
            defs.extend(high.clone());
            Some(JobsSetting::Defs(defs))
        }
        (Some(JobsSetting::Defs(defs)), _) | (_, Some(JobsSetting::Defs(defs))) => {
            Some(JobsSetting::Defs(defs.clone()))
        }
        (high, low) => high.or(low).cloned(),
    }
}

/// Checks values that serde cannot: stage names, job commands, ranges.
pub(crate) fn validate(settings: &WorkspaceSettings) -> Result<(), InvalidSetting> {
    if let Some(stages) = &settings.stages {
        if stages.is_empty() {
            return Err(InvalidSetting::NoStages);
        }
        if let Some(other) = stages.iter().find(|s| jobs::of_stage(s).is_none()) {
            return Err(InvalidSetting::UnknownStage {
                stage: other.clone(),
            });
        }
    }
    match &settings.jobs {
        Some(JobsSetting::Count(0)) => return Err(InvalidSetting::NoJobs),
        Some(JobsSetting::Defs(defs)) => {
            for (name, def) in defs {
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(InvalidSetting::JobName { name: name.clone() });
                }
                let replaces_default =
                    ["clippy", "check", "build", "test"].contains(&name.as_str());
                if def.enabled == Some(false) || (def.command.is_empty() && replaces_default) {
                    continue;
                }
                jobs::validate_command(name, &def.command)?;
            }
        }
        _ => {}
    }
    if settings.cargo_jobs == Some(0) {
        return Err(InvalidSetting::NoCargoJobs);
    }
    if settings.learn_limit == Some(0) {
        return Err(InvalidSetting::NoLearnLimit);
    }
    if settings.job_timeout_secs == Some(0) {
        return Err(InvalidSetting::NoJobTimeout);
    }
    if let Some(n) = settings.other_keys
        && n as usize > MAX_OTHER_KEYS
    {
        return Err(InvalidSetting::TooManyOtherKeys { n });
    }
    if let Some(nice) = settings.nice
        && !(0..=19).contains(&nice)
    {
        return Err(InvalidSetting::Nice { nice });
    }
    if let Some(linker) = &settings.linker {
        crate::tools::linker::Setting::parse(linker)?;
    }
    Ok(())
}

/// Resolves validated settings; `default_debounce` is the daemon's, `clippy` whether the
/// workspace's toolchain has clippy.
pub(crate) fn resolve(
    settings: &WorkspaceSettings,
    default_debounce: Duration,
    clippy: bool,
) -> Resolved {
    let cargo_jobs = settings.cargo_jobs.or(match settings.jobs {
        Some(JobsSetting::Count(n)) => Some(n),
        _ => None,
    });
    Resolved {
        jobs: job_defs(settings, clippy),
        cargo_jobs,
        learn_limit: if settings.learn == Some(false) {
            0
        } else {
            settings.learn_limit.unwrap_or(DEFAULT_LEARN_LIMIT) as usize
        },
        quiet: Duration::from_secs(settings.quiet_secs.unwrap_or(DEFAULT_QUIET_SECS)),
        unused_quiet: Duration::from_secs(
            settings
                .unused_quiet_secs
                .unwrap_or(DEFAULT_UNUSED_QUIET_SECS),
        ),
        expensive: Duration::from_secs(settings.expensive_secs.unwrap_or(DEFAULT_EXPENSIVE_SECS)),
        debounce: settings
            .debounce_ms
            .map_or(default_debounce, Duration::from_millis),
        nice: settings.nice.unwrap_or(DEFAULT_NICE),
        job_timeout: Duration::from_secs(
            settings
                .job_timeout_secs
                .unwrap_or(DEFAULT_JOB_TIMEOUT_SECS),
        ),
        other_keys: settings.other_keys.unwrap_or(DEFAULT_OTHER_KEYS) as usize,
        early: settings.early.unwrap_or(true),
    }
}

/// The defaults (or the old `stages`), then `[jobs.NAME]`: a default's name replaces or
/// amends it, `enabled = false` removes it, other names are added. Diagnostics jobs first.
fn job_defs(settings: &WorkspaceSettings, clippy: bool) -> Vec<JobDef> {
    let mut defs = match settings.stages.as_deref() {
        Some(stages) if !stages.is_empty() => stages
            .iter()
            .filter_map(|s| jobs::of_stage(s))
            .collect::<Vec<_>>(),
        _ => jobs::defaults(clippy),
    };
    if let Some(JobsSetting::Defs(configured)) = &settings.jobs {
        for (name, config) in configured {
            // `clippy` and `check` name the same default, the diagnostics job.
            let at = defs.iter().position(|d| {
                d.name.name() == name
                    || (d.origin == JobOrigin::Default
                        && d.diagnostics
                        && (name == "clippy" || name == "check"))
            });
            if config.enabled == Some(false) {
                if let Some(at) = at {
                    defs.remove(at);
                }
                continue;
            }
            if jobs::validate_command(name, &config.command).is_err() {
                let Some(at) = at.filter(|_| config.command.is_empty()) else {
                    // Refused by `validate`: nothing of it runs.
                    continue;
                };
                // Amends a default: its command stays.
                if let Some(diagnostics) = config.diagnostics {
                    defs[at].diagnostics = diagnostics;
                }
                defs[at].origin = JobOrigin::Config;
                continue;
            }
            let subcommand = config.command[0].as_str();
            let def = JobDef {
                name: crate::wire::protocol::Stage::new(name.clone()),
                args: config.command.clone(),
                dir: Default::default(),
                origin: JobOrigin::Config,
                diagnostics: config
                    .diagnostics
                    .unwrap_or(matches!(subcommand, "check" | "c" | "clippy")),
            };
            match at {
                Some(at) => defs[at] = def,
                None => defs.push(def),
            }
        }
    }
    // Without a diagnostics job (`stages = ["build"]`, the diagnostics job turned off), every
    // job's messages are the diagnostics, as they were before job definitions.
    if !defs.iter().any(|d| d.diagnostics) {
        for def in &mut defs {
            def.diagnostics = true;
        }
    }
    // Stable: within each group, the order above.
    defs.sort_by_key(|d| !d.diagnostics);
    defs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_wins_over_the_manifest_and_the_client_over_both() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            "stages = [\"check\", \"build\"]\njobs = 1\n",
        )
        .unwrap();
        let file = read(dir.path(), None).unwrap();
        assert_eq!(file.jobs, Some(JobsSetting::Count(1)));
        let client = WorkspaceSettings {
            cargo_jobs: Some(2),
            ..WorkspaceSettings::default()
        };
        let resolved = resolve(&over(&client, &file), Duration::from_millis(150), true);
        let names: Vec<&str> = resolved.jobs.iter().map(|j| j.name.name()).collect();
        assert_eq!(names, ["check", "build"]);
        assert_eq!(resolved.cargo_jobs, Some(2));
        assert_eq!(resolved.nice, DEFAULT_NICE);
    }

    #[test]
    fn bad_files_are_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "stages = [\"link\"]\n").unwrap();
        let err = read(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("buildd.toml") && err.contains("link"), "{err}");
        std::fs::write(dir.path().join(FILE_NAME), "colour = 3\n").unwrap();
        let err = read(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        // On one line, with where.
        std::fs::write(dir.path().join(FILE_NAME), "nice = 1\nstages = [check\n").unwrap();
        let err = read(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.contains("buildd.toml: line 2, column 16: ") && !err.contains('\n'),
            "{err}"
        );
    }

    #[test]
    fn jobs_tables_add_replace_and_turn_off_jobs_and_refuse_commands_that_do_more() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            "cargo_jobs = 3\n\
             [jobs.pedantic]\ncommand = [\"clippy\", \"--workspace\", \"--\", \"-W\", \"clippy::pedantic\"]\n\
             [jobs.wasm]\ncommand = [\"build\", \"--target\", \"wasm32-unknown-unknown\"]\n\
             [jobs.test]\nenabled = false\n\
             [jobs.clippy]\ndiagnostics = true\n",
        )
        .unwrap();
        let file = read(dir.path(), None).unwrap();
        let resolved = resolve(&file, Duration::from_millis(150), true);
        let lines: Vec<String> = resolved
            .jobs
            .iter()
            .map(|j| {
                format!(
                    "{} {:?} {}: {}",
                    j.name,
                    j.origin,
                    j.diagnostics,
                    j.args.join(" ")
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                "clippy Config true: clippy --workspace --all-targets",
                "pedantic Config true: clippy --workspace -- -W clippy::pedantic",
                "build Default false: build --workspace",
                "wasm Config false: build --target wasm32-unknown-unknown",
            ]
        );
        assert_eq!(resolved.cargo_jobs, Some(3));

        std::fs::write(
            dir.path().join(FILE_NAME),
            "[jobs.release]\ncommand = [\"publish\"]\n",
        )
        .unwrap();
        let err = read(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.contains("buildd.toml")
                && err.contains("job `release`")
                && err.contains("cargo publish"),
            "{err}"
        );
    }

    #[test]
    fn without_clippy_the_diagnostics_job_is_check_and_learning_can_be_off() {
        let settings = WorkspaceSettings {
            learn: Some(false),
            ..WorkspaceSettings::default()
        };
        let resolved = resolve(&settings, Duration::from_millis(150), false);
        assert_eq!(resolved.jobs[0].args[0], "check");
        assert_eq!(resolved.learn_limit, 0);
        let resolved = resolve(
            &WorkspaceSettings::default(),
            Duration::from_millis(150),
            true,
        );
        assert_eq!(resolved.learn_limit, 6);
        assert_eq!(resolved.quiet, Duration::from_secs(30));
    }

    /// The texts `buildd status`, the editor and a refused `register` show, word for word as
    /// they were when they were built with `format!`.
    #[test]
    fn invalid_settings_say_what_to_write() {
        let refused = |settings: WorkspaceSettings| validate(&settings).unwrap_err().to_string();
        let none = WorkspaceSettings::default;
        assert_eq!(
            refused(WorkspaceSettings {
                stages: Some(vec![]),
                ..none()
            }),
            "the list of stages is empty: name at least one of check, build, test"
        );
        assert_eq!(
            refused(WorkspaceSettings {
                stages: Some(vec!["check".into(), "link".into()]),
                ..none()
            }),
            "unknown stage `link`: use check, build or test (or define jobs in [jobs.NAME])"
        );
        assert_eq!(
            refused(WorkspaceSettings {
                jobs: Some(JobsSetting::Count(0)),
                ..none()
            }),
            "jobs must be at least 1"
        );
        assert_eq!(
            refused(WorkspaceSettings {
                cargo_jobs: Some(0),
                ..none()
            }),
            "cargo_jobs must be at least 1"
        );
        assert_eq!(
            refused(WorkspaceSettings {
                learn_limit: Some(0),
                ..none()
            }),
            "learn_limit must be at least 1 (`learn = false` turns learning off)"
        );
        assert_eq!(
            refused(WorkspaceSettings {
                job_timeout_secs: Some(0),
                ..none()
            }),
            "job_timeout_secs must be at least 1"
        );
        assert_eq!(
            refused(WorkspaceSettings {
                nice: Some(20),
                ..none()
            }),
            "nice must be between 0 and 19, not 20"
        );
        assert_eq!(
            refused(WorkspaceSettings {
                linker: Some("gold".into()),
                ..none()
            }),
            "unknown linker `gold`: use auto, default, mold, lld, bfd or a path to a linker driver"
        );
        assert!(validate(&none()).is_ok());
    }

    #[test]
    fn bad_manifest_tables_and_invalid_files_are_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = serde_json::json!({ "buildd": { "nice": "low" } });
        let err = read(dir.path(), Some(&metadata)).unwrap_err().to_string();
        let manifest = dir.path().join("Cargo.toml");
        assert!(
            err.starts_with(&format!(
                "[workspace.metadata.buildd] in {}: ",
                manifest.display()
            )),
            "{err}"
        );
        std::fs::write(dir.path().join(FILE_NAME), "nice = 30\n").unwrap();
        let err = read(dir.path(), None).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} or [workspace.metadata.buildd]: nice must be between 0 and 19, not 30",
                dir.path().join(FILE_NAME).display()
            )
        );
    }
}
