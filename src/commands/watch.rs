//! `buildd watch`: follow a workspace's jobs in the terminal until Ctrl-C (the daemon keeps
//! running afterwards), and optionally act after each successful build:
//!
//! - `--test` runs the workspace's tests on the warm dir and reports the counts;
//! - `--run` keeps a binary of the workspace running, restarting it when a build changed it
//!   (and, with `--test`, only when the tests pass); a failed build keeps the old one.
//!
//! What it does is reported to the daemon, so that `buildd status`, editors and
//! `buildd events` see test results and restarts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use buildd_daemon::protocol::{
    EventKind, JobResult, ProcessAction, ProcessReport, Report, Request, ServerMessage, Stage,
    TestReport, WorkspaceState, WorkspaceStatus,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::WatchOptions;
use crate::connect::Session;
use crate::stop_signal::StopSignals;
use crate::supervise::Supervisor;
use crate::test_run::{self, Runner};
use crate::{exit, render};

/// Restarts of a program that keeps exiting back off from one second to half a minute; a run
/// longer than that resets the backoff.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

pub(crate) async fn run(
    session: &Session,
    path: Option<PathBuf>,
    options: WatchOptions,
) -> anyhow::Result<i32> {
    let mut stop = StopSignals::listen().context("failed to listen for Ctrl-C")?;
    let mut client = session.connect().await?;
    let workspace = session.register(&mut client, path.as_deref()).await?;
    let root = workspace.root.clone();
    let mut supervisor = match options.run {
        true => Some(supervisor_for(&workspace, &options)?),
        false => None,
    };
    let runner = options.test.then(Runner::detect);
    client
        .call(Request::Subscribe {
            root: Some(root.clone()),
        })
        .await?;
    out!("{}", render::workspace(&workspace))?;
    outln!(
        "watching {} (Ctrl-C to stop watching; the daemon keeps running)",
        root.display()
    )?;

    let mut loop_state = Loop {
        session,
        root: root.clone(),
        options: &options,
        runner,
        reports: Vec::new(),
    };
    // A workspace that is warm already gets its tests and program at once.
    if let (WorkspaceState::Idle, Some(job)) = (workspace.state, &workspace.last_job) {
        loop_state
            .after_success(job.id, supervisor.as_mut())
            .await?;
    }

    let mut bar = JobBar::default();
    let mut backoff = BACKOFF_START;
    let mut restart_at: Option<tokio::time::Instant> = None;
    loop {
        for report in loop_state.reports.drain(..) {
            client
                .send(Request::Report {
                    root: root.clone(),
                    report,
                })
                .await?;
        }
        let program_exit = async {
            match supervisor.as_mut() {
                Some(s) => s.exited().await,
                None => std::future::pending().await,
            }
        };
        let restart = async {
            match restart_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let message = tokio::select! {
            _ = stop.recv() => {
                bar.clear();
                if let Some(supervisor) = supervisor.as_mut()
                    && let Some(pid) = supervisor.pid()
                    && let Some(status) = supervisor.stop().await
                {
                    let report = process_report(supervisor, ProcessAction::Stopped, Some(pid), Some(status.clone()),
                        format!("stopped (pid {pid}, {status})"));
                    let _ = client.send(Request::Report { root: root.clone(), report }).await;
                }
                return Ok(exit::SUCCESS);
            }
            status = program_exit => {
                let supervisor = supervisor.as_mut().expect("only polled with a supervisor");
                let message = format!("exited on its own ({status})");
                outln!("[{}] {message}", supervisor.name)?;
                loop_state.reports.push(process_report(supervisor, ProcessAction::Exited, None, Some(status), message));
                if options.restart_on_exit {
                    outln!("[{}] restarting in {}s", supervisor.name, backoff.as_secs())?;
                    restart_at = Some(tokio::time::Instant::now() + backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                continue;
            }
            _ = restart => {
                restart_at = None;
                let supervisor = supervisor.as_mut().expect("only set with a supervisor");
                let pid = supervisor.start()?;
                loop_state.reports.push(process_report(supervisor, ProcessAction::Started, Some(pid), None,
                    format!("started again (pid {pid})")));
                continue;
            }
            message = client.recv() => message?,
        };
        if supervisor
            .as_ref()
            .and_then(|s| s.uptime())
            .is_some_and(|u| u > BACKOFF_MAX)
        {
            backoff = BACKOFF_START;
        }
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
        loop_state
            .on_event(event.kind, &mut bar, supervisor.as_mut())
            .await?;
    }
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

/// The state of the loop that outlives one event.
struct Loop<'a> {
    session: &'a Session,
    root: PathBuf,
    options: &'a WatchOptions,
    runner: Option<Runner>,
    /// Reports to send to the daemon.
    reports: Vec<Report>,
}

impl Loop<'_> {
    /// One event of the workspace: the bar, diagnostics, and what follows a job.
    async fn on_event(
        &mut self,
        kind: EventKind,
        bar: &mut JobBar,
        mut supervisor: Option<&mut Supervisor>,
    ) -> anyhow::Result<()> {
        match kind {
            EventKind::JobStarted {
                job,
                expected_units,
                ..
            } => bar.start(job, expected_units)?,
            EventKind::StageStarted { stage, .. } => bar.stage(stage),
            EventKind::UnitFinished { package, fresh, .. } => bar.unit(package, fresh),
            // On a terminal, as cargo renders it; piped, one `file:line:col: level: message`
            // line each, for logs and scripts.
            EventKind::Diagnostic { diagnostic, .. } if bar.is_terminal() => {
                bar.println(render::diagnostic(&diagnostic))?
            }
            EventKind::Diagnostic { diagnostic, .. } => {
                outln!("{}", render::diagnostic_line(&diagnostic, &self.root))?
            }
            EventKind::JobFinished { summary, .. } => {
                bar.clear();
                outln!("{}", render::job_line(&summary))?;
                match summary.result {
                    JobResult::Success => {
                        self.after_success(summary.id, supervisor.as_deref_mut())
                            .await?;
                    }
                    JobResult::Failed => {
                        if let Some(supervisor) = supervisor
                            && let Some(pid) = supervisor.pid()
                        {
                            let message = format!(
                                "the build failed; keeping the old process (pid {pid}) running"
                            );
                            outln!("[{}] {message}", supervisor.name)?;
                            self.reports.push(process_report(
                                supervisor,
                                ProcessAction::Kept,
                                Some(pid),
                                None,
                                message,
                            ));
                        }
                    }
                    JobResult::Cancelled | JobResult::Yielded => {}
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

    /// After a successful build: the tests, then the program.
    async fn after_success(
        &mut self,
        job: u64,
        supervisor: Option<&mut Supervisor>,
    ) -> anyhow::Result<()> {
        let mut tests_pass = true;
        if let Some(runner) = self.runner {
            // With --run the trailing arguments are the program's.
            let extra = if self.options.run {
                &[][..]
            } else {
                &self.options.args[..]
            };
            match test_run::run(self.session, &self.root, job, runner, extra).await {
                Ok((report, output)) => {
                    outln!(
                        "tests: {} passed, {} failed, {} ignored ({}, {:.1}s)",
                        report.passed,
                        report.failed,
                        report.ignored,
                        report.runner,
                        report.duration_ms as f64 / 1000.0
                    )?;
                    for failing in &report.failing {
                        let place = match (&failing.file, failing.line) {
                            (Some(file), Some(line)) => format!(" at {}:{line}", file.display()),
                            _ => String::new(),
                        };
                        let message = failing
                            .message
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default();
                        outln!("  FAILED {}{place}{message}", failing.name)?;
                    }
                    // A runner that failed without a failing test (a compile error in a test,
                    // a crash) shows its output: nothing else would explain it.
                    let success = test_run::passed(&report, runner);
                    if !success && report.failing.is_empty() {
                        outln!("{}", output.trim_end())?;
                    }
                    tests_pass = success;
                    self.reports
                        .push(Report::Tests(places_inside(report, &self.root)));
                }
                Err(e) => {
                    outln!("tests: could not run them: {}", crate::out::error_text(&e))?;
                    tests_pass = false;
                }
            }
        }
        let Some(supervisor) = supervisor else {
            return Ok(());
        };
        if !tests_pass {
            if supervisor.pid().is_none() {
                // Say why nothing runs: the program is held back until the tests pass.
                outln!(
                    "[{}] tests failed; not starting it until they pass",
                    supervisor.name
                )?;
            }
            if let Some(pid) = supervisor.pid() {
                let message = format!("tests failed; keeping the old process (pid {pid}) running");
                outln!("[{}] {message}", supervisor.name)?;
                self.reports.push(process_report(
                    supervisor,
                    ProcessAction::Kept,
                    Some(pid),
                    None,
                    message,
                ));
            }
            return Ok(());
        }
        if supervisor.pid().is_some() && !supervisor.binary_changed() {
            return Ok(());
        }
        let (action, stopped) = match supervisor.pid() {
            Some(_) => (ProcessAction::Restarted, supervisor.stop().await),
            None => (ProcessAction::Started, None),
        };
        let pid = supervisor.start()?;
        let message = match &stopped {
            Some(status) => {
                format!("restarted with the new build (pid {pid}; the old one ended with {status})")
            }
            None => format!("started (pid {pid})"),
        };
        outln!("[{}] {message}", supervisor.name)?;
        self.reports.push(process_report(
            supervisor,
            action,
            Some(pid),
            stopped,
            message,
        ));
        Ok(())
    }
}

fn process_report(
    supervisor: &Supervisor,
    action: ProcessAction,
    pid: Option<u32>,
    status: Option<String>,
    message: String,
) -> Report {
    Report::Process(ProcessReport {
        bin: supervisor.name.clone(),
        action,
        pid,
        status,
        message,
    })
}

/// The supervisor of the binary `--run` keeps running: `--bin NAME`, or the workspace's only
/// binary.
fn supervisor_for(
    workspace: &WorkspaceStatus,
    options: &WatchOptions,
) -> anyhow::Result<Supervisor> {
    let Some(target_dir) = &workspace.target_dir else {
        bail!(
            "{} cannot be built as it is: {}",
            workspace.root.display(),
            workspace.error.as_deref().unwrap_or("no target dir")
        );
    };
    let bins = binaries(&workspace.root)?;
    let name = match (&options.bin, bins.as_slice()) {
        (Some(bin), _) if bins.contains(bin) => bin.clone(),
        (Some(bin), _) => bail!(
            "the workspace has no binary `{bin}`; it has: {}",
            if bins.is_empty() {
                "none".to_owned()
            } else {
                bins.join(", ")
            }
        ),
        (None, [only]) => only.clone(),
        (None, []) => bail!(
            "the workspace at {} has no binary to run",
            workspace.root.display()
        ),
        (None, _) => bail!(
            "the workspace has several binaries ({}): pick one with --bin",
            bins.join(", ")
        ),
    };
    let path = target_dir.join("debug").join(&name);
    Ok(Supervisor::new(
        name,
        path,
        options.args.clone(),
        options.grace,
    ))
}

/// The names of the binaries of the workspace's members.
fn binaries(root: &Path) -> anyhow::Result<Vec<String>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .current_dir(root)
        .no_deps()
        .exec()
        .with_context(|| format!("cargo metadata failed in {}", root.display()))?;
    let members: std::collections::BTreeSet<_> = metadata.workspace_members.iter().collect();
    let mut bins: Vec<String> = metadata
        .packages
        .iter()
        .filter(|p| members.contains(&p.id))
        .flat_map(|p| p.targets.iter())
        .filter(|t| t.is_bin())
        .map(|t| t.name.clone())
        .collect();
    bins.sort();
    Ok(bins)
}

/// The report without the places outside the workspace (a panic in a dependency's code, or
/// in std), which the daemon refuses: they are printed here, and not sent.
fn places_inside(mut report: TestReport, root: &Path) -> TestReport {
    for failing in &mut report.failing {
        let inside = failing.file.as_deref().is_none_or(|file| {
            !file
                .components()
                .any(|c| c == std::path::Component::ParentDir)
                && (file.is_relative() || file.starts_with(root))
        });
        if !inside {
            failing.file = None;
            failing.line = None;
            failing.column = None;
        }
    }
    report
}
