//! The view without a terminal: the model fed with the daemon's events as they come on the
//! wire, and frames drawn on ratatui's `TestBackend`, held to snapshots at 80x24 and 40x10.

use std::time::{Duration, Instant};

use buildd_daemon::protocol::{
    Diagnostic, EventKind, JobResult, JobSummary, Stage, TestReport, WorkspaceState,
    WorkspaceStatus,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use serde_json::json;

use crate::tui::model::{Action, Effect, Item, Screen, View};
use crate::tui::render::{Theme, draw};

const ROOT: &str = "/home/me/shop";

fn status(state: &str) -> WorkspaceStatus {
    let job = |name: &str, command: &str, diagnostics: bool, result: &str| {
        json!({
            "name": name, "command": command.split(' ').collect::<Vec<_>>(), "origin": "default",
            "diagnostics": diagnostics, "last_result": result, "last_duration_ms": 1200
        })
    };
    serde_json::from_value(json!({
        "root": ROOT, "state": state, "error": null, "target_dir": null,
        "target_dir_size": null, "key": null, "last_change": null, "current_job": null,
        "last_job": null, "last_tests": null, "jobs_started": 3,
        "prediction": {"jobs": 0, "precision": null, "recall": null},
        "watcher": {"kind": "native", "rescans": 0, "note": null},
        "diagnostics": [],
        "jobs": [
            job("clippy", "clippy --workspace --all-targets", true, "failed"),
            job("build", "build --workspace", false, "success"),
            job("test", "test --no-run --workspace", false, "success"),
        ],
    }))
    .unwrap()
}

/// A diagnostic as the daemon streams it, with rustc's JSON (the code line and its label).
fn diagnostic(severity: &str, file: &str, line: u32, message: &str, code: &str) -> Diagnostic {
    serde_json::from_value(json!({
        "file": format!("{ROOT}/{file}"), "line": line, "column": 5, "severity": severity,
        "message": message, "package": "shop",
        "rustc": {
            "message": message, "code": {"code": code, "explanation": null}, "level": severity,
            "spans": [{
                "file_name": file, "byte_start": 0, "byte_end": 2,
                "line_start": line, "line_end": line, "column_start": 5, "column_end": 7,
                "is_primary": true,
                "text": [{"text": "    42", "highlight_start": 5, "highlight_end": 7}],
                "label": "expected `&str`, found integer",
                "suggested_replacement": null, "suggestion_applicability": null,
                "expansion": null
            }],
            "children": [],
            "rendered": format!("{severity}[{code}]: {message}\n --> {file}:{line}:5\n  |\n{line} |     42\n  |     ^^ expected `&str`, found integer\n")
        }
    }))
    .unwrap()
}

/// A test failure as the daemon makes it from a test report: no package, no code.
fn test_failure(line: u32) -> Diagnostic {
    let mut d = diagnostic(
        "error",
        "src/lib.rs",
        line,
        "test `tests::adds` failed: one is not two",
        "x",
    );
    d.package = String::new();
    d.rustc.code = None;
    d.rustc.spans[0].text.clear();
    d
}

/// Job `job` started, with only a clippy stage.
fn started(job: u64, expected_units: Option<u64>) -> EventKind {
    EventKind::JobStarted {
        job,
        stages: vec![Stage::new("clippy")],
        expected_units,
    }
}

/// Cargo reported a unit of the `shop` package in job `job`'s clippy stage.
fn unit(job: u64, fresh: bool, done: u64) -> EventKind {
    EventKind::UnitFinished {
        job,
        stage: Stage::new("clippy"),
        package: "shop".into(),
        target: "shop".into(),
        fresh,
        done,
    }
}

fn summary(id: u64, result: JobResult, errors: u64) -> JobSummary {
    JobSummary {
        id,
        stages: vec![
            Stage::new("clippy"),
            Stage::new("build"),
            Stage::new("test"),
        ],
        result,
        duration_ms: 2300,
        units_compiled: 4,
        errors,
        warnings: 1,
        rebuilt: vec!["shop".into()],
        failure: None,
    }
}

/// A view that saw a change, a job whose clippy stage found an error and a warning, and the
/// job's end.
fn failed_view(now: Instant) -> View {
    let mut view = View::new(&status("idle"));
    let events = [
        EventKind::State {
            state: WorkspaceState::Queued,
            error: None,
        },
        EventKind::JobStarted {
            job: 7,
            stages: vec![Stage::new("clippy"), Stage::new("build")],
            expected_units: Some(8),
        },
        EventKind::StageStarted {
            job: 7,
            stage: Stage::new("clippy"),
        },
        EventKind::Diagnostic {
            job: 7,
            diagnostic: Box::new(diagnostic(
                "warning",
                "src/cart.rs",
                3,
                "unused variable: `total`",
                "unused_variables",
            )),
        },
        EventKind::Diagnostic {
            job: 7,
            diagnostic: Box::new(diagnostic(
                "error",
                "src/lib.rs",
                12,
                "mismatched types: this function is declared to return a string slice but \
                 its body ends in an integer",
                "E0308",
            )),
        },
        EventKind::JobFinished {
            job: 7,
            summary: summary(7, JobResult::Failed, 1),
            cleared: vec![],
        },
        EventKind::State {
            state: WorkspaceState::Failed,
            error: None,
        },
    ];
    for event in events {
        view.event(event, now);
    }
    view
}

fn frame(
    view: &View,
    now: Instant,
    width: u16,
    height: u16,
    theme: Theme,
) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| {
            draw(f, view, now, theme);
        })
        .unwrap();
    terminal
}

const COLOR: Theme = Theme { color: true };

#[test]
fn errors_come_first_and_warnings_toggle() {
    let now = Instant::now();
    let mut view = failed_view(now);
    let severities: Vec<_> = view.diagnostics().iter().map(|d| d.severity).collect();
    assert_eq!(format!("{severities:?}"), "[Error, Warning]");
    assert_eq!(view.counts(), (1, 1));
    assert_eq!(view.act(Action::ToggleWarnings), None);
    assert_eq!(view.diagnostics().len(), 1);
    // The counts still say what is hidden.
    assert_eq!(view.counts(), (1, 1));
}

#[test]
fn diagnostics_belong_to_the_stage_that_reported_them() {
    let now = Instant::now();
    let mut view = failed_view(now);
    assert_eq!(view.selected_job().unwrap().name.name(), "clippy");
    view.act(Action::NextJob);
    assert_eq!(view.selected_job().unwrap().name.name(), "build");
    assert!(view.diagnostics().is_empty(), "clippy's are not build's");
    view.act(Action::Job(0));
    assert_eq!(view.diagnostics().len(), 2);
}

#[test]
fn a_finished_job_clears_the_files_it_said_nothing_about() {
    let now = Instant::now();
    let mut view = failed_view(now);
    view.event(started(8, None), now);
    view.event(
        EventKind::JobFinished {
            job: 8,
            summary: summary(8, JobResult::Success, 0),
            cleared: vec![format!("{ROOT}/src/lib.rs").into()],
        },
        now,
    );
    let files: Vec<_> = view.diagnostics().iter().map(|d| d.file.clone()).collect();
    assert_eq!(
        files,
        vec![std::path::PathBuf::from(format!("{ROOT}/src/cart.rs"))]
    );
}

#[test]
fn test_failures_go_to_the_test_job_and_t_shows_it() {
    let now = Instant::now();
    let mut view = failed_view(now);
    // The daemon sends the failures of a report after the job, outside any stage.
    view.event(
        EventKind::Diagnostic {
            job: 7,
            diagnostic: Box::new(test_failure(14)),
        },
        now,
    );
    assert_eq!(view.diagnostics().len(), 2, "not clippy's");
    assert_eq!(view.act(Action::RunTests), Some(Effect::RunTests));
    assert_eq!(view.selected_job().unwrap().name.name(), "test");
    let items = view.items();
    assert!(
        matches!(items[..], [Item::Diagnostic(d)] if d.line == 14),
        "{items:?}"
    );
}

#[test]
fn progress_counts_units_and_names_the_crate() {
    let now = Instant::now();
    let mut view = failed_view(now);
    view.event(started(8, Some(4)), now);
    view.event(unit(8, false, 3), now);
    let run = view.run.as_ref().unwrap();
    assert_eq!(
        (run.percent(), run.compiling.as_deref()),
        (Some(75), Some("shop"))
    );
    // More units than expected never say 100% before the end.
    view.event(unit(8, true, 9), now);
    assert_eq!(view.run.as_ref().unwrap().percent(), Some(99));
}

#[test]
fn a_rebuild_is_not_a_change() {
    let then = Instant::now();
    let mut view = failed_view(then);
    let later = then + Duration::from_secs(30);
    assert_eq!(view.act(Action::Rebuild), Some(Effect::Rebuild));
    let queued = EventKind::State {
        state: WorkspaceState::Queued,
        error: None,
    };
    view.event(queued.clone(), later);
    assert_eq!(view.last_change.as_ref().unwrap().at, Some(then));
    // The next queue is a change again.
    view.event(queued, later);
    assert_eq!(view.last_change.as_ref().unwrap().at, Some(later));
}

#[test]
fn the_log_opens_at_its_end_and_a_key_up_moves_at_once() {
    let now = Instant::now();
    let mut view = failed_view(now);
    for i in 0..30 {
        view.notice(format!("notice {i}"));
    }
    view.act(Action::Log);
    let max = frame_max(&view, now, 40, 10);
    view.clamp_scroll(max);
    let shown = |view: &View| frame(view, now, 40, 10, COLOR).backend().to_string();
    // A row of the log starts with the notice (the status line shows the last one too).
    let row = |n: u32| format!("\"notice {n} ");
    assert!(shown(&view).contains(&row(29)), "{}", shown(&view));
    view.act(Action::Up);
    let up = shown(&view);
    assert!(!up.contains(&row(29)) && up.contains(&row(28)), "{up}");
}

/// How far the screen shown can scroll at this size.
fn frame_max(view: &View, now: Instant, width: u16, height: u16) -> usize {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let mut max = 0;
    terminal.draw(|f| max = draw(f, view, now, COLOR)).unwrap();
    max
}

#[test]
fn keys_that_need_the_daemon_are_effects() {
    let mut view = View::new(&status("idle"));
    assert_eq!(view.act(Action::Rebuild), Some(Effect::Rebuild));
    assert_eq!(view.act(Action::Cancel), Some(Effect::Cancel));
    assert_eq!(view.act(Action::Quit), Some(Effect::Quit));
    assert_eq!(view.act(Action::Help), None);
    assert_eq!(view.screen, Screen::Help);
    view.act(Action::Back);
    assert_eq!(view.screen, Screen::List);
}

#[test]
fn snapshot_failed_80x24() {
    let now = Instant::now();
    let view = failed_view(now);
    insta::assert_snapshot!(frame(&view, now + Duration::from_secs(12), 80, 24, COLOR).backend());
}

#[test]
fn snapshot_failed_40x10() {
    let now = Instant::now();
    let view = failed_view(now);
    insta::assert_snapshot!(frame(&view, now + Duration::from_secs(12), 40, 10, COLOR).backend());
}

#[test]
fn snapshot_running_with_tests_80x24() {
    let now = Instant::now();
    let mut view = failed_view(now);
    view.tests_finished(Some(TestReport {
        job: 7,
        runner: "cargo test".into(),
        passed: 3,
        failed: 1,
        ignored: 0,
        failing: vec![],
        duration_ms: 400,
        exit_code: Some(101),
    }));
    view.event(started(8, Some(8)), now);
    view.event(
        EventKind::StageStarted {
            job: 8,
            stage: Stage::new("clippy"),
        },
        now,
    );
    view.event(unit(8, false, 4), now);
    insta::assert_snapshot!(frame(&view, now + Duration::from_secs(75), 80, 24, COLOR).backend());
}

#[test]
fn snapshot_full_message_40x10() {
    let now = Instant::now();
    let mut view = failed_view(now);
    view.act(Action::Open);
    assert_eq!(view.screen, Screen::Detail);
    insta::assert_snapshot!(frame(&view, now, 40, 10, COLOR).backend());
}

#[test]
fn snapshot_help_80x24() {
    let now = Instant::now();
    let mut view = failed_view(now);
    view.act(Action::Help);
    insta::assert_snapshot!(frame(&view, now, 80, 24, COLOR).backend());
}

#[test]
fn no_color_draws_the_same_text_without_colours() {
    let now = Instant::now();
    let view = failed_view(now);
    let colored = frame(&view, now, 80, 24, COLOR);
    let plain = frame(&view, now, 80, 24, Theme { color: false });
    assert_eq!(
        colored.backend().to_string(),
        plain.backend().to_string(),
        "the same text"
    );
    let cells = plain.backend().buffer().content();
    assert!(
        cells
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "a colour in a NO_COLOR frame"
    );
    assert!(
        colored
            .backend()
            .buffer()
            .content()
            .iter()
            .any(|c| c.fg == Color::Red),
        "the error is red with colours"
    );
}

#[test]
fn every_size_down_to_one_cell_draws() {
    let now = Instant::now();
    let mut view = failed_view(now);
    for screen in [Action::Back, Action::Open, Action::Help, Action::Log] {
        view.act(Action::Back);
        view.act(screen);
        for (w, h) in [(1, 1), (10, 3), (40, 10), (200, 60)] {
            frame(&view, now, w, h, COLOR);
        }
    }
}
