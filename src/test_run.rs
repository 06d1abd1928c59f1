//! Running a workspace's tests on its warm dir, for `buildd watch --test`, and reading the
//! results off the runner's output.
//!
//! cargo-nextest runs the tests when it is installed, `cargo test` otherwise. Neither has a
//! stable machine-readable output (libtest's JSON is unstable, nextest's needs an
//! experimental flag), so this module reads their human output: the per-test status lines,
//! the summary counts, and panic locations (`thread 'NAME' panicked at FILE:LINE:COL:`),
//! which libtest and nextest both print for a failing test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::Context;
use buildd_daemon::protocol::{FailingTest, TestReport};

use crate::connect::Session;
use crate::lease::Lease;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runner {
    Nextest,
    CargoTest,
}

impl Runner {
    /// nextest when `cargo nextest` answers, else `cargo test`.
    pub(crate) fn detect() -> Runner {
        let nextest = std::process::Command::new("cargo")
            .args(["nextest", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if nextest {
            Runner::Nextest
        } else {
            Runner::CargoTest
        }
    }

    fn name(self) -> &'static str {
        match self {
            Runner::Nextest => "cargo nextest run",
            Runner::CargoTest => "cargo test",
        }
    }

    fn args(self) -> Vec<String> {
        let args: &[&str] = match self {
            Runner::Nextest => &["nextest", "run", "--workspace", "--no-fail-fast"],
            Runner::CargoTest => &["test", "--workspace", "--no-fail-fast"],
        };
        args.iter().map(|s| s.to_string()).collect()
    }
}

/// Runs the tests of the workspace at `root` (after job `job`) with the user's `extra`
/// arguments, holding the warm dir meanwhile. `show_wait`: say on stderr while the daemon's
/// job finishes first (not under the full-screen view, which says it itself).
pub(crate) async fn run(
    session: &Session,
    root: &Path,
    job: u64,
    runner: Runner,
    extra: &[String],
    show_wait: bool,
) -> anyhow::Result<(TestReport, String)> {
    let mut args = runner.args();
    args.extend(extra.iter().cloned());
    let lease = Lease::acquire_showing(session, Some(root), &args, show_wait).await?;
    let started = Instant::now();
    let mut command = lease.cargo(args.clone());
    command.current_dir(root);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .with_context(|| format!("failed to run {}", runner.name()))?;
    drop(lease);
    // Both runners print results on stdout and panics on stdout (libtest) or stderr
    // (nextest); read them together.
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let mut report = parse(runner, &text);
    report.job = job;
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.exit_code = output.status.code();
    Ok((report, text))
}

/// nextest's exit code when no test ran (`NO_TESTS_RUN`).
const NEXTEST_NO_TESTS_RUN: i32 = 4;

/// Whether a run passed: exit code 0, or, for nextest, its "no tests to run" code: zero tests
/// is a pass, as it is for `cargo test`.
pub(crate) fn passed(report: &TestReport, runner: Runner) -> bool {
    match report.exit_code {
        Some(0) => report.failed == 0,
        Some(NEXTEST_NO_TESTS_RUN) => {
            matches!(runner, Runner::Nextest) && report.passed == 0 && report.failed == 0
        }
        _ => false,
    }
}

/// Reads a runner's output into a report (job, duration and exit code left to the caller).
pub(crate) fn parse(runner: Runner, output: &str) -> TestReport {
    let mut report = TestReport {
        job: 0,
        runner: runner.name().to_owned(),
        passed: 0,
        failed: 0,
        ignored: 0,
        failing: Vec::new(),
        duration_ms: 0,
        exit_code: None,
    };
    for line in output.lines() {
        let trimmed = line.trim();
        match runner {
            Runner::CargoTest => {
                if let Some(counts) = trimmed.strip_prefix("test result: ") {
                    report.passed += count(counts, "passed");
                    report.failed += count(counts, "failed");
                    report.ignored += count(counts, "ignored");
                } else if let Some(name) = trimmed
                    .strip_prefix("test ")
                    .and_then(|rest| rest.strip_suffix(" ... FAILED"))
                {
                    report.failing.push(failing(name));
                }
            }
            Runner::Nextest => {
                if let Some(rest) = trimmed.strip_prefix("Summary [") {
                    report.passed += count(rest, "passed");
                    report.failed += count(rest, "failed");
                    report.ignored += count(rest, "skipped");
                } else if let Some(name) = nextest_failure(trimmed)
                    && !report.failing.iter().any(|f| f.name == name)
                {
                    report.failing.push(failing(&name));
                }
            }
        }
    }
    locate_panics(output, &mut report.failing);
    report
}

fn failing(name: &str) -> FailingTest {
    FailingTest {
        name: name.to_owned(),
        file: None,
        line: None,
        column: None,
        message: None,
    }
}

/// `N word` in a list of counts such as `1 passed; 2 failed; 0 ignored`.
fn count(text: &str, word: &str) -> u64 {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ';' || c == ',' || c == ':')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .filter(|w| w[1] == word)
        .filter_map(|w| w[0].parse::<u64>().ok())
        .sum()
}

/// A nextest status line of a failed test: `FAIL [   0.003s] (2/2) crate tests::name`, also
/// `SIGSEGV`, `TIMEOUT` and `ABORT` lines. Returns `crate tests::name`.
fn nextest_failure(line: &str) -> Option<String> {
    let (status, rest) = line.split_once(" [")?;
    if !matches!(
        status.trim(),
        "FAIL" | "SIGSEGV" | "SIGABRT" | "SIGBUS" | "TIMEOUT" | "ABORT"
    ) {
        return None;
    }
    let (_, rest) = rest.split_once("] ")?;
    let rest = rest.trim();
    // Newer nextest numbers the tests: `(2/2) crate tests::name`.
    let rest = match rest.strip_prefix('(') {
        Some(numbered) => numbered.split_once(") ")?.1,
        None => rest,
    };
    Some(rest.trim().to_owned())
}

/// Fills in where each failing test panicked, from `thread 'NAME' panicked at F:L:C:` and the
/// message line after it. nextest names tests `binary-id path::name`, libtest `path::name`.
fn locate_panics(output: &str, failing: &mut [FailingTest]) {
    let lines: Vec<&str> = output.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix("thread '") else {
            continue;
        };
        let Some((thread, rest)) = rest.split_once("' ") else {
            continue;
        };
        // `thread 'x' (1234) panicked at`: newer std prints the thread id.
        let Some(place) = rest
            .split_once("panicked at ")
            .map(|(_, p)| p.trim_end_matches(':'))
        else {
            continue;
        };
        let mut parts = place.rsplitn(3, ':');
        let (Some(column), Some(line_no), Some(file)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some(test) = failing.iter_mut().find(|f| {
            f.file.is_none() && (f.name == thread || f.name.ends_with(&format!(" {thread}")))
        }) else {
            continue;
        };
        test.file = Some(PathBuf::from(file));
        test.line = line_no.parse().ok();
        test.column = column.parse().ok();
        test.message = lines
            .get(i + 1)
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .map(|m| with_values(m, &lines[i + 2..]));
    }
}

/// An `assert_eq!`/`assert_ne!` message with the values the panic printed after it
/// (`  left: 1`, ` right: 2`): without them the message says only that they differ.
fn with_values(message: String, after: &[&str]) -> String {
    if !message.starts_with("assertion `left") {
        return message;
    }
    let values: Vec<String> = after
        .iter()
        .take(2)
        .map(|l| l.trim())
        .filter(|l| l.starts_with("left:") || l.starts_with("right:"))
        .map(str::to_owned)
        .collect();
    if values.is_empty() {
        message
    } else {
        format!("{message} ({})", values.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIBTEST: &str = "\
running 2 tests
test tests::passes ... ok
test tests::fails ... FAILED

failures:

---- tests::fails stdout ----

thread 'tests::fails' (4242) panicked at src/lib.rs:12:9:
assertion `left == right` failed
  left: 1
 right: 2

failures:
    tests::fails

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    const NEXTEST: &str = "\
    Starting 2 tests across 1 binary
        PASS [   0.004s] (1/2) mixed tests::passes
        FAIL [   0.005s] (2/2) mixed tests::fails
──── STDERR:             mixed tests::fails

thread 'tests::fails' panicked at src/lib.rs:12:9:
assertion `left == right` failed
────────────
     Summary [   0.006s] 2 tests run: 1 passed, 1 failed, 0 skipped
        FAIL [   0.005s] (2/2) mixed tests::fails
error: test run failed
";

    #[test]
    fn libtest_counts_and_panic_places() {
        let report = parse(Runner::CargoTest, LIBTEST);
        assert_eq!((report.passed, report.failed, report.ignored), (1, 1, 0));
        assert_eq!(report.failing.len(), 1);
        let f = &report.failing[0];
        assert_eq!(f.name, "tests::fails");
        assert_eq!(f.file.as_deref(), Some(Path::new("src/lib.rs")));
        assert_eq!((f.line, f.column), (Some(12), Some(9)));
        assert_eq!(
            f.message.as_deref(),
            Some("assertion `left == right` failed (left: 1, right: 2)")
        );
    }

    #[test]
    fn nextest_counts_and_panic_places() {
        let report = parse(Runner::Nextest, NEXTEST);
        assert_eq!((report.passed, report.failed, report.ignored), (1, 1, 0));
        assert_eq!(report.failing.len(), 1, "{:?}", report.failing);
        let f = &report.failing[0];
        assert_eq!(f.name, "mixed tests::fails");
        assert_eq!(f.line, Some(12));
    }
}
