//! Process groups of running jobs, on disk, so that a daemon killed with SIGKILL leaves no
//! build behind: the next daemon kills what the last one left.
//!
//! cargo itself dies with the daemon (`PR_SET_PDEATHSIG`, set in `cargo_run`), but rustc,
//! linkers and build scripts it started would run on, writing into the isolated dir and
//! racing the next build. Their group ids are kept in `run/jobs.pgids`; at start-up the
//! daemon kills each listed group that still has a member whose command line names buildd's
//! targets dir (a check against a group id that was reused by an unrelated program).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

pub(crate) struct Orphans {
    file: PathBuf,
    groups: Mutex<BTreeSet<i32>>,
}

impl Orphans {
    pub(crate) fn new(file: PathBuf) -> Orphans {
        Orphans {
            file,
            groups: Mutex::new(BTreeSet::new()),
        }
    }

    pub(crate) fn record(&self, pgid: i32) {
        self.update(|groups| {
            groups.insert(pgid);
        });
    }

    pub(crate) fn forget(&self, pgid: i32) {
        self.update(|groups| {
            groups.remove(&pgid);
        });
    }

    fn update(&self, change: impl FnOnce(&mut BTreeSet<i32>)) {
        let Ok(mut groups) = self.groups.lock() else {
            return;
        };
        change(&mut groups);
        let text: String = groups.iter().map(|g| format!("{g}\n")).collect();
        if let Err(e) = std::fs::write(&self.file, text) {
            tracing::warn!("failed to write {}: {e}", self.file.display());
        }
    }

    /// Kills the groups a previous daemon left running. Returns how many it killed.
    pub(crate) fn reap_leftovers(&self, targets_dir: &Path) -> usize {
        let Ok(text) = std::fs::read_to_string(&self.file) else {
            return 0;
        };
        let needle = targets_dir.to_string_lossy().into_owned();
        let mut killed = 0;
        for pgid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            if group_mentions(pgid, &needle) && killpg(Pid::from_raw(pgid), Signal::SIGKILL).is_ok()
            {
                tracing::warn!(pgid, "killed a build left running by an earlier daemon");
                killed += 1;
            }
        }
        let _ = std::fs::remove_file(&self.file);
        killed
    }
}

/// Whether a live process of group `pgid` has `needle` in its command line.
fn group_mentions(pgid: i32, needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            return false;
        };
        let in_group = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let rest = stat.rsplit_once(')')?.1.to_owned();
                rest.split_whitespace().nth(2)?.parse::<i32>().ok()
            })
            == Some(pgid);
        in_group
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
    })
}
