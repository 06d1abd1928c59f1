//! Per-workspace settings: raw ([`WorkspaceSettings`], every field optional) from three
//! places, resolved once into [`Resolved`] with defaults.
//!
//! Precedence, highest first: what the registering client asked for (an editor's
//! initialization options), `buildd.toml` at the workspace root, `[workspace.metadata.buildd]`
//! in the root manifest, then the defaults. A malformed file is an error that names it.

use std::path::Path;
use std::time::Duration;

use crate::build::job::Stage;
use crate::home::regular_file;
use crate::wire::protocol::WorkspaceSettings;

pub(crate) const FILE_NAME: &str = "buildd.toml";
const DEFAULT_NICE: i32 = 10;
/// An hour: longer than any sane build of the dev profile, short enough that a hung build
/// script does not hold a workspace forever.
const DEFAULT_JOB_TIMEOUT_SECS: u64 = 3600;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    pub(crate) stages: Vec<Stage>,
    pub(crate) jobs: Option<u32>,
    pub(crate) debounce: Duration,
    pub(crate) nice: i32,
    pub(crate) job_timeout: Duration,
}

/// Reads `buildd.toml` and `[workspace.metadata.buildd]`, the file winning field by field.
/// `workspace_metadata` is the root manifest's `[workspace.metadata]`, from cargo metadata.
/// Blocking file work: the load runs it off the async workers.
pub(crate) fn read(
    root: &Path,
    workspace_metadata: Option<&serde_json::Value>,
) -> Result<WorkspaceSettings, String> {
    let from_manifest = match workspace_metadata.map(|m| &m["buildd"]) {
        Some(value) if !value.is_null() => serde_json::from_value(value.clone()).map_err(|e| {
            format!(
                "[workspace.metadata.buildd] in {}: {e}",
                root.join("Cargo.toml").display()
            )
        })?,
        _ => WorkspaceSettings::default(),
    };
    let path = root.join(FILE_NAME);
    // A FIFO or a device here must not stall the load: only a regular file is read.
    let from_file = match regular_file::read(&path, regular_file::MAX_SETTINGS_FILE)? {
        Some((text, _)) => toml::from_str(&text)
            .map_err(|e| format!("{}: {}", path.display(), toml_error(&text, &e)))?,
        None => WorkspaceSettings::default(),
    };
    let merged = over(&from_file, &from_manifest);
    validate(&merged)
        .map_err(|e| format!("{} or [workspace.metadata.buildd]: {e}", path.display()))?;
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
        jobs: high.jobs.or(low.jobs),
        debounce_ms: high.debounce_ms.or(low.debounce_ms),
        nice: high.nice.or(low.nice),
        job_timeout_secs: high.job_timeout_secs.or(low.job_timeout_secs),
        linker: high.linker.clone().or_else(|| low.linker.clone()),
        sccache: high.sccache.or(low.sccache),
    }
}

/// Checks values that serde cannot: stage names, ranges.
pub(crate) fn validate(settings: &WorkspaceSettings) -> Result<(), String> {
    if let Some(stages) = &settings.stages {
        Stage::parse_all(stages)?;
    }
    if settings.jobs == Some(0) {
        return Err("jobs must be at least 1".into());
    }
    if settings.job_timeout_secs == Some(0) {
        return Err("job_timeout_secs must be at least 1".into());
    }
    if let Some(nice) = settings.nice
        && !(0..=19).contains(&nice)
    {
        return Err(format!("nice must be between 0 and 19, not {nice}"));
    }
    if let Some(linker) = &settings.linker {
        crate::tools::linker::Setting::parse(linker)?;
    }
    Ok(())
}

/// Resolves validated settings; `default_debounce` is the daemon's.
pub(crate) fn resolve(settings: &WorkspaceSettings, default_debounce: Duration) -> Resolved {
    Resolved {
        stages: settings
            .stages
            .as_deref()
            .and_then(|s| Stage::parse_all(s).ok())
            .unwrap_or_else(|| Stage::DEFAULT.to_vec()),
        jobs: settings.jobs,
        debounce: settings
            .debounce_ms
            .map_or(default_debounce, Duration::from_millis),
        nice: settings.nice.unwrap_or(DEFAULT_NICE),
        job_timeout: Duration::from_secs(
            settings
                .job_timeout_secs
                .unwrap_or(DEFAULT_JOB_TIMEOUT_SECS),
        ),
    }
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
        assert_eq!(file.jobs, Some(1));
        let client = WorkspaceSettings {
            jobs: Some(2),
            ..WorkspaceSettings::default()
        };
        let resolved = resolve(&over(&client, &file), Duration::from_millis(150));
        assert_eq!(resolved.stages, vec![Stage::Check, Stage::Build]);
        assert_eq!(resolved.jobs, Some(2));
        assert_eq!(resolved.nice, DEFAULT_NICE);
    }

    #[test]
    fn bad_files_are_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "stages = [\"link\"]\n").unwrap();
        let err = read(dir.path(), None).unwrap_err();
        assert!(err.contains("buildd.toml") && err.contains("link"), "{err}");
        std::fs::write(dir.path().join(FILE_NAME), "colour = 3\n").unwrap();
        let err = read(dir.path(), None).unwrap_err();
        assert!(err.contains("colour"), "{err}");
        // On one line, with where.
        std::fs::write(dir.path().join(FILE_NAME), "nice = 1\nstages = [check\n").unwrap();
        let err = read(dir.path(), None).unwrap_err();
        assert!(
            err.contains("buildd.toml: line 2, column 16: ") && !err.contains('\n'),
            "{err}"
        );
    }
}
