//! Human-readable text for the terminal: status reports, job summaries, diagnostics.

use std::fmt::Write;

use buildd_daemon::protocol::{
    Diagnostic, JobResult, JobSummary, Severity, StatusReport, WorkspaceStatus,
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
        job.stages.join(", "),
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

fn human_size(bytes: u64) -> String {
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
