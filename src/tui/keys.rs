//! Keys to actions: the one place that says which key does what, for the loop, the footer
//! and the help screen alike. Pure.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::tui::model::Action;

/// The keys as the footer and the help screen list them: key, what it does (short, for the
/// footer), what it does (for the help screen).
pub(crate) const KEYS: &[(&str, &str, &str)] = &[
    ("?", "help", "show or hide this help"),
    (
        "q",
        "quit",
        "quit the view (Ctrl-C too); the daemon keeps running",
    ),
    (
        "r",
        "rebuild",
        "rebuild now: run the jobs again, cancelling the running one",
    ),
    (
        "c",
        "cancel",
        "cancel the running job and forget queued changes",
    ),
    (
        "t",
        "tests",
        "run the tests once, failures placed at their lines",
    ),
    (
        "w",
        "warnings",
        "show or hide warnings (errors come first either way)",
    ),
    (
        "Enter",
        "full",
        "the full message of the selected item; again or Esc: back",
    ),
    (
        "Tab",
        "job",
        "the next job (Shift-Tab: the previous one; 1-9: by place)",
    ),
    (
        "j/k",
        "move",
        "select the next or previous item (arrows, PgUp/PgDn, g/G too)",
    ),
    (
        "l",
        "log",
        "what the watch did: test summaries, the program's output",
    ),
];

/// The action of a key press, if it has one.
pub(crate) fn action(key: KeyEvent) -> Option<Action> {
    // Terminals that report releases (the kitty protocol) would act twice.
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') | KeyCode::Char('d') => Some(Action::Quit),
            KeyCode::Char('u') => Some(Action::PageUp),
            KeyCode::Char('f') => Some(Action::PageDown),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('r') => Action::Rebuild,
        KeyCode::Char('c') => Action::Cancel,
        KeyCode::Char('t') => Action::RunTests,
        KeyCode::Char('w') => Action::ToggleWarnings,
        KeyCode::Char('?') | KeyCode::F(1) => Action::Help,
        KeyCode::Char('l') => Action::Log,
        KeyCode::Enter | KeyCode::Char(' ') => Action::Open,
        KeyCode::Esc | KeyCode::Backspace => Action::Back,
        KeyCode::Tab | KeyCode::Right => Action::NextJob,
        KeyCode::BackTab | KeyCode::Left => Action::PreviousJob,
        KeyCode::Char(d @ '1'..='9') => Action::Job(d as usize - '1' as usize),
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> Option<Action> {
        action(KeyEvent::new(code, modifiers))
    }

    #[test]
    fn quit_on_q_and_ctrl_c_but_c_alone_cancels() {
        assert_eq!(
            press(KeyCode::Char('q'), KeyModifiers::NONE),
            Some(Action::Quit)
        );
        assert_eq!(
            press(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Action::Quit)
        );
        assert_eq!(
            press(KeyCode::Char('c'), KeyModifiers::NONE),
            Some(Action::Cancel)
        );
    }

    #[test]
    fn digits_pick_jobs_by_place() {
        assert_eq!(
            press(KeyCode::Char('1'), KeyModifiers::NONE),
            Some(Action::Job(0))
        );
        assert_eq!(
            press(KeyCode::Char('9'), KeyModifiers::NONE),
            Some(Action::Job(8))
        );
    }

    #[test]
    fn releases_do_nothing() {
        let mut key = KeyEvent::new(KeyCode::Char('r'), KeyModifiers::NONE);
        key.kind = KeyEventKind::Release;
        assert_eq!(action(key), None);
    }
}
