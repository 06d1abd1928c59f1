//! Human-readable text for the terminal: status reports, job summaries, diagnostics.

use std::fmt::Write;

use buildd_daemon::protocol::{
    CacheDir, CacheTotals, Diagnostic, JobOrigin, JobResult, JobStatus, JobSummary,
    SccacheDistStatus, Severity, Stage, StatusReport, WorkspaceStatus,
};

pub(crate) fn status(report: &StatusReport) -> String {
    let d = &report.daemon;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "buildd {} (protocol {}), pid {}, up {}, {} client(s)",
        d.version,
        d.protocol,
        d.pid,
        humantime::format_duration(std::time::Duration::from_secs(d.uptime_secs)),
        d.clients
    );
    let _ = writeln!(out, "  socket: {}", d.socket.display());
    let _ = writeln!(out, "  log:    {}", d.log_path.display());
    let _ = writeln!(out, "  cache:  {}", d.cache_dir.display());
    match &report.cache {
        Some(totals) => out.push_str(&indent(&cache_totals(totals))),
        None => out.push_str("  isolated dirs: being measured (the daemon just started)\n"),
    }
    if let Some(sc) = &report.sccache {
        let _ = writeln!(
            out,
            "  sccache: {} hit(s), {} miss(es) since its server started ({}, {}{})",
            sc.hits,
            sc.misses,
            sc.version,
            sc.location.as_deref().unwrap_or("location unknown"),
            sc.note
                .as_deref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default()
        );
        if let Some(dist) = &sc.dist {
            out.push_str(&sccache_dist(dist));
        }
    }
    if report.workspaces.is_empty() {
        let _ = writeln!(
            out,
            "no workspaces: run `buildd watch` or `buildd cargo` in one"
        );
    }
    for ws in &report.workspaces {
        out.push_str(&workspace(ws));
    }
    out
}

/// A workspace in `buildd status`: its state, then each part it has, in a fixed order.
pub(crate) fn workspace(ws: &WorkspaceStatus) -> String {
    let mut out = String::new();
    state_lines(&mut out, ws);
    target_dir_lines(&mut out, ws);
    tool_lines(&mut out, ws);
    last_work_lines(&mut out, ws);
    if let Some(note) = &ws.watcher.note {
        let _ = writeln!(out, "  watcher ({}): {note}", ws.watcher.kind);
    }
    for line in jobs(&ws.jobs).lines() {
        let _ = writeln!(out, "  {line}");
    }
    for d in &ws.diagnostics {
        let _ = writeln!(
            out,
            "  {}:{}:{}: {}: {}",
            d.file.strip_prefix(&ws.root).unwrap_or(&d.file).display(),
            d.line,
            d.column,
            severity(d.severity),
            d.message
        );
    }
    out
}

/// The root and its state, what a queued job waits for, and the workspace's error.
fn state_lines(out: &mut String, ws: &WorkspaceStatus) {
    let state = serde_json::to_value(ws.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let _ = writeln!(out, "{}: {state}", ws.root.display());
    if let Some(what) = &ws.waiting_for {
        let _ = writeln!(out, "  waiting for: {what}");
    }
    if let Some(error) = &ws.error {
        for line in error.lines() {
            let _ = writeln!(out, "  error: {line}");
        }
    }
}

/// The isolated dir and the seed it started from.
fn target_dir_lines(out: &mut String, ws: &WorkspaceStatus) {
    if let Some(dir) = &ws.target_dir {
        let size = ws
            .target_dir_size
            .map(human_size)
            .unwrap_or_else(|| "size unknown".into());
        let _ = writeln!(out, "  target dir: {} ({size})", dir.display());
    }
    out.push_str(&other_keys(ws));
    if let Some(seed) = &ws.seed {
        let rebuilt = match (seed.units_rebuilt, seed.units_fresh) {
            (Some(rebuilt), Some(fresh)) => {
                format!("; the first job then compiled {rebuilt} unit(s), {fresh} were fresh")
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  seeded from key {} ({}: {} files, {} reflinked, {} hard-linked, {} copied, {}){rebuilt}",
            seed.from,
            seed.method,
            seed.files,
            seed.reflinked,
            seed.hard_linked,
            seed.copied,
            human_size(seed.bytes)
        );
    }
}

/// The linker (unless it is the default and never timed), `fast_link` and sccache.
fn tool_lines(out: &mut String, ws: &WorkspaceStatus) {
    if let Some(linker) = &ws.linker
        && (linker.setting != "default" || linker.last_link_ms.is_some())
    {
        let share = match (linker.last_link_ms, linker.last_link_share) {
            (Some(ms), Some(share)) => format!(
                ", last job linked for {:.1}s ({:.0}% of the job)",
                ms as f64 / 1000.0,
                share * 100.0
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  linker: {} (setting: {}){share}",
            linker.linker, linker.setting
        );
        if let Some(note) = &linker.note {
            let _ = writeln!(out, "    {note}");
        }
    }
    if let Some(fast) = &ws.fast_link {
        let on = if fast.enabled {
            format!("on ({})", fast.sets.join(" "))
        } else {
            "off (fast_link = true in buildd.toml turns it on)".to_owned()
        };
        let _ = writeln!(out, "  fast_link: {on}");
        let _ = writeln!(out, "    {}", fast.saving);
        if let Some(note) = &fast.note {
            let _ = writeln!(out, "    {note}");
        }
    }
    if let Some(sc) = &ws.sccache {
        match (sc.enabled, sc.last_job_hits, sc.last_job_misses) {
            (true, Some(hits), Some(misses)) => {
                let _ = writeln!(out, "  sccache: last job {hits} hit(s), {misses} miss(es)");
            }
            (true, _, _) => {
                let _ = writeln!(out, "  sccache: on");
            }
            (false, _, _) => {
                if let Some(note) = &sc.note {
                    let _ = writeln!(out, "  sccache: off: {note}");
                }
            }
        }
    }
}

/// The last change and what it was predicted to affect, the last job, and how good the
/// predictions have been.
fn last_work_lines(out: &mut String, ws: &WorkspaceStatus) {
    if let Some(change) = &ws.last_change {
        let what = if change.full {
            "everything".to_owned()
        } else if change.predicted.is_empty() {
            "nothing (no target reads it)".to_owned()
        } else {
            change.predicted.join(", ")
        };
        let _ = writeln!(
            out,
            "  last change: {} file(s), affects {what}",
            change.files.len()
        );
    }
    if let Some(job) = &ws.last_job {
        let _ = writeln!(out, "  last job: {}", job_line(job));
        if !job.rebuilt.is_empty() {
            let _ = writeln!(out, "    rebuilt: {}", job.rebuilt.join(", "));
        }
    }
    if let Some(early) = &ws.early {
        let _ = writeln!(
            out,
            "  early check (beside job #{}): {}, {} error(s), {} warning(s) in {:.2}s",
            early.job + 1,
            early.crate_name,
            early.errors,
            early.warnings,
            early.duration_ms as f64 / 1000.0
        );
    }
    let p = &ws.prediction;
    if let (Some(precision), Some(recall)) = (p.precision, p.recall) {
        let _ = writeln!(
            out,
            "  prediction: precision {:.0}%, recall {:.0}% over {} job(s)",
            precision * 100.0,
            recall * 100.0,
            p.jobs
        );
    }
}

pub(crate) fn jobs(jobs: &[JobStatus]) -> String {
    let mut out = String::new();
    if jobs.is_empty() {
        return out;
    }
    let _ = writeln!(out, "jobs:");
    for job in jobs {
        let origin = match job.origin {
            JobOrigin::Default => "default",
            JobOrigin::Config => "config",
            JobOrigin::Learned => "learned",
        };
        let mut line = format!("  {} ({origin}", job.name);
        if job.diagnostics {
            line.push_str(", diagnostics");
        }
        line.push(')');
        // A learned job's name is its command.
        if job.origin != JobOrigin::Learned {
            let _ = write!(line, ": cargo {}", job.command.join(" "));
        }
        match (job.last_result, job.last_duration_ms) {
            (Some(result), Some(ms)) => {
                let _ = write!(
                    line,
                    ", last {} in {:.1}s",
                    job_result(result),
                    ms as f64 / 1000.0
                );
            }
            _ => line.push_str(", not run yet"),
        }
        let _ = writeln!(out, "{line}");
        for extra in [&job.waiting, &job.note].into_iter().flatten() {
            let _ = writeln!(out, "    {extra}");
        }
    }
    out
}

pub(crate) fn job_line(job: &JobSummary) -> String {
    let result = match job.result {
        JobResult::Success => "success",
        JobResult::Failed => "failed",
        JobResult::Cancelled => "cancelled",
        JobResult::Yielded => "yielded to a user command",
    };
    let mut line = format!(
        "#{} {} ({}) in {:.1}s, {} unit(s) compiled, {} error(s), {} warning(s)",
        job.id,
        result,
        Stage::list(&job.stages),
        job.duration_ms as f64 / 1000.0,
        job.units_compiled,
        job.errors,
        job.warnings
    );
    if let Some(failure) = &job.failure {
        let _ = write!(line, "\n    {}", failure.replace('\n', "\n    "));
    }
    line
}

/// A diagnostic on one line, `file:line:col: level: message`, the path relative to `root`.
pub(crate) fn diagnostic_line(d: &Diagnostic, root: &std::path::Path) -> String {
    format!(
        "{}:{}:{}: {}: {}",
        d.file.strip_prefix(root).unwrap_or(&d.file).display(),
        d.line,
        d.column,
        severity(d.severity),
        d.message
    )
}

/// A diagnostic as cargo prints it, or a one-line form when rustc rendered none.
pub(crate) fn diagnostic(d: &Diagnostic) -> String {
    match &d.rustc.rendered {
        Some(rendered) => rendered.trim_end().to_owned(),
        None => format!(
            "{}: {}\n --> {}:{}:{}",
            severity(d.severity),
            d.message,
            d.file.display(),
            d.line,
            d.column
        ),
    }
}

/// The other keys the jobs keep warm, a line each: what makes them another key, and how
/// their last warming went.
fn other_keys(ws: &WorkspaceStatus) -> String {
    let mut out = String::new();
    for other in &ws.other_keys {
        let env: Vec<String> = other
            .key
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let what = if env.is_empty() {
            other.key.rustc.clone()
        } else {
            format!("{}, {}", other.key.rustc, env.join(" "))
        };
        let last = match (other.last_result, other.last_duration_ms) {
            (Some(result), Some(ms)) => format!(
                "last warmed: {} in {:.1}s",
                job_result(result),
                ms as f64 / 1000.0
            ),
            _ => "not warmed yet".to_owned(),
        };
        let _ = writeln!(
            out,
            "  also warm: key {} ({what}): {}; {last}",
            other.key.hash,
            other.target_dir.display()
        );
    }
    out
}

fn job_result(result: JobResult) -> &'static str {
    match result {
        JobResult::Success => "success",
        JobResult::Failed => "failed",
        JobResult::Cancelled => "cancelled",
        JobResult::Yielded => "yielded",
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
        Severity::Help => "help",
    }
}

pub(crate) fn cache_totals(t: &CacheTotals) -> String {
    let mut out = format!(
        "isolated dirs: {} in {} dir(s), budget {}",
        human_size(t.bytes),
        t.dirs,
        human_size(t.budget_bytes)
    );
    if let Some(free) = t.free_bytes {
        let _ = write!(out, ", {} free on disk", human_size(free));
    }
    if t.evicted > 0 {
        let _ = write!(out, ", {} evicted since the daemon started", t.evicted);
    }
    out.push('\n');
    if let Some(full) = &t.disk_full {
        let _ = writeln!(out, "DISK FULL: {full}");
    }
    out
}

pub(crate) fn cache_dirs(dirs: &[CacheDir]) -> String {
    let mut out = String::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for dir in dirs {
        let workspace = dir
            .workspace
            .as_ref()
            .map(|w| w.display().to_string())
            .unwrap_or_else(|| "(unknown workspace)".into());
        let key = dir
            .key
            .as_ref()
            .map(|k| {
                let mut text = format!("{} {}", k.hash, k.rustc);
                for (name, value) in &k.env {
                    let _ = write!(text, " {name}={value}");
                }
                if k.linker != "default" {
                    let _ = write!(text, " linker={}", k.linker);
                }
                if k.fast_link {
                    text.push_str(" fast_link");
                }
                text
            })
            .unwrap_or_else(|| "(no key record)".into());
        let ago = humantime::format_duration(std::time::Duration::from_secs(
            now.saturating_sub(dir.last_used),
        ));
        let _ = writeln!(
            out,
            "{workspace}\n  key {key}\n  {}, last used {ago} ago{}\n  {}",
            human_size(dir.bytes),
            if dir.in_use { ", in use" } else { "" },
            dir.path.display()
        );
    }
    out
}

/// sccache-dist under the sccache line: on or off, the scheduler, its build servers, where
/// the compilations ran, and why not when not.
fn sccache_dist(dist: &SccacheDistStatus) -> String {
    let mut out = String::new();
    let servers = match (dist.servers, dist.cpus) {
        (Some(servers), Some(cpus)) => format!(", {servers} build server(s), {cpus} CPU(s)"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "  sccache-dist: {} ({}{servers}): {} compilation(s) distributed, {} compiled locally \
         ({} failed remotely)",
        if dist.active {
            "on"
        } else {
            "not distributing"
        },
        dist.scheduler_url,
        dist.distributed,
        dist.fell_back,
        dist.dist_errors,
    );
    if let Some(note) = &dist.note {
        let _ = writeln!(out, "    {note}");
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(3 * 1024 * 1024 / 2), "1.5 MiB");
    }

    fn status(json: serde_json::Value) -> WorkspaceStatus {
        serde_json::from_value(json).unwrap()
    }

    /// Every line `buildd status` prints for a workspace, in order: a model of the whole
    /// text, so that a reordered or dropped line fails here and not only in an e2e test.
    #[test]
    fn a_workspace_shows_every_part_it_has_in_order() {
        let full = status(serde_json::json!({
            "root": "/w/app", "state": "failed",
            "error": "first cause\nsecond cause",
            "target_dir": "/c/targets/app-1/9f8e", "target_dir_size": 39321600,
            "key": null,
            "last_change": {"files": ["/w/app/util/src/lib.rs"], "predicted": ["util", "app"], "full": false},
            "current_job": null,
            "last_job": {
                "id": 7, "stages": ["clippy", "build"], "result": "failed", "duration_ms": 1840,
                "units_compiled": 2, "errors": 1, "warnings": 0, "rebuilt": ["util"],
                "failure": "cargo said no\nand why"
            },
            "last_tests": null, "jobs_started": 7,
            "prediction": {"jobs": 5, "precision": 1.0, "recall": 0.5},
            "watcher": {"kind": "poll", "rescans": 0, "note": "BUILDD_WATCHER=poll: polling every 2s"},
            "diagnostics": [
                {"file": "/w/app/util/src/lib.rs", "line": 2, "column": 5, "severity": "error",
                 "message": "mismatched types"},
                {"file": "/elsewhere/lib.rs", "line": 1, "column": 1, "severity": "warning",
                 "message": "unused"}
            ],
            "seed": {"from": "5a08", "method": "copy", "files": 122, "bytes": 31561728,
                     "reflinked": 0, "hard_linked": 6, "copied": 116, "duration_ms": 35,
                     "units_rebuilt": 5, "units_fresh": 4},
            "linker": {"setting": "auto", "linker": "default", "note": "measured over 3 link(s)",
                       "measured": {}, "last_link_ms": 395, "last_link_share": 0.27},
            "fast_link": {"enabled": true, "sets": ["CARGO_PROFILE_DEV_SPLIT_DEBUGINFO=unpacked"],
                          "saving": "measured: links 3x faster",
                          "note": "your environment sets CARGO_PROFILE_DEV_DEBUG=1; buildd leaves it alone"},
            "sccache": {"enabled": true, "note": null, "last_job_hits": 3, "last_job_misses": 1},
            "waiting_for": "a `buildd cargo build` (pid 42) holds the warm dir",
            "jobs": [
                {"name": "clippy", "command": ["clippy", "--workspace"], "origin": "default",
                 "diagnostics": true, "last_result": "failed", "last_duration_ms": 1200},
                {"name": "test --no-run", "command": ["test", "--no-run"], "origin": "learned",
                 "diagnostics": false, "last_result": null, "last_duration_ms": null,
                 "waiting": "waits for a quiet workspace"}
            ]
        }));
        assert_eq!(
            workspace(&full),
            "/w/app: failed
  waiting for: a `buildd cargo build` (pid 42) holds the warm dir
  error: first cause
  error: second cause
  target dir: /c/targets/app-1/9f8e (37.5 MiB)
  seeded from key 5a08 (copy: 122 files, 0 reflinked, 6 hard-linked, 116 copied, 30.1 MiB); the first job then compiled 5 unit(s), 4 were fresh
  linker: default (setting: auto), last job linked for 0.4s (27% of the job)
    measured over 3 link(s)
  fast_link: on (CARGO_PROFILE_DEV_SPLIT_DEBUGINFO=unpacked)
    measured: links 3x faster
    your environment sets CARGO_PROFILE_DEV_DEBUG=1; buildd leaves it alone
  sccache: last job 3 hit(s), 1 miss(es)
  last change: 1 file(s), affects util, app
  last job: #7 failed (clippy, build) in 1.8s, 2 unit(s) compiled, 1 error(s), 0 warning(s)
    cargo said no
    and why
    rebuilt: util
  prediction: precision 100%, recall 50% over 5 job(s)
  watcher (poll): BUILDD_WATCHER=poll: polling every 2s
  jobs:
    clippy (default, diagnostics): cargo clippy --workspace, last failed in 1.2s
    test --no-run (learned), not run yet
      waits for a quiet workspace
  util/src/lib.rs:2:5: error: mismatched types
  /elsewhere/lib.rs:1:1: warning: unused
"
        );

        let sparse = |extra: serde_json::Value| {
            let mut json = serde_json::json!({
                "root": "/w/lib", "state": "idle", "error": null, "target_dir": null,
                "target_dir_size": null, "key": null, "last_change": null, "current_job": null,
                "last_job": null, "last_tests": null, "jobs_started": 0,
                "prediction": {"jobs": 0, "precision": null, "recall": null},
                "watcher": {"kind": "native", "rescans": 0, "note": null},
                "diagnostics": []
            });
            json.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            workspace(&status(json))
        };
        assert_eq!(sparse(serde_json::json!({})), "/w/lib: idle\n");
        assert_eq!(
            sparse(serde_json::json!({
                "target_dir": "/c/t", "target_dir_size": null,
                "linker": {"setting": "default", "linker": "default", "note": null,
                           "measured": {}, "last_link_ms": null, "last_link_share": null},
                "sccache": {"enabled": false, "note": "your environment sets RUSTC_WRAPPER=x",
                            "last_job_hits": null, "last_job_misses": null},
                "last_change": {"files": ["/w/lib/a", "/w/lib/b"], "predicted": [], "full": false}
            })),
            "/w/lib: idle
  target dir: /c/t (size unknown)
  sccache: off: your environment sets RUSTC_WRAPPER=x
  last change: 2 file(s), affects nothing (no target reads it)
"
        );
        assert_eq!(
            sparse(serde_json::json!({
                "seed": {"from": "5a08", "method": "reflink", "files": 2, "bytes": 2048,
                         "reflinked": 2, "hard_linked": 0, "copied": 0, "duration_ms": 1,
                         "units_rebuilt": null, "units_fresh": null},
                "linker": {"setting": "mold", "linker": "/usr/bin/mold", "note": null,
                           "measured": {}, "last_link_ms": null, "last_link_share": null},
                "fast_link": {"enabled": false, "sets": [], "saving": "measured: links 3x faster",
                              "note": null},
                "sccache": {"enabled": true, "note": null, "last_job_hits": null,
                            "last_job_misses": null},
                "last_change": {"files": [], "predicted": [], "full": true}
            })),
            "/w/lib: idle
  seeded from key 5a08 (reflink: 2 files, 2 reflinked, 0 hard-linked, 0 copied, 2.0 KiB)
  linker: /usr/bin/mold (setting: mold)
  fast_link: off (fast_link = true in buildd.toml turns it on)
    measured: links 3x faster
  sccache: on
  last change: 0 file(s), affects everything
"
        );
    }
}
