//! The view's loop: one `select!` over the stop signals, the keys, the daemon's events, the
//! tests that run, the program and a tick, feeding `crate::tui`'s model and drawing it.
//!
//! Unlike the line follower it never waits inside an event: the tests run as a future polled
//! by the loop, so the view keeps drawing and answering keys while they run. The stop
//! signals are the same listeners as the line follower's, created when the command starts,
//! so a SIGTERM or SIGHUP is never lost; Ctrl-C arrives as a key in raw mode.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::Context;
use buildd_daemon::client::Client;
use buildd_daemon::protocol::{
    EventKind, JobResult, Request, ServerMessage, TestReport, WorkspaceState, WorkspaceStatus,
};
use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;

use crate::commands::watch::after::{After, Say, program_exit, restart_due};
use crate::exit;
use crate::stop_signal::StopSignals;
use crate::supervise::Supervisor;
use crate::test_run::{self, Runner};
use crate::tui::{self, Effect, Screen, Theme, View};

/// How often the view redraws with nothing new (the time since the last change, the time
/// the tests have run).
const TICK: Duration = Duration::from_millis(500);

/// Set, the view panics after it first drew: only the tests use it, to see the terminal
/// restored after a panic.
const PANIC_ENV: &str = "BUILDD_TEST_VIEW_PANIC";

/// A test run: the runner, whether the program follows it (a run after a build with
/// `--test`, not `t`), and its result.
type TestRun<'a> =
    Pin<Box<dyn Future<Output = (Runner, bool, anyhow::Result<(TestReport, String)>)> + 'a>>;

/// The loop's state besides the screen, the keys and the signals.
struct Follow<'a> {
    client: Client,
    after: After<'a>,
    supervisor: Option<Supervisor>,
    root: PathBuf,
    view: View,
    /// Messages that arrived during a request's reply, or since the last turn.
    queue: Vec<ServerMessage>,
    tests: Option<TestRun<'a>>,
    test_runner: Option<Runner>,
    /// Ask for the status at the next turn.
    refresh: bool,
    /// A build that succeeded while the tests of an older one ran: its tests run next, as
    /// the line follower runs them after the tests it waits for.
    tests_owed: Option<u64>,
}

pub(super) async fn follow(
    mut client: Client,
    after: After<'_>,
    mut supervisor: Option<Supervisor>,
    mut stop: StopSignals,
    workspace: WorkspaceStatus,
) -> anyhow::Result<i32> {
    let root = after.root.clone();
    let mut view = View::new(&workspace);
    // The diagnostics so far; events that arrive meanwhile follow them.
    let mut queue = Vec::new();
    let reply = client
        .call_with(Request::Diagnostics { root: root.clone() }, |m| {
            queue.push(m)
        })
        .await?;
    if let ServerMessage::Diagnostics { files, .. } = reply {
        view.snapshot(files);
    }
    let (output, mut program_lines) = tokio::sync::mpsc::unbounded_channel();
    if let Some(supervisor) = supervisor.as_mut() {
        supervisor.send_output_to(output);
    }
    let theme = Theme::from_env();
    let panic_on_purpose = std::env::var_os(PANIC_ENV).is_some_and(|v| !v.is_empty());
    let mut screen = Screen::open().context(
        "failed to open the full-screen view on this terminal (--plain prints lines instead)",
    )?;
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let test_runner = after.runner;
    let mut f = Follow {
        client,
        after,
        supervisor,
        root,
        view,
        queue,
        tests: None,
        test_runner,
        refresh: false,
        tests_owed: None,
    };
    f.start_warm(&workspace).await?;

    let code = loop {
        f.catch_up().await?;
        let max_scroll = screen
            .draw(&f.view, Instant::now(), theme)
            .context("failed to draw the view")?;
        f.view.clamp_scroll(max_scroll);
        if panic_on_purpose {
            panic!("the view panicked on purpose ({PANIC_ENV} is set)");
        }

        let program_exit = program_exit(f.supervisor.as_mut());
        let restart = restart_due(f.after.restart_at);
        let test_result = async {
            match f.tests.as_mut() {
                Some(run) => run.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.recv() => break exit::SUCCESS,
            key = keys.next() => {
                let key = match key {
                    Some(Ok(Event::Key(key))) => key,
                    // A resize is drawn at the next turn; the rest means nothing here.
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e).context("failed to read the keyboard"),
                    None => break exit::SUCCESS,
                };
                let Some(effect) = tui::action(key).and_then(|a| f.view.act(a)) else {
                    continue;
                };
                if f.on_effect(effect).await? {
                    break exit::SUCCESS;
                }
            }
            _ = tick.tick() => {}
            Some(line) = program_lines.recv() => f.view.notice(line),
            status = program_exit => {
                let supervisor = f.supervisor.as_ref().expect("only polled with a supervisor");
                f.after.program_exited(supervisor, status)?;
            }
            _ = restart => {
                let supervisor = f.supervisor.as_mut().expect("only set with a supervisor");
                f.after.restart(supervisor)?;
            }
            (runner, then_program, result) = test_result => {
                f.tests = None;
                if f.tests_done(runner, then_program, result).await? {
                    break exit::SUCCESS;
                }
            }
            message = f.client.recv() => {
                f.after.note_uptime(f.supervisor.as_ref());
                match message? {
                    // Taken at the top of the loop, with what a status reply brought along.
                    Some(message) => f.queue.push(message),
                    None => break exit::UNREACHABLE,
                }
            }
        }
    };
    drop(screen);
    let Follow {
        mut client,
        mut supervisor,
        root,
        ..
    } = f;
    if code == exit::UNREACHABLE {
        errln!("buildd: the daemon stopped");
        if let Some(supervisor) = supervisor.as_mut() {
            supervisor.stop().await;
        }
        return Ok(code);
    }
    if let Some(report) = After::stop_program(supervisor.as_mut()).await {
        let _ = client.send(Request::Report { root, report }).await;
    }
    Ok(code)
}

impl<'a> Follow<'a> {
    /// A workspace that is warm already gets its tests and program at once.
    async fn start_warm(&mut self, workspace: &WorkspaceStatus) -> anyhow::Result<()> {
        if let (WorkspaceState::Idle, Some(job)) = (workspace.state, &workspace.last_job) {
            match self.after.runner {
                Some(runner) => {
                    self.view.tests_started(Instant::now());
                    self.tests = Some(test_run_of(&self.after, job.id, runner, true));
                }
                None => {
                    self.after
                        .program(self.supervisor.as_mut(), true, Some(job.id))
                        .await?
                }
            }
        }
        Ok(())
    }

    /// Takes what arrived since the last turn: the status when asked for, the queued
    /// messages, the reports to send and the lines to show.
    async fn catch_up(&mut self) -> anyhow::Result<()> {
        // The status, when asked for, is newer than every message queued before its reply:
        // the view takes it after them.
        let mut fresh_status = None;
        if self.refresh {
            self.refresh = false;
            let queue = &mut self.queue;
            let reply = self
                .client
                .call_with(
                    Request::Status {
                        root: Some(self.root.clone()),
                    },
                    |m| queue.push(m),
                )
                .await?;
            if let ServerMessage::Status { status, .. } = reply {
                fresh_status = status.workspaces.into_iter().find(|w| w.root == self.root);
            }
        }
        for message in std::mem::take(&mut self.queue) {
            self.after_job(&message).await?;
            self.refresh |= on_message(&mut self.view, message);
        }
        if let Some(ws) = &fresh_status {
            self.view.status(ws);
        }
        for report in self.after.reports.drain(..) {
            self.client
                .send(Request::Report {
                    root: self.root.clone(),
                    report,
                })
                .await?;
        }
        if let Say::Keep(kept) = &mut self.after.say {
            for line in kept.drain(..) {
                self.view.notice(line);
            }
        }
        Ok(())
    }

    /// What follows a job needs the loop's parts; the view takes the rest. Every message
    /// comes this way, also those that arrived during a request's reply.
    async fn after_job(&mut self, message: &ServerMessage) -> anyhow::Result<()> {
        let ServerMessage::Event { event } = message else {
            return Ok(());
        };
        match &event.kind {
            EventKind::Executable { job, path, .. } => {
                self.after
                    .executable(*job, path, self.supervisor.as_mut())
                    .await?;
            }
            EventKind::JobFinished { summary, .. } => match summary.result {
                JobResult::Success => match self.after.runner {
                    Some(runner) if self.tests.is_none() => {
                        self.view.tests_started(Instant::now());
                        self.tests = Some(test_run_of(&self.after, summary.id, runner, true));
                    }
                    // A build while the tests run: its tests follow them.
                    Some(_) => self.tests_owed = Some(summary.id),
                    None => {
                        self.after
                            .program(self.supervisor.as_mut(), true, Some(summary.id))
                            .await?
                    }
                },
                JobResult::Failed => self
                    .after
                    .build_failed(summary.id, self.supervisor.as_mut())?,
                JobResult::Cancelled | JobResult::Yielded => self
                    .after
                    .job_stopped(summary.id, self.supervisor.as_ref())?,
            },
            _ => {}
        }
        Ok(())
    }

    /// What a key asked for. Returns whether the view quits now.
    async fn on_effect(&mut self, effect: Effect) -> anyhow::Result<bool> {
        match effect {
            // A second quit does not wait for the tests: they finish on their own.
            Effect::Quit if self.tests.is_some() && !self.view.quitting => {
                self.view.quitting = true
            }
            Effect::Quit => return Ok(true),
            Effect::Rebuild => {
                let root = self.root.clone();
                self.client.send(Request::Rebuild { root }).await?;
                self.view.notice("rebuild asked for".to_owned());
            }
            Effect::Cancel => {
                let root = self.root.clone();
                self.client.send(Request::Cancel { root }).await?;
                self.view.notice("cancel asked for".to_owned());
            }
            Effect::RunTests if self.tests.is_some() => {
                self.view.notice("the tests are running already".to_owned());
            }
            Effect::RunTests => {
                let runner = *self.test_runner.get_or_insert_with(Runner::detect);
                let job = self.view.last_job.as_ref().map_or(0, |j| j.id);
                self.view.tests_started(Instant::now());
                self.tests = Some(test_run_of(&self.after, job, runner, false));
            }
        }
        Ok(false)
    }

    /// A test run ended. Returns whether the view quits now (it waited for them).
    async fn tests_done(
        &mut self,
        runner: Runner,
        then_program: bool,
        result: anyhow::Result<(TestReport, String)>,
    ) -> anyhow::Result<bool> {
        let (pass, report) = self.after.tests_done(runner, result)?;
        self.view.tests_finished(report);
        // A view that quits stops the program anyway: no new one for that.
        if then_program && !self.view.quitting {
            // With --test the program never restarts before its tests.
            self.after
                .program(self.supervisor.as_mut(), pass, None)
                .await?;
        }
        if self.view.quitting {
            return Ok(true);
        }
        if let (Some(job), Some(runner)) = (self.tests_owed.take(), self.after.runner) {
            self.view.tests_started(Instant::now());
            self.tests = Some(test_run_of(&self.after, job, runner, true));
        }
        Ok(false)
    }
}

/// A message of the daemon into the view. Returns whether the view should ask for the
/// status again (a job started or ended: the jobs' results and the last change are there).
fn on_message(view: &mut View, message: ServerMessage) -> bool {
    match message {
        ServerMessage::Event { event } => {
            let refresh = matches!(
                event.kind,
                EventKind::JobStarted { .. } | EventKind::JobFinished { .. }
            );
            view.event(event.kind, Instant::now());
            refresh
        }
        ServerMessage::Error { message, .. } => {
            view.notice(format!("the daemon refused: {message}"));
            false
        }
        _ => false,
    }
}

/// The tests after job `job`, as a future the loop polls.
fn test_run_of<'a>(after: &After<'a>, job: u64, runner: Runner, then_program: bool) -> TestRun<'a> {
    let session = after.session;
    let root = after.root.clone();
    let extra = after.test_args();
    Box::pin(async move {
        let result = test_run::run(session, &root, job, runner, &extra, false).await;
        (runner, then_program, result)
    })
}
