//! The view's loop: one `select!` over the stop signals, the keys, the daemon's events, the
//! tests that run, the program and a tick, feeding `crate::tui`'s model and drawing it.
//!
//! Unlike the line follower it never waits inside an event: the tests run as a future polled
//! by the loop, so the view keeps drawing and answering keys while they run. The stop
//! signals are the same listeners as the line follower's, created when the command starts,
//! so a SIGTERM or SIGHUP is never lost; Ctrl-C arrives as a key in raw mode.

use std::future::Future;
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

pub(super) async fn follow(
    mut client: Client,
    mut after: After<'_>,
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
    let mut tests: Option<TestRun<'_>> = None;
    let mut test_runner = after.runner;
    let mut refresh = false;
    // A build that succeeded while the tests of an older one ran: its tests run next, as the
    // line follower runs them after the tests it waits for.
    let mut tests_owed: Option<u64> = None;
    // A workspace that is warm already gets its tests and program at once.
    if let (WorkspaceState::Idle, Some(job)) = (workspace.state, &workspace.last_job) {
        match after.runner {
            Some(runner) => {
                view.tests_started(Instant::now());
                tests = Some(test_run_of(&after, job.id, runner, true));
            }
            None => {
                after
                    .program(supervisor.as_mut(), true, Some(job.id))
                    .await?
            }
        }
    }

    let code = loop {
        // The status, when asked for, is newer than every message queued before its reply:
        // the view takes it after them.
        let mut fresh_status = None;
        if refresh {
            refresh = false;
            let reply = client
                .call_with(
                    Request::Status {
                        root: Some(root.clone()),
                    },
                    |m| queue.push(m),
                )
                .await?;
            if let ServerMessage::Status { status, .. } = reply {
                fresh_status = status.workspaces.into_iter().find(|w| w.root == root);
            }
        }
        for message in std::mem::take(&mut queue) {
            // What follows a job needs the loop's parts; the view takes the rest. Every
            // message comes this way, also those that arrived during a request's reply.
            if let ServerMessage::Event { event } = &message
                && let EventKind::Executable { job, path, .. } = &event.kind
            {
                after.executable(*job, path, supervisor.as_mut()).await?;
            }
            if let ServerMessage::Event { event } = &message
                && let EventKind::JobFinished { summary, .. } = &event.kind
            {
                match summary.result {
                    JobResult::Success => match after.runner {
                        Some(runner) if tests.is_none() => {
                            view.tests_started(Instant::now());
                            tests = Some(test_run_of(&after, summary.id, runner, true));
                        }
                        // A build while the tests run: its tests follow them.
                        Some(_) => tests_owed = Some(summary.id),
                        None => {
                            after
                                .program(supervisor.as_mut(), true, Some(summary.id))
                                .await?
                        }
                    },
                    JobResult::Failed => after.build_failed(summary.id, supervisor.as_mut())?,
                    JobResult::Cancelled | JobResult::Yielded => {
                        after.job_stopped(summary.id, supervisor.as_ref())?
                    }
                }
            }
            refresh |= on_message(&mut view, message);
        }
        if let Some(ws) = &fresh_status {
            view.status(ws);
        }
        for report in after.reports.drain(..) {
            client
                .send(Request::Report {
                    root: root.clone(),
                    report,
                })
                .await?;
        }
        if let Say::Keep(kept) = &mut after.say {
            for line in kept.drain(..) {
                view.notice(line);
            }
        }
        let max_scroll = screen
            .draw(&view, Instant::now(), theme)
            .context("failed to draw the view")?;
        view.clamp_scroll(max_scroll);
        if panic_on_purpose {
            panic!("the view panicked on purpose ({PANIC_ENV} is set)");
        }

        let program_exit = program_exit(supervisor.as_mut());
        let restart = restart_due(after.restart_at);
        let test_result = async {
            match tests.as_mut() {
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
                let Some(effect) = tui::action(key).and_then(|a| view.act(a)) else {
                    continue;
                };
                match effect {
                    // A second quit does not wait for the tests: they finish on their own.
                    Effect::Quit if tests.is_some() && !view.quitting => view.quitting = true,
                    Effect::Quit => break exit::SUCCESS,
                    Effect::Rebuild => {
                        client.send(Request::Rebuild { root: root.clone() }).await?;
                        view.notice("rebuild asked for".to_owned());
                    }
                    Effect::Cancel => {
                        client.send(Request::Cancel { root: root.clone() }).await?;
                        view.notice("cancel asked for".to_owned());
                    }
                    Effect::RunTests if tests.is_some() => {
                        view.notice("the tests are running already".to_owned());
                    }
                    Effect::RunTests => {
                        let runner = *test_runner.get_or_insert_with(Runner::detect);
                        let job = view.last_job.as_ref().map_or(0, |j| j.id);
                        view.tests_started(Instant::now());
                        tests = Some(test_run_of(&after, job, runner, false));
                    }
                }
            }
            _ = tick.tick() => {}
            Some(line) = program_lines.recv() => view.notice(line),
            status = program_exit => {
                let supervisor = supervisor.as_ref().expect("only polled with a supervisor");
                after.program_exited(supervisor, status)?;
            }
            _ = restart => {
                let supervisor = supervisor.as_mut().expect("only set with a supervisor");
                after.restart(supervisor)?;
            }
            (runner, then_program, result) = test_result => {
                tests = None;
                let (pass, report) = after.tests_done(runner, result)?;
                view.tests_finished(report);
                // A view that quits stops the program anyway: no new one for that.
                if then_program && !view.quitting {
                    // With --test the program never restarts before its tests.
                    after.program(supervisor.as_mut(), pass, None).await?;
                }
                if view.quitting {
                    break exit::SUCCESS;
                }
                if let (Some(job), Some(runner)) = (tests_owed.take(), after.runner) {
                    view.tests_started(Instant::now());
                    tests = Some(test_run_of(&after, job, runner, true));
                }
            }
            message = client.recv() => {
                after.note_uptime(supervisor.as_ref());
                match message? {
                    // Taken at the top of the loop, with what a status reply brought along.
                    Some(message) => queue.push(message),
                    None => break exit::UNREACHABLE,
                }
            }
        }
    };
    drop(screen);
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
