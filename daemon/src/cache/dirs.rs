//! The isolated dirs as a whole: listing them, their sizes and last use, the disk budget, and
//! eviction of whole key dirs, least recently used first.
//!
//! **Invariant:** eviction never removes a dir in use: the current dir of a registered
//! workspace, or a dir whose cargo lock some cargo holds (a plain `cargo` after
//! `buildd env`). A dir is taken out of `targets/` by an atomic rename while its cargo lock is
//! held, then deleted, so no cargo ever sees half of one.
//!
//! Everything here does file-system work and runs off the dispatcher, in blocking tasks.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use crate::cache::layout::{KEY_FILE, STATE_DIR, USED_FILE, WORKSPACE_FILE};
use crate::home::replace_file;
use crate::wire::protocol::{BuildKeyInfo, CacheDir, CacheReport, CacheTotals};

/// The default budget is the smaller of this and a quarter of the space buildd can use.
const DEFAULT_MAX_BUDGET: u64 = 20 << 30;
/// Below this much free space the disk counts as full: cargo would fail mid-build.
pub(crate) const LOW_SPACE: u64 = 256 << 20;
/// What a job's failure says when the disk is full.
pub(crate) const ENOSPC_TEXT: &str = "No space left on device";

/// The dirs in use by registered workspaces, shared with eviction: the dispatcher updates it
/// whenever a workspace's key changes, and eviction checks it again, under its lock, right
/// before it takes a dir away, so a dir that became current meanwhile is kept.
pub(crate) type InUse = Mutex<BTreeSet<PathBuf>>;

/// One eviction pass at a time (the daemon's own after a job, a user's `cache gc` or
/// `cache clear`): two at once would each list a dir the other is taking away, and report
/// it as a keyless, empty dir that could not be removed.
static SWEEP: Mutex<()> = Mutex::new(());

fn is_in_use(in_use: &InUse, dir: &Path) -> bool {
    in_use
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(dir)
}

/// Stamps a dir as used now: eviction goes by this time.
pub(crate) fn touch_used(dir: &Path) {
    let state = dir.join(STATE_DIR);
    if fs::create_dir_all(&state).is_ok() {
        let stamp = state.join(USED_FILE);
        let _ = fs::File::create(&stamp);
    }
}

/// When a dir was last used: its stamp, or the dir's own mtime for dirs without one.
pub(crate) fn last_used(dir: &Path) -> SystemTime {
    fs::metadata(dir.join(STATE_DIR).join(USED_FILE))
        .or_else(|_| fs::metadata(dir))
        .and_then(|m| m.modified())
        .unwrap_or(UNIX_EPOCH)
}

/// Every key dir under `targets`: `<targets>/<workspace>/<key>/`. Staging dirs (seeding,
/// importing) have a `.` in their names and are not listed.
pub(crate) fn list(targets: &Path, in_use: &InUse) -> Vec<CacheDir> {
    let mut dirs = Vec::new();
    for workspace in read_dirs(targets) {
        for dir in read_dirs(&workspace) {
            let key = read_key(&dir);
            let record = read_record(&dir);
            let bytes = size(&dir);
            // Gone since the listing (evicted by another pass, removed by the user).
            if fs::symlink_metadata(&dir).is_err() {
                continue;
            }
            dirs.push(CacheDir {
                workspace: record,
                key,
                bytes,
                last_used: last_used(&dir)
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                in_use: is_in_use(in_use, &dir) || locked(&dir),
                path: dir,
            });
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.last_used));
    dirs
}

fn read_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().contains('.'))
        .map(|e| e.path())
        .collect()
}

/// The workspace a dir belongs to, from `.buildd/workspace`.
fn read_record(dir: &Path) -> Option<PathBuf> {
    fs::read_to_string(dir.join(STATE_DIR).join(WORKSPACE_FILE))
        .ok()
        .map(|s| PathBuf::from(s.trim_end()))
}

/// Records which workspace a dir belongs to (for `buildd cache list`).
pub(crate) fn write_record(dir: &Path, workspace: &Path) {
    let state = dir.join(STATE_DIR);
    if fs::create_dir_all(&state).is_ok() {
        let _ = replace_file::replace(
            &state.join(WORKSPACE_FILE),
            workspace.as_os_str().as_encoded_bytes(),
            replace_file::PRIVATE,
            false,
        );
    }
}

/// Bytes in files under `dir`, counting each hard-linked file once per dir, and each file by
/// what it takes on the disk: the smaller of its length and its allocated blocks, so that a
/// sparse file (a 64 GiB hole) counts for what it holds.
pub(crate) fn size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .filter(|m| m.nlink() == 1 || seen.insert((m.dev(), m.ino())))
        .map(|m| m.len().min(m.blocks() * 512))
        .sum()
}

/// Whether some cargo holds a build lock in the dir now.
fn locked(dir: &Path) -> bool {
    try_lock_all(dir).is_none()
}

/// How long taking a dir's locks waits for them: `locked` of another pass (a listing for
/// status) holds them for an instant, which must not look like a cargo building; a cargo
/// holds them for its whole build.
const LOCK_GRACE: Duration = Duration::from_secs(3);

/// Takes every cargo lock in the dir (`<profile>/.cargo-lock`), waiting up to `LOCK_GRACE`
/// for them; none when a cargo holds one. While they are held, a cargo that starts in the
/// dir waits.
pub(crate) fn lock_all(dir: &Path) -> Option<Vec<Flock<fs::File>>> {
    let deadline = Instant::now() + LOCK_GRACE;
    loop {
        if let Some(locks) = try_lock_all(dir) {
            return Some(locks);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `lock_all` without waiting.
fn try_lock_all(dir: &Path) -> Option<Vec<Flock<fs::File>>> {
    let mut held = Vec::new();
    for profile in read_dirs(dir) {
        let lock = profile.join(".cargo-lock");
        let Ok(file) = fs::OpenOptions::new().read(true).write(true).open(&lock) else {
            continue;
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(guard) => held.push(guard),
            Err(_) => return None,
        }
    }
    Some(held)
}

/// The first cargo lock in the dir that some process holds now (none when all are free),
/// found without waiting and without keeping any.
pub(crate) fn held_lock(dir: &Path) -> Option<PathBuf> {
    read_dirs(dir)
        .into_iter()
        .map(|profile| profile.join(".cargo-lock"))
        .find(|lock| {
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(lock)
                .is_ok_and(|file| Flock::lock(file, FlockArg::LockExclusiveNonblock).is_err())
        })
}

/// Free bytes for an unprivileged user on the file system holding `path`.
pub(crate) fn free_space(path: &Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    Some(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

/// The budget in force: the configured one, or the smaller of 20 GiB and a quarter of the
/// space buildd can use. That space counts what its dirs already hold, so that filling the
/// budget does not shrink it.
pub(crate) fn budget(configured: Option<u64>, targets: &Path, used: u64) -> u64 {
    configured.unwrap_or_else(|| {
        let free = free_space(targets).unwrap_or(0);
        DEFAULT_MAX_BUDGET.min((free + used) / 4)
    })
}

/// Removes one dir: renamed out of `targets/` while its cargo locks are held and it is not in
/// use, then deleted. Refuses (returns false) otherwise.
fn evict(dir: &Path, in_use: &InUse) -> bool {
    let Some(locks) = lock_all(dir) else {
        return false;
    };
    let trash = dir.with_extension(format!("evicted-{}", std::process::id()));
    {
        let current = in_use.lock().unwrap_or_else(|e| e.into_inner());
        if current.contains(dir) || fs::rename(dir, &trash).is_err() {
            return false;
        }
    }
    drop(locks);
    if let Err(e) = fs::remove_dir_all(&trash) {
        tracing::warn!("failed to remove {}: {e}", trash.display());
    }
    // A workspace dir with no keys left goes too.
    if let Some(parent) = dir.parent() {
        let _ = fs::remove_dir(parent);
    }
    true
}

/// Evicts least recently used dirs not in use until the total fits `budget`.
pub(crate) fn gc(targets: &Path, budget: Option<u64>, in_use: &InUse) -> CacheReport {
    let _sweep = SWEEP.lock().unwrap_or_else(|e| e.into_inner());
    let mut dirs = list(targets, in_use);
    let mut used: u64 = dirs.iter().map(|d| d.bytes).sum();
    let budget = self::budget(budget, targets, used);
    let mut report = CacheReport::default();
    // Oldest first.
    dirs.sort_by_key(|d| d.last_used);
    let mut kept = Vec::new();
    for dir in dirs {
        if used > budget && !dir.in_use && evict(&dir.path, in_use) {
            tracing::info!(
                dir = %dir.path.display(),
                bytes = dir.bytes,
                "evicted, least recently used, to fit the budget of {budget} bytes"
            );
            used -= dir.bytes;
            report.removed.push(dir);
        } else {
            if used > budget {
                report.skipped.push(dir.clone());
            }
            kept.push(dir);
        }
    }
    kept.sort_by_key(|d| std::cmp::Reverse(d.last_used));
    report.totals = totals(targets, &kept, budget);
    report.dirs = kept;
    report
}

/// Removes the dirs `which` selects, except those in use.
pub(crate) fn clear(
    targets: &Path,
    in_use: &InUse,
    configured_budget: Option<u64>,
    which: impl Fn(&CacheDir) -> bool,
) -> CacheReport {
    let _sweep = SWEEP.lock().unwrap_or_else(|e| e.into_inner());
    let mut report = CacheReport::default();
    for dir in list(targets, in_use) {
        if !which(&dir) {
            report.dirs.push(dir);
        } else if dir.in_use || !evict(&dir.path, in_use) {
            report.skipped.push(dir.clone());
            report.dirs.push(dir);
        } else {
            report.removed.push(dir);
        }
    }
    let used = report.dirs.iter().map(|d| d.bytes).sum();
    let budget = budget(configured_budget, targets, used);
    report.totals = totals(targets, &report.dirs, budget);
    report
}

pub(crate) fn totals(targets: &Path, dirs: &[CacheDir], budget: u64) -> CacheTotals {
    let free = free_space(targets);
    CacheTotals {
        dirs: dirs.len() as u64,
        bytes: dirs.iter().map(|d| d.bytes).sum(),
        budget_bytes: budget,
        free_bytes: free,
        disk_full: free
            .filter(|f| *f < LOW_SPACE)
            .map(|f| disk_full_message(targets, f)),
        evicted: 0,
    }
}

pub(crate) fn disk_full_message(targets: &Path, free: u64) -> String {
    format!(
        "the disk holding {} is full ({} MiB free): cargo cannot write artifacts; free some \
         space, lower the budget (BUILDD_CACHE_BUDGET) or run `buildd cache gc` / \
         `buildd cache clear`",
        targets.display(),
        free >> 20
    )
}

/// What follows the `.` in the names of the dirs buildd makes beside a key dir and renames
/// or removes when done: an import's and a seed's staging dirs, the dir an import set aside,
/// a dir on its way out of eviction, and leftovers of those waiting for removal.
const STAGING: &[&str] = &["importing", "seeding", "replaced", "evicted-", "leftover-"];

/// Every staging dir under `targets` (`<targets>/<workspace>/<key>.<staging>`).
pub(crate) fn staging_dirs(targets: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for workspace in read_dirs(targets) {
        for entry in fs::read_dir(&workspace).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some((_, suffix)) = name.to_str().and_then(|n| n.split_once('.')) else {
                continue;
            };
            if STAGING.iter().any(|s| suffix.starts_with(s))
                && entry.file_type().is_ok_and(|t| t.is_dir())
            {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Takes a staging dir's lock: an import holds it while it fills the dir (the CLI runs
/// imports, and a daemon that starts meanwhile must not remove what it writes). `None`
/// when someone else holds it.
pub(crate) fn lock_staging(dir: &Path) -> Option<Flock<fs::File>> {
    let file = fs::File::open(dir).ok()?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()
}

/// At daemon start, before any seed or job: renames the staging dirs that killed imports,
/// seeds and evictions left (none of this daemon's exist yet; a running import holds its
/// lock and is skipped) to names no later seed or import uses, and returns them for removal
/// off the dispatcher.
pub(crate) fn set_leftovers_aside(targets: &Path) -> Vec<PathBuf> {
    let mut aside = Vec::new();
    for (n, dir) in staging_dirs(targets).into_iter().enumerate() {
        let Some(_lock) = lock_staging(&dir) else {
            continue;
        };
        let trash = dir.with_extension(format!("leftover-{}-{n}", std::process::id()));
        match fs::rename(&dir, &trash) {
            Ok(()) => aside.push(trash),
            Err(e) => tracing::warn!("cannot remove the leftover {}: {e}", dir.display()),
        }
    }
    aside
}

/// The key a dir was built for, from its [`KEY_FILE`]; `None` when it is missing or unreadable.
pub(crate) fn read_key(dir: &Path) -> Option<BuildKeyInfo> {
    let text = fs::read_to_string(dir.join(KEY_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(targets: &Path, ws: &str, key: &str, bytes: usize, age_secs: u64) -> PathBuf {
        let dir = targets.join(ws).join(key);
        fs::create_dir_all(dir.join("debug")).unwrap();
        fs::write(dir.join("debug/blob"), vec![0u8; bytes]).unwrap();
        touch_used(&dir);
        let when = SystemTime::now() - std::time::Duration::from_secs(age_secs);
        fs::File::options()
            .write(true)
            .open(dir.join(STATE_DIR).join(USED_FILE))
            .unwrap()
            .set_modified(when)
            .unwrap();
        dir
    }

    #[test]
    fn gc_evicts_the_least_recently_used_and_never_one_in_use() {
        let targets = tempfile::tempdir().unwrap();
        let t = targets.path();
        let oldest = make(t, "a-1", "k1", 4000, 300);
        let in_use = make(t, "b-2", "k2", 4000, 200);
        let middle = make(t, "a-1", "k3", 4000, 100);
        let newest = make(t, "c-3", "k4", 4000, 0);
        let report = gc(t, Some(9000), &Mutex::new(BTreeSet::from([in_use.clone()])));
        let removed: Vec<_> = report.removed.iter().map(|d| d.path.clone()).collect();
        assert_eq!(removed, vec![oldest.clone(), middle.clone()]);
        assert!(!oldest.exists() && !middle.exists());
        assert!(in_use.exists() && newest.exists());
        assert_eq!(report.totals.dirs, 2);
        assert!(report.totals.bytes <= 9000);
    }

    #[test]
    fn a_dir_whose_cargo_lock_is_held_is_in_use() {
        let targets = tempfile::tempdir().unwrap();
        let dir = make(targets.path(), "a-1", "k1", 10, 500);
        let lock = fs::File::create(dir.join("debug/.cargo-lock")).unwrap();
        let held = Flock::lock(lock, FlockArg::LockExclusive).unwrap();
        let report = gc(targets.path(), Some(0), &InUse::default());
        assert!(report.removed.is_empty() && dir.exists());
        assert_eq!(report.skipped.len(), 1);
        drop(held);
        let report = gc(targets.path(), Some(0), &InUse::default());
        assert_eq!(report.removed.len(), 1);
        assert!(!dir.exists());
    }

    #[test]
    fn leftovers_are_set_aside_unless_an_import_holds_them() {
        let targets = tempfile::tempdir().unwrap();
        let t = targets.path();
        make(t, "a-1", "k1", 10, 0);
        for name in ["k1.importing", "k2.seeding", "k3.replaced", "k4.importing"] {
            fs::create_dir_all(t.join("a-1").join(name).join("debug")).unwrap();
        }
        let running = lock_staging(&t.join("a-1/k4.importing")).unwrap();
        assert_eq!(staging_dirs(t).len(), 4);
        let aside = set_leftovers_aside(t);
        assert_eq!(aside.len(), 3, "{aside:?}");
        assert!(
            t.join("a-1/k4.importing").is_dir(),
            "a running import was moved"
        );
        // Set aside, they still count until they are removed; key dirs never do.
        assert_eq!(staging_dirs(t).len(), 4);
        for dir in aside {
            fs::remove_dir_all(dir).unwrap();
        }
        drop(running);
        assert_eq!(staging_dirs(t), vec![t.join("a-1/k4.importing")]);
        assert_eq!(list(t, &InUse::default()).len(), 1);
    }

    #[test]
    fn the_default_budget_is_at_most_20_gib() {
        let dir = tempfile::tempdir().unwrap();
        let b = budget(None, dir.path(), 0);
        assert!(b <= DEFAULT_MAX_BUDGET);
        assert_eq!(budget(Some(5), dir.path(), 0), 5);
    }
}
