//! The dispatcher's side of the cache and the tools: seeding new key dirs, what happens
//! after a job (link time, sccache counts, the linker measurement, eviction, a full disk),
//! and the `cache_*` requests. The work runs in blocking tasks and comes back as
//! [`ToolsEvent`]s; only this loop changes state.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::loads::{PrepareError, prepare_target_dir, scan_target_dir};
use super::{Dispatcher, Event, error};
use crate::cache::dirs as cache;
use crate::cache::seed;
use crate::dispatch::tools::{self, AfterJob};
use crate::dispatch::workspace::Reply;
use crate::project::key;
use crate::tools::linker;
use crate::wire::protocol::{
    CacheReport, ErrorCode, EventKind, JobResult, JobSummary, Request, SeedStatus, ServerMessage,
};
use crate::wire::roots;

/// Eviction after jobs runs at most this often (a request or a full disk runs it at once).
const GC_INTERVAL: Duration = Duration::from_secs(30);

pub(crate) enum ToolsEvent {
    /// A new key dir was seeded (or prepared empty, when nothing could seed it).
    Seeded {
        root: PathBuf,
        load: u64,
        result: Result<Option<SeedStatus>, PrepareError>,
    },
    /// An existing key dir was checked and its records written.
    Prepared {
        root: PathBuf,
        load: u64,
        result: Result<(), PrepareError>,
    },
    AfterJob {
        root: PathBuf,
        job_ms: u64,
        done: AfterJob,
        /// The measurement's number (see `Tools::measurements_launched`).
        measurement: u64,
    },
    CacheDone {
        id: u64,
        reply: Reply,
        report: Result<CacheReport, (ErrorCode, String)>,
        measurement: u64,
    },
    /// The totals measured when the daemon started.
    Totals(CacheReport, u64),
}

impl Dispatcher {
    /// At start-up: starts buildd's sccache server (before any `buildd cargo` could start a
    /// server of its own without the configured backend), and measures the cache, so that
    /// status has totals before the first job. It evicts nothing: which dirs are in use is
    /// known only once clients registered.
    pub(super) fn start_tools(&mut self) {
        if let Some(sccache) = self.tools.sccache() {
            tokio::spawn(async move {
                if let Err(e) = sccache.ensure_running().await {
                    tracing::warn!("{e}");
                }
                sccache.check_dist(None).await;
            });
        }
        let targets = self.config.paths.targets_dir();
        let budget = self.config.budget;
        let tx = self.tx.clone();
        let measurement = self.launch_measurement();
        // Renames only, before the loop takes its first event: no seed of this daemon can
        // have started, and the slow removal runs below, off the loop.
        let leftovers = cache::set_leftovers_aside(&targets);
        tokio::task::spawn_blocking(move || {
            for dir in leftovers {
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => tracing::info!(
                        "removed {}, left by a killed import, seed or eviction",
                        dir.display()
                    ),
                    Err(e) => tracing::warn!("cannot remove {}: {e}", dir.display()),
                }
            }
            let dirs = cache::list(&targets, &cache::InUse::default());
            let used = dirs.iter().map(|d| d.bytes).sum();
            let budget = cache::budget(budget, &targets, used);
            let report = CacheReport {
                totals: cache::totals(&targets, &dirs, budget),
                dirs,
                ..CacheReport::default()
            };
            let _ = tx.send(Event::Tools(ToolsEvent::Totals(report, measurement)));
        });
    }

    /// Marks the workspace as loading while background work on its key dir runs, so that no
    /// job and no user command touches the dir; returns the load id and the key.
    fn begin_dir_work(&mut self, root: &Path) -> Option<(u64, key::BuildKey)> {
        let load_id = self.next_id;
        self.next_id += 1;
        let ws = self.workspaces.get_mut(root)?;
        let key = ws.key.clone()?;
        ws.loading = Some(load_id);
        Some((load_id, key))
    }

    /// The key dir of `root` does not exist yet: seed it from the most similar dir of the
    /// workspace, in the background. The workspace counts as loading meanwhile, so no job and
    /// no user command touches the dir.
    pub(super) fn start_seed(&mut self, root: &Path) {
        let Some((load_id, key)) = self.begin_dir_work(root) else {
            return;
        };
        let tx = self.tx.clone();
        let root = root.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut result = Ok(None);
            if let Some(workspace_dir) = key.target_dir.parent() {
                for from in seed::candidates(workspace_dir, &key.info) {
                    let from_hash = from
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    match seed::seed(&from, &key.target_dir, &from_hash) {
                        Ok(status) => {
                            tracing::info!(
                                root = %root.display(),
                                from = %from.display(),
                                to = %key.target_dir.display(),
                                method = %status.method,
                                files = status.files,
                                ms = status.duration_ms,
                                "seeded a new key dir"
                            );
                            result = Ok(Some(status));
                            break;
                        }
                        Err(e) => {
                            tracing::warn!("failed to seed from {}: {e}", from.display());
                            result = Err(format!(
                                "failed to seed {} from {}: {e}",
                                key.target_dir.display(),
                                from.display()
                            ));
                        }
                    }
                }
            }
            let result = match (result, prepare_target_dir(&key, &root)) {
                (_, Err(e)) => Err(e),
                (Err(e), Ok(())) => {
                    // A failed seed is a cold start, not an error of the workspace.
                    tracing::warn!("{e}; starting cold");
                    Ok(None)
                }
                (Ok(seeded), Ok(())) => Ok(seeded),
            };
            let _ = tx.send(Event::Tools(ToolsEvent::Seeded {
                root,
                load: load_id,
                result,
            }));
        });
    }

    /// The key dir of `root` exists: check that it is private and write its records, in the
    /// background (a file system that hangs must not stall the dispatcher). As while seeding,
    /// the workspace counts as loading meanwhile, so that no job and no user command uses a
    /// dir that turns out to be refused.
    pub(super) fn start_prepare(&mut self, root: &Path) {
        let Some((load_id, key)) = self.begin_dir_work(root) else {
            return;
        };
        let tx = self.tx.clone();
        let root = root.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let result = prepare_target_dir(&key, &root);
            let _ = tx.send(Event::Tools(ToolsEvent::Prepared {
                root,
                load: load_id,
                result,
            }));
        });
    }

    /// Decides the tools' environment for a workspace whose key is known.
    pub(super) fn configure_tools(&mut self, root: &Path) {
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        let Some(key) = &ws.key else {
            return;
        };
        let settings = crate::project::settings::over(&ws.settings, &ws.file_settings);
        tools::configure(&self.tools, &mut ws.tools, key, &ws.env, &settings);
        // A new key: its dir is in use from now on.
        self.in_use();
    }

    /// Updates the dirs eviction must leave alone (every registered workspace's current dir)
    /// and returns the shared set.
    fn in_use(&self) -> std::sync::Arc<cache::InUse> {
        let current: BTreeSet<PathBuf> = self
            .workspaces
            .values()
            .filter_map(|w| w.key.as_ref().map(|k| k.target_dir.clone()))
            .collect();
        *self.tools.in_use.lock().unwrap_or_else(|e| e.into_inner()) = current;
        self.tools.in_use.clone()
    }

    /// A job is about to start in the workspace's dir.
    pub(super) fn job_starting(&mut self, root: &Path) {
        let before = self.tools.sccache_stats.as_ref().map(|(s, _)| *s);
        if let Some(ws) = self.workspaces.get_mut(root) {
            ws.tools.sccache_before = before;
            ws.tools.out_of_space = false;
            if let Some(key) = &ws.key {
                touch_used_off_loop(&key.target_dir);
                if ws.tools.capturing {
                    let _ = std::fs::create_dir_all(tools::capture_dir(&key.target_dir));
                }
            }
        }
    }

    /// A job finished: gather what the tools learned, off the dispatcher.
    pub(super) fn job_finished_tools(&mut self, root: &Path, summary: &JobSummary, units: u64) {
        let budget = self.config.budget;
        let targets = self.config.paths.targets_dir();
        let in_use = self.in_use();
        let tools_dir = self.tools.tools_dir.clone();
        let sccache = self.tools.sccache();
        let gc_due = self
            .tools
            .last_gc
            .is_none_or(|at| at.elapsed() >= GC_INTERVAL);
        let Some(ws) = self.workspaces.get_mut(root) else {
            return;
        };
        let Some(key) = ws.key.clone() else {
            return;
        };
        let out_of_space = ws.tools.out_of_space
            || summary
                .failure
                .as_deref()
                .is_some_and(|f| f.contains(cache::ENOSPC_TEXT));
        if ws.tools.seed_pending && summary.result == JobResult::Success {
            ws.tools.seed_pending = false;
            if let Some(seed) = &mut ws.tools.seed {
                seed.units_rebuilt = Some(summary.units_compiled);
                seed.units_fresh = Some(units.saturating_sub(summary.units_compiled));
            }
        }
        let measure =
            ws.tools.capturing && !ws.tools.measuring && summary.result == JobResult::Success;
        if measure {
            ws.tools.measuring = true;
        }
        let uses_wrapper = ws.tools.wrapping_linker;
        let path_var = ws
            .env
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_default();
        let sccache = sccache.filter(|_| ws.tools.sccache.as_ref().is_some_and(|s| s.enabled));
        let run_gc = gc_due || out_of_space;
        if run_gc {
            self.tools.last_gc = Some(Instant::now());
        }
        if out_of_space {
            let free = cache::free_space(&targets).unwrap_or(0);
            let message = cache::disk_full_message(&targets, free);
            // Every job that runs out of space is news for the editor, not only the first.
            self.tools.disk_announced = false;
            self.set_disk_full(root, Some(message));
        }
        let tx = self.tx.clone();
        let measurement = self.launch_measurement();
        let root = root.to_path_buf();
        let job_ms = summary.duration_ms;
        let workspace_dir_name = key
            .target_dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let workspace_root = root.clone();
        tokio::spawn(async move {
            let mut done = AfterJob::default();
            if let Some(sccache) = sccache {
                let stats = sccache.stats().await;
                if let Ok((stats, _)) = &stats {
                    // A check may wait on the network: it must not hold the job's counts.
                    let (sccache, stats) = (sccache.clone(), *stats);
                    tokio::spawn(async move { sccache.check_dist(Some(&stats)).await });
                }
                done.sccache = Some(stats);
            }
            let blocking = tokio::task::spawn_blocking(move || {
                let mut done = done;
                restore_key_files(&key, &workspace_root);
                if uses_wrapper {
                    // A job that linked nothing spent no time linking.
                    done.link_ms =
                        Some(linker::take_link_log(&tools::link_log(&key.target_dir)).unwrap_or(0));
                }
                if measure {
                    let capture = tools::capture_dir(&key.target_dir);
                    let result = linker::measure(&capture, &path_var);
                    if let Ok(m) = &result {
                        let memory =
                            linker::memory_path(&tools_dir, &workspace_dir_name, &key.info.rustc);
                        if let Err(e) = linker::remember(&memory, m) {
                            tracing::warn!("cannot remember the linker measurement: {e}");
                        }
                        tracing::info!(chosen = %m.chosen, millis = ?m.millis, not_measured = ?m.not_measured, "measured the linkers");
                    }
                    // Captured links hold hard links to old objects: drop them either way,
                    // new links are captured while no measurement is remembered.
                    let _ = std::fs::remove_dir_all(&capture);
                    let _ = std::fs::create_dir_all(&capture);
                    done.measurement = Some(result);
                }
                if run_gc {
                    done.gc = Some(cache::gc(&targets, budget, &in_use));
                }
                done
            });
            if let Ok(done) = blocking.await {
                let _ = tx.send(Event::Tools(ToolsEvent::AfterJob {
                    root,
                    job_ms,
                    done,
                    measurement,
                }));
            }
        });
    }

    pub(super) fn tools_event(&mut self, event: ToolsEvent) {
        match event {
            ToolsEvent::Seeded { root, load, result } => {
                let tx = self.tx.clone();
                let Some(ws) = self.workspaces.get_mut(&root) else {
                    return;
                };
                if ws.loading != Some(load) {
                    return;
                }
                ws.loading = None;
                match result {
                    Ok(seeded) => {
                        ws.tools.seed_pending = seeded.is_some();
                        ws.tools.seed = seeded;
                    }
                    Err(e) => ws.error = Some(e.to_string()),
                }
                if let (Some(key), Some(graph)) = (&ws.key, &ws.graph) {
                    scan_target_dir(tx, &root, &key.target_dir, graph, false);
                }
            }
            ToolsEvent::Prepared { root, load, result } => {
                let Some(ws) = self.workspaces.get_mut(&root) else {
                    return;
                };
                if ws.loading != Some(load) {
                    return;
                }
                ws.loading = None;
                if let Err(e) = result {
                    tracing::warn!(root = %root.display(), "cannot build: {e}");
                    ws.error = Some(match ws.error.take() {
                        Some(earlier) => format!("{earlier}\n{e}"),
                        None => e.to_string(),
                    });
                }
            }
            ToolsEvent::AfterJob {
                root,
                job_ms,
                done,
                measurement,
            } => self.after_job(&root, job_ms, done, measurement),
            ToolsEvent::Totals(report, measurement) => {
                self.apply_totals(measurement, report.totals);
            }
            ToolsEvent::CacheDone {
                id,
                reply,
                report,
                measurement,
            } => {
                let answer = match report {
                    Ok(report) => {
                        let evicted = self.evicted() + report.removed.len() as u64;
                        self.apply_totals(measurement, totals_with_evicted(&report, evicted));
                        ServerMessage::Cache { id, cache: report }
                    }
                    Err((code, message)) => error(id, code, &message),
                };
                let _ = reply.try_send(answer);
            }
        }
    }

    /// Numbers a measurement of the cache as it is launched.
    fn launch_measurement(&mut self) -> u64 {
        self.tools.measurements_launched += 1;
        self.tools.measurements_launched
    }

    /// Takes a measurement's totals unless a later-launched one was taken already. Returns
    /// whether it took them.
    fn apply_totals(
        &mut self,
        measurement: u64,
        totals: crate::wire::protocol::CacheTotals,
    ) -> bool {
        if measurement < self.tools.totals_from {
            return false;
        }
        self.tools.totals_from = measurement;
        self.tools.totals = Some(totals);
        true
    }

    fn after_job(&mut self, root: &Path, job_ms: u64, done: AfterJob, measurement: u64) {
        if let Some(result) = &done.sccache {
            match result {
                Ok(stats) => {
                    self.tools.sccache_stats = Some(stats.clone());
                    self.tools.sccache_note = None;
                }
                Err(e) => self.tools.sccache_note = Some(format!("sccache --show-stats: {e}")),
            }
        }
        if let Some(report) = &done.gc {
            let evicted = self.evicted() + report.removed.len() as u64;
            let totals = totals_with_evicted(report, evicted);
            let disk = totals.disk_full.clone();
            // A full disk found by a job stays reported until a collection finds room.
            if self.apply_totals(measurement, totals)
                && (disk.is_some() || report.totals.free_bytes.is_some())
            {
                self.set_disk_full(root, disk);
            }
        }
        let now_stats = self.tools.sccache_stats.as_ref().map(|(s, _)| *s);
        let mut reconfigure = false;
        if let Some(ws) = self.workspaces.get_mut(root) {
            if let Some(linker) = &mut ws.tools.linker
                && let Some(ms) = done.link_ms
            {
                linker.last_link_ms = Some(ms);
                linker.last_link_share = (job_ms > 0).then(|| ms as f64 / job_ms as f64);
            }
            if let (Some(sccache), Some(after), Some(Ok(_))) =
                (&mut ws.tools.sccache, now_stats, &done.sccache)
            {
                let before = ws.tools.sccache_before.unwrap_or_default();
                sccache.last_job_hits = Some(after.hits.saturating_sub(before.hits));
                sccache.last_job_misses = Some(after.misses.saturating_sub(before.misses));
            }
            if let Some(result) = done.measurement {
                ws.tools.measuring = false;
                match result {
                    Ok(_) => reconfigure = true,
                    Err(e) => {
                        tracing::info!(root = %root.display(), "no linker measurement yet: {e}");
                    }
                }
            }
        }
        if reconfigure {
            self.configure_tools(root);
        }
    }

    /// Records a full disk (or its end) and tells subscribers when that changes (and after
    /// every job that ran out of space).
    fn set_disk_full(&mut self, root: &Path, message: Option<String>) {
        self.tools
            .totals
            .get_or_insert_with(Default::default)
            .disk_full = message.clone();
        if self.tools.disk_announced != message.is_some() {
            self.tools.disk_announced = message.is_some();
            if let Some(m) = &message {
                tracing::warn!("{m}");
            }
            self.broadcast(
                root,
                EventKind::Disk {
                    full: message.is_some(),
                    message,
                },
            );
        }
    }

    fn evicted(&self) -> u64 {
        self.tools.totals.as_ref().map_or(0, |t| t.evicted)
    }

    /// `cache_list`, `cache_gc`, `cache_clear`: answered from a blocking task.
    pub(super) fn cache_request(&mut self, id: u64, request: Request, reply: Reply) {
        let targets = self.config.paths.targets_dir();
        let budget = self.config.budget;
        let in_use = self.in_use();
        let scope = match &request {
            Request::CacheClear { path: Some(path) } => match self.clear_scope(path) {
                Some(dir) => Some(dir),
                None => {
                    let _ = reply.try_send(error(
                        id,
                        ErrorCode::NotRegistered,
                        &format!(
                            "buildd has no isolated dir for a workspace at {}: `buildd cache \
                             list` shows the workspaces it has dirs for",
                            path.display()
                        ),
                    ));
                    return;
                }
            },
            _ => None,
        };
        if matches!(request, Request::CacheGc) {
            self.tools.last_gc = Some(Instant::now());
        }
        let tx = self.tx.clone();
        let measurement = self.launch_measurement();
        tokio::task::spawn_blocking(move || {
            let report = match request {
                Request::CacheList => {
                    let dirs = cache::list(&targets, &in_use);
                    let used = dirs.iter().map(|d| d.bytes).sum();
                    let budget = cache::budget(budget, &targets, used);
                    let staging = cache::staging_dirs(&targets);
                    CacheReport {
                        totals: cache::totals(&targets, &dirs, budget),
                        dirs,
                        staging_dirs: staging.len() as u64,
                        staging_bytes: staging.iter().map(|d| cache::size(d)).sum(),
                        ..CacheReport::default()
                    }
                }
                Request::CacheGc => cache::gc(&targets, budget, &in_use),
                _ => cache::clear(&targets, &in_use, budget, |dir| {
                    scope.as_ref().is_none_or(|s| dir.path.starts_with(s))
                }),
            };
            let _ = tx.send(Event::Tools(ToolsEvent::CacheDone {
                id,
                reply,
                report: Ok(report),
                measurement,
            }));
        });
    }

    /// The dir under `targets/` holding the key dirs of the workspace at `path`: a registered
    /// workspace containing it, or the nearest ancestor that has dirs.
    fn clear_scope(&self, path: &Path) -> Option<PathBuf> {
        let targets = self.config.paths.targets_dir();
        if let Some(root) = roots::root_of(self.workspaces.keys(), path) {
            return Some(key::workspace_dir(&targets, root));
        }
        path.ancestors()
            .map(|a| key::workspace_dir(&targets, a))
            .find(|d| d.is_dir())
    }
}

/// Stamps a dir as used (see `cache::touch_used`) from a blocking thread: the dispatcher never
/// waits on a file system.
pub(super) fn touch_used_off_loop(dir: &Path) {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || cache::touch_used(&dir));
}

/// Totals from a report, carrying the daemon's count of evictions.
fn totals_with_evicted(report: &CacheReport, evicted: u64) -> crate::wire::protocol::CacheTotals {
    let mut totals = report.totals.clone();
    totals.evicted = evicted;
    totals
}

/// A dir deleted under a job (or between jobs) comes back from cargo without buildd's own
/// files: write them again, so that `buildd cache list` knows its key and it can seed others.
fn restore_key_files(key: &key::BuildKey, root: &Path) {
    if key.target_dir.join(crate::cache::layout::KEY_FILE).exists() || !key.target_dir.is_dir() {
        return;
    }
    match prepare_target_dir(key, root) {
        Ok(()) => {
            cache::touch_used(&key.target_dir);
            tracing::info!(dir = %key.target_dir.display(), "wrote the key file of a dir that lost it");
        }
        Err(e) => tracing::warn!("{e}"),
    }
}
