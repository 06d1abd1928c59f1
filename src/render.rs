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

pub(crate) fn workspace(ws: &WorkspaceStatus) -> String {
    let mut out = String::new();
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
    if let Some(dir) = &ws.target_dir {
        let size = ws
            .target_dir_size
            .map(human_size)
            .unwrap_or_else(|| "size unknown".into());
        let _ = writeln!(out, "  target dir: {} ({size})", dir.display());
    }
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

/// The job definitions, one line each: name, origin, command, last result; then why one
/// waits or what to know about it.
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
                let result = match result {
                    JobResult::Success => "success",
                    JobResult::Failed => "failed",
                    JobResult::Cancelled => "cancelled",
                    JobResult::Yielded => "yielded",
                };
                let _ = write!(line, ", last {result} in {:.1}s", ms as f64 / 1000.0);
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
}
