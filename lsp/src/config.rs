//! `initializationOptions`: what an editor may set, read leniently and resolved once.
//!
//! The options are a small camelCase object, every field optional (documented in
//! `docs/editors/lsp.md`). A field of the wrong type or one this version does not know is a
//! warning for the user (`window/showMessage`), never a failed `initialize`: an editor
//! configuration written for a newer buildd must still start the server.

use buildd_daemon::protocol::{JobsSetting, WorkspaceSettings};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The options as the editor sends them (`initializationOptions`), in camelCase on the wire.
/// Read field by field by [`resolve`], so that one bad field spoils only itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RawOptions {
    /// The stages a job runs: any of `check`, `build`, `test`.
    pub(crate) stages: Option<Vec<String>>,
    /// The job definitions (`{"pedantic": {"command": ["clippy", ...]}}`); a number is the
    /// old spelling of `cargoJobs`.
    pub(crate) jobs: Option<JobsSetting>,
    /// cargo's `--jobs` for the daemon's jobs.
    pub(crate) cargo_jobs: Option<u32>,
    /// Learn the `buildd cargo` commands the user runs and keep them warm.
    pub(crate) learn: Option<bool>,
    pub(crate) learn_limit: Option<u32>,
    pub(crate) quiet_secs: Option<u64>,
    pub(crate) unused_quiet_secs: Option<u64>,
    pub(crate) expensive_secs: Option<u64>,
    /// How long the daemon waits after a file-system change for more changes.
    pub(crate) debounce_ms: Option<u64>,
    /// The niceness of the daemon's builds.
    pub(crate) nice: Option<i32>,
    /// How long a job may run before it is stopped, in seconds.
    pub(crate) job_timeout_secs: Option<u64>,
    /// The linker: `auto`, `default`, `mold`, `lld`, `bfd` or a path.
    pub(crate) linker: Option<String>,
    /// Whether buildd's sccache serves this workspace.
    pub(crate) sccache: Option<bool>,
    /// Debug-info settings that make each link read and write less.
    pub(crate) fast_link: Option<bool>,
    /// How many other build keys to keep warm.
    pub(crate) other_keys: Option<u32>,
    /// Early diagnostics.
    pub(crate) early: Option<bool>,
    /// Never start the daemon; wait for one to appear instead.
    pub(crate) no_start: Option<bool>,
    /// Register the separate cargo workspaces found under each folder, not only the one at
    /// the folder (`discover.rs`).
    pub(crate) discover_workspaces: Option<bool>,
}

/// The options resolved: what to ask the daemon for, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) settings: WorkspaceSettings,
    pub(crate) no_start: bool,
    /// Walk each folder for the workspaces under it.
    pub(crate) discover_workspaces: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settings: WorkspaceSettings::default(),
            no_start: false,
            discover_workspaces: true,
        }
    }
}

/// Reads `initializationOptions`. Returns the options and the warnings to show the user.
/// `no_start_default` is the command line's `--no-start` (or `BUILDD_NO_START`).
pub(crate) fn resolve(value: Option<&Value>, no_start_default: bool) -> (Options, Vec<String>) {
    let mut warnings = Vec::new();
    let mut raw = RawOptions::default();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                match key.as_str() {
                    "stages" => raw.stages = field(key, value, &mut warnings),
                    "jobs" => raw.jobs = field(key, value, &mut warnings),
                    "cargoJobs" => raw.cargo_jobs = field(key, value, &mut warnings),
                    "learn" => raw.learn = field(key, value, &mut warnings),
                    "learnLimit" => raw.learn_limit = field(key, value, &mut warnings),
                    "quietSecs" => raw.quiet_secs = field(key, value, &mut warnings),
                    "unusedQuietSecs" => raw.unused_quiet_secs = field(key, value, &mut warnings),
                    "expensiveSecs" => raw.expensive_secs = field(key, value, &mut warnings),
                    "debounceMs" => raw.debounce_ms = field(key, value, &mut warnings),
                    "nice" => raw.nice = field(key, value, &mut warnings),
                    "jobTimeoutSecs" => raw.job_timeout_secs = field(key, value, &mut warnings),
                    "linker" => raw.linker = field(key, value, &mut warnings),
                    "sccache" => raw.sccache = field(key, value, &mut warnings),
                    "fastLink" => raw.fast_link = field(key, value, &mut warnings),
                    "otherKeys" => raw.other_keys = field(key, value, &mut warnings),
                    "early" => raw.early = field(key, value, &mut warnings),
                    "noStart" => raw.no_start = field(key, value, &mut warnings),
                    "discoverWorkspaces" => {
                        raw.discover_workspaces = field(key, value, &mut warnings)
                    }
                    _ => warnings.push(format!(
                        "buildd: unknown initializationOptions field `{key}` ignored \
                         (known: jobs, cargoJobs, learn, learnLimit, quietSecs, \
                         unusedQuietSecs, expensiveSecs, stages, debounceMs, nice, \
                         jobTimeoutSecs, linker, sccache, fastLink, otherKeys, early, noStart, \
                         discoverWorkspaces)"
                    )),
                }
            }
        }
        Some(other) => warnings.push(format!(
            "buildd: initializationOptions must be an object, got {other}; using the defaults"
        )),
    }
    let options = Options {
        settings: WorkspaceSettings {
            stages: raw.stages,
            // The old number is cargo's `-j`: as such, so that it is not lost beside job
            // definitions of a `buildd.toml`.
            cargo_jobs: raw.cargo_jobs.or(match raw.jobs {
                Some(JobsSetting::Count(n)) => Some(n),
                _ => None,
            }),
            jobs: raw.jobs.filter(|j| matches!(j, JobsSetting::Defs(_))),
            learn: raw.learn,
            learn_limit: raw.learn_limit,
            quiet_secs: raw.quiet_secs,
            unused_quiet_secs: raw.unused_quiet_secs,
            expensive_secs: raw.expensive_secs,
            debounce_ms: raw.debounce_ms,
            nice: raw.nice,
            job_timeout_secs: raw.job_timeout_secs,
            linker: raw.linker,
            sccache: raw.sccache,
            fast_link: raw.fast_link,
            other_keys: raw.other_keys,
            early: raw.early,
        },
        no_start: raw.no_start.unwrap_or(no_start_default),
        discover_workspaces: raw.discover_workspaces.unwrap_or(true),
    };
    (options, warnings)
}

/// One field, or `None` and a warning when it has the wrong type. `null` means unset.
fn field<T: DeserializeOwned>(key: &str, value: &Value, warnings: &mut Vec<String>) -> Option<T> {
    if value.is_null() {
        return None;
    }
    match serde_json::from_value(value.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            warnings.push(format!(
                "buildd: initializationOptions.{key} ignored: {e} (got {value})"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_field_maps_to_the_daemon_settings() {
        let value = json!({"stages": ["check"], "jobs": 2, "debounceMs": 150, "nice": 5,
            "jobTimeoutSecs": 60, "fastLink": true, "noStart": true});
        let (options, warnings) = resolve(Some(&value), false);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            options.settings,
            WorkspaceSettings {
                stages: Some(vec!["check".into()]),
                cargo_jobs: Some(2),
                debounce_ms: Some(150),
                nice: Some(5),
                job_timeout_secs: Some(60),
                fast_link: Some(true),
                ..WorkspaceSettings::default()
            }
        );
        assert!(options.no_start);
    }

    #[test]
    fn job_definitions_and_learning_map_to_the_daemon_settings() {
        let value = json!({
            "jobs": {"pedantic": {"command": ["clippy", "--", "-W", "clippy::pedantic"]}},
            "cargoJobs": 3, "learn": false, "learnLimit": 2, "quietSecs": 5, "expensiveSecs": 1,
            "unusedQuietSecs": 60
        });
        let (options, warnings) = resolve(Some(&value), false);
        assert!(warnings.is_empty(), "{warnings:?}");
        let Some(JobsSetting::Defs(defs)) = &options.settings.jobs else {
            panic!("{:?}", options.settings.jobs);
        };
        assert_eq!(defs["pedantic"].command[0], "clippy");
        assert_eq!(options.settings.cargo_jobs, Some(3));
        assert_eq!(options.settings.learn, Some(false));
        assert_eq!(options.settings.learn_limit, Some(2));
        assert_eq!(options.settings.quiet_secs, Some(5));
        assert_eq!(options.settings.unused_quiet_secs, Some(60));
        assert_eq!(options.settings.expensive_secs, Some(1));
    }

    #[test]
    fn absent_options_are_the_defaults_and_no_start_follows_the_command_line() {
        let (options, warnings) = resolve(None, true);
        assert!(warnings.is_empty());
        assert_eq!(options.settings, WorkspaceSettings::default());
        assert!(options.no_start);
        assert!(options.discover_workspaces);
        let (options, _) = resolve(Some(&json!({"noStart": false})), true);
        assert!(!options.no_start);
        let (options, warnings) = resolve(Some(&json!({"discoverWorkspaces": false})), false);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!options.discover_workspaces);
    }

    #[test]
    fn unknown_fields_and_wrong_types_warn_and_keep_the_rest() {
        let value = json!({"jobs": "two", "colour": "blue", "stages": ["build"]});
        let (options, warnings) = resolve(Some(&value), false);
        assert_eq!(options.settings.stages, Some(vec!["build".into()]));
        assert_eq!(options.settings.jobs, None);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("`colour`")));
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("initializationOptions.jobs"))
        );
    }

    #[test]
    fn a_non_object_is_a_warning() {
        let (options, warnings) = resolve(Some(&json!([1, 2])), false);
        assert_eq!(options, Options::default());
        assert_eq!(warnings.len(), 1);
    }
}
