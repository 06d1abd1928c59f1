//! Processes as `/proc` shows them, for tests that must see which builds and programs run:
//! killed ones, orphans, process groups, priorities, memory.

use std::path::Path;

/// One live (not zombie) process.
#[derive(Debug, Clone)]
pub(crate) struct Proc {
    pub(crate) pid: u32,
    pub(crate) pgid: u32,
    pub(crate) nice: i64,
    /// The command line, arguments separated by spaces.
    pub(crate) cmdline: String,
}

/// Every live process.
pub(crate) fn processes() -> Vec<Proc> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the command name in parentheses: state, ppid, pgrp, ..., nice (the 17th).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first().is_none_or(|state| *state == "Z") {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        found.push(Proc {
            pid,
            pgid: fields.get(2).and_then(|f| f.parse().ok()).unwrap_or(0),
            nice: fields.get(16).and_then(|f| f.parse().ok()).unwrap_or(0),
            cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
        });
    }
    found
}

/// Processes whose command line names `dir` (rustc, linkers and build scripts of a target dir
/// under it), except `except` (the daemon) and this test.
pub(crate) fn naming(dir: &Path, except: u32) -> Vec<Proc> {
    let needle = dir.to_string_lossy().into_owned();
    processes()
        .into_iter()
        .filter(|p| p.pid != except && p.pid != std::process::id() && p.cmdline.contains(&needle))
        .collect()
}

/// Build scripts running from a target dir under `dir`.
pub(crate) fn build_scripts(dir: &Path) -> Vec<Proc> {
    naming(dir, 0)
        .into_iter()
        .filter(|p| p.cmdline.contains("build-script-build"))
        .collect()
}

/// The live members of process group `pgid`.
pub(crate) fn group_members(pgid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|p| p.pgid == pgid)
        .map(|p| p.pid)
        .collect()
}

/// Resident memory of `pid`, in KiB.
pub(crate) fn rss_kib(pid: u64) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Makes the next run of the `slow` fixture's build script block while `flag` exists.
pub(crate) fn block_slow_build(ws: &Path, flag: &Path) {
    std::fs::write(flag, "").unwrap();
    std::fs::write(ws.join("slowdev/delay.txt"), flag.to_str().unwrap()).unwrap();
}
