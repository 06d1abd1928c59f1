//! buildd's tools around cargo for a workspace: the linker wrapper, sccache and `fast_link`'s
//! debug-info settings, and the environment they add (a [`ToolEnv`]), decided from the
//! workspace's settings, its key and the client's environment.
//!
//! This module decides; the dispatcher (`main_loop/cache_ops.rs`) keeps the state and runs
//! the work (measurements, stats, eviction). What it decides reaches cargo only through
//! `key::cargo_env`, for the daemon's jobs and the user's `buildd cargo` alike.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::cache::layout::STATE_DIR;
use crate::project::fast_link;
use crate::project::key::{BuildKey, ToolEnv};
use crate::tools::linker::{self, MeasureError, Measurement, Setting};
use crate::tools::sccache::{self, Detected, Sccache, SccacheError, Stats};
use crate::wire::protocol::{
    CacheTotals, FastLinkStatus, LinkerStatus, SeedStatus, WorkspaceSccache, WorkspaceSettings,
};

/// Why the linker wrapper could not be written; the text is the note status shows for a
/// workspace that asked for another linker.
#[derive(Debug, Error)]
#[error("cannot write the linker wrapper into {tools_dir}: {source}")]
pub(crate) struct WrapperError {
    tools_dir: PathBuf,
    source: io::Error,
}

/// Writes the linker wrapper into `<tools_dir>/bin`, which it returns.
fn install_wrapper(tools_dir: &Path) -> Result<PathBuf, WrapperError> {
    linker::install_wrapper(tools_dir).map_err(|source| WrapperError {
        tools_dir: tools_dir.to_path_buf(),
        source,
    })
}

/// Daemon-wide: what was found at start-up, and the latest totals.
pub(crate) struct Tools {
    pub(crate) tools_dir: PathBuf,
    /// `<tools>/bin`, holding the linker wrapper, or why it could not be written.
    pub(crate) wrapper_bin: Result<PathBuf, WrapperError>,
    pub(crate) sccache: Detected,
    /// The server's counts after the last job, and where it stores.
    pub(crate) sccache_stats: Option<(Stats, Option<String>)>,
    pub(crate) sccache_note: Option<String>,
    pub(crate) totals: Option<CacheTotals>,
    /// Measurements of the cache launched so far, and the number of the one `totals` comes
    /// from: measurements run in the background and may finish out of order, and an older
    /// one must not replace a newer one (a job's collection that started before a
    /// `buildd cache gc` would undo its eviction in status).
    pub(crate) measurements_launched: u64,
    pub(crate) totals_from: u64,
    /// When eviction last ran.
    pub(crate) last_gc: Option<std::time::Instant>,
    /// Whether subscribers were last told that the disk is full.
    pub(crate) disk_announced: bool,
    /// The registered workspaces' current dirs, shared with eviction.
    pub(crate) in_use: Arc<crate::cache::dirs::InUse>,
}

impl Tools {
    /// Looks for the tools; runs `sccache --version` (with a timeout), so it is async.
    pub(crate) async fn new(config: &crate::home::config::DaemonConfig) -> Tools {
        let tools_dir = config.paths.tools_dir();
        let wrapper_bin = install_wrapper(&tools_dir);
        let sccache = sccache::detect(&config.sccache, &config.paths).await;
        match &sccache {
            Detected::Ready(s) => {
                tracing::info!(binary = %s.binary.display(), version = %s.version, "using sccache")
            }
            Detected::Unavailable(Some(note)) => tracing::warn!("not using sccache: {note}"),
            Detected::Unavailable(None) => {}
        }
        Tools::with(tools_dir, wrapper_bin, sccache)
    }

    /// The tools' state before anything was measured or collected.
    fn with(
        tools_dir: PathBuf,
        wrapper_bin: Result<PathBuf, WrapperError>,
        sccache: Detected,
    ) -> Tools {
        Tools {
            tools_dir,
            wrapper_bin,
            sccache,
            sccache_stats: None,
            sccache_note: None,
            totals: None,
            measurements_launched: 0,
            totals_from: 0,
            last_gc: None,
            disk_announced: false,
            in_use: Arc::default(),
        }
    }

    pub(crate) fn sccache(&self) -> Option<Arc<Sccache>> {
        match &self.sccache {
            Detected::Ready(s) => Some(s.clone()),
            Detected::Unavailable(_) => None,
        }
    }
}

/// Per workspace: what the tools do for it.
#[derive(Debug, Default)]
pub(crate) struct WorkspaceTools {
    pub(crate) env: ToolEnv,
    pub(crate) linker: Option<LinkerStatus>,
    pub(crate) fast_link: Option<FastLinkStatus>,
    /// `auto` is capturing links to measure.
    pub(crate) capturing: bool,
    pub(crate) measuring: bool,
    /// The jobs link through buildd's wrapper (which logs link times).
    pub(crate) wrapping_linker: bool,
    pub(crate) sccache: Option<WorkspaceSccache>,
    pub(crate) seed: Option<SeedStatus>,
    /// The next successful job is the first after a seed: its counts go into `seed`.
    pub(crate) seed_pending: bool,
    /// The sccache server's counts when the running job started.
    pub(crate) sccache_before: Option<Stats>,
    /// The running job reported a write that failed for lack of space.
    pub(crate) out_of_space: bool,
}

impl WorkspaceTools {
    /// The workspace's key changed: the seed shown so far was another dir's.
    pub(crate) fn forget_seed(&mut self) {
        self.seed = None;
        self.seed_pending = false;
    }
}

/// Notes a compiler message that says the disk is full (rustc puts the OS error in the
/// rendered text, below a first line such as "linking with `cc` failed").
pub(crate) fn note_diagnostic(
    state: &mut WorkspaceTools,
    diagnostic: &crate::wire::protocol::Diagnostic,
) {
    let text = diagnostic
        .rustc
        .rendered
        .as_deref()
        .unwrap_or(&diagnostic.message);
    if text.contains(crate::cache::dirs::ENOSPC_TEXT) {
        state.out_of_space = true;
    }
}

/// The dir of buildd's own state inside a key dir.
pub(crate) fn state_dir(target_dir: &Path) -> PathBuf {
    target_dir.join(STATE_DIR)
}

pub(crate) fn link_log(target_dir: &Path) -> PathBuf {
    state_dir(target_dir).join("link.log")
}

pub(crate) fn capture_dir(target_dir: &Path) -> PathBuf {
    state_dir(target_dir).join("link-capture")
}

/// The workspace's linker setting, `default` when none.
pub(crate) fn linker_setting(settings: &WorkspaceSettings) -> String {
    settings
        .linker
        .clone()
        .unwrap_or_else(|| "default".to_owned())
}

/// Decides what the tools add for a workspace with `key`, the client's `env` and `settings`.
pub(crate) fn configure(
    tools: &Tools,
    state: &mut WorkspaceTools,
    key: &BuildKey,
    env: &BTreeMap<String, String>,
    settings: &WorkspaceSettings,
) {
    let mut tool_env = ToolEnv::default();
    configure_linker(tools, state, key, env, settings, &mut tool_env);
    configure_sccache(tools, state, env, settings, &mut tool_env);
    // The key, not the settings, decides: its dir was built with exactly this.
    let (fast_link_env, fast_link) = fast_link::decide(key.info.fast_link, env);
    tool_env.set.extend(fast_link_env);
    state.fast_link = Some(fast_link);
    state.env = tool_env;
}

/// The linker: the wrapper and the linker it picks, or why none.
fn configure_linker(
    tools: &Tools,
    state: &mut WorkspaceTools,
    key: &BuildKey,
    env: &BTreeMap<String, String>,
    settings: &WorkspaceSettings,
    tool_env: &mut ToolEnv,
) {
    let path_var = env
        .get("PATH")
        .cloned()
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_default();
    let setting_text = linker_setting(settings);
    let triple_var = format!(
        "CARGO_TARGET_{}_LINKER",
        key.info.target.to_uppercase().replace(['-', '.'], "_")
    );
    let memory = linker::memory_path(
        &tools.tools_dir,
        &key.target_dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        &key.info.rustc,
    );
    let remembered = linker::remembered(&memory);
    let mut status = LinkerStatus {
        setting: setting_text.clone(),
        linker: "default".to_owned(),
        note: None,
        measured: remembered
            .as_ref()
            .map(|m| m.millis.clone())
            .unwrap_or_default(),
        last_link_ms: state.linker.as_ref().and_then(|l| l.last_link_ms),
        last_link_share: state.linker.as_ref().and_then(|l| l.last_link_share),
    };
    state.capturing = false;
    state.wrapping_linker = false;
    let setting = Setting::parse(&setting_text).unwrap_or(Setting::Default);
    let user_linker = env.get(&triple_var).filter(|v| !v.is_empty());
    let wrapper = match (&setting, user_linker, &tools.wrapper_bin) {
        (Setting::Default, _, _) => None,
        (_, Some(theirs), _) => {
            status.linker = theirs.clone();
            status.note = Some(format!(
                "your environment sets {triple_var}={theirs}; buildd leaves it alone"
            ));
            None
        }
        (_, None, Err(e)) => {
            status.note = Some(e.to_string());
            None
        }
        (_, None, Ok(bin)) => Some(bin.clone()),
    };
    if let Some(bin) = wrapper {
        state.wrapping_linker = true;
        let (choice, driver) =
            choose_linker(&setting, remembered.as_ref(), &path_var, state, &mut status);
        status.linker = match &driver {
            Some(path) => path.display().to_string(),
            None => choice.clone(),
        };
        tool_env
            .set
            .insert(triple_var, linker::WRAPPER_NAME.to_owned());
        tool_env
            .set
            .insert("PATH".to_owned(), format!("{}:{path_var}", bin.display()));
        tool_env.set.insert("BUILDD_LINKER".to_owned(), choice);
        if let Some(driver) = driver {
            tool_env.set.insert(
                "BUILDD_LINKER_DRIVER".to_owned(),
                driver.to_string_lossy().into_owned(),
            );
        }
        tool_env.set.insert(
            "BUILDD_LINK_LOG".to_owned(),
            link_log(&key.target_dir).to_string_lossy().into_owned(),
        );
        if state.capturing {
            // The dir itself is made when a job starts: the key dir may not exist yet (it is
            // about to be seeded).
            let capture = capture_dir(&key.target_dir);
            tool_env.set.insert(
                "BUILDD_LINK_CAPTURE".to_owned(),
                capture.to_string_lossy().into_owned(),
            );
            tool_env.set.insert(
                "BUILDD_LINK_TARGET".to_owned(),
                key.target_dir.to_string_lossy().into_owned(),
            );
        }
    }
    state.linker = Some(status);
}

/// The linker the wrapper runs for `setting` (a name, or a driver's path), and what status
/// says of it.
fn choose_linker(
    setting: &Setting,
    remembered: Option<&Measurement>,
    path_var: &str,
    state: &mut WorkspaceTools,
    status: &mut LinkerStatus,
) -> (String, Option<PathBuf>) {
    match setting {
        Setting::Named(name) => {
            let program = format!("ld.{name}");
            if *name == "lld" || linker::on_path(&program, path_var) {
                (name.to_string(), None)
            } else {
                status.note = Some(format!(
                    "{name} is not installed (no {program} on PATH): install it (Debian: \
                     apt-get install {name}); the jobs link with the default linker"
                ));
                ("default".to_owned(), None)
            }
        }
        Setting::Driver(path) => ("default".to_owned(), Some(path.clone())),
        Setting::Auto => match remembered {
            Some(m) => {
                let mut note = format!(
                    "measured on this workspace over {} link(s): {}",
                    m.links,
                    m.millis
                        .iter()
                        .map(|(n, ms)| format!("{n} {ms} ms"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                for (name, why) in &m.not_measured {
                    note.push_str(&format!("; {name}: {why}"));
                }
                status.note = Some(note);
                (m.chosen.clone(), None)
            }
            None => {
                state.capturing = true;
                status.note = Some(
                    "auto: measuring each available linker on this workspace's next links"
                        .to_owned(),
                );
                ("default".to_owned(), None)
            }
        },
        // No wrapper is installed for the default; the wrapper would run cc's own choice.
        Setting::Default => ("default".to_owned(), None),
    }
}

/// sccache: on when it is ready and neither the settings nor the user's own wrapper say
/// otherwise.
fn configure_sccache(
    tools: &Tools,
    state: &mut WorkspaceTools,
    env: &BTreeMap<String, String>,
    settings: &WorkspaceSettings,
    tool_env: &mut ToolEnv,
) {
    let user_wrapper = ["RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WRAPPER"]
        .iter()
        .find_map(|v| env.get(*v).filter(|w| !w.is_empty()).map(|w| (*v, w)));
    let previous = state.sccache.take();
    let mut sccache = WorkspaceSccache {
        enabled: false,
        note: None,
        last_job_hits: previous.as_ref().and_then(|s| s.last_job_hits),
        last_job_misses: previous.as_ref().and_then(|s| s.last_job_misses),
    };
    match (settings.sccache, user_wrapper, &tools.sccache) {
        (Some(false), _, _) => {
            sccache.note = Some("off in the workspace's settings (sccache = false)".into())
        }
        (_, Some((var, wrapper)), _) => {
            sccache.note = Some(format!(
                "your environment sets {var}={wrapper}; buildd leaves it alone"
            ))
        }
        (_, None, Detected::Unavailable(note)) => sccache.note = note.clone(),
        (_, None, Detected::Ready(s)) => {
            sccache.enabled = true;
            tool_env.set.extend(s.client_env());
            tool_env.dir_in_args = true;
        }
    }
    state.sccache = Some(sccache);
}

/// What the tools learned after a job, gathered off the dispatcher.
#[derive(Debug, Default)]
pub(crate) struct AfterJob {
    pub(crate) link_ms: Option<u64>,
    pub(crate) sccache: Option<Result<(Stats, Option<String>), SccacheError>>,
    pub(crate) measurement: Option<Result<Measurement, MeasureError>>,
    pub(crate) gc: Option<crate::wire::protocol::CacheReport>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::key::Toolchain;

    fn tools(dir: &Path) -> Tools {
        Tools::with(
            dir.to_path_buf(),
            Ok(dir.join("bin")),
            Detected::Unavailable(Some("no sccache here".into())),
        )
    }

    fn key(dir: &Path, linker: &str) -> BuildKey {
        key_with(dir, linker, false)
    }

    fn key_with(dir: &Path, linker: &str, fast_link: bool) -> BuildKey {
        let toolchain = Toolchain {
            rustc_verbose: "rustc 1.95.0\nhost: x86_64-unknown-linux-gnu\n".into(),
            cargo_version: "cargo 1.95.0".into(),
        };
        BuildKey::new(
            dir,
            Path::new("/w/app"),
            &toolchain,
            &BTreeMap::new(),
            linker,
            fast_link,
        )
    }

    /// The key decides `fast_link`'s part of the environment, and `cargo_env` (what jobs,
    /// `buildd cargo` and `buildd env` all get) carries it beside the linker's.
    #[test]
    fn a_fast_link_key_adds_split_debug_info_to_what_cargo_runs_with() {
        let dir = tempfile::tempdir().unwrap();
        let tools = tools(dir.path());
        let mut state = WorkspaceTools::default();
        let fast = key_with(dir.path(), "bfd", true);
        configure(
            &tools,
            &mut state,
            &fast,
            &BTreeMap::new(),
            &settings("bfd"),
        );
        let env = crate::project::key::cargo_env(&fast.target_dir, &state.env);
        assert_eq!(env.set["CARGO_PROFILE_DEV_SPLIT_DEBUGINFO"], "unpacked");
        assert_eq!(
            env.set["CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER"],
            "buildd-cc"
        );
        let status = state.fast_link.clone().unwrap();
        assert!(status.enabled && status.note.is_none(), "{status:?}");

        // Off, nothing of it; and a value the client sets stays the client's.
        configure(
            &tools,
            &mut state,
            &key(dir.path(), "default"),
            &BTreeMap::new(),
            &settings("default"),
        );
        assert!(state.env.set.is_empty(), "{:?}", state.env);
        assert!(!state.fast_link.as_ref().unwrap().enabled);
        let theirs = BTreeMap::from([(
            "CARGO_PROFILE_DEV_SPLIT_DEBUGINFO".to_owned(),
            "off".to_owned(),
        )]);
        configure(&tools, &mut state, &fast, &theirs, &settings("default"));
        assert!(state.env.set.is_empty(), "{:?}", state.env);
        let note = state.fast_link.unwrap().note.unwrap();
        assert!(
            note.contains("CARGO_PROFILE_DEV_SPLIT_DEBUGINFO=off"),
            "{note}"
        );
    }

    fn settings(linker: &str) -> WorkspaceSettings {
        WorkspaceSettings {
            linker: Some(linker.into()),
            ..WorkspaceSettings::default()
        }
    }

    #[test]
    fn the_default_linker_adds_nothing_and_a_named_one_goes_through_the_wrapper() {
        let dir = tempfile::tempdir().unwrap();
        let tools = tools(dir.path());
        let env = BTreeMap::from([("PATH".to_owned(), "/usr/bin".to_owned())]);
        let mut state = WorkspaceTools::default();
        configure(
            &tools,
            &mut state,
            &key(dir.path(), "default"),
            &env,
            &settings("default"),
        );
        assert!(state.env.set.is_empty(), "{:?}", state.env);
        assert_eq!(state.linker.as_ref().unwrap().linker, "default");

        configure(
            &tools,
            &mut state,
            &key(dir.path(), "bfd"),
            &env,
            &settings("bfd"),
        );
        let set = &state.env.set;
        assert_eq!(
            set["CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER"],
            "buildd-cc"
        );
        assert!(set["PATH"].starts_with(&dir.path().join("bin").display().to_string()));
        assert!(set["PATH"].ends_with(":/usr/bin"));
        let expected = if linker::on_path("ld.bfd", "/usr/bin") {
            "bfd"
        } else {
            "default"
        };
        assert_eq!(set["BUILDD_LINKER"], expected);

        let mut state = WorkspaceTools::default();
        configure(
            &tools,
            &mut state,
            &key(dir.path(), "mold"),
            &env,
            &settings("mold"),
        );
        if !linker::on_path("ld.mold", "/usr/bin") {
            let note = state.linker.unwrap().note.unwrap();
            assert!(note.contains("apt-get install mold"), "{note}");
        }
    }

    #[test]
    fn without_its_wrapper_a_named_linker_says_why_and_goes_unwrapped() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the tools dir should be: the wrapper cannot be written under it.
        let tools_dir = dir.path().join("tools");
        std::fs::write(&tools_dir, "").unwrap();
        let wrapper_bin = install_wrapper(&tools_dir);
        let tools = Tools::with(tools_dir.clone(), wrapper_bin, Detected::Unavailable(None));
        let mut state = WorkspaceTools::default();
        configure(
            &tools,
            &mut state,
            &key(dir.path(), "bfd"),
            &BTreeMap::new(),
            &settings("bfd"),
        );
        assert!(!state.wrapping_linker);
        assert!(
            !state.env.set.contains_key("BUILDD_LINKER"),
            "{:?}",
            state.env
        );
        let note = state.linker.unwrap().note.unwrap();
        assert!(
            note.starts_with(&format!(
                "cannot write the linker wrapper into {}: ",
                tools_dir.display()
            )),
            "{note}"
        );
    }

    #[test]
    fn a_linker_of_the_user_and_auto_before_its_measurement() {
        let dir = tempfile::tempdir().unwrap();
        let tools = tools(dir.path());
        let var = "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER";
        let env = BTreeMap::from([(var.to_owned(), "clang".to_owned())]);
        let mut state = WorkspaceTools::default();
        configure(
            &tools,
            &mut state,
            &key(dir.path(), "mold"),
            &env,
            &settings("mold"),
        );
        assert!(state.env.set.is_empty());
        assert!(state.linker.unwrap().note.unwrap().contains(var));

        let mut state = WorkspaceTools::default();
        configure(
            &tools,
            &mut state,
            &key(dir.path(), "auto"),
            &BTreeMap::new(),
            &settings("auto"),
        );
        assert!(state.capturing);
        assert_eq!(state.env.set["BUILDD_LINKER"], "default");
        assert!(state.env.set.contains_key("BUILDD_LINK_CAPTURE"));
        // sccache is not here: it says why, and adds nothing.
        let sccache = state.sccache.unwrap();
        assert!(!sccache.enabled && sccache.note.unwrap().contains("no sccache"));
        assert!(!state.env.dir_in_args);
    }
}
