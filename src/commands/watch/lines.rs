//! The line follower: events as lines on stdout, with a progress bar on a terminal
//! (`--plain`) and none on a pipe. Its output is what scripts and the e2e tests read: keep
//! it as it is.

use std::time::Duration;

use buildd_daemon::client::Client;
use buildd_daemon::protocol::{
    EventKind, JobResult, Request, ServerMessage, Stage, WorkspaceState, WorkspaceStatus,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::commands::watch::after::{After, program_exit, restart_due};
use crate::stop_signal::StopSignals;
use crate::supervise::Supervisor;
use crate::{exit, render};

pub(super) async fn follow(
    mut client: Client,
    mut after: After<'_>,
    mut supervisor: Option<Supervisor>,
    mut stop: StopSignals,
    workspace: WorkspaceStatus,
) -> anyhow::Result<i32> {
    let root = after.root.clone();
    out!("{}", render::workspace(&workspace))?;
    outln!(
        "watching {} (Ctrl-C to stop watching; the daemon keeps running)",
        root.display()
    )?;
    // A workspace that is warm already gets its tests and program at once.
    if let (WorkspaceState::Idle, Some(job)) = (workspace.state, &workspace.last_job) {
        after.after_success(job.id, supervisor.as_mut()).await?;
    }

    let mut bar = JobBar::default();
    loop {
        for report in after.reports.drain(..) {
            client
                .send(Request::Report {
                    root: root.clone(),
                    report,
                })
                .await?;
        }
        let program_exit = program_exit(supervisor.as_mut());
        let restart = restart_due(after.restart_at);
        let message = tokio::select! {
            _ = stop.recv() => {
                bar.clear();
                if let Some(report) = After::stop_program(supervisor.as_mut()).await {
                    let _ = client.send(Request::Report { root: root.clone(), report }).await;
                }
                return Ok(exit::SUCCESS);
            }
            status = program_exit => {
                let supervisor = supervisor.as_ref().expect("only polled with a supervisor");
                after.program_exited(supervisor, status)?;
                continue;
            }
            _ = restart => {
                let supervisor = supervisor.as_mut().expect("only set with a supervisor");
                after.restart(supervisor)?;
                continue;
            }
            message = client.recv() => message?,
        };
        after.note_uptime(supervisor.as_ref());
        let Some(message) = message else {
            bar.clear();
            errln!("buildd: the daemon stopped");
            if let Some(supervisor) = supervisor.as_mut() {
                supervisor.stop().await;
            }
            return Ok(exit::UNREACHABLE);
        };
        let ServerMessage::Event { event } = message else {
            continue;
        };
        on_event(&mut after, event.kind, &mut bar, supervisor.as_mut()).await?;
    }
}

/// One event of the workspace: the bar, diagnostics, and what follows a job.
async fn on_event(
    after: &mut After<'_>,
    kind: EventKind,
    bar: &mut JobBar,
    supervisor: Option<&mut Supervisor>,
) -> anyhow::Result<()> {
    match kind {
        EventKind::JobStarted {
            job,
            expected_units,
            ..
        } => bar.start(job, expected_units)?,
        EventKind::StageStarted { stage, .. } => bar.stage(stage),
        EventKind::UnitFinished { package, fresh, .. } => bar.unit(package, fresh),
        EventKind::Executable { job, path, .. } => after.executable(job, &path, supervisor).await?,
        // On a terminal, as cargo renders it; piped, one `file:line:col: level: message`
        // line each, for logs and scripts.
        EventKind::Diagnostic { diagnostic, .. } if bar.is_terminal() => {
            bar.println(render::diagnostic(&diagnostic))?
        }
        EventKind::Diagnostic { diagnostic, .. } => {
            outln!("{}", render::diagnostic_line(&diagnostic, &after.root))?
        }
        EventKind::JobFinished { summary, .. } => {
            bar.clear();
            outln!("{}", render::job_line(&summary))?;
            match summary.result {
                JobResult::Success => after.after_success(summary.id, supervisor).await?,
                JobResult::Failed => after.build_failed(summary.id, supervisor)?,
                JobResult::Cancelled | JobResult::Yielded => {
                    after.job_stopped(summary.id, supervisor.as_deref())?
                }
            }
        }
        EventKind::Disk { message, .. } => match message {
            Some(message) => outln!("disk full: {message}")?,
            None => outln!("the disk has room again")?,
        },
        EventKind::State { state, error } => {
            if state == WorkspaceState::Error
                && let Some(error) = error
            {
                outln!("error: {error}")?;
            }
        }
        EventKind::Tests { .. } | EventKind::Process { .. } => {}
    }
    Ok(())
}

/// The progress bar of the running job, while there is one.
#[derive(Default)]
struct JobBar(Option<ProgressBar>);

impl JobBar {
    fn start(&mut self, job: u64, expected_units: Option<u64>) -> anyhow::Result<()> {
        let bar = match expected_units {
            Some(n) if n > 0 => ProgressBar::new(n).with_style(
                ProgressStyle::with_template("{prefix:>7} [{bar:30}] {pos}/{len} {wide_msg}")?
                    .progress_chars("=> "),
            ),
            _ => ProgressBar::new_spinner().with_style(ProgressStyle::with_template(
                "{prefix:>7} {spinner} {pos} units {wide_msg}",
            )?),
        };
        if bar.is_hidden() {
            // Not a terminal: indicatif draws nothing, and would drop the lines printed
            // above the bar too; they are printed plainly instead.
            self.0 = None;
            return Ok(());
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(format!("job #{job}"));
        self.0 = Some(bar);
        Ok(())
    }

    fn is_terminal(&self) -> bool {
        self.0.is_some()
    }

    fn stage(&self, stage: Stage) {
        if let Some(bar) = &self.0 {
            bar.set_prefix(stage.name().to_owned());
        }
    }

    fn unit(&self, package: String, fresh: bool) {
        if let Some(bar) = &self.0 {
            // The estimate from the last job may be short.
            if bar.length().is_some_and(|len| bar.position() + 1 > len) {
                bar.set_length(bar.position() + 1);
            }
            bar.inc(1);
            if !fresh {
                bar.set_message(package);
            }
        }
    }

    /// Prints a line above the bar (or plainly without one).
    fn println(&self, text: String) -> anyhow::Result<()> {
        match &self.0 {
            Some(bar) => {
                bar.println(text);
                Ok(())
            }
            None => outln!("{text}"),
        }
    }

    fn clear(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
