//! `buildd events`: the daemon's events as they happen, for scripts and bots: one JSON object
//! per line with `--json` (schema in docs/protocol.md, versioned by its `v`), or one readable
//! line each.

use std::path::PathBuf;

use anyhow::Context;
use buildd_daemon::protocol::{
    EVENTS_SCHEMA_VERSION, EventKind, JobResult, Request, ServerMessage, Stage, WorkspaceEvent,
};

use crate::connect::Session;
use crate::exit;
use crate::stop_signal::StopSignals;

pub(crate) async fn run(
    session: &Session,
    path: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<i32> {
    let mut stop = StopSignals::listen().context("failed to listen for Ctrl-C")?;
    let mut client = session.connect().await?;
    // With a path, that workspace (registered if it was not); without one, every workspace.
    let root = match &path {
        Some(path) => Some(session.register(&mut client, Some(path)).await?.root),
        None => None,
    };
    client.call(Request::Subscribe { root }).await?;
    loop {
        let message = tokio::select! {
            _ = stop.recv() => return Ok(exit::SUCCESS),
            message = client.recv() => message?,
        };
        match message {
            None => {
                errln!("buildd: the daemon stopped");
                return Ok(exit::UNREACHABLE);
            }
            Some(ServerMessage::Event { event }) => {
                if json {
                    outln!("{}", json_line(&event)?)?;
                } else {
                    outln!("{}", text_line(&event))?;
                }
            }
            Some(_) => {}
        }
    }
}

/// The event as JSON with the schema version in `v`.
fn json_line(event: &WorkspaceEvent) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(event)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("v".into(), EVENTS_SCHEMA_VERSION.into());
    }
    Ok(serde_json::to_string(&value)?)
}

fn text_line(event: &WorkspaceEvent) -> String {
    let root = event.root.display();
    match &event.kind {
        EventKind::State { state, error } => {
            let state = serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            match error {
                Some(error) => format!("{root}: {} ({error})", state.unwrap_or_default()),
                None => format!("{root}: {}", state.unwrap_or_default()),
            }
        }
        EventKind::JobStarted { job, stages, .. } => {
            format!("{root}: job #{job} started ({})", Stage::list(stages))
        }
        EventKind::StageStarted { job, stage } => format!("{root}: job #{job}: {stage}"),
        EventKind::UnitFinished {
            job,
            package,
            fresh,
            ..
        } => format!(
            "{root}: job #{job}: {package} {}",
            if *fresh { "fresh" } else { "compiled" }
        ),
        EventKind::Executable {
            job,
            target,
            path,
            fresh,
            ..
        } => format!(
            "{root}: job #{job}: {target} {} at {}",
            if *fresh { "up to date" } else { "linked" },
            path.display()
        ),
        EventKind::Diagnostic { diagnostic, .. } => format!(
            "{}:{}:{}: {:?}: {}",
            diagnostic.file.display(),
            diagnostic.line,
            diagnostic.column,
            diagnostic.severity,
            diagnostic.message
        ),
        EventKind::JobFinished { summary, .. } => {
            let result = match summary.result {
                JobResult::Success => "success",
                JobResult::Failed => "failed",
                JobResult::Cancelled => "cancelled",
                JobResult::Yielded => "yielded",
            };
            format!(
                "{root}: job #{} {result} in {}ms ({} errors, {} warnings)",
                summary.id, summary.duration_ms, summary.errors, summary.warnings
            )
        }
        EventKind::Tests { report } => format!(
            "{root}: tests after job #{}: {} passed, {} failed, {} ignored",
            report.job, report.passed, report.failed, report.ignored
        ),
        EventKind::Process { report } => format!("{root}: [{}] {}", report.bin, report.message),
        EventKind::Disk {
            full: true,
            message,
        } => format!(
            "{root}: disk full: {}",
            message
                .as_deref()
                .unwrap_or("the disk of buildd's cache is full")
        ),
        EventKind::Disk { full: false, .. } => format!("{root}: the disk has room again"),
    }
}
