//! The file watcher of one workspace.
//!
//! A thread per workspace owns a `notify` watcher and watches every directory of the
//! workspace that is not ignored, one by one (non-recursively), adding directories as they
//! appear. Watching the root recursively would put an inotify watch on every directory of a
//! user's `target/` and `.git/`, which can run out of watches on a large workspace; walking
//! with the `ignore` crate skips them the way git and ripgrep do. Events pass the same rules
//! (`.git/`, the workspace's target dirs, `.gitignore` files, editor swap files) before they
//! reach the daemon as [`WatchEvent`]s. This module does not debounce: the dispatcher does.
//!
//! The watcher never follows a symbolic link, at start or for a link made later: a link to
//! `~` or `/` inside a workspace would otherwise put a watch on every directory behind it and
//! report every file there as changed. (The kernel's `inotify_add_watch` follows a link given
//! as the path, so the walk must not hand it one.) Only the workspace root and the path
//! dependencies cargo names are watched through a link, as given. The watches of a directory
//! that is removed or moved away are dropped with it.
//!
//! When inotify watches or instances run out (`fs.inotify.max_user_watches`,
//! `max_user_instances`), the thread switches to notify's polling watcher over the same
//! directories rather than go blind, and says so with [`WatchEvent::Degraded`].
//! `BUILDD_WATCHER=poll` asks for polling from the start (network file systems, where inotify
//! sees nothing).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::{Match, WalkBuilder};
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use thiserror::Error;

use crate::home::config::WATCHER_ENV;

#[derive(Debug)]
pub(crate) enum WatchEvent {
    /// Files or directories that changed, not ignored.
    Changed(Vec<PathBuf>),
    /// The watcher may have missed events (an overflowed queue): treat everything as dirty.
    Rescan,
    /// The workspace's root directory is gone.
    RootRemoved,
    /// The watcher now polls; the text says why and what to do about it.
    Degraded(String),
    Error(String),
}

const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

enum Control {
    Notify(notify::Result<notify::Event>),
    /// Directories to ignore besides the defaults, such as a target dir from metadata.
    SetIgnored(Vec<PathBuf>),
    /// Directories outside the workspace to watch too (path dependencies).
    AddRoots(Vec<PathBuf>),
    Stop,
}

/// Stops the watcher's thread when dropped.
pub(crate) struct WatchHandle {
    control: mpsc::Sender<Control>,
}

impl WatchHandle {
    pub(crate) fn set_ignored(&self, dirs: Vec<PathBuf>) {
        let _ = self.control.send(Control::SetIgnored(dirs));
    }

    pub(crate) fn add_roots(&self, dirs: Vec<PathBuf>) {
        let _ = self.control.send(Control::AddRoots(dirs));
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Stop);
    }
}

type DynWatcher = Box<dyn Watcher + Send>;

/// The inotify watches ran out.
struct OutOfWatches;

fn native_watcher(tx: &mpsc::Sender<Control>) -> notify::Result<DynWatcher> {
    let tx = tx.clone();
    // Watches are non-recursive, so notify walks nothing itself; the setting is for safety.
    let config = notify::Config::default().with_follow_symlinks(false);
    let watcher = notify::RecommendedWatcher::new(
        move |event| {
            let _ = tx.send(Control::Notify(event));
        },
        config,
    )?;
    Ok(Box::new(watcher))
}

fn poll_watcher(tx: &mpsc::Sender<Control>) -> notify::Result<DynWatcher> {
    let tx = tx.clone();
    let config = notify::Config::default()
        .with_poll_interval(POLL_INTERVAL)
        .with_follow_symlinks(false);
    let watcher = notify::PollWatcher::new(
        move |event| {
            let _ = tx.send(Control::Notify(event));
        },
        config,
    )?;
    Ok(Box::new(watcher))
}

/// The inotify limit (`watches` or `instances`) that holds for the daemon: its user
/// namespace's, which is the system's `fs.inotify.max_user_*` outside containers.
fn inotify_limit(what: &str) -> String {
    [
        format!("/proc/sys/user/max_inotify_{what}"),
        format!("/proc/sys/fs/inotify/max_user_{what}"),
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok())
    .map(|s| s.trim().to_owned())
    .unwrap_or_else(|| "unknown".into())
}

/// Why the watcher polls, with the fix.
fn out_of_watches_note() -> String {
    format!(
        "inotify watches ran out (fs.inotify.max_user_watches = {}); buildd polls this \
         workspace every {}s instead. Raise the limit: sudo sysctl fs.inotify.max_user_watches=524288",
        inotify_limit("watches"),
        POLL_INTERVAL.as_secs()
    )
}

/// Why the watcher polls when it could not even start inotify.
fn out_of_instances_note() -> String {
    format!(
        "no inotify instance left (fs.inotify.max_user_instances = {}, or the daemon is out of \
         file descriptors); buildd polls this workspace every {}s instead. Close other watchers \
         or raise the limit: sudo sysctl fs.inotify.max_user_instances=1024",
        inotify_limit("instances"),
        POLL_INTERVAL.as_secs()
    )
}

/// Why a workspace has no watcher; the dispatcher logs it, and the workspace goes unwatched.
#[derive(Debug, Error)]
pub(crate) enum StartError {
    #[error("failed to start a file watcher for {root}: {source}")]
    Watcher {
        root: PathBuf,
        source: notify::Error,
    },
    #[error("failed to start the watcher thread: {source}")]
    Thread { source: std::io::Error },
}

/// Starts the watcher of `root`; `forced_poll` (`BUILDD_WATCHER=poll`) polls from the start.
pub(crate) fn start(
    root: PathBuf,
    forced_poll: bool,
    emit: impl Fn(WatchEvent) + Send + 'static,
) -> Result<WatchHandle, StartError> {
    let (tx, rx) = mpsc::channel();
    let failed = |source| StartError::Watcher {
        root: root.clone(),
        source,
    };
    let (mut watcher, mut degraded) = if forced_poll {
        let note = format!(
            "{WATCHER_ENV}=poll: polling every {}s",
            POLL_INTERVAL.as_secs()
        );
        (poll_watcher(&tx).map_err(failed)?, Some(note))
    } else {
        match native_watcher(&tx) {
            Ok(watcher) => (watcher, None),
            Err(e) if is_out_of_instances(&e) => (
                poll_watcher(&tx).map_err(failed)?,
                Some(out_of_instances_note()),
            ),
            Err(e) => return Err(failed(e)),
        }
    };
    let poll_tx = tx.clone();
    let thread_name = format!("watch {}", root.display());
    // Reading the `.gitignore` files and walking the tree run on the watcher's thread, never
    // on the dispatcher's: a large tree or a file that blocks (a FIFO) must not stall the
    // daemon.
    let first_walk = move || {
        let mut rules = Rules::new(root.clone());
        if rules.watch_tree(watcher.as_mut(), &root, true).is_err() {
            match poll_watcher(&poll_tx) {
                Ok(poll) => watcher = poll,
                Err(e) => {
                    emit(WatchEvent::Error(format!(
                        "inotify watches ran out for {} and polling failed too: {e}",
                        root.display()
                    )));
                    return;
                }
            }
            rules.watched.clear();
            let _ = rules.watch_tree(watcher.as_mut(), &root, true);
            degraded = Some(out_of_watches_note());
        }
        if let Some(note) = degraded {
            emit(WatchEvent::Degraded(note));
        }
        run(watcher, rules, rx, poll_tx, emit)
    };
    thread::Builder::new()
        .name(thread_name)
        .spawn(first_walk)
        .map_err(|source| StartError::Thread { source })?;
    Ok(WatchHandle { control: tx })
}

fn run(
    mut watcher: DynWatcher,
    mut rules: Rules,
    rx: mpsc::Receiver<Control>,
    tx: mpsc::Sender<Control>,
    emit: impl Fn(WatchEvent),
) {
    // Watches `dir`, switching to polling for good when inotify runs out of watches.
    let watch_tree = |watcher: &mut DynWatcher,
                      rules: &mut Rules,
                      dir: &Path,
                      follow_root: bool|
     -> Vec<PathBuf> {
        if let Ok(files) = rules.watch_tree(watcher.as_mut(), dir, follow_root) {
            return files;
        }
        match poll_watcher(&tx) {
            Ok(mut poll) => {
                rules.watched.clear();
                let roots: Vec<PathBuf> = std::iter::once(&rules.root)
                    .chain(&rules.extra_roots)
                    .cloned()
                    .collect();
                for root in roots {
                    let _ = rules.watch_tree(poll.as_mut(), &root, true);
                }
                *watcher = poll;
                emit(WatchEvent::Degraded(out_of_watches_note()));
            }
            Err(e) => emit(WatchEvent::Error(format!("cannot poll either: {e}"))),
        }
        Vec::new()
    };
    while let Ok(message) = rx.recv() {
        let event = match message {
            Control::Stop => return,
            Control::SetIgnored(dirs) => {
                rules.extra_ignored = dirs;
                continue;
            }
            Control::AddRoots(dirs) => {
                for dir in dirs {
                    if !rules.extra_roots.contains(&dir) {
                        rules.extra_roots.push(dir.clone());
                        let _ = watch_tree(&mut watcher, &mut rules, &dir, true);
                    }
                }
                continue;
            }
            Control::Notify(Err(e)) => {
                emit(WatchEvent::Error(e.to_string()));
                continue;
            }
            Control::Notify(Ok(event)) => event,
        };
        if event.need_rescan() {
            emit(WatchEvent::Rescan);
            continue;
        }
        if matches!(event.kind, EventKind::Access(_)) {
            continue;
        }
        if !rules.root.exists() {
            emit(WatchEvent::RootRemoved);
            continue;
        }
        let created = matches!(
            event.kind,
            EventKind::Create(_)
                | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
        );
        let removed = matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
        );
        let mut changed = Vec::new();
        for path in event.paths {
            if removed {
                rules.unwatch_below(watcher.as_mut(), &path);
            }
            // A link to a directory is not one: it is never followed (see the module's doc).
            let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            if rules.is_ignored(&path, is_dir) {
                continue;
            }
            if path.file_name().is_some_and(|n| n == ".gitignore") {
                rules.gitignores.clear();
            }
            if created && is_dir {
                let inside = watch_tree(&mut watcher, &mut rules, &path, false);
                changed.extend(inside.into_iter().filter(|f| !rules.is_ignored(f, false)));
            }
            changed.push(path);
        }
        if !changed.is_empty() {
            emit(WatchEvent::Changed(changed));
        }
    }
}

struct Rules {
    root: PathBuf,
    /// Watched directories outside the root: path dependencies.
    extra_roots: Vec<PathBuf>,
    extra_ignored: Vec<PathBuf>,
    /// The parsed `.gitignore` of each directory, loaded when first needed.
    gitignores: HashMap<PathBuf, Option<Gitignore>>,
    /// `.git/info/exclude` and the user's global excludes, below every `.gitignore`.
    base: Vec<Gitignore>,
    /// The directories watched, to drop their watches when they go.
    watched: BTreeSet<PathBuf>,
}

impl Rules {
    fn new(root: PathBuf) -> Rules {
        // Both matchers are rooted at the workspace: the patterns in them are relative to it,
        // and `matched_path_or_any_parents` requires paths below a matcher's root.
        let mut base = vec![GitignoreBuilder::new(&root).build_global().0];
        let exclude = root.join(".git/info/exclude");
        if exclude.is_file() {
            let mut builder = GitignoreBuilder::new(&root);
            builder.add(exclude);
            if let Ok(gitignore) = builder.build() {
                base.push(gitignore);
            }
        }
        Rules {
            root,
            extra_roots: Vec::new(),
            extra_ignored: Vec::new(),
            gitignores: HashMap::new(),
            base,
            watched: BTreeSet::new(),
        }
    }

    /// Watches `dir` and every directory below it that is not ignored, and returns the files
    /// found there: in a directory that was just created, they may have been written before
    /// its watch was in place. Links below `dir` are never followed, and `dir` itself only
    /// with `follow_root` (a root the user or cargo named).
    fn watch_tree(
        &mut self,
        watcher: &mut dyn Watcher,
        dir: &Path,
        follow_root: bool,
    ) -> Result<Vec<PathBuf>, OutOfWatches> {
        let root = self.root.clone();
        let extra = self.extra_ignored.clone();
        let walk = WalkBuilder::new(dir)
            .hidden(false)
            .require_git(false)
            .follow_links(false)
            .filter_entry(move |entry| {
                let path = entry.path();
                // The walk follows a link given as its root (walkdir's `follow_root_links`):
                // a directory that became a link since its event is refused here.
                !(entry.depth() == 0 && entry.path_is_symlink() && !follow_root
                    || path.file_name().is_some_and(|n| n == ".git")
                    || path == root.join("target")
                    || extra.iter().any(|d| path == d))
            })
            .build();
        let mut files = Vec::new();
        for entry in walk.flatten() {
            if !entry.file_type().is_some_and(|t| t.is_dir()) {
                files.push(entry.into_path());
                continue;
            }
            match watcher.watch(entry.path(), RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(entry.into_path());
                }
                Err(e) if is_out_of_watches(&e) => return Err(OutOfWatches),
                Err(e) => tracing::warn!(dir = %entry.path().display(), "cannot watch: {e}"),
            }
        }
        Ok(files)
    }

    /// Drops the watches of `gone` and of every directory below it. notify's inotify backend
    /// drops its own on the same events, but the polling watcher would poll them forever.
    fn unwatch_below(&mut self, watcher: &mut dyn Watcher, gone: &Path) {
        // Paths order by components, so a directory's descendants follow it.
        let below: Vec<PathBuf> = self
            .watched
            .range(gone.to_path_buf()..)
            .take_while(|dir| dir.starts_with(gone))
            .cloned()
            .collect();
        for dir in below {
            // Not found is expected: notify already forgot the inotify watch.
            let _ = watcher.unwatch(&dir);
            self.watched.remove(&dir);
        }
    }

    fn is_ignored(&mut self, path: &Path, is_dir: bool) -> bool {
        let Ok(relative) = path.strip_prefix(&self.root) else {
            // A path dependency outside the workspace: only the basic rules apply.
            return !self.extra_roots.iter().any(|r| path.starts_with(r))
                || path
                    .components()
                    .any(|c| c.as_os_str() == ".git" || c.as_os_str() == "target")
                || is_editor_temp(path);
        };
        if relative.components().any(|c| c.as_os_str() == ".git")
            || path.starts_with(self.root.join("target"))
            || self.extra_ignored.iter().any(|d| path.starts_with(d))
            || is_editor_temp(path)
        {
            return true;
        }
        let mut ignored = self
            .base
            .iter()
            .any(|g| g.matched_path_or_any_parents(path, is_dir).is_ignore());
        // Deeper `.gitignore` files override shallower ones, as in git.
        let mut dir = self.root.clone();
        let parents: Vec<_> = relative
            .parent()
            .into_iter()
            .flat_map(|p| p.components())
            .collect();
        for next in std::iter::once(None).chain(parents.into_iter().map(Some)) {
            if let Some(component) = next {
                dir.push(component);
            }
            let gitignore = self.gitignores.entry(dir.clone()).or_insert_with(|| {
                let file = dir.join(".gitignore");
                file.is_file().then(|| Gitignore::new(file).0)
            });
            if let Some(gitignore) = gitignore {
                match gitignore.matched_path_or_any_parents(path, is_dir) {
                    Match::Ignore(_) => ignored = true,
                    Match::Whitelist(_) => ignored = false,
                    Match::None => {}
                }
            }
        }
        ignored
    }
}

/// No inotify instance could be made: the user's instances (EMFILE, as for the process's
/// descriptors) or the system's descriptors (ENFILE) ran out.
fn is_out_of_instances(error: &notify::Error) -> bool {
    match &error.kind {
        notify::ErrorKind::Io(e) => matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)),
        _ => false,
    }
}

/// inotify's ENOSPC: no watches left for this user.
fn is_out_of_watches(error: &notify::Error) -> bool {
    match &error.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        notify::ErrorKind::Io(e) => e.raw_os_error() == Some(libc::ENOSPC),
        _ => false,
    }
}

/// Files editors write beside the one being edited (vim's swap files and its `4913` probe,
/// emacs's lock and backup files), which no build reads.
fn is_editor_temp(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name == "4913"
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts the daemon's log shows, word for word as they were when they were built
    /// with `format!`.
    #[test]
    fn start_errors_name_the_workspace() {
        let err = StartError::Watcher {
            root: PathBuf::from("/w"),
            source: notify::Error::generic("no watches left"),
        };
        assert_eq!(
            err.to_string(),
            "failed to start a file watcher for /w: no watches left"
        );
        let err = StartError::Thread {
            source: std::io::Error::other("no threads left"),
        };
        assert_eq!(
            err.to_string(),
            "failed to start the watcher thread: no threads left"
        );
    }

    #[test]
    fn ignores_target_git_gitignored_and_swap_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join(".gitignore"), "/generated\n*.log\n").unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/.gitignore"), "!keep.log\n").unwrap();
        let mut rules = Rules::new(root.clone());
        assert!(rules.is_ignored(&root.join("target/debug/x"), false));
        assert!(rules.is_ignored(&root.join(".git/index"), false));
        assert!(rules.is_ignored(&root.join("generated/a.rs"), false));
        assert!(rules.is_ignored(&root.join("run.log"), false));
        assert!(rules.is_ignored(&root.join("src/.lib.rs.swp"), false));
        assert!(!rules.is_ignored(&root.join("sub/keep.log"), false));
        assert!(!rules.is_ignored(&root.join("src/lib.rs"), false));
        assert!(!rules.is_ignored(&root.join("Cargo.toml"), false));
        rules.extra_ignored = vec![root.join("out")];
        assert!(rules.is_ignored(&root.join("out/x"), false));
    }
}
