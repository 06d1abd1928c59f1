//! What `buildd watch` does after a job, in the line follower and the view alike: run the
//! tests (`--test`), start, restart or keep the program (`--run`), and tell the daemon with
//! reports. Its messages go to stdout as lines, or to the view as notices.

use std::path::{Path, PathBuf};
use std::time::Duration;

use buildd_daemon::protocol::{ProcessAction, ProcessReport, Report, TestReport};

use crate::cli::WatchOptions;
use crate::connect::Session;
use crate::supervise::Supervisor;
use crate::test_run::{self, Runner};

/// Restarts of a program that keeps exiting back off from one second to half a minute; a run
/// longer than that resets the backoff.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where the messages go.
pub(super) enum Say {
    /// Printed on stdout, one line each.
    Print,
    /// Kept for the view to take.
    Keep(Vec<String>),
}

/// The state of the watch that outlives one event.
pub(super) struct After<'a> {
    pub(super) session: &'a Session,
    pub(super) root: PathBuf,
    pub(super) options: &'a WatchOptions,
    pub(super) runner: Option<Runner>,
    /// Reports to send to the daemon.
    pub(super) reports: Vec<Report>,
    pub(super) say: Say,
    backoff: Duration,
    /// When to start the program again after it exited on its own.
    pub(super) restart_at: Option<tokio::time::Instant>,
    /// The job whose binary the program was restarted with as soon as it was linked, while
    /// that job went on: how the job ends is then news about the program that runs.
    linked: Option<u64>,
}

impl<'a> After<'a> {
    pub(super) fn new(
        session: &'a Session,
        root: PathBuf,
        options: &'a WatchOptions,
        say: Say,
    ) -> After<'a> {
        After {
            session,
            root,
            options,
            runner: options.test.then(Runner::detect),
            reports: Vec::new(),
            say,
            backoff: BACKOFF_START,
            restart_at: None,
            linked: None,
        }
    }

    pub(super) fn say(&mut self, text: String) -> anyhow::Result<()> {
        match &mut self.say {
            Say::Print => outln!("{text}"),
            Say::Keep(kept) => {
                kept.push(text);
                Ok(())
            }
        }
    }

    /// The arguments for the test runner: with --run the trailing arguments are the
    /// program's.
    pub(super) fn test_args(&self) -> Vec<String> {
        if self.options.run {
            Vec::new()
        } else {
            self.options.args.clone()
        }
    }

    /// A job's stage linked an executable (or found it up to date) at `path`. Without
    /// `--test`, the program restarts on it at once when it is the program's binary and the
    /// file differs from the one that runs, while the rest of the job goes on; with `--test`
    /// the tests after the job decide, as before.
    ///
    /// The file is in place: cargo reports the artifact after it linked it and uplifted it
    /// into `target/debug/`, the path the program runs from. A fresh artifact is the same
    /// file as before (same inode and mtime), so it restarts nothing, unless the binary was
    /// replaced since the program started (a `buildd cargo build` of the user's relinked it):
    /// then the program on disk is newer than the one that runs, as at a job's end.
    pub(super) async fn executable(
        &mut self,
        job: u64,
        path: &Path,
        supervisor: Option<&mut Supervisor>,
    ) -> anyhow::Result<()> {
        let Some(supervisor) = supervisor else {
            return Ok(());
        };
        // One start per build: a program that exited on its own is started again for a new
        // binary, not for the test stage finding the same one up to date (the job's end
        // starts it then, as before).
        if self.options.test || path != supervisor.path() || !supervisor.binary_changed() {
            return Ok(());
        }
        if self.start_or_restart(supervisor, Some(job)).await? {
            self.linked = Some(job);
        }
        Ok(())
    }

    /// A job was cancelled or yielded: when the program was restarted with its binary, say
    /// which build runs (the next job links a newer one, or finds it up to date).
    pub(super) fn job_stopped(
        &mut self,
        job: u64,
        supervisor: Option<&Supervisor>,
    ) -> anyhow::Result<()> {
        if self.linked.take_if(|linked| *linked == job).is_none() {
            return Ok(());
        }
        let Some((supervisor, pid)) = supervisor.and_then(|s| Some((s, s.pid()?))) else {
            return Ok(());
        };
        self.say(format!(
            "[{}] job #{job} was stopped after it linked the binary; the program runs that \
             build (pid {pid}) until a newer one is linked",
            supervisor.name
        ))
    }

    /// After a successful build: the tests, then the program.
    pub(super) async fn after_success(
        &mut self,
        job: u64,
        supervisor: Option<&mut Supervisor>,
    ) -> anyhow::Result<()> {
        let mut tests_pass = true;
        if let Some(runner) = self.runner {
            let extra = self.test_args();
            let result = test_run::run(self.session, &self.root, job, runner, &extra, true).await;
            tests_pass = self.tests_done(runner, result)?.0;
        }
        self.program(supervisor, tests_pass, Some(job)).await
    }

    /// Says how a test run went and keeps its report for the daemon. Returns whether the
    /// tests passed, and the report when they ran.
    pub(super) fn tests_done(
        &mut self,
        runner: Runner,
        result: anyhow::Result<(TestReport, String)>,
    ) -> anyhow::Result<(bool, Option<TestReport>)> {
        match result {
            Ok((report, output)) => {
                self.say(format!(
                    "tests: {} passed, {} failed, {} ignored ({}, {:.1}s)",
                    report.passed,
                    report.failed,
                    report.ignored,
                    report.runner,
                    report.duration_ms as f64 / 1000.0
                ))?;
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
                    self.say(format!("  FAILED {}{place}{message}", failing.name))?;
                }
                // A runner that failed without a failing test (a compile error in a test,
                // a crash) shows its output: nothing else would explain it.
                let success = test_run::passed(&report, runner);
                if !success && report.failing.is_empty() {
                    self.say(output.trim_end().to_owned())?;
                }
                let report = places_inside(report, &self.root);
                self.reports.push(Report::Tests(report.clone()));
                Ok((success, Some(report)))
            }
            Err(e) => {
                self.say(format!(
                    "tests: could not run them: {}",
                    crate::out::error_text(&e)
                ))?;
                Ok((false, None))
            }
        }
    }

    /// After the tests (or a build without them) of job `job`: start the program, or restart
    /// it when the build changed it, or keep the old one when the tests failed. A program
    /// (re)started with this job's binary as soon as it was linked is left as it is, even if
    /// it exited since: that build has had its start.
    pub(super) async fn program(
        &mut self,
        supervisor: Option<&mut Supervisor>,
        tests_pass: bool,
        job: Option<u64>,
    ) -> anyhow::Result<()> {
        // The job ended well: what the program runs is no longer news of a job that goes on.
        let linked = self.linked.take();
        if linked.is_some() && linked == job {
            return Ok(());
        }
        let Some(supervisor) = supervisor else {
            return Ok(());
        };
        if !tests_pass {
            if supervisor.pid().is_none() {
                // Say why nothing runs: the program is held back until the tests pass.
                self.say(format!(
                    "[{}] tests failed; not starting it until they pass",
                    supervisor.name
                ))?;
            }
            return self.keep(supervisor, "tests failed");
        }
        self.start_or_restart(supervisor, None).await?;
        Ok(())
    }

    /// Starts the program, or restarts it when its binary changed; `linked` is the job whose
    /// stage just linked it while the job goes on. Returns whether it (re)started.
    async fn start_or_restart(
        &mut self,
        supervisor: &mut Supervisor,
        linked: Option<u64>,
    ) -> anyhow::Result<bool> {
        if supervisor.pid().is_some() && !supervisor.binary_changed() {
            return Ok(false);
        }
        let (action, stopped) = match supervisor.pid() {
            Some(_) => (ProcessAction::Restarted, supervisor.stop().await),
            None => (ProcessAction::Started, None),
        };
        let pid = supervisor.start()?;
        // A start for a build replaces one the backoff of an exited program had planned.
        self.restart_at = None;
        let early = match linked {
            Some(job) => format!(", linked by job #{job}, which goes on"),
            None => String::new(),
        };
        let message = match &stopped {
            Some(status) => format!(
                "restarted with the new build (pid {pid}; the old one ended with {status}){early}"
            ),
            None => format!("started (pid {pid}){early}"),
        };
        self.say(format!("[{}] {message}", supervisor.name))?;
        self.reports.push(process_report(
            supervisor,
            action,
            Some(pid),
            stopped,
            message,
        ));
        Ok(true)
    }

    /// A failed build keeps the program that runs. When the program was restarted with this
    /// job's binary before the job failed (a later stage, another package, the test build),
    /// that is the new build, and the message says so: the binary compiled and linked, and
    /// what failed is in the job's line and diagnostics.
    pub(super) fn build_failed(
        &mut self,
        job: u64,
        supervisor: Option<&mut Supervisor>,
    ) -> anyhow::Result<()> {
        let linked = self.linked.take_if(|linked| *linked == job).is_some();
        let Some(supervisor) = supervisor else {
            return Ok(());
        };
        match supervisor.pid() {
            Some(pid) if linked => self.kept(
                supervisor,
                pid,
                format!(
                    "job #{job} failed after it linked the binary; the program runs that new \
                     build (pid {pid})"
                ),
            ),
            _ => self.keep(supervisor, "the build failed"),
        }
    }

    /// Says that the program that runs, if one does, keeps running because of `why`.
    fn keep(&mut self, supervisor: &Supervisor, why: &str) -> anyhow::Result<()> {
        match supervisor.pid() {
            Some(pid) => self.kept(
                supervisor,
                pid,
                format!("{why}; keeping the old process (pid {pid}) running"),
            ),
            None => Ok(()),
        }
    }

    /// Says `message` about the program that keeps running, and reports it as kept.
    fn kept(&mut self, supervisor: &Supervisor, pid: u32, message: String) -> anyhow::Result<()> {
        self.say(format!("[{}] {message}", supervisor.name))?;
        self.reports.push(process_report(
            supervisor,
            ProcessAction::Kept,
            Some(pid),
            None,
            message,
        ));
        Ok(())
    }

    /// Stops the program when the watch ends, and returns the report that says so.
    pub(super) async fn stop_program(supervisor: Option<&mut Supervisor>) -> Option<Report> {
        let supervisor = supervisor?;
        let pid = supervisor.pid()?;
        let status = supervisor.stop().await?;
        Some(process_report(
            supervisor,
            ProcessAction::Stopped,
            Some(pid),
            Some(status.clone()),
            format!("stopped (pid {pid}, {status})"),
        ))
    }

    /// The program exited on its own: say so, and with --restart-on-exit start it again
    /// after the backoff.
    pub(super) fn program_exited(
        &mut self,
        supervisor: &Supervisor,
        status: String,
    ) -> anyhow::Result<()> {
        let message = format!("exited on its own ({status})");
        self.say(format!("[{}] {message}", supervisor.name))?;
        self.reports.push(process_report(
            supervisor,
            ProcessAction::Exited,
            None,
            Some(status),
            message,
        ));
        if self.options.restart_on_exit {
            self.say(format!(
                "[{}] restarting in {}s",
                supervisor.name,
                self.backoff.as_secs()
            ))?;
            self.restart_at = Some(tokio::time::Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
        Ok(())
    }

    /// The backoff is over: start the program again.
    pub(super) fn restart(&mut self, supervisor: &mut Supervisor) -> anyhow::Result<()> {
        self.restart_at = None;
        let pid = supervisor.start()?;
        self.reports.push(process_report(
            supervisor,
            ProcessAction::Started,
            Some(pid),
            None,
            format!("started again (pid {pid})"),
        ));
        Ok(())
    }

    /// A program that ran longer than the longest backoff resets it.
    pub(super) fn note_uptime(&mut self, supervisor: Option<&Supervisor>) {
        if supervisor
            .and_then(|s| s.uptime())
            .is_some_and(|u| u > BACKOFF_MAX)
        {
            self.backoff = BACKOFF_START;
        }
    }
}

/// Resolves when the program exits on its own, with how it ended; never without one.
pub(super) async fn program_exit(supervisor: Option<&mut Supervisor>) -> String {
    match supervisor {
        Some(supervisor) => supervisor.exited().await,
        None => std::future::pending().await,
    }
}

/// Resolves at `at`; never without it.
pub(super) async fn restart_due(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
