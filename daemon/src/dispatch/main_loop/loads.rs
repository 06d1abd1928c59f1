//! Loading a workspace (toolchain, metadata, settings, key) off the loop, and what the
//! dispatcher does with the result: the isolated dir, the tools, the first scan.

use crate::build::selection::DefaultSelection;
use crate::home::replace_file;

// One module split by concern: the parts share the dispatcher's imports and items.
use super::*;

impl Dispatcher {
    pub(super) fn start_load(&mut self, root: &Path) {
        let load_id = self.next_id;
        self.next_id += 1;
        let ws = self.workspaces.get_mut(root).expect("caller checked");
        ws.loading = Some(load_id);
        let env = ws.env.clone();
        let learned_file = ws
            .learned
            .is_none()
            .then(|| learning::learned_file(&self.config.paths.state_dir, root));
        let root = root.to_path_buf();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut loaded = load::load(&root, &env).await;
            if let Some(file) = learned_file {
                loaded.learned = Some(learning::read_learned(file, root.clone()).await);
            }
            let _ = tx.send(Event::Loaded {
                root,
                load: load_id,
                loaded,
            });
        });
    }

    pub(super) fn loaded(&mut self, root: &Path, load_id: u64, loaded: Loaded) {
        let targets_dir = self.config.paths.targets_dir();
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        if ws.loading != Some(load_id) {
            return;
        }
        ws.loading = None;
        ws.clippy = loaded.clippy;
        ws.targets = loaded.targets;
        if ws.learned.is_none() {
            ws.learned = loaded.learned;
        }
        let mut errors = Vec::new();
        let mut new_dir = false;
        let mut same_key = false;
        match loaded.toolchain {
            Ok(toolchain) => {
                let file_settings = loaded.settings.clone().unwrap_or_default();
                let merged = settings::over(&ws.settings, &file_settings);
                let linker = crate::dispatch::tools::linker_setting(&merged);
                let key = BuildKey::new(
                    &targets_dir,
                    root,
                    &toolchain,
                    &ws.env,
                    &linker,
                    merged.fast_link == Some(true),
                );
                // A new dir is seeded from the most similar one before any job runs there; an
                // existing one is checked and its records written, off the loop too.
                new_dir = !key.target_dir.exists();
                same_key = ws.key.as_ref() == Some(&key);
                if !same_key {
                    tracing::info!(root = %root.display(), key = %key.info.hash, dir = %key.target_dir.display(), "build key");
                    // A seed describes the dir it made: another key's dir has none to show.
                    ws.tools.forget_seed();
                    // Another client's toolchain or flags: the old key stays warm beside it.
                    if let Some(old) = ws.key.take() {
                        let old_cargo_env = key::cargo_env(&old.target_dir, &ws.tools.env);
                        let old_env = std::mem::take(&mut ws.key_env);
                        ws.key_changed(old, old_env, old_cargo_env, &key, SystemTime::now());
                    }
                }
                ws.key_env = ws.env.clone();
                ws.toolchain = Some(toolchain);
                ws.key = Some(key);
            }
            Err(e) => errors.push(e.to_string()),
        }
        // A load follows a change of the manifests, the toolchain or the environment: the
        // compiler commands recorded before may not be the next job's. Under the same key,
        // the next diagnostics job confirms those of the units it finds fresh.
        let recorded = std::mem::take(&mut ws.early);
        if same_key {
            for invocation in recorded {
                ws.early_held.retain(|held| !held.same_unit(&invocation));
                ws.early_held.push(invocation);
            }
        } else {
            ws.early_held.clear();
        }
        // And they decide which units `build` and `test` leave: one invocation for both is
        // checked again (`build/merge.rs`).
        ws.merge = crate::build::merge::MergeState::Untried;
        // As is what the root's default selection needs (`build/selection.rs`): the graph
        // below says whether it may differ; without one, nothing is checked.
        ws.selection = DefaultSelection::NotNeeded;
        match loaded.metadata {
            Ok(metadata) => {
                let graph = Graph::new(&metadata);
                ws.selection = DefaultSelection::after_load(graph.default_differs());
                if let Some(watcher) = &ws.watcher {
                    watcher
                        .set_ignored(vec![metadata.target_directory.clone().into_std_path_buf()]);
                    watcher.add_roots(graph.outside_dirs());
                }
                ws.graph = Some(graph);
            }
            Err(e) => errors.push(e.to_string()),
        }
        match loaded.settings {
            Ok(settings) => ws.file_settings = settings,
            Err(e) => errors.push(e.to_string()),
        }
        // One cause (a FIFO where Cargo.toml should be) can fail the toolchain and the
        // metadata alike: say it once.
        errors.dedup();
        ws.error = (!errors.is_empty()).then(|| errors.join("\n"));
        if let Some(e) = &ws.error {
            tracing::warn!(root = %root.display(), "cannot build: {e}");
            // cargo may now find another root for some of its dirs (or none).
            self.roots.forget_root(root);
        } else {
            ws.schedule.loaded();
        }
        // The isolated dir may hold dep-info from an earlier daemon: read it now, so that
        // the first edits are predicted too.
        if let (Some(key), Some(graph)) = (&ws.key, &ws.graph) {
            scan_target_dir(self.tx.clone(), root, &key.target_dir, graph, false);
        }
        let has_key = ws.key.is_some();
        if has_key {
            self.configure_tools(root);
            if new_dir {
                self.start_seed(root);
            } else {
                self.start_prepare(root);
            }
        }
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        let status = ws.status();
        for (id, reply) in std::mem::take(&mut ws.waiting_register) {
            let _ = reply.try_send(ServerMessage::Registered {
                id,
                workspace: Box::new(status.clone()),
            });
        }
    }
}

/// Why an isolated dir cannot be used; the text becomes the workspace's error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PrepareError {
    /// The dir is not the user's alone, or cannot be made.
    #[error(transparent)]
    NotPrivate(#[from] PathsError),
    #[error("failed to write into the isolated target dir {dir}: {source}")]
    Write {
        dir: PathBuf,
        source: std::io::Error,
    },
}

pub(super) fn prepare_target_dir(key: &BuildKey, root: &Path) -> Result<(), PrepareError> {
    ensure_private_dir(&key.target_dir)?;
    crate::cache::dirs::write_record(&key.target_dir, root);
    let info = serde_json::to_string_pretty(&key.info).unwrap_or_default();
    let file = key.target_dir.join(crate::cache::layout::KEY_FILE);
    replace_file::replace(&file, info.as_bytes(), replace_file::PRIVATE, false).map_err(|source| {
        PrepareError::Write {
            dir: key.target_dir.clone(),
            source,
        }
    })
}

/// Reads the isolated dir in the background: its dep-info, and (after a job) its size. The
/// results arrive as events.
pub(super) fn scan_target_dir(
    tx: mpsc::UnboundedSender<Event>,
    root: &Path,
    dir: &Path,
    graph: &Graph,
    measure: bool,
) {
    let root = root.to_path_buf();
    let dir = dir.to_path_buf();
    let crate_names = graph.crate_names();
    let packages = graph.package_dirs();
    tokio::task::spawn_blocking(move || {
        let depinfo = depinfo::scan(&dir, &root, &crate_names, &packages);
        // The same measure as the cache's totals and `cache list` (allocated blocks, cargo's
        // uplifted hard links once), so that status never shows two sizes of one dir.
        let size = measure.then(|| crate::cache::dirs::size(&dir));
        let _ = tx.send(Event::Scanned {
            root,
            depinfo,
            size,
        });
    });
}
