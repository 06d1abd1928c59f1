//! Drawing the view: the state of [`View`] into a ratatui frame. Pure apart from the frame:
//! the same view, time and size always draw the same screen, which the snapshot tests hold
//! to. It changes nothing in the view (scrolling is worked out here from the selection).
//!
//! From top to bottom: the workspace and its state; the running job's progress (or the last
//! job) and the time of the last change; the jobs as tabs; the selected job's command and
//! result; the list (errors first, then warnings, each `file:line:col` with its message and
//! the code's first lines, wrapped to the width); a status line; the keys. Below 14 rows the
//! first two lines become one and the command's line goes.

use std::time::Instant;

use buildd_daemon::protocol::{Diagnostic, JobResult, Severity, TestReport, WorkspaceState};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::keys::KEYS;
use crate::tui::model::{Item, Run, Screen, View};
use crate::tui::wrap::{truncate, wrap};

/// Rows below which the view is drawn compact.
const COMPACT_BELOW: u16 = 14;
/// Source lines shown under a diagnostic in the list.
const CODE_LINES: usize = 2;

/// Colours, or none (`NO_COLOR`): then only bold and reverse video mark things.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Theme {
    pub(crate) color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to something (no-color.org).
    pub(crate) fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    fn severity(self, severity: Severity) -> Style {
        match severity {
            Severity::Error => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Severity::Warning => self.fg(Color::Yellow),
            Severity::Note | Severity::Help => self.fg(Color::Cyan),
        }
    }

    fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }

    fn state(self, state: WorkspaceState) -> Style {
        match state {
            WorkspaceState::Idle => self.fg(Color::Green),
            WorkspaceState::Queued | WorkspaceState::Running => self.fg(Color::Cyan),
            WorkspaceState::Failed | WorkspaceState::Error => {
                self.fg(Color::Red).add_modifier(Modifier::BOLD)
            }
        }
    }
}

/// Draws the view; returns how far the screen shown can scroll (0 for the list, which scrolls
/// to its selection), for the loop to keep the view's scroll within it.
pub(crate) fn draw(frame: &mut Frame, view: &View, now: Instant, theme: Theme) -> usize {
    let area = frame.area();
    let width = area.width as usize;
    let compact = area.height < COMPACT_BELOW;
    let mut top: Vec<Line> = Vec::new();
    if compact {
        top.push(spread(
            [
                vec![state_span(view, theme), Span::raw(" ")],
                progress(view, theme),
            ]
            .concat(),
            changed(view, now, theme),
            width,
        ));
    } else {
        let root = view.root.display().to_string();
        top.push(spread(
            vec![
                Span::styled("buildd watch ", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(truncate(&root, width.saturating_sub(22))),
            ],
            vec![state_span(view, theme)],
            width,
        ));
        top.push(spread(
            progress(view, theme),
            changed(view, now, theme),
            width,
        ));
    }
    top.push(tabs(view, theme));
    if !compact {
        top.push(job_line(view, theme, width));
    }
    let [head, body, status, footer] = Layout::vertical([
        Constraint::Length(top.len() as u16),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(top), head);
    let (rows, max_scroll) = match view.screen {
        Screen::List => (list(view, theme, body), 0),
        Screen::Detail => scrolled(detail(view, theme, width), view.scroll, body),
        Screen::Help => scrolled(help(theme, width), view.scroll, body),
        Screen::Log => scrolled(log(view, width), view.scroll, body),
    };
    frame.render_widget(Paragraph::new(rows), body);
    frame.render_widget(
        Paragraph::new(status_line(view, now, theme, compact)),
        status,
    );
    frame.render_widget(Paragraph::new(footer_line(view, theme, width)), footer);
    max_scroll
}

fn state_span(view: &View, theme: Theme) -> Span<'static> {
    let name = match view.state {
        WorkspaceState::Idle => "idle",
        WorkspaceState::Queued => "queued",
        WorkspaceState::Running => "running",
        WorkspaceState::Failed => "failed",
        WorkspaceState::Error => "error",
    };
    Span::styled(name, theme.state(view.state))
}

/// The running job with its percentage and the crate compiled last, or the last job.
fn progress(view: &View, theme: Theme) -> Vec<Span<'static>> {
    if let Some(run) = &view.run {
        return running(run);
    }
    match &view.last_job {
        Some(job) => {
            let (word, style) = match job.result {
                JobResult::Success => ("success", theme.fg(Color::Green)),
                JobResult::Failed => ("failed", theme.fg(Color::Red)),
                JobResult::Cancelled => ("cancelled", theme.dim()),
                JobResult::Yielded => ("yielded", theme.dim()),
            };
            vec![
                Span::raw(format!("#{} ", job.id)),
                Span::styled(word, style),
                Span::raw(format!(" in {:.1}s", job.duration_ms as f64 / 1000.0)),
            ]
        }
        None => vec![Span::raw("no job yet")],
    }
}

fn running(run: &Run) -> Vec<Span<'static>> {
    let stage = run.stage.as_ref().map_or("starting", |s| s.name());
    let mut spans = vec![Span::raw(format!("#{} {stage} ", run.id))];
    match run.percent() {
        Some(percent) => {
            let filled = (percent / 10) as usize;
            spans.push(Span::raw(format!(
                "{percent:>2}% [{}{}]",
                "=".repeat(filled),
                " ".repeat(10 - filled)
            )));
        }
        None => spans.push(Span::raw(format!("{} units", run.done))),
    }
    if let Some(package) = &run.compiling {
        spans.push(Span::raw(format!(" {package}")));
    }
    spans
}

fn changed(view: &View, now: Instant, theme: Theme) -> Vec<Span<'static>> {
    let Some(change) = &view.last_change else {
        return Vec::new();
    };
    let when = match change.at {
        Some(at) => format!("changed {} ago", ago(now.saturating_duration_since(at))),
        None => "changed before the view started".to_owned(),
    };
    vec![Span::styled(when, theme.dim())]
}

fn ago(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        _ => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
    }
}

/// The jobs, the selected one in reverse video; ✗ marks a failed one, ● the running one.
fn tabs(view: &View, theme: Theme) -> Line<'static> {
    let selected = view.selected_job_index();
    let running = view.run.as_ref().and_then(|r| r.stage.as_ref());
    let mut spans = Vec::new();
    for (i, job) in view.jobs.iter().enumerate() {
        let mark = if running == Some(&job.name) {
            "●"
        } else if job.last_result == Some(JobResult::Failed) {
            "✗"
        } else {
            ""
        };
        let mut style = if job.last_result == Some(JobResult::Failed) {
            theme.fg(Color::Red)
        } else {
            Style::new()
        };
        if Some(i) == selected {
            style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
        }
        spans.push(Span::styled(format!(" {}{mark} ", job.name), style));
    }
    if spans.is_empty() {
        spans.push(Span::styled(" diagnostics ", theme.dim()));
    }
    Line::from(spans)
}

/// The selected job's command and last result.
fn job_line(view: &View, theme: Theme, width: usize) -> Line<'static> {
    let Some(job) = view.selected_job() else {
        return Line::default();
    };
    let mut text = format!("cargo {}", job.command.join(" "));
    text.push_str(&match (job.last_result, job.last_duration_ms) {
        (Some(result), Some(ms)) => {
            format!(
                " · last {} in {:.1}s",
                result_word(result),
                ms as f64 / 1000.0
            )
        }
        _ => " · not run yet".to_owned(),
    });
    if let Some(extra) = job.waiting.as_ref().or(job.note.as_ref()) {
        text.push_str(&format!(" · {extra}"));
    }
    Line::styled(truncate(&text, width), theme.dim())
}

fn result_word(result: JobResult) -> &'static str {
    match result {
        JobResult::Success => "success",
        JobResult::Failed => "failed",
        JobResult::Cancelled => "cancelled",
        JobResult::Yielded => "yielded",
    }
}

/// The list, scrolled so that the selected item is in sight.
fn list(view: &View, theme: Theme, area: Rect) -> Vec<Line<'static>> {
    let width = area.width as usize;
    let height = area.height as usize;
    let items = view.items();
    if items.is_empty() {
        return empty(view, theme, width);
    }
    let selected = view.selected();
    let mut rows = Vec::new();
    let mut span = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let start = rows.len();
        rows.extend(item_rows(view, *item, i == selected, theme, width));
        if i == selected {
            span = (start, rows.len());
        }
    }
    let offset = span.0.min(span.1.saturating_sub(height));
    rows.into_iter().skip(offset).take(height).collect()
}

fn empty(view: &View, theme: Theme, width: usize) -> Vec<Line<'static>> {
    let (_, warnings) = view.counts();
    let mut text = if view.run.is_some() {
        "building…".to_owned()
    } else if view.show_warnings {
        "no errors, no warnings".to_owned()
    } else {
        "no errors".to_owned()
    };
    if !view.show_warnings && warnings > 0 {
        text.push_str(&format!(" ({warnings} warning(s) hidden: w shows them)"));
    }
    let style = if view.run.is_some() {
        theme.dim()
    } else {
        theme.fg(Color::Green)
    };
    wrap(&text, width, 2)
        .into_iter()
        .map(|row| Line::styled(row, style))
        .collect()
}

/// One item as rows: a header (`file:line:col level: message`), then the code's first
/// lines with the primary span marked.
fn item_rows(
    view: &View,
    item: Item<'_>,
    selected: bool,
    theme: Theme,
    width: usize,
) -> Vec<Line<'static>> {
    let marker = if selected { "▶ " } else { "  " };
    let (header, style, body) = match item {
        Item::Failure(text) => {
            let first: Vec<&str> = text.lines().take(3).collect();
            (
                format!("{marker}the job failed: {}", first.join(" ")),
                theme.severity(Severity::Error),
                Vec::new(),
            )
        }
        Item::Test(test) => (
            format!(
                "{marker}test failed: {}{}",
                test.name,
                test.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            theme.severity(Severity::Error),
            Vec::new(),
        ),
        Item::Diagnostic(d) => (
            format!("{marker}{}", headline(view, d)),
            theme.severity(d.severity),
            code_rows(d),
        ),
    };
    let header_style = if selected {
        style.add_modifier(Modifier::REVERSED)
    } else {
        style
    };
    let mut rows: Vec<Line<'static>> = wrap(&header, width, 4)
        .into_iter()
        .map(|row| Line::styled(row, header_style))
        .collect();
    for line in body {
        rows.extend(
            wrap(&line, width, 9)
                .into_iter()
                .map(|row| Line::styled(row, theme.dim())),
        );
    }
    rows
}

/// `file:line:col level[code]: message`, the path relative to the workspace.
fn headline(view: &View, d: &Diagnostic) -> String {
    let file = d.file.strip_prefix(&view.root).unwrap_or(&d.file);
    let level = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
        Severity::Help => "help",
    };
    let code = d
        .rustc
        .code
        .as_ref()
        .map(|c| format!("[{}]", c.code))
        .unwrap_or_default();
    format!(
        "{}:{}:{} {level}{code}: {}",
        file.display(),
        d.line,
        d.column,
        d.message
    )
}

/// The first source lines of the primary span, numbered, and a row of `^` under the span
/// with its label.
fn code_rows(d: &Diagnostic) -> Vec<String> {
    let Some(span) = d.rustc.spans.iter().find(|s| s.is_primary) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for (i, line) in span.text.iter().take(CODE_LINES).enumerate() {
        let number = span.line_start + i;
        rows.push(format!("  {number:>4} │ {}", line.text.trim_end()));
        if i == 0 && line.highlight_end > line.highlight_start {
            let mut marks = " ".repeat(line.highlight_start.saturating_sub(1));
            marks.push_str(&"^".repeat(line.highlight_end - line.highlight_start));
            if let Some(label) = &span.label {
                marks.push(' ');
                marks.push_str(label);
            }
            rows.push(format!("       │ {marks}"));
        }
    }
    rows
}

/// The full message of the selected item, as rustc rendered it.
fn detail(view: &View, theme: Theme, width: usize) -> Vec<Line<'static>> {
    let items = view.items();
    let Some(item) = items.get(view.selected()) else {
        return Vec::new();
    };
    let text = match item {
        Item::Failure(text) => format!("the job failed:\n{text}"),
        Item::Test(test) => format!(
            "test {} failed{}",
            test.name,
            test.message
                .as_deref()
                .map(|m| format!(":\n{m}"))
                .unwrap_or_default()
        ),
        Item::Diagnostic(d) => crate::render::diagnostic(d),
    };
    let mut rows = vec![Line::styled(
        truncate("full message (Enter or Esc: back)", width),
        theme.dim(),
    )];
    rows.extend(wrap(&text, width, 0).into_iter().map(Line::raw));
    rows
}

fn help(theme: Theme, width: usize) -> Vec<Line<'static>> {
    let mut rows = vec![Line::styled(
        "keys (? or Esc: back)",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    for (key, _, long) in KEYS {
        for (i, row) in wrap(&format!("{key:>6}  {long}"), width, 8)
            .into_iter()
            .enumerate()
        {
            rows.push(if i == 0 && row.len() > 8 && row.is_char_boundary(8) {
                let (key, text) = row.split_at(8);
                Line::from(vec![
                    Span::styled(key.to_owned(), theme.fg(Color::Cyan)),
                    Span::raw(text.to_owned()),
                ])
            } else {
                Line::raw(row)
            });
        }
    }
    rows
}

fn log(view: &View, width: usize) -> Vec<Line<'static>> {
    if view.notices.is_empty() {
        return vec![Line::raw("nothing yet (l or Esc: back)")];
    }
    view.notices
        .iter()
        .flat_map(|n| wrap(n, width, 2))
        .map(Line::raw)
        .collect()
}

/// `rows` from `scroll`, clamped so that the last row stays at the bottom, and the largest
/// scroll that shows something new.
fn scrolled(rows: Vec<Line<'static>>, scroll: usize, area: Rect) -> (Vec<Line<'static>>, usize) {
    let height = area.height as usize;
    let max = rows.len().saturating_sub(height);
    let shown = rows
        .into_iter()
        .skip(scroll.min(max))
        .take(height)
        .collect();
    (shown, max)
}

/// What is going on: an error of the workspace, the tests, the counts, the last notice.
fn status_line(view: &View, now: Instant, theme: Theme, compact: bool) -> Line<'static> {
    if let Some(error) = &view.error {
        let first = error.lines().next().unwrap_or_default();
        return Line::styled(format!("error: {first}"), theme.severity(Severity::Error));
    }
    let mut spans = Vec::new();
    let (errors, warnings) = view.counts();
    if compact || view.screen != Screen::List {
        spans.push(Span::styled(
            format!("{errors}E {warnings}W "),
            if errors > 0 {
                theme.severity(Severity::Error)
            } else {
                Style::new()
            },
        ));
    } else {
        spans.push(Span::raw(format!(
            "{errors} error(s), {warnings} warning(s){} ",
            if view.show_warnings { "" } else { " (hidden)" }
        )));
    }
    if view.quitting {
        spans.push(Span::styled(
            "· quitting once the tests end (q again: now)",
            theme.fg(Color::Yellow),
        ));
        return Line::from(spans);
    }
    if let Some(since) = view.tests.running_since {
        spans.push(Span::styled(
            format!(
                "· tests running ({})",
                ago(now.saturating_duration_since(since))
            ),
            theme.fg(Color::Cyan),
        ));
    } else if let Some(report) = &view.tests.last {
        spans.push(tests_span(report, theme));
    }
    if let Some(notice) = view.notices.last() {
        let first = notice.lines().next().unwrap_or_default().trim();
        spans.push(Span::styled(format!(" · {first}"), theme.dim()));
    }
    Line::from(spans)
}

fn tests_span(report: &TestReport, theme: Theme) -> Span<'static> {
    let style = if report.failed > 0 {
        theme.fg(Color::Red)
    } else {
        theme.fg(Color::Green)
    };
    Span::styled(
        format!(
            "· tests: {} passed, {} failed",
            report.passed, report.failed
        ),
        style,
    )
}

fn footer_line(view: &View, theme: Theme, width: usize) -> Line<'static> {
    // Moving needs no saying on the list; the jobs' key only where there are several.
    let keys: Vec<(&str, &str)> = KEYS
        .iter()
        .filter(|(key, _, _)| *key != "j/k" && (*key != "Tab" || view.jobs.len() > 1))
        .map(|(key, short, _)| (*key, *short))
        .collect();
    let total: usize = keys.iter().map(|(k, s)| k.len() + 1 + s.len() + 2).sum();
    // Two spaces between keys when they all fit so, one when that makes them fit.
    let gap = if total <= width + 2 { "  " } else { " " };
    let mut spans = Vec::new();
    for (i, (key, short)) in keys.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(gap));
        }
        spans.push(Span::styled(
            key.to_owned(),
            theme.fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(format!(" {short}")));
    }
    Line::from(spans)
}

/// `left`, and `right` at the right edge when both fit.
fn spread(left: Vec<Span<'static>>, right: Vec<Span<'static>>, width: usize) -> Line<'static> {
    let left_width: usize = left.iter().map(|s| s.width()).sum();
    let right_width: usize = right.iter().map(|s| s.width()).sum();
    let mut spans = left;
    if right_width > 0 && left_width + 1 + right_width <= width {
        spans.push(Span::raw(" ".repeat(width - left_width - right_width)));
        spans.extend(right);
    }
    Line::from(spans)
}
