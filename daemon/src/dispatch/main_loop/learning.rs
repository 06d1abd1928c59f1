//! Learned jobs: recording the shape of a user's `buildd cargo` command when it takes the
//! warm dir, keeping the record in the state dir, and forgetting it on request.
//!
//! The record is read with the workspace's first load and written after each change, off
//! the loop (a small file in buildd's own state dir, replaced whole by `home/replace_file.rs`
//! so that a crash leaves the old record or the new one).

use sha2::{Digest, Sha256};

use crate::build::jobs;
use crate::build::learned::{self, LearnedJobs};
use crate::home::replace_file;

// One module split by concern: the parts share the dispatcher's imports and items.
use super::*;

/// The record of the learned jobs of the workspace at `root`, under the state dir.
pub(super) fn learned_file(state_dir: &Path, root: &Path) -> PathBuf {
    let hash = Sha256::digest(root.as_os_str().as_encoded_bytes());
    let name: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    state_dir.join("jobs").join(format!("{name}.json"))
}

/// Reads a workspace's record; a missing or unreadable one is an empty record (it only
/// makes jobs warm sooner), and one of another format or workspace is not used.
pub(super) async fn read_learned(file: PathBuf, root: PathBuf) -> LearnedJobs {
    tokio::task::spawn_blocking(move || {
        let text = crate::home::regular_file::read(&file, 1024 * 1024)
            .ok()
            .flatten();
        let mut learned = text
            .and_then(|(text, _)| LearnedJobs::parse(&text, &root))
            .unwrap_or_else(|| LearnedJobs::new(&root));
        learned.forget_old(now_secs());
        learned
    })
    .await
    .unwrap_or_default()
}

/// The number of the latest save, and per file the number of the save last written.
static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static WRITTEN: std::sync::Mutex<BTreeMap<PathBuf, u64>> = std::sync::Mutex::new(BTreeMap::new());

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Dispatcher {
    /// A user's command takes the warm dir: learn its shape, unless the workspace's settings
    /// turn learning off or a configured job already runs it. Returns the shape, as the
    /// learned job's command, when the command has one.
    pub(super) fn learn(
        &mut self,
        root: &Path,
        args: &[String],
        cwd: &Path,
    ) -> Option<Vec<String>> {
        let ws = self.workspaces.get_mut(root)?;
        let resolved = ws.resolved(self.config.debounce);
        let mut shape = jobs::shape(args)?;
        let cwd = std::path::absolute(cwd).ok()?;
        let mut dir = cwd.strip_prefix(root).ok()?.to_path_buf();
        // Only a plain path below the root (`a/b`, no `..`): a learned job never runs cargo
        // outside the workspace.
        if !learned::is_plain(&dir) {
            return None;
        }
        if !jobs::selects(&shape)
            && let Some(graph) = &ws.graph
        {
            // Without a selection, cargo picks the package of the dir it runs in, or the
            // default members at the root: say which, so that the same command run from two
            // dirs is one shape, and `cargo build` at a virtual root is the default job.
            match graph.package_of(&cwd) {
                Some(package) if graph.package_dir(package) != Some(root) => {
                    jobs::add_selection(&mut shape, &["--package", package]);
                    dir = PathBuf::new();
                }
                _ if graph.default_is_workspace() => {
                    jobs::add_selection(&mut shape, &["--workspace"]);
                    dir = PathBuf::new();
                }
                _ => {}
            }
        }
        let defs = ws.job_defs(&resolved);
        let configured = defs.iter().find(|d| {
            d.origin != JobOrigin::Learned && jobs::same_command(&d.args, &shape) && d.dir == dir
        });
        if configured.is_some() || resolved.learn_limit == 0 {
            // The user runs a default job's own command: the default jobs it needs are in
            // use, and none of them waits for a quiet workspace.
            if configured.is_some_and(|d| d.origin == JobOrigin::Default)
                && let Some(learned) = ws.learned.as_mut()
            {
                let needed = crate::build::plan::needed_stages(args, &defs, Some(&shape));
                // While the root's default selection differs (`build/selection.rs`), a
                // command served by one way of selecting is no use of the other way.
                let other_way = configured
                    .map(|d| crate::build::selection::other_way(d, &defs))
                    .unwrap_or_default();
                for def in defs.iter().filter(|d| d.origin == JobOrigin::Default) {
                    if other_way.contains(&def.name) {
                        continue;
                    }
                    if needed.as_ref().is_none_or(|n| n.contains(&def.name)) {
                        learned.used_default(&def.name);
                    }
                }
                self.save_learned(root);
            }
            return Some(shape);
        }
        let learned = ws.learned.as_mut()?;
        learned.record(shape.clone(), dir, now_secs(), resolved.learn_limit);
        self.save_learned(root);
        Some(shape)
    }

    /// Writes a workspace's record, off the loop.
    pub(super) fn save_learned(&self, root: &Path) {
        let Some(learned) = self.workspaces.get(root).and_then(|w| w.learned.as_ref()) else {
            return;
        };
        let file = learned_file(&self.config.paths.state_dir, root);
        let text = learned.to_json();
        let generation = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            // Saves run on blocking threads in any order: one at a time, and never an older
            // record over a newer one.
            let mut written = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
            if written.get(&file).is_some_and(|&g| g > generation) {
                return;
            }
            written.insert(file.clone(), generation);
            let write = || -> std::io::Result<()> {
                let dir = file.parent().expect("under the state dir");
                std::fs::create_dir_all(dir)?;
                replace_file::replace(&file, text.as_bytes(), replace_file::PRIVATE, false)
            };
            if let Err(e) = write() {
                tracing::warn!(
                    "failed to write the learned jobs to {}: {e}",
                    file.display()
                );
            }
        });
    }

    /// `buildd jobs forget`: the learned jobs of one workspace, or of all.
    pub(super) fn forget_learned(&mut self, root: Option<&Path>) -> Result<(), DispatchError> {
        let roots: Vec<PathBuf> = match root {
            Some(path) => vec![self.workspace_of(path)?],
            None => self.workspaces.keys().cloned().collect(),
        };
        for root in roots {
            let ws = self.workspaces.get_mut(&root).expect("listed");
            ws.learned = Some(LearnedJobs::new(&root));
            ws.deferred.clear();
            self.save_learned(&root);
        }
        Ok(())
    }
}
